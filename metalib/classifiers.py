"""The book's classification methods as scikit-learn estimators on raw texts.

Every estimator takes its hyper-parameters as constructor arguments (so ``get_params``,
``set_params`` and :func:`sklearn.base.clone` work), learns with ``fit(texts, labels)``, and answers
``predict_proba(texts)`` (N, C) and ``predict(texts)`` (N,) in the order of ``classes_``. After
``fit`` it has ``n_trainable_parameters_`` and ``fit_seconds_`` (wall time of the fit). ``save(path)``
writes a directory of JSON (the parameters, classes and fitted numbers) and safetensors (the trained
tensors only: for LoRA a few hundred kilobytes, not the encoder); ``TextClassifier.load(path)``
rebuilds the estimator and gives bit-identical predictions. No pickle.

- :class:`MajorityClassifier`: the training split's most frequent class, for every text.
- :class:`LinearProbeClassifier`: logistic regression on a frozen encoder's mean-pooled vectors.
- :class:`FineTuneClassifier`: LP-FT, the probe's own model (mean-pooled encoder and linear head,
  the head set to the fitted probe) with every weight trained, or only an adapter: LoRA, IA3,
  prompt tuning or BitFit (``adapter=``), always with the trained head.

Hyper-parameters chosen from data (the probe's ``C``) are chosen by cross-validation on the
training labels, so every label an estimator sees is one of those given to ``fit``
(``selection`` says how each estimator chooses).

Example:
    >>> from sklearn.base import clone
    >>> majority = MajorityClassifier().fit(["dull", "fine", "great"], ["neg", "pos", "pos"])
    >>> majority.predict(["anything"]).tolist(), majority.predict_proba(["anything"]).round(2).tolist()
    (['pos'], [[0.33, 0.67]])
    >>> clone(majority).get_params() == majority.get_params()
    True
    >>> probe = LinearProbeClassifier("minilm-l6").fit(texts, labels)        # doctest: +SKIP
    >>> lora = FineTuneClassifier("minilm-l6", adapter="lora", lr=5e-4).fit(texts, labels)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

__all__ = [
    "ADAPTERS",
    "FineTuneClassifier",
    "LinearProbeClassifier",
    "MajorityClassifier",
    "TextClassifier",
    "check_texts",
]

ADAPTERS = (None, "lora", "ia3", "prompt", "bitfit")
"""What :class:`FineTuneClassifier` trains besides the head: None = every weight."""


def check_texts(texts: Any, *, allow_empty: bool = False) -> list[str]:
    """``texts`` as a list of strings, or a ``TypeError``/``ValueError`` that names the fix."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string: wrap it as [text]")
    try:
        texts = list(texts)
    except TypeError as err:
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}") from err
    bad = next((t for t in texts if not isinstance(t, str)), None)
    if bad is not None:
        raise TypeError(f"texts must all be strings; found {type(bad).__name__} {bad!r}")
    if not texts and not allow_empty:
        raise ValueError("texts is empty: give at least one text per class")
    return texts


def _check_labels(labels: Any, n_texts: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, y)``: the sorted classes and each label's index; labels are ints or strings."""
    if isinstance(labels, str):
        raise TypeError("labels must be a list, not one string")
    labels = list(labels)
    if len(labels) != n_texts:
        raise ValueError(f"{n_texts} texts but {len(labels)} labels: give one label per text")
    kinds = {_label_kind(v) for v in labels}
    if not kinds <= {"int", "str"} or len(kinds) > 1:
        raise TypeError(f"labels must be all ints or all strings, got {sorted(kinds)}")
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"labels hold one class only ({classes[0]!r}): a classifier needs at least two")
    return classes, y.astype(np.int64)


