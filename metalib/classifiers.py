"""The book's classification methods as scikit-learn estimators on raw texts.

Every estimator takes its hyper-parameters as constructor arguments (so ``get_params``,
``set_params`` and ``sklearn.base.clone`` work), learns with ``fit(texts, labels)``, and answers
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
- :class:`SetFitClassifier`: SetFit, the encoder tuned contrastively on pairs of labelled texts, then
  a logistic regression on its vectors (the ``setfit`` package).
- :class:`PrototypeClassifier`: few-shot, the nearest class mean of the encoder's vectors, raw or
  through chapter 6's meta-trained ProtoNet head; ``fit`` is the support set.
- :class:`LabelDescriptionClassifier`: zero-shot, the class whose description is nearest.
- :class:`PromptClassifier`: zero-shot or in-context prompting of SmolLM2, with contextual calibration.
- :class:`FrozenClassifier`: a sequence classifier trained beforehand (chapter 2's fine-tuned MiniLM,
  chapter 5's teacher); ``fit`` trains nothing.
- :class:`DistilledClassifier`: a student (a few of an encoder's layers, copied or random, or a whole
  small encoder) trained on a teacher estimator's predictions, or on the labels alone.
- :class:`HoldoutSearchClassifier`: any of these with one hyper-parameter (the learning rate)
  chosen on labels held out of its training labels, then refitted on all.

The zero-shot estimators take their classes from their parameters and accept ``fit([], [])``.

Hyper-parameters chosen from data (the probe's ``C``, a searched learning rate) are chosen on the
training labels (cross-validation or a held-out share), so every label an estimator sees is one of
those given to ``fit``
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

import contextlib
import functools
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
    "FrozenClassifier",
    "HoldoutSearchClassifier",
    "LabelDescriptionClassifier",
    "LinearProbeClassifier",
    "MajorityClassifier",
    "PROTOTYPE_HEADS",
    "PromptClassifier",
    "PrototypeClassifier",
    "SetFitClassifier",
    "DistilledClassifier",
    "TextClassifier",
    "check_texts",
    "estimator_from_json",
    "params_to_json",
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


def _encode_labels(labels: Any, n_texts: int, classes: np.ndarray) -> np.ndarray:
    """Each label's index in ``classes`` (labels may be empty, each must be one of ``classes``)."""
    if isinstance(labels, str):
        raise TypeError("labels must be a list, not one string")
    labels = list(labels)
    if len(labels) != n_texts:
        raise ValueError(f"{n_texts} texts but {len(labels)} labels: give one label per text")
    index = {value: i for i, value in enumerate(classes.tolist())}
    unknown = sorted({repr(v) for v in labels if _label_kind(v) not in ("int", "str") or v not in index})
    if unknown:
        raise ValueError(
            f"labels {', '.join(unknown)} are not among this estimator's classes {classes.tolist()}"
        )
    return np.array([index[v] for v in labels], dtype=np.int64)


def params_to_json(estimator: TextClassifier) -> dict[str, Any]:
    """``estimator.get_params(deep=False)`` as JSON values: tuples as lists, an estimator among the
    parameters (a distilled student's teacher) as ``{"class": ..., "params": ...}``."""

    def encode(value: Any) -> Any:
        if isinstance(value, TextClassifier):
            return {"class": type(value).__name__, "params": params_to_json(value)}
        return [encode(v) for v in value] if isinstance(value, list | tuple) else value

    return {name: encode(value) for name, value in estimator.get_params(deep=False).items()}


def estimator_from_json(info: dict[str, Any]) -> TextClassifier:
    """The unfitted estimator that :func:`params_to_json` described: ``{"class": ..., "params": ...}``."""
    known = {cls.__name__: cls for cls in _subclasses(TextClassifier)}
    if info["class"] not in known:
        raise ValueError(f"unknown estimator class {info['class']!r}; expected one of {sorted(known)}")

    def decode(value: Any) -> Any:
        if isinstance(value, dict) and set(value) == {"class", "params"}:
            return estimator_from_json(value)
        return tuple(decode(v) for v in value) if isinstance(value, list) else value

    return known[info["class"]](**{name: decode(value) for name, value in info["params"].items()})


def _label_kind(value: Any) -> str:
    """``"int"``, ``"str"`` or the type's name (bools and floats are not class labels here)."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        return "int"
    return "str" if isinstance(value, str) else type(value).__name__


class TextClassifier(ClassifierMixin, BaseEstimator):
    """What every estimator here shares: input checks, label encoding, ``predict``, save/load.

    Subclasses implement ``_fit(texts, y)`` (``y``: class indices), ``_predict_proba(texts)``,
    ``_tensors()`` (the fitted tensors, for :meth:`save`), ``_restore(tensors, state)`` and, where
    the fitted state holds more than tensors, ``_json_state()``.
    """

    selection: ClassVar[str] = "fixed in advance"
    """How the estimator chooses its hyper-parameters (fixed in advance, or from its training labels)."""

    def fit(self, texts: Sequence[str], labels: Sequence[int | str]) -> TextClassifier:
        """Learn from ``texts`` and their ``labels`` (ints or strings, at least two classes).

        An estimator whose classes are its own (:meth:`own_classes`: zero-shot ones) accepts
        ``fit([], [])`` and requires every label to be one of them."""
        own = self.own_classes()
        texts = check_texts(texts, allow_empty=own is not None)
        if own is None:
            self.classes_, y = _check_labels(labels, len(texts))
        else:
            self.classes_, y = own, _encode_labels(labels, len(texts), own)
        start, owed = time.perf_counter(), _owed_seconds
        self._reused_seconds_ = 0.0
        self._fit(texts, y)
        # a part reused from an earlier fit in this process (``_fitted_probe``) counts at its own
        # cost, and so do the vectors reused during this fit, nested fits included (_owed_seconds)
        self.fit_seconds_ = time.perf_counter() - start + self._reused_seconds_ + _owed_seconds - owed
        self.n_fit_labels_ = len(texts)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape ``(N, len(classes_))``, rows summing to 1; the call's seconds
        in ``predict_seconds_`` (vectors reused from an earlier call counted at their cost)."""
        self._check_fitted()
        texts = check_texts(texts, allow_empty=True)
        start, owed = time.perf_counter(), _owed_seconds
        proba = self._predict_proba(texts) if texts else np.zeros((0, len(self.classes_)))
        self.predict_seconds_ = time.perf_counter() - start + _owed_seconds - owed
        return proba

    def own_classes(self) -> np.ndarray | None:
        """The classes fixed by the parameters (e.g. one per label description), or None: from ``fit``."""
        return None

    def fit_details(self) -> dict[str, Any]:
        """Numbers of the fit beyond accuracy and size, as JSON values (e.g. optimizer steps and
        seconds per step, a chosen learning rate); :func:`metalib.compare.run` keeps them in its row."""
        self._check_fitted()
        return {}

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
            "params": params_to_json(self),
            "classes": self.classes_.tolist(),
            "fit_seconds": self.fit_seconds_,
            "n_trainable_parameters": self.n_trainable_parameters_,
            "n_fit_labels": self.n_fit_labels_,
            "state": self._json_state(),
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
        estimator = estimator_from_json({"class": info["class"], "params": info["params"]})
        estimator.classes_ = np.asarray(info["classes"])
        estimator.fit_seconds_ = info["fit_seconds"]
        estimator.n_trainable_parameters_ = info["n_trainable_parameters"]
        estimator.n_fit_labels_ = info["n_fit_labels"]
        estimator._restore(load_file(str(path / "weights.safetensors")), info.get("state", {}))
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

    def _json_state(self) -> dict[str, Any]:
        """Fitted state that is not a tensor (e.g. demonstrations), saved in ``estimator.json``."""
        return {}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError


def _subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, recursively (the estimators :meth:`TextClassifier.load` knows)."""
    return [c for sub in cls.__subclasses__() for c in (sub, *_subclasses(sub))]


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

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self.class_prior_ = tensors["class_prior"].numpy()


def _load_encoder(name: str, **kwargs: Any):
    """:func:`metalib.recipes.load_encoder`, with an unknown name reported as a ``ValueError``."""
    from metalib import recipes

    try:
        return recipes.load_encoder(name, **kwargs)
    except OSError as err:
        raise _unknown_encoder(name, "a local model directory, or (online) a hub name") from err


def _unknown_encoder(name: str, or_else: str) -> ValueError:
    """The error for an encoder name that loads from nowhere: the known names, then ``or_else``."""
    from metalib import recipes, zoo

    known = ", ".join((*zoo.ENCODERS, *recipes.BUILT_ENCODERS))
    return ValueError(f"unknown encoder {name!r}: use one of {known}, {or_else}")


_VECTORS: dict[tuple[str, int], dict[str, tuple[np.ndarray, float]]] = {}
"""Texts' vectors from the embedded encoders (:data:`metalib.zoo.ENCODERS`, whose weights never
change), per (encoder, max_length): text -> (vector, seconds it took to embed)."""
_VECTORS_LIMIT = 100_000  # texts kept per key; past it the memo starts afresh
_owed_seconds = 0.0
"""Seconds of embedding reused from ``_VECTORS`` so far in this process: every ``fit`` and
``predict_proba`` adds what grew during its call to its own seconds, nested calls included."""


def _sentence_vectors(estimator: TextClassifier, texts: Sequence[str]):
    """Unit-length mean-pooled vectors of ``texts`` from ``estimator.encoder``, float32 ``(N, H)``
    tensor; the encoder is loaded on first use and kept on the estimator (not a parameter).

    With an embedded encoder a text that an earlier call in this process embedded is not embedded
    again (a learning curve's nested subsets share most of their texts, and every fit predicts the
    same test set); its share of that embedding's seconds is added to ``_owed_seconds``, which
    ``fit_seconds_`` and ``predict_seconds_`` include, so a call costs what it would alone."""
    global _owed_seconds
    import torch

    from metalib import zoo
    from metalib.embeddings import embed_texts

    texts = check_texts(texts, allow_empty=True)
    if getattr(estimator, "_encoder", None) is None:
        estimator._encoder = _load_encoder(estimator.encoder)
    model, tokenizer = estimator._encoder
    if estimator.encoder not in zoo.ENCODERS or not texts:
        return embed_texts(model, tokenizer, texts, max_length=estimator.max_length)
    memo = _VECTORS.setdefault((estimator.encoder, estimator.max_length), {})
    missing = list(dict.fromkeys(t for t in texts if t not in memo))
    if len(memo) + len(missing) > _VECTORS_LIMIT:
        memo.clear()
        missing = list(dict.fromkeys(texts))
    if missing:
        start = time.perf_counter()
        vectors = embed_texts(model, tokenizer, missing, max_length=estimator.max_length).numpy()
        per_text = (time.perf_counter() - start) / len(missing)
        memo.update((t, (v, per_text)) for t, v in zip(missing, vectors, strict=True))
    # every text at its embedding cost, less what this call spent (the caller's clock counts that)
    _owed_seconds += sum(memo[t][1] for t in texts) - sum(memo[t][1] for t in missing)
    return torch.from_numpy(np.stack([memo[t][0] for t in texts]))


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
    cross-validation on the training labels (``_choose_c``), then the probe is refitted on all
    of them. Trainable parameters: ``(H + 1) C`` (one weight row for two classes). With an embedded
    encoder (MiniLM) a text is embedded once per process and later calls reuse its vector, each
    still counting that text's embedding seconds in ``fit_seconds_`` or ``predict_seconds_``; a
    learning curve's nested budgets then cost one embedding of their largest set and of the test set.

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
        return _sentence_vectors(self, texts).numpy()

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

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        from sklearn.linear_model import LogisticRegression

        self.C_ = float(tensors["C"][0])
        self.probe_ = LogisticRegression(C=self.C_)
        self.probe_.coef_ = tensors["coef"].numpy()
        self.probe_.intercept_ = tensors["intercept"].numpy()
        self.probe_.classes_ = np.arange(len(self.classes_))


@functools.lru_cache(maxsize=8)
def _fitted_probe(
    encoder: str, max_length: int, seed: int, texts: tuple[str, ...], y: tuple[int, ...]
) -> LinearProbeClassifier:
    """LP-FT's first stage, fitted once per process for the same encoder, texts and labels (a
    learning-rate grid fine-tunes from the same probe many times); the encoder is not kept."""
    probe = LinearProbeClassifier(encoder, max_length=max_length, seed=seed).fit(list(texts), np.array(y))
    probe._encoder = None
    return probe


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
        rank: LoRA's rank. lora_alpha: its scale numerator, the update is ``(lora_alpha / rank) B A``
            (None: ``2 rank``, a fixed ratio). lora_target: the layers LoRA wraps, a key of
            :data:`metalib.methods.adapters.TARGETS`. virtual_tokens: prompt tuning's learned vectors.
        max_length: tokens kept per text.
        seed: initialisation, batch order and the probe's folds.

    After ``fit``, :meth:`fit_details` gives the optimizer steps, the seconds per step and the
    training state in bytes (weights, and gradients and AdamW moments of the trained ones:
    :func:`metalib.methods.adapters.training_memory`); on CUDA also the peak memory allocated.
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
        lora_alpha: float | None = None,
        lora_target: str = "query_value",
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
        self.lora_alpha = lora_alpha
        self.lora_target = lora_target
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
                method=self.adapter,
                rank=self.rank,
                alpha=self.lora_alpha,
                target=self.lora_target,
                virtual_tokens=self.virtual_tokens,
                head=None,
            )
            encoder = get_peft_model(encoder, adapters.peft_config(config, task_type="FEATURE_EXTRACTION"))
        model = MeanPoolClassifier(encoder, num_labels=n_classes)
        if self.adapter == "bitfit":
            adapters.bitfit(model, head="head")
        for parameter in model.head.parameters():
            parameter.requires_grad_(True)
        return model, tokenizer

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        import torch

        from metalib.methods.adapters import training_memory
        from metalib.methods.transfer import fine_tune, steps_for
        from metalib.train import TrainConfig

        hits = _fitted_probe.cache_info().hits
        probe = _fitted_probe(self.encoder, self.max_length, self.seed, tuple(texts), tuple(y.tolist()))
        if _fitted_probe.cache_info().hits > hits:
            self._reused_seconds_ = probe.fit_seconds_
        model, tokenizer = self._build(len(self.classes_))
        model.init_head_from_probe(probe.probe_)
        steps = steps_for(len(texts), self.batch_size, self.epochs, self.min_steps)
        config = TrainConfig(
            max_steps=steps, lr=self.lr, weight_decay=self.weight_decay, warmup_ratio=0.1, progress=False
        )
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
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
        seconds = time.perf_counter() - start
        self.model_, self.tokenizer_ = trainer.unwrapped_model.eval(), tokenizer
        self.n_trainable_parameters_ = sum(p.numel() for p in self.model_.parameters() if p.requires_grad)
        self.details_ = {
            "probe_C": probe.C_,
            "steps": steps,
            "seconds_per_step": seconds / steps,
            "training_state_bytes": training_memory(self.model_),
            "peak_cuda_bytes": torch.cuda.max_memory_allocated() if cuda else None,
        }

    def fit_details(self) -> dict[str, Any]:
        """``probe_C``, ``steps``, ``seconds_per_step``, ``training_state_bytes``, ``peak_cuda_bytes``."""
        self._check_fitted()
        return dict(self.details_)

    def _json_state(self) -> dict[str, Any]:
        return {"details": self.details_}

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.transfer import predict_text_logits

        logits = predict_text_logits(self.model_, self.tokenizer_, texts, self.max_length)
        return logits.double().softmax(-1).numpy()

    def _tensors(self) -> dict[str, Any]:
        return {name: p for name, p in self.model_.named_parameters() if p.requires_grad}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        model, self.tokenizer_ = self._build(len(self.classes_))
        missing = set(tensors) - {name for name, _ in model.named_parameters()}
        if missing:
            raise ValueError(f"saved tensors do not fit this model: {sorted(missing)[:3]} ...")
        from metalib import runtime

        model.load_state_dict(tensors, strict=False)
        self.model_ = model.to(runtime.get_device()).eval()
        self.details_ = state["details"]


@contextlib.contextmanager
def _quiet_setfit():
    """setfit's info lines and the progress bars of datasets and transformers off, restored after."""
    import logging

    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    logger, level = logging.getLogger("setfit"), logging.getLogger("setfit").level
    bars = datasets_logging.is_progress_bar_enabled(), transformers_logging.is_progress_bar_enabled()
    logger.setLevel(logging.WARNING)
    datasets_logging.disable_progress_bar()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        logger.setLevel(level)
        if bars[0]:
            datasets_logging.enable_progress_bar()
        if bars[1]:
            transformers_logging.enable_progress_bar()