def _label_kind(value: Any) -> str:
    """``"int"``, ``"str"`` or the type's name (bools and floats are not class labels here)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return "int"
    return "str" if isinstance(value, str) else type(value).__name__


class TextClassifier(ClassifierMixin, BaseEstimator):
    """What every estimator here shares: input checks, label encoding, ``predict``, save/load.

    Subclasses implement ``_fit(texts, y)`` (``y``: class indices), ``_predict_proba(texts)``,
    ``_tensors()`` (the trained tensors, for :meth:`save`) and ``_restore(tensors)``.
    """

    selection: ClassVar[str] = "fixed in advance"
    """How the estimator's hyper-parameters are chosen: fixed in advance, or from its training labels."""

    def fit(self, texts: Sequence[str], labels: Sequence[int | str]) -> TextClassifier:
        """Learn from ``texts`` and their ``labels`` (ints or strings, at least two classes)."""
        texts = check_texts(texts)
        self.classes_, y = _check_labels(labels, len(texts))
        start = time.perf_counter()
        self._fit(texts, y)
        self.fit_seconds_ = time.perf_counter() - start
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(N, len(classes_))``, rows summing to 1."""
        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        return self._predict_proba(texts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        """The most probable class of every text, shape ``(N,)``."""
        proba = self.predict_proba(texts)
        return self.classes_[proba.argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Write the fitted estimator to directory ``path``: ``estimator.json`` and
        ``weights.safetensors`` (the trained tensors). Returns the directory."""
        from safetensors.torch import save_file

        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        info = {
            "class": type(self).__name__,
            "params": self.get_params(deep=False),
            "classes": self.classes_.tolist(),
            "fit_seconds": self.fit_seconds_,
            "n_trainable_parameters": self.n_trainable_parameters_,
        }
        tensors = {name: t.detach().cpu().contiguous() for name, t in self._tensors().items()}
        save_file(tensors, str(path / "weights.safetensors"))
        (path / "estimator.json").write_text(json.dumps(info, indent=1))
        return path

    @staticmethod
    def load(path: str | Path) -> TextClassifier:
        """The estimator :meth:`save` wrote to ``path``, ready to predict."""
        from safetensors.torch import load_file

        path = Path(path)
        if not (path / "estimator.json").is_file():
            raise FileNotFoundError(f"{path} holds no saved estimator (estimator.json is missing)")
        info = json.loads((path / "estimator.json").read_text())
        known = {cls.__name__: cls for cls in (MajorityClassifier, LinearProbeClassifier, FineTuneClassifier)}
        if info["class"] not in known:
            raise ValueError(f"unknown estimator class {info['class']!r}; expected one of {sorted(known)}")
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in info["params"].items()}  # JSON lists
        estimator = known[info["class"]](**params)
        estimator.classes_ = np.asarray(info["classes"])
        estimator.fit_seconds_ = info["fit_seconds"]
        estimator.n_trainable_parameters_ = info["n_trainable_parameters"]
        estimator._restore(load_file(str(path / "weights.safetensors")))
        return estimator

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise ValueError(f"this {type(self).__name__} is not fitted yet: call fit(texts, labels) first")

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        raise NotImplementedError

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def _tensors(self) -> dict[str, Any]:
        raise NotImplementedError

    def _restore(self, tensors: dict[str, Any]) -> None:
        raise NotImplementedError


class MajorityClassifier(TextClassifier):
    """The baseline: the training labels' most frequent class for every text (ties: the first class).

    ``predict_proba`` gives the training class shares for every text (scikit-learn's
    ``DummyClassifier(strategy="prior")``). Trains nothing: ``n_trainable_parameters_ == 0``.
    """

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        self.class_prior_ = np.bincount(y, minlength=len(self.classes_)) / len(y)
        self.n_trainable_parameters_ = 0

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return np.tile(self.class_prior_, (len(texts), 1))

    def _tensors(self) -> dict[str, Any]:
        import torch

        return {"class_prior": torch.as_tensor(self.class_prior_)}

    def _restore(self, tensors: dict[str, Any]) -> None:
        self.class_prior_ = tensors["class_prior"].numpy()


def _load_encoder(name: str, **kwargs: Any):
    """:func:`metalib.recipes.load_encoder`, with an unknown name reported as a ``ValueError``."""
    from metalib import recipes, zoo

    try:
        return recipes.load_encoder(name, **kwargs)
    except OSError as err:
        known = ", ".join((*zoo.ENCODERS, *recipes.BUILT_ENCODERS))
        raise ValueError(
            f"unknown encoder {name!r}: use one of {known}, a local model directory, or (online) a hub name"
        ) from err