class SetFitClassifier(TextClassifier):
    """SetFit: contrastive fine-tuning of a sentence encoder on pairs of labelled texts, then a probe.

    Stage 1 trains every weight of the encoder so that the cosine similarity of a pair's two
    mean-pooled vectors approaches 1 when the texts share a class and 0 when they do not
    (``CosineSimilarityLoss``, a squared error); the pairs are drawn from the training labels,
    at most ``max_pairs`` of them (``epochs`` passes, fewer when the cap is reached). Stage 2 fits
    a logistic regression on the tuned encoder's vectors. This wraps the ``setfit`` package
    (Tunstall et al. 2022) with a metric callable, so nothing is downloaded; nothing is held out
    and the recipe is fixed in advance.

    Args:
        encoder: a sentence-transformers directory or a name for
            :func:`metalib.recipes.encoder_source` (e.g. ``"minilm-l6"``).
        max_pairs: cap on the text pairs stage 1 trains on (its steps: ``max_pairs / batch_size``).
        epochs: passes over the pairs.
        batch_size: pairs per step.
        lr: the encoder's peak learning rate (AdamW, linear schedule, 10% warm-up).
        max_length: tokens kept per text.
        seed: pair sampling, batch order and initialisation.

    After ``fit``, :meth:`fit_details` gives the pairs and steps trained and the seconds per step.
    """

    def __init__(
        self,
        encoder: str = "minilm-l6",
        max_pairs: int = 640,
        epochs: int = 1,
        batch_size: int = 16,
        lr: float = 2e-5,
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.encoder = encoder
        self.max_pairs = max_pairs
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_length = max_length
        self.seed = seed

    def _build(self):
        """The untrained model: setfit's ``SetFitModel`` (the encoder, a logistic-regression head)."""
        from sentence_transformers import SentenceTransformer
        from setfit import SetFitModel
        from sklearn.linear_model import LogisticRegression

        from metalib import recipes, runtime

        try:
            body = SentenceTransformer(recipes.encoder_source(self.encoder), device=str(runtime.get_device()))
        except OSError as err:
            raise _unknown_encoder(self.encoder, "or a sentence-transformers directory") from err
        body.max_seq_length = self.max_length
        return SetFitModel(model_body=body, model_head=LogisticRegression())

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        import math
        import tempfile

        from datasets import Dataset
        from setfit import Trainer, TrainingArguments
        from transformers import PrinterCallback

        from metalib import runtime

        runtime.seed_everything(self.seed)
        with tempfile.TemporaryDirectory() as tmp, _quiet_setfit():
            self.model_ = self._build()
            args = TrainingArguments(
                output_dir=tmp,
                batch_size=self.batch_size,
                num_epochs=self.epochs,
                max_steps=math.ceil(self.max_pairs / self.batch_size),
                body_learning_rate=self.lr,
                max_length=self.max_length,
                seed=self.seed,
                show_progress_bar=False,
                report_to="none",
                logging_strategy="no",
                logging_first_step=False,
                save_strategy="no",
            )
            trainer = Trainer(
                model=self.model_,
                args=args,
                train_dataset=Dataset.from_dict({"text": texts, "label": y.tolist()}),
                metric=lambda predicted, labels: {"accuracy": float(np.mean(predicted == labels))},
            )
            trainer.st_trainer.args.disable_tqdm = True
            trainer.st_trainer.args.dataloader_pin_memory = False
            for callback in list(trainer.st_trainer.callback_handler.callbacks):  # no bars or log lines
                name = type(callback).__name__
                if isinstance(callback, PrinterCallback) or name.endswith("ProgressCallback"):
                    trainer.st_trainer.remove_callback(callback)
            start = time.perf_counter()
            trainer.train()
            seconds = time.perf_counter() - start
        steps = int(trainer.st_trainer.state.global_step)
        head = self.model_.model_head
        body_parameters = sum(p.numel() for p in self.model_.model_body.parameters())
        self.n_trainable_parameters_ = int(body_parameters + head.coef_.size + head.intercept_.size)
        pairs = len(trainer.st_trainer.train_dataset)  # setfit draws at most max_steps * batch_size
        self.details_ = {"pairs": pairs, "steps": steps, "seconds_per_step": seconds / steps}

    def fit_details(self) -> dict[str, Any]:
        """``pairs`` (drawn from the labels), ``steps`` (of the encoder), ``seconds_per_step`` (the
        whole fit, both stages, over the encoder's steps)."""
        self._check_fitted()
        return dict(self.details_)

    def _json_state(self) -> dict[str, Any]:
        return {"details": self.details_}

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        vectors = self.model_.encode(texts, batch_size=32, show_progress_bar=False)  # (N, H) float32
        return self.model_.model_head.predict_proba(np.asarray(vectors, dtype=np.float64))

    def _tensors(self) -> dict[str, Any]:
        import torch

        head = self.model_.model_head
        body = {f"body.{name}": p for name, p in self.model_.model_body.state_dict().items()}
        return body | {"coef": torch.as_tensor(head.coef_), "intercept": torch.as_tensor(head.intercept_)}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        with _quiet_setfit():
            self.model_ = self._build()
        body = {name.removeprefix("body."): t for name, t in tensors.items() if name.startswith("body.")}
        self.model_.model_body.load_state_dict(body)
        head = self.model_.model_head
        head.coef_, head.intercept_ = tensors["coef"].numpy(), tensors["intercept"].numpy()
        head.classes_ = np.arange(len(self.classes_))
        self.details_ = state["details"]


def _check_groups(name: str, groups: Any) -> tuple[tuple[str, ...], ...]:
    """``groups`` as a tuple of non-empty tuples of strings, one per class, or a ``ValueError``."""
    if isinstance(groups, str) or not all(isinstance(g, Sequence) and not isinstance(g, str) for g in groups):
        raise TypeError(f"{name} must hold one tuple of strings per class, e.g. (('bad',), ('good',))")
    groups = tuple(tuple(g) for g in groups)
    if len(groups) < 2 or any(not g or not all(isinstance(t, str) and t for t in g) for g in groups):
        raise ValueError(f"{name} needs at least two classes, each with one or more non-empty strings")
    return groups


def _own_classes(classes: Sequence[int | str] | None, n_classes: int) -> np.ndarray:
    """``classes`` (default ``0 .. n_classes - 1``) as an array, checked against ``n_classes``."""
    if classes is None:
        return np.arange(n_classes)
    if len(classes) != n_classes or len(set(classes)) != n_classes:
        raise ValueError(f"classes={classes!r} must name {n_classes} distinct classes, one per group")
    if {_label_kind(c) for c in classes} not in ({"int"}, {"str"}):
        raise TypeError(f"classes must be all ints or all strings, got {classes!r}")
    return np.asarray(classes)


class LabelDescriptionClassifier(TextClassifier):
    """Zero-shot: each text gets the class whose description is nearest in a sentence encoder's space.

    Every class is described in words (``descriptions[y]``: one or more texts, averaged); a text's
    probabilities are ``softmax(cos(text, class) / temperature)``
    (:func:`metalib.methods.contrastive.zero_shot_probabilities`). No label is needed:
    ``fit([], [])`` only embeds the descriptions; labels passed to ``fit`` are checked and ignored.

    Args:
        encoder: a name for :func:`metalib.recipes.load_encoder`.
        descriptions: one tuple of description texts per class.
        classes: the class of each group (default ``0 .. C - 1``).
        temperature: softmax temperature (does not change the predictions).
        max_length: tokens kept per text.
    """

    selection: ClassVar[str] = "fixed in advance (the descriptions); uses no label"

    def __init__(
        self,
        encoder: str = "minilm-l6",
        descriptions: tuple[tuple[str, ...], ...] = (
            ("a negative movie review",),
            ("a positive movie review",),
        ),
        classes: tuple[int | str, ...] | None = None,
        temperature: float = 0.05,
        max_length: int = 64,
    ) -> None:
        self.encoder = encoder
        self.descriptions = descriptions
        self.classes = classes
        self.temperature = temperature
        self.max_length = max_length

    def own_classes(self) -> np.ndarray:
        return _own_classes(self.classes, len(_check_groups("descriptions", self.descriptions)))

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from metalib.methods.contrastive import label_embeddings

        if getattr(self, "_encoder", None) is None:
            self._encoder = _load_encoder(self.encoder)
        model, tokenizer = self._encoder
        groups = _check_groups("descriptions", self.descriptions)
        self.label_vectors_ = label_embeddings(model, tokenizer, groups, max_length=self.max_length)  # (C, H)
        self.n_trainable_parameters_ = 0

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.contrastive import zero_shot_probabilities

        vectors = _sentence_vectors(self, texts)  # (N, H)
        return (
            zero_shot_probabilities(vectors, self.label_vectors_, temperature=self.temperature)
            .double()
            .numpy()
        )

    def _tensors(self) -> dict[str, Any]:
        return {"label_vectors": self.label_vectors_}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self.label_vectors_ = tensors["label_vectors"]


PROTOTYPE_HEADS = (None, "protonet-wordnet")
"""What :class:`PrototypeClassifier` puts on the encoder's vectors: nothing, or chapter 6's ProtoNet head."""


class PrototypeClassifier(TextClassifier):
    """Few-shot: a text gets the class of the nearest prototype, the mean vector of the class's examples.

    ``fit`` is the support set: it trains nothing, it averages (``n_trainable_parameters_ == 0``).
    With ``head=None`` the vectors are the encoder's own (the nearest class mean on frozen MiniLM);
    with ``head="protonet-wordnet"`` they first pass through the projection head that chapter 6
    meta-trains as a prototypical network on WordNet supersense episodes
    (:func:`metalib.recipes.protonet_head.protonet_head`, built on first use; MiniLM only). Logits
    are ``-scale * ||z - c||^2`` (or ``scale * cos``), so ``scale`` changes the probabilities, never
    the predictions.

    Args:
        encoder: a name for :func:`metalib.recipes.load_encoder`.
        head: one of :data:`PROTOTYPE_HEADS`.
        metric: ``"sqeuclidean"`` or ``"cosine"``.
        scale: logit scale.
        max_length: tokens kept per text.
    """

    selection: ClassVar[str] = "fixed in advance (the head is meta-trained on other tasks)"

    def __init__(
        self,
        encoder: str = "minilm-l6",
        head: str | None = None,
        metric: str = "sqeuclidean",
        scale: float = 10.0,
        max_length: int = 64,
    ) -> None:
        self.encoder = encoder
        self.head = head
        self.metric = metric
        self.scale = scale
        self.max_length = max_length

    def _embed(self, texts: list[str]):
        """The (head-mapped) vectors, ``(N, H)``."""
        import torch

        if self.head not in PROTOTYPE_HEADS:
            raise ValueError(f"head={self.head!r}: choose one of {PROTOTYPE_HEADS}")
        if self.metric not in ("sqeuclidean", "cosine"):
            raise ValueError(f"metric={self.metric!r} must be 'sqeuclidean' or 'cosine'")
        if self.head is not None and self.encoder != "minilm-l6":
            raise ValueError(
                f"head={self.head!r} was meta-trained on minilm-l6 vectors, not {self.encoder!r}"
            )
        vectors = _sentence_vectors(self, texts)
        if self.head is None:
            return vectors
        if getattr(self, "_head", None) is None:
            from metalib.recipes.protonet_head import protonet_head

            self._head = protonet_head()
        with torch.no_grad():
            return self._head(vectors)

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        import torch

        from metalib.methods.protonet import prototypes

        z = self._embed(texts)  # (N, H)
        labels = torch.as_tensor(y)
        self.prototypes_ = prototypes(z[None], labels[None], len(self.classes_))[0]  # (C, H)
        self.n_trainable_parameters_ = 0

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.protonet import prototype_logits

        logits = prototype_logits(self._embed(texts)[None], self.prototypes_[None], self.metric, self.scale)[
            0
        ]
        return logits.double().softmax(-1).numpy()  # (N, C)

    def _tensors(self) -> dict[str, Any]:
        return {"prototypes": self.prototypes_}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self.prototypes_ = tensors["prototypes"]


class FrozenClassifier(TextClassifier):
    """A sequence classifier trained beforehand, used as it is: ``fit`` trains nothing.

    ``model`` names a transformers sequence classifier (``AutoModelForSequenceClassification``), e.g.
    ``"minilm-l6-sentiment"``, chapter 2's fine-tuned MiniLM that :mod:`metalib.recipes` builds into
    the cache on first use. Its outputs are ``classes`` in order; ``fit(texts, labels)`` only checks
    the labels against them (``fit([], [])`` is enough), so every label it saw was seen by whoever
    trained the model, not counted in a budget here. Nothing is stored per task: ``save`` keeps the
    name, ``load`` reloads the model. A model without a classification head (a bare encoder) gets a
    new one initialised with ``seed``: useful for tests, not for predictions.

    Args:
        model: a name for :func:`metalib.recipes.load_encoder` (a built model, an embedded one, a
            local directory or, online, a hub name).
        classes: the class of each output, in the model's order (0 = rotten, 1 = fresh for the
            sentiment classifier).
        max_length: tokens kept per text.
        seed: initialises any head weights the model lacks.
    """

    selection: ClassVar[str] = "trained beforehand on labels outside the budget"

    def __init__(
        self,
        model: str = "minilm-l6-sentiment",
        classes: tuple[int | str, ...] = (0, 1),
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.model = model
        self.classes = classes
        self.max_length = max_length
        self.seed = seed

    def own_classes(self) -> np.ndarray:
        return _own_classes(self.classes, len(self.classes))

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        self._load()
        self.n_trainable_parameters_ = 0

    def _load(self) -> None:
        from metalib import runtime

        runtime.seed_everything(self.seed)
        try:
            self.model_, self.tokenizer_ = _load_encoder(self.model, num_labels=len(self.classes))
        except RuntimeError as err:  # a head of another size
            raise ValueError(
                f"{self.model} does not have {len(self.classes)} outputs: give one class per output"
            ) from err

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.transfer import predict_text_logits

        logits = predict_text_logits(self.model_, self.tokenizer_, texts, self.max_length)
        return logits.double().softmax(-1).numpy()

    def _tensors(self) -> dict[str, Any]:
        return {}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self._load()


def _load_causal_lm(name: str):
    """:func:`metalib.zoo.load_causal_lm`, with an unknown name reported as a ``ValueError``."""
    from metalib import zoo

    try:
        return zoo.load_causal_lm(name)
    except OSError as err:
        known = ", ".join(zoo.CAUSAL_LMS)
        raise ValueError(
            f"unknown language model {name!r}: use {known}, a local model directory, or (online) a hub name"
        ) from err


class PromptClassifier(TextClassifier):
    """Zero-shot or in-context classification by prompting a causal LM, with contextual calibration.

    A text is put into a template (``instruction``, then ``shots`` demonstrations drawn from the
    training texts with their answers, then the text as ``example``), and each class is scored by
    the log-likelihood of its answer words (``words[y]``) after the prompt
    (:func:`metalib.methods.prompting.score_labels`). With ``calibrate`` the probabilities are
    divided by the model's answer distribution for content-free inputs under the same prompt
    (Zhao et al. 2021), so a model that leans to one answer is straightened. Trains nothing; ``fit``
    draws the demonstrations and computes the content-free prior (``fit([], [])`` with
    ``shots=0``).

    Args:
        model: a name for :func:`metalib.zoo.load_causal_lm`.
        instruction: shown once before the examples ("" for none).
        example: how a text is shown; contains ``{text}``.
        words: one tuple of answer words per class; the first answers the demonstrations.
        classes: the class of each group (default ``0 .. C - 1``).
        chat: render through the tokenizer's chat template.
        shots: demonstrations per prompt, drawn with ``seed`` (random order, not balanced).
        calibrate: apply contextual calibration.
        seed: the draw of demonstrations.
        batch_size: prompts per forward pass.
    """

    selection: ClassVar[str] = (
        "fixed in advance (template and answer words); demonstrations from the training labels"
    )

    def __init__(
        self,
        model: str = "smollm2-135m-instruct",
        instruction: str = "",
        example: str = "Review: {text}\nSentiment:",
        words: tuple[tuple[str, ...], ...] = (("negative", "Negative"), ("positive", "Positive")),
        classes: tuple[int | str, ...] | None = None,
        chat: bool = False,
        shots: int = 0,
        calibrate: bool = True,
        seed: int = 0,
        batch_size: int = 16,
    ) -> None:
        self.model = model
        self.instruction = instruction
        self.example = example
        self.words = words
        self.classes = classes
        self.chat = chat
        self.shots = shots
        self.calibrate = calibrate
        self.seed = seed
        self.batch_size = batch_size

    def own_classes(self) -> np.ndarray:
        return _own_classes(self.classes, len(_check_groups("words", self.words)))

    def _prompting(self):
        """(model, tokenizer, template, verbalizer), the model loaded on first use."""
        from metalib.methods.prompting import PromptTemplate, Verbalizer

        if getattr(self, "_lm", None) is None:
            self._lm = _load_causal_lm(self.model)
        template = PromptTemplate("estimator", self.instruction, self.example, chat=self.chat)
        return (*self._lm, template, Verbalizer(_check_groups("words", self.words)))

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from metalib.methods.prompting import content_free_prior, sample_demonstrations

        if not 0 <= self.shots <= len(texts):
            raise ValueError(
                f"shots={self.shots} demonstrations need that many labelled texts; fit got {len(texts)}"
            )
        model, tokenizer, template, verbalizer = self._prompting()
        picked = sample_demonstrations(y, self.shots, self.seed)
        self.demonstrations_ = [(texts[i], int(y[i])) for i in picked]
        longest = max([*texts, ""], key=len)
        tokens = len(
            tokenizer(template.render(tokenizer, [longest], verbalizer, self.demonstrations_)[0])["input_ids"]
        )
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and tokens > limit:
            raise ValueError(
                f"shots={self.shots} makes prompts of {tokens} tokens; {self.model} reads {limit}: use fewer"
            )
        self.prior_ = (
            content_free_prior(model, tokenizer, template, verbalizer, self.demonstrations_)
            if self.calibrate
            else None
        )
        self.n_trainable_parameters_ = 0

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.prompting import calibrate, score_labels

        model, tokenizer, template, verbalizer = self._prompting()
        prompts = template.render(tokenizer, texts, verbalizer, self.demonstrations_)
        scores = score_labels(
            model, tokenizer, prompts, template.answers(verbalizer), batch_size=self.batch_size
        )
        probabilities = calibrate(scores, self.prior_) if self.prior_ is not None else scores.softmax(dim=1)
        return probabilities.double().numpy()  # (N, C)

    def _tensors(self) -> dict[str, Any]:
        import torch

        return {"prior": self.prior_ if self.prior_ is not None else torch.zeros(0)}

    def _json_state(self) -> dict[str, Any]:
        return {"demonstrations": self.demonstrations_}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self.prior_ = tensors["prior"] if tensors["prior"].numel() else None
        self.demonstrations_ = [(text, int(y)) for text, y in state["demonstrations"]]


@functools.lru_cache(maxsize=4)
def _teacher_log_probs(
    teacher: str, texts: tuple[str, ...], labels: tuple[Any, ...], transfer: tuple[str, ...]
) -> tuple[np.ndarray, tuple[Any, ...], float]:
    """A teacher (``teacher``: :func:`params_to_json` of it, with its class) fitted on ``texts`` and
    ``labels``: its log-probabilities for ``transfer`` (N, C), its classes and the seconds both took.
    Kept per process, so students of one teacher (several seeds, temperatures) share one fit."""
    fitted = estimator_from_json(json.loads(teacher)).fit(list(texts), list(labels))
    log_p = np.log(np.clip(fitted.predict_proba(list(transfer)), 1e-12, None))
    return log_p, tuple(fitted.classes_.tolist()), fitted.fit_seconds_ + fitted.predict_seconds_


class DistilledClassifier(TextClassifier):
    """Knowledge distillation: a student learns a teacher estimator's predicted probabilities.

    ``fit(texts, labels)`` fits a clone of ``teacher`` (default: full LP-FT fine-tuning) on the
    labels, asks it for class probabilities of the *transfer set* (the labelled texts and
    ``unlabelled``, texts without labels such as the rest of a training split), and trains the
    student on them with Hinton et al.'s loss at ``temperature`` and ``alpha``
    (:func:`metalib.methods.distillation.kd_loss`): ``alpha = 1`` uses the teacher's
    log-probabilities only (no label), ``alpha = 0`` the labels only (the same student and steps
    without a teacher: the baseline distillation has to beat). A teacher with classes of its own (a
    zero-shot one, or a :class:`FrozenClassifier`) can label ``unlabelled`` texts alone:
    ``fit([], [])``.

    The student is the encoder's ``layers`` (DistilBERT's initialisation,
    :func:`~metalib.methods.distillation.layer_copy_student`; None: all of them, e.g. a small encoder
    of its own), with weights copied or, with ``random_init``, initialised afresh; it is mean-pooled
    into a new linear head. ``fit_seconds_`` includes the teacher's fit and predictions
    (``teacher_seconds_``).

    Args:
        teacher: an unfitted estimator of this module (None: ``FineTuneClassifier()``).
        unlabelled: the transfer set's texts beyond the labelled ones (only with ``alpha = 1``).
        encoder: the student's source, a name for :func:`metalib.recipes.load_encoder`.
        layers: the encoder layers the student keeps (MiniLM has 6); None: every layer.
        random_init: the same architecture with fresh weights (nothing copied).
        alpha: the soft targets' share of the loss, in [0, 1].
        temperature: softens teacher and student distributions.
        lr, epochs, min_steps, batch_size: the student's schedule (AdamW, 10% warm-up, linear decay).
        max_length: tokens kept per text.
        seed: the student's initialisation and batch order (the teacher keeps its own ``seed``).
    """

    selection: ClassVar[str] = "the teacher's (default: probe C by cross-validation); the student's fixed"

    def __init__(
        self,
        teacher: TextClassifier | None = None,
        unlabelled: tuple[str, ...] = (),
        encoder: str = "minilm-l6",
        layers: tuple[int, ...] | None = (0, 2, 4),
        random_init: bool = False,
        alpha: float = 1.0,
        temperature: float = 2.0,
        lr: float = 1e-4,
        epochs: int = 2,
        min_steps: int = 60,
        batch_size: int = 32,
        max_length: int = 64,
        seed: int = 0,
    ) -> None:
        self.teacher = teacher
        self.unlabelled = unlabelled
        self.encoder = encoder
        self.layers = layers
        self.random_init = random_init
        self.alpha = alpha
        self.temperature = temperature
        self.lr = lr
        self.epochs = epochs
        self.min_steps = min_steps
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed

    def _teacher(self) -> TextClassifier:
        from sklearn.base import clone

        return clone(self.teacher) if self.teacher is not None else FineTuneClassifier()

    def own_classes(self) -> np.ndarray | None:
        """The teacher's own classes, if it has them (then ``fit([], [])`` distils on ``unlabelled``)."""
        return self._teacher().own_classes() if self.alpha > 0 else None

    def build_student(self, n_classes: int):
        """The untrained student and its tokenizer: (:class:`~metalib.methods.transfer.MeanPoolClassifier`
        over ``layers`` of ``encoder``, tokenizer), on the CPU, seeded with ``seed``."""
        from metalib import runtime
        from metalib.methods.distillation import layer_copy_student
        from metalib.methods.transfer import MeanPoolClassifier

        runtime.seed_everything(self.seed)
        encoder, tokenizer = _load_encoder(self.encoder, device="cpu")
        if self.layers is not None or self.random_init:
            every = range(encoder.config.num_hidden_layers)
            layers = list(every if self.layers is None else self.layers)
            encoder = layer_copy_student(encoder, layers, random_init=self.random_init)
        return MeanPoolClassifier(encoder, num_labels=n_classes), tokenizer

    def _soft_targets(self, texts: list[str], y: np.ndarray, transfer: list[str]):
        """The teacher's log-probabilities for ``transfer``, (N, C) in the order of ``classes_``."""
        import torch

        if self.alpha == 0:
            self.teacher_seconds_ = 0.0
            return torch.zeros(len(transfer), len(self.classes_))
        teacher = self._teacher()
        described = json.dumps({"class": type(teacher).__name__, "params": params_to_json(teacher)})
        hits = _teacher_log_probs.cache_info().hits
        log_p, classes, seconds = _teacher_log_probs(
            described, tuple(texts), tuple(self.classes_[y].tolist()), tuple(transfer)
        )
        if _teacher_log_probs.cache_info().hits > hits:
            self._reused_seconds_ = seconds
        if set(classes) != set(self.classes_.tolist()):
            theirs, ours = list(classes), self.classes_.tolist()
            raise ValueError(f"the teacher's classes {theirs} are not the labels' {ours}: give it the same")
        self.teacher_seconds_ = seconds
        order = [classes.index(c) for c in self.classes_.tolist()]
        return torch.from_numpy(log_p[:, order]).float()

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from metalib.methods.distillation import DistillationConfig, distill
        from metalib.methods.transfer import steps_for
        from metalib.train import TrainConfig

        unlabelled = check_texts(self.unlabelled, allow_empty=True)
        if not 0 <= self.alpha <= 1:
            raise ValueError(f"alpha is the soft targets' share of the loss, in [0, 1]; got {self.alpha}")
        if self.alpha < 1 and unlabelled:
            raise ValueError("alpha < 1 needs a label for every transfer text: give unlabelled=() or alpha=1")
        transfer = texts + unlabelled
        if not transfer:
            raise ValueError("nothing to distil on: give labelled texts or unlabelled ones")
        log_p = self._soft_targets(texts, y, transfer)
        model, tokenizer = self.build_student(len(self.classes_))
        config = TrainConfig(
            max_steps=steps_for(len(transfer), self.batch_size, self.epochs, self.min_steps),
            lr=self.lr,
            warmup_ratio=0.1,
            progress=False,
        )
        trainer = distill(
            model,
            tokenizer,
            transfer,
            log_p,
            config,
            DistillationConfig(temperature=self.temperature, alpha=self.alpha),
            labels=y.tolist() if self.alpha < 1 else None,
            batch_size=self.batch_size,
            max_length=self.max_length,
            seed=self.seed,
        )
        self.model_, self.tokenizer_ = trainer.unwrapped_model.eval(), tokenizer
        self.n_trainable_parameters_ = sum(p.numel() for p in self.model_.parameters())

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        from metalib.methods.transfer import predict_text_logits

        logits = predict_text_logits(self.model_, self.tokenizer_, texts, self.max_length)
        return logits.double().softmax(-1).numpy()

    def _tensors(self) -> dict[str, Any]:
        return dict(self.model_.named_parameters())

    def _json_state(self) -> dict[str, Any]:
        return {"teacher_seconds": self.teacher_seconds_}

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        from metalib import runtime

        model, self.tokenizer_ = self.build_student(len(self.classes_))
        missing = {name for name, _ in model.named_parameters()} ^ set(tensors)
        if missing:
            raise ValueError(f"saved tensors do not fit this student: {sorted(missing)[:3]} ...")
        model.load_state_dict(tensors, strict=False)
        self.model_ = model.to(runtime.get_device()).eval()
        self.teacher_seconds_ = state["teacher_seconds"]


class HoldoutSearchClassifier(TextClassifier):
    """Choose one hyper-parameter of ``estimator`` on labels held out of the training labels.

    ``fit(texts, labels)`` holds out a stratified ``holdout`` share of the labels, fits a clone of
    ``estimator`` on the rest for every value in ``values`` of parameter ``param``, keeps the value
    with the best accuracy on the held-out labels (ties: the first in ``values``), and refits with it
    on all labels. Every label used is one of those given to ``fit``, so a label budget includes the
    validation labels; ``fit_seconds_`` includes every candidate's fit (the search's cost).

    Args:
        estimator: an unfitted estimator of this module (e.g. a :class:`FineTuneClassifier`).
        param: the name of one of its parameters (default the learning rate ``lr``).
        values: the candidates, e.g. a learning-rate grid shared by all methods being compared.
        holdout: share of the labels held out (at least one per class).
        seed: the draw of the held-out labels.

    Example:
        >>> lora = FineTuneClassifier(adapter="lora")                            # doctest: +SKIP
        >>> search = HoldoutSearchClassifier(lora, "lr", (1e-4, 1e-3, 1e-2))      # doctest: +SKIP
        >>> search.fit(texts, labels).fit_details()["chosen"]                    # doctest: +SKIP
    """

    def __init__(
        self,
        estimator: TextClassifier | None = None,
        param: str = "lr",
        values: tuple[Any, ...] = (1e-4, 1e-3, 1e-2),
        holdout: float = 0.25,
        seed: int = 0,
    ) -> None:
        self.estimator = estimator
        self.param = param
        self.values = values
        self.holdout = holdout
        self.seed = seed

    @property
    def selection(self) -> str:  # type: ignore[override]
        """How this search chooses (it depends on the parameters, so it is not a class constant)."""
        inner = self._candidate(self.values[0]).selection if self.values else ""
        return (
            f"{self.param} from {list(self.values)} by accuracy on a stratified {self.holdout:.0%} of the "
            f"training labels held out, then refit on all; otherwise: {inner}"
        )

    def _candidate(self, value: Any) -> TextClassifier:
        """A clone of ``estimator`` with ``param = value`` (a ValueError if it has no such parameter)."""
        from sklearn.base import clone

        if self.estimator is None:
            raise ValueError("HoldoutSearchClassifier needs an estimator, e.g. FineTuneClassifier()")
        if self.param not in self.estimator.get_params(deep=False):
            raise ValueError(
                f"{type(self.estimator).__name__} has no parameter {self.param!r}; "
                f"choose one of {sorted(self.estimator.get_params(deep=False))}"
            )
        return clone(self.estimator).set_params(**{self.param: value})

    def _fit(self, texts: list[str], y: np.ndarray) -> None:
        from sklearn.model_selection import train_test_split

        if not self.values:
            raise ValueError("HoldoutSearchClassifier.values is empty: give at least one candidate")
        self._candidate(self.values[0])  # an estimator with that parameter, or the error saying so
        if not 0 < self.holdout < 1:
            raise ValueError(f"holdout must be a share in (0, 1), got {self.holdout}")
        n_classes = len(self.classes_)
        held = max(n_classes, round(self.holdout * len(texts)))
        if np.bincount(y).min() < 2 or len(texts) - held < n_classes:
            raise ValueError(
                "holding labels out needs at least 2 labels per class (one to fit, one to validate): "
                "give more labels or fix the parameter in advance"
            )
        fit_rows, held_rows = train_test_split(
            np.arange(len(texts)), test_size=held, stratify=y, random_state=self.seed
        )
        held_texts = [texts[i] for i in held_rows]
        scores = []
        for value in self.values:
            candidate = self._candidate(value).fit([texts[i] for i in fit_rows], y[fit_rows])
            scores.append(float(np.mean(candidate.predict(held_texts) == y[held_rows])))
        self.chosen_ = self.values[int(np.argmax(scores))]
        self.holdout_scores_, self.holdout_labels_ = scores, held
        self.best_estimator_ = self._candidate(self.chosen_).fit(texts, y)
        self.n_trainable_parameters_ = self.best_estimator_.n_trainable_parameters_

    def fit_details(self) -> dict[str, Any]:
        """The refitted estimator's details, plus ``chosen`` (the value), ``holdout_scores`` (one
        per value) and ``holdout_labels``."""
        self._check_fitted()
        return {
            **self.best_estimator_.fit_details(),
            "chosen": self.chosen_,
            "holdout_scores": list(self.holdout_scores_),
            "holdout_labels": self.holdout_labels_,
        }

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.best_estimator_.predict_proba(texts)  # its classes are our class indices

    def _tensors(self) -> dict[str, Any]:
        return self.best_estimator_._tensors()

    def _json_state(self) -> dict[str, Any]:
        best = self.best_estimator_
        return {
            "chosen": self.chosen_,
            "holdout_scores": self.holdout_scores_,
            "holdout_labels": self.holdout_labels_,
            "fit_seconds": best.fit_seconds_,
            "n_fit_labels": best.n_fit_labels_,
            "n_trainable_parameters": best.n_trainable_parameters_,
            "state": best._json_state(),
        }

    def _restore(self, tensors: dict[str, Any], state: dict[str, Any]) -> None:
        self.chosen_, self.holdout_scores_ = state["chosen"], state["holdout_scores"]
        self.holdout_labels_ = state["holdout_labels"]
        best = self._candidate(self.chosen_)
        best.classes_ = np.arange(len(self.classes_))
        best.fit_seconds_, best.n_fit_labels_ = state["fit_seconds"], state["n_fit_labels"]
        best.n_trainable_parameters_ = state["n_trainable_parameters"]
        best._restore(tensors, state["state"])
        self.best_estimator_ = best