def _choose_c(features: np.ndarray, y: np.ndarray, cs: Sequence[float], folds: int, seed: int) -> float:
    """The ``C`` of ``cs`` with the best stratified k-fold accuracy on the training rows (ties: the
    smaller ``C``); the middle of ``cs`` when a class has fewer than 2 rows (no fold can hold it out)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    smallest = np.bincount(y).min()
    if smallest < 2 or len(cs) == 1:
        return float(sorted(cs)[len(cs) // 2])
    splitter = StratifiedKFold(n_splits=min(folds, smallest), shuffle=True, random_state=seed)
    scores = [
        cross_val_score(LogisticRegression(C=c, max_iter=2000), features, y, cv=splitter).mean() for c in cs
    ]
    return float(cs[int(np.argmax(scores))])


class LinearProbeClassifier(TextClassifier):
    """Logistic regression on a frozen encoder's mean-pooled, unit-length sentence vectors.

    The inverse regularisation ``C`` is picked from ``cs`` by stratified ``folds``-fold
    cross-validation on the training labels (:func:`_choose_c`), then the probe is refitted on all
    of them. Trainable parameters: ``(H + 1) C`` (one weight row for two classes).

    Args:
        encoder: a name for :func:`metalib.recipes.load_encoder` (e.g. ``"minilm-l6"``).
        cs: candidate ``C`` values.
        folds: cross-validation folds (fewer when a class has fewer rows).
        max_length: tokens kept per text.
        seed: the folds' shuffle.
    """

    selection: ClassVar[str] = "C by cross-validation on the training labels"

    def __init__(
        self,
        encoder: str = "minilm-l6",
        cs: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
        folds: int = 5,
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.cs = cs
        self.folds = folds
        self.max_length = max_length
        self.seed = seed

    def features(self, texts: Sequence[str]) -> np.ndarray:
        """The frozen sentence vectors, float32 ``(N, H)`` (the encoder loads on first use)."""
        from metalib.embeddings import embed_texts

        if getattr(self, "_encoder", None) is None:
            self._encoder = _load_encoder(self.encoder)
        model, tokenizer = self._encoder
        return embed_texts(model, tokenizer, check_texts(texts), max_length=self.max_length).numpy()

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from sklearn.linear_model import LogisticRegression

        x = self.features(texts)
        self.C_ = _choose_c(x, y, self.cs, self.folds, self.seed)
        self.probe_ = LogisticRegression(C=self.C_, max_iter=2000).fit(x, y)
        self.n_trainable_parameters_ = int(self.probe_.coef_.size + self.probe_.intercept_.size)

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.probe_.predict_proba(self.features(texts))

    def _tensors(self) -> dict[str, Any]:
        import torch

        return {
            "coef": torch.as_tensor(self.probe_.coef_),
            "intercept": torch.as_tensor(self.probe_.intercept_),
            "C": torch.tensor([self.C_]),
        }

    def _restore(self, tensors: dict[str, Any]) -> None:
        from sklearn.linear_model import LogisticRegression

        self.C_ = float(tensors["C"][0])
        self.probe_ = LogisticRegression(C=self.C_)
        self.probe_.coef_ = tensors["coef"].numpy()
        self.probe_.intercept_ = tensors["intercept"].numpy()
        self.probe_.classes_ = np.arange(len(self.classes_))


class FineTuneClassifier(TextClassifier):
    """LP-FT: fit the linear probe, put it on the mean-pooled encoder as the head, train; chapter 2's recipe.

    ``adapter`` picks what trains besides the head: None (every weight: full fine-tuning), ``"lora"``
    (rank-``rank`` updates of the attention's query and value matrices), ``"ia3"`` (learned scales
    of keys, values and feed-forward units), ``"prompt"`` (``virtual_tokens`` learned input vectors)
    or ``"bitfit"`` (the biases). AdamW with a linear schedule and 10% warm-up runs for
    ``epochs`` passes over the labels, at least ``min_steps`` steps; no early stopping (nothing is
    held out), so the recipe is fixed in advance apart from the probe's ``C``.

    Args:
        encoder: a name for :func:`metalib.recipes.load_encoder`.
        adapter: one of :data:`ADAPTERS`.
        lr: peak learning rate (5e-5 suits full fine-tuning of MiniLM; adapters need more, ~1e-3).
        epochs, min_steps, batch_size, weight_decay: the schedule.
        rank: LoRA's rank. virtual_tokens: prompt tuning's learned vectors.
        max_length: tokens kept per text.
        seed: initialisation, batch order and the probe's folds.
    """

    selection: ClassVar[str] = "probe C by cross-validation on the training labels; the rest fixed"

    def __init__(
        self,
        encoder: str = "minilm-l6",
        adapter: str | None = None,
        lr: float = 5e-5,
        epochs: int = 2,
        min_steps: int = 60,
        batch_size: int = 16,
        weight_decay: float = 0.01,
        rank: int = 8,
        virtual_tokens: int = 20,
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.adapter = adapter
        self.lr = lr
        self.epochs = epochs
        self.min_steps = min_steps
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.rank = rank
        self.virtual_tokens = virtual_tokens
        self.max_length = max_length
        self.seed = seed

    def _build(self, n_classes: int):
        """The model before training: (mean-pooled encoder with the adapter and a head, tokenizer)."""
        from metalib import runtime
        from metalib.methods import adapters
        from metalib.methods.transfer import MeanPoolClassifier

        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter={self.adapter!r}: choose one of {ADAPTERS}")
        runtime.seed_everything(self.seed)
        encoder, tokenizer = _load_encoder(self.encoder, device="cpu")
        if self.adapter in ("lora", "ia3", "prompt"):
            from peft import get_peft_model

            config = adapters.AdapterConfig(
                method=self.adapter, rank=self.rank, virtual_tokens=self.virtual_tokens, head=None
            )
            encoder = get_peft_model(encoder, adapters.peft_config(config, task_type="FEATURE_EXTRACTION"))
        model = MeanPoolClassifier(encoder, num_labels=n_classes)
        if self.adapter == "bitfit":
            adapters.bitfit(model, head="head")
        for parameter in model.head.parameters():
            parameter.requires_grad_(True)
        return model, tokenizer

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from metalib.methods.transfer import fine_tune, steps_for
        from metalib.train import TrainConfig

        probe = LinearProbeClassifier(self.encoder, max_length=self.max_length, seed=self.seed).fit(texts, y)
        self.probe_C_ = probe.C_
        model, tokenizer = self._build(len(self.classes_))
        model.init_head_from_probe(probe.probe_)
        config = TrainConfig(
            max_steps=steps_for(len(texts), self.batch_size, self.epochs, self.min_steps),
            lr=self.lr,
            weight_decay=self.weight_decay,
            warmup_ratio=0.1,
            progress=False,
        )
        trainer = fine_tune(
            model,
            tokenizer,
            (texts, y.tolist()),
            None,
            config,
            batch_size=self.batch_size,
            max_length=self.max_length,
            seed=self.seed,
            group_by_length=True,
        )
        self.model_, self.tokenizer_ = trainer.unwrapped_model.eval(), tokenizer
        self.n_trainable_parameters_ = sum(p.numel() for p in self.model_.parameters() if p.requires_grad)

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.transfer import predict_text_logits

        logits = predict_text_logits(self.model_, self.tokenizer_, texts, self.max_length)
        return logits.double().softmax(-1).numpy()

    def _tensors(self) -> dict[str, Any]:
        return {name: p for name, p in self.model_.named_parameters() if p.requires_grad}

    def _restore(self, tensors: dict[str, Any]) -> None:
        model, self.tokenizer_ = self._build(len(self.classes_))
        missing = set(tensors) - {name for name, _ in model.named_parameters()}
        if missing:
            raise ValueError(f"saved tensors do not fit this model: {sorted(missing)[:3]} ...")
        from metalib import runtime

        model.load_state_dict(tensors, strict=False)
        self.model_ = model.to(runtime.get_device()).eval()
