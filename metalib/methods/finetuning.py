"""Fine-tuning techniques measured against a plain fine-tune, on one model and one loop.

Chapter 2 compares a plain fine-tune with a tuned recipe (optuna), stronger regularisation (weight
decay, dropout), data augmentation, adversarial training (FGM) and multi-task training. To keep the
comparisons fair every variant goes through :func:`train_classifier`: the same
:class:`~metalib.methods.transfer.MeanPoolClassifier` (mean-pooled encoder, one linear head per
task; one task = a plain classifier), the same :func:`~metalib.methods.transfer.fine_tune` loop and
schedule, and only the fields of a :class:`Recipe` or the training rows differ. :func:`robustness`
scores a model on clean and perturbed test texts, :func:`compare` summarises runs over seeds with
paired differences, :class:`TechniqueStudy` runs techniques seed by seed and keeps what they get
right, :func:`read_differences` / :func:`plot_differences` read and draw the paired differences,
and :func:`tune` / :func:`plot_study` wrap an optuna search.

Example:
    >>> recipe = Recipe(lr=1e-3, epochs=2)
    >>> recipe.replace(fgm_epsilon=0.01).fgm_epsilon
    0.01

References:
    Akiba et al. 2019, "Optuna: a next-generation hyperparameter optimization framework".
    Srivastava et al. 2014, "Dropout"; Loshchilov and Hutter 2019, "Decoupled weight decay regularization".
    Wei and Zou 2019, "EDA: easy data augmentation techniques".
    Miyato, Dai and Goodfellow 2017, "Adversarial training methods for semi-supervised text classification".
    Caruana 1997, "Multitask learning".
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from metalib.evaluate import mean_estimate

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from transformers import PreTrainedTokenizerBase

    from metalib.train import Trainer

__all__ = [
    "Reading",
    "Recipe",
    "TechniqueStudy",
    "compare",
    "correct",
    "plot_differences",
    "plot_study",
    "read_differences",
    "robustness",
    "train_classifier",
    "tune",
    "verdict",
]

Rows = tuple[Sequence[str], Sequence[int]]
"""``(texts, labels)``, one int label per text"""


@dataclass(frozen=True)
class Recipe:
    """A fine-tuning recipe: AdamW with linear warm-up and decay, ``epochs`` passes over the rows."""

    lr: float = 1e-3
    """peak learning rate"""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay (matrices only)"""
    epochs: int = 2
    """passes over the training rows (main and auxiliary together)"""
    dropout: float = 0.1
    """dropout probability in the encoder (hidden states and attention) and before the heads"""
    batch_size: int = 32
    """rows per step"""
    fgm_epsilon: float = 0.0
    """L2 norm of the FGM perturbation per example (0 turns adversarial training off)"""
    warmup_ratio: float = 0.1
    """fraction of the steps spent warming the learning rate up"""

    def replace(self, **changes: float | int) -> Recipe:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def train_classifier(
    encoder: str,
    train: Rows,
    recipe: Recipe,
    *,
    seed: int = 0,
    max_length: int = 64,
    num_labels: int = 2,
    aux: Rows | None = None,
    aux_num_labels: int | None = None,
    load_encoder: Callable[..., tuple[Any, PreTrainedTokenizerBase]] | None = None,
) -> tuple[Trainer, PreTrainedTokenizerBase]:
    """Fine-tune encoder ``encoder`` on ``train`` with ``recipe``.

    ``encoder`` is a name for ``load_encoder`` (default :func:`metalib.zoo.load_encoder`; pass
    :func:`metalib.recipes.load_encoder` for the models the book builds, e.g. ``"tiny-bert-scratch"``).

    The model is a :class:`~metalib.methods.transfer.MeanPoolClassifier` (not normalised) with heads
    ``(num_labels,)``, or ``(num_labels, aux_num_labels)`` when auxiliary rows ``aux`` are given
    (then main and auxiliary rows are shuffled together into every batch). The encoder is seeded
    with ``seed`` before it is loaded (so ``"tiny-bert-scratch"`` gets one init per seed), trained for
    ``recipe.epochs`` passes over all rows by :func:`~metalib.methods.transfer.fine_tune` with
    length-grouped batches, and with :func:`metalib.adversarial.fgm_forward` if
    ``recipe.fgm_epsilon > 0``. No validation set: the recipe is fixed in advance.

    Returns:
        The trainer (its model in eval mode after :meth:`metalib.train.Trainer.predict`) and the tokenizer.
    """
    from metalib import runtime, zoo
    from metalib.adversarial import fgm_forward
    from metalib.methods.transfer import MeanPoolClassifier, fine_tune, steps_for
    from metalib.train import TrainConfig

    texts, labels = list(train[0]), list(train[1])
    tasks = [0] * len(texts)
    heads = [num_labels]
    if aux is not None:
        aux_texts, aux_labels = list(aux[0]), list(aux[1])
        heads.append(aux_num_labels if aux_num_labels is not None else max(aux_labels) + 1)
        texts, labels, tasks = texts + aux_texts, labels + aux_labels, tasks + [1] * len(aux_texts)
    runtime.seed_everything(seed)
    p = recipe.dropout
    load_encoder = load_encoder or zoo.load_encoder
    encoder_model, tokenizer = load_encoder(encoder, hidden_dropout_prob=p, attention_probs_dropout_prob=p)
    model = MeanPoolClassifier(encoder_model, heads, normalize=False, dropout=p)
    config = TrainConfig(
        max_steps=steps_for(len(texts), recipe.batch_size, recipe.epochs),
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        warmup_ratio=recipe.warmup_ratio,
        progress=False,
    )
    trainer = fine_tune(
        model,
        tokenizer,
        (texts, labels),
        None,
        config,
        batch_size=recipe.batch_size,
        max_length=max_length,
        seed=seed,
        forward=fgm_forward(recipe.fgm_epsilon) if recipe.fgm_epsilon > 0 else None,
        group_by_length=True,
        tasks=tasks if aux is not None else None,
    )
    return trainer, tokenizer


def correct(
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    rows: Rows,
    max_length: int = 64,
) -> np.ndarray:
    """Whether the trainer's model predicts each row's label (main task): bool array ``(N,)``."""
    from metalib.methods.transfer import predict_logits

    predicted = predict_logits(trainer, tokenizer, list(rows[0]), max_length).argmax(-1)  # (N,)
    return (predicted == torch.as_tensor(list(rows[1]))).numpy()


def robustness(
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    rows: Rows,
    perturbations: Mapping[str, Callable[..., str]],
    *,
    seed: int = 0,
    max_length: int = 64,
) -> dict[str, np.ndarray]:
    """Correctness ``(N,)`` per test row on the clean texts and on each perturbed copy of them.

    Args:
        rows: the test ``(texts, labels)``; labels stay as they are (perturbations must not change
            the sentiment, e.g. typos or synonym swaps from :mod:`metalib.augment`).
        perturbations: name → ``fn(text, rng=random.Random)``, e.g.
            ``functools.partial(augment.typos, p=0.2)``.
        seed: each perturbation threads one ``random.Random(seed)`` through the texts in order, so
            every model sees the same perturbed test set.

    Returns:
        ``{"clean": ..., name: ...}``, bool arrays aligned with ``rows``; pair them row by row.
    """
    texts, labels = list(rows[0]), list(rows[1])
    out = {"clean": correct(trainer, tokenizer, (texts, labels), max_length)}
    for name, fn in perturbations.items():
        rng = random.Random(seed)
        perturbed = [fn(text, rng=rng) for text in texts]
        out[name] = correct(trainer, tokenizer, (perturbed, labels), max_length)
    return out


def compare(results: Mapping[str, Sequence[float]], baseline: str) -> pd.DataFrame:
    """Mean over seeds of each method with a Student-t 95% interval, and its paired difference
    from ``baseline`` (run ``i`` of a method minus run ``i`` of the baseline: same seed, same
    training rows) with its own interval. Paired differences remove the seed-to-seed variation
    the methods share, so they are usually much narrower than the intervals of the two means.

    Args:
        results: method → one accuracy per seed, in the same seed order for every method.
        baseline: the key of the reference method.

    Returns:
        Indexed by method, columns ``mean``, ``low``, ``high``, ``diff``, ``diff_low``, ``diff_high``,
        ``seeds`` (the baseline's difference is 0).
    """
    import pandas as pd

    if baseline not in results:
        raise KeyError(f"baseline {baseline!r} is not among {list(results)}")
    base = np.asarray(results[baseline], dtype=float)
    rows = {}
    for name, values in results.items():
        values = np.asarray(values, dtype=float)
        if values.shape != base.shape:
            raise ValueError(f"{name!r} has {len(values)} runs, the baseline {len(base)}: cannot pair them")
        est, diff = mean_estimate(values.tolist()), mean_estimate((values - base).tolist())
        rows[name] = {
            "mean": est.mean,
            "low": est.low,
            "high": est.high,
            "diff": diff.mean,
            "diff_low": diff.low,
            "diff_high": diff.high,
            "seeds": est.n,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def verdict(
    diff: float, low: float, high: float, what: str = "the plain fine-tune", n: int | None = None
) -> str:
    """A sentence fragment for a paired difference ``diff`` with 95% interval ``[low, high]``:
    ahead of / behind ``what`` when the interval excludes zero, else no difference shown. With
    ``n = 1`` run there is no interval, and the fragment says so instead of reading one.

    >>> verdict(0.02, 0.01, 0.03)
    'ahead of the plain fine-tune by 0.020 (95% CI 0.010 to 0.030)'
    >>> verdict(-0.004, -0.02, 0.012)
    'not distinguishable from the plain fine-tune: -0.004 (95% CI -0.020 to 0.012)'
    """
    if n == 1:
        return f"{diff:+.3f} against {what}, from one seed (no interval)"
    interval = f"(95% CI {low:.3f} to {high:.3f})"
    if low > 0:
        return f"ahead of {what} by {diff:.3f} {interval}"
    if high < 0:
        return f"behind {what} by {-diff:.3f} {interval}"
    return f"not distinguishable from {what}: {diff:+.3f} {interval}"


@dataclass(frozen=True)
class Reading:
    """What a :func:`compare` table says about each technique against its baseline (the first row)."""

    verdicts: list[str]
    """a short verdict per row, ``"-"`` for the baseline (ahead of, behind or not distinguishable from it)"""
    ahead: list[str]
    """techniques whose paired interval lies above zero"""
    behind: list[str]
    """techniques whose paired interval lies below zero"""
    sentence: str
    """all of it in one or two sentences, for the text"""


def read_differences(table: pd.DataFrame, what: str = "the plain fine-tune") -> Reading:
    """Read the paired differences of a :func:`compare` table (its first row is the baseline,
    ``what``). With one seed there is no interval, and nothing is counted as ahead or behind.

    >>> table = compare({"plain": [0.70, 0.72, 0.74], "new": [0.73, 0.75, 0.77]}, "plain")
    >>> read_differences(table).verdicts
    ['-', 'ahead of the plain fine-tune']
    """
    rest = table.iloc[1:]
    seeds = int(table["seeds"].iloc[0])
    several = seeds > 1
    ahead = [name for name, row in rest.iterrows() if several and row["diff_low"] > 0]
    behind = [name for name, row in rest.iterrows() if several and row["diff_high"] < 0]
    verdicts = ["-"] + [
        verdict(row["diff"], row["diff_low"], row["diff_high"], what, n=seeds).split(" by")[0].split(":")[0]
        for _, row in rest.iterrows()
    ]
    if not several:
        sentence = "With one seed no interval can be estimated: each difference above is a single run."
    elif not ahead and not behind:
        sentence = (
            f"None of the {len(rest)} variants is distinguishable from {what} with {seeds} seeds: "
            "every paired interval includes zero, and the largest mean difference is "
            f"{rest['diff'].abs().max():.3f}."
        )
    else:
        sentence = (
            f"Ahead of {what}, with a paired interval that excludes zero: {', '.join(ahead) or 'none'}; "
            f"behind it: {', '.join(behind) or 'none'}. The other variants are not distinguishable from "
            f"it with {seeds} seeds."
        )
    return Reading(verdicts, ahead, behind, sentence)


def plot_differences(table: pd.DataFrame, what: str = "the plain fine-tune", ax=None):
    """Each technique's paired difference from the baseline (the first row of a :func:`compare`
    table) with its 95% interval, one line per technique, and zero marked. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    rest = table.iloc[1:]
    y = np.arange(len(rest))[::-1]
    errors = [rest["diff"] - rest["diff_low"], rest["diff_high"] - rest["diff"]]
    ax.errorbar(rest["diff"], y, xerr=errors, fmt="o")
    ax.axvline(0, color="gray", ls="--")
    ax.set(yticks=y, yticklabels=list(rest.index), xlabel=f"test accuracy minus {what}'s")
    return ax


@dataclass
class TechniqueStudy:
    """Techniques measured against a plain fine-tune, paired by seed.

    Every run trains ``encoder`` with :func:`train_classifier` on the rows of a seed and keeps, per
    seed, which ``val`` and ``test`` texts it gets right (and which perturbed test texts, when
    asked); :meth:`compare` turns the runs into means over seeds and paired differences from the
    first technique named. Cost: one training run per seed and technique (:attr:`trainings`
    counts them, searches included).

    Example (chapter 2)::

        study = TechniqueStudy("tiny-bert-scratch", rows_of_seed, test, val, seeds=(0, 1, 2))
        study.run("plain fine-tune", Recipe(), robust=True)
        study.run("dropout 0.3", Recipe(dropout=0.3))
        study.compare(["plain fine-tune", "dropout 0.3"])
    """

    encoder: str
    """a name for ``load_encoder`` (see :func:`train_classifier`)"""
    rows: Callable[[int], Rows]
    """seed -> the plain fine-tune's training rows"""
    test: Rows
    val: Rows
    seeds: Sequence[int]
    max_length: int = 64
    perturbations: Mapping[str, Callable[..., str]] = dataclasses.field(default_factory=dict)
    """test-time perturbations for ``robust`` runs (:func:`robustness`)"""
    perturb_seed: int = 0
    load_encoder: Callable[..., tuple[Any, PreTrainedTokenizerBase]] | None = None
    runs: dict[str, list[dict[str, np.ndarray]]] = dataclasses.field(default_factory=dict)
    """technique -> a list over seeds of the ``"clean"``, ``"val"`` and perturbed correctness ``(N,)``"""
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    """technique -> mean training seconds per run (scoring excluded)"""
    trainings: int = 0
    """training runs so far"""

    def train(
        self, rows: Rows, recipe: Recipe, seed: int, **aux: Any
    ) -> tuple[Trainer, PreTrainedTokenizerBase]:
        """One :func:`train_classifier` run on ``rows`` (``aux``: its auxiliary-task arguments)."""
        self.trainings += 1
        return train_classifier(
            self.encoder,
            rows,
            recipe,
            seed=seed,
            max_length=self.max_length,
            load_encoder=self.load_encoder,
            **aux,
        )

    def validation_accuracy(self, recipe: Recipe, seed: int) -> float:
        """Accuracy on ``val`` of ``recipe`` trained on seed ``seed``'s rows: a search objective."""
        trainer, tokenizer = self.train(self.rows(seed), recipe, seed)
        return float(correct(trainer, tokenizer, self.val, self.max_length).mean())

    def run(
        self,
        name: str,
        recipe: Recipe,
        rows: Callable[[int], Rows] | None = None,
        robust: bool = False,
        **aux: Any,
    ) -> None:
        """Train ``recipe`` once per seed, on ``rows(seed)`` (default: the plain rows), and record it
        as technique ``name``; ``robust`` also scores the perturbed test sets."""
        rows = rows or self.rows
        self.runs[name], seconds = [], 0.0
        for seed in self.seeds:
            start = time.perf_counter()
            trainer, tokenizer = self.train(rows(seed), recipe, seed, **aux)
            seconds += time.perf_counter() - start
            perturbations = self.perturbations if robust else {}
            scores = robustness(
                trainer,
                tokenizer,
                self.test,
                perturbations,
                seed=self.perturb_seed,
                max_length=self.max_length,
            )
            scores["val"] = correct(trainer, tokenizer, self.val, self.max_length)
            self.runs[name].append(scores)
        self.seconds[name] = seconds / len(self.seeds)

    def compare(self, names: Sequence[str], split: str = "clean") -> pd.DataFrame:
        """:func:`compare` of techniques ``names`` on ``split`` (``"clean"``, ``"val"`` or a
        perturbation), paired against the first of them."""
        missing = [name for name in names if name not in self.runs]
        if missing:
            raise KeyError(f"no runs of {missing}: run them first (recorded: {list(self.runs)})")
        return compare({n: [s[split].mean() for s in self.runs[n]] for n in names}, names[0])


def tune(
    objective: Callable[[optuna.Trial], float],
    n_trials: int,
    seed: int = 0,
    start: Mapping[str, Any] | None = None,
) -> optuna.Study:
    """Maximise ``objective`` (e.g. a validation accuracy) over ``n_trials`` optuna trials.

    The sampler is TPE seeded with ``seed`` (its first 10 trials are random draws, then TPE models
    the good region); optuna's per-trial log lines are silenced. The objective suggests its own
    parameters, e.g. ``trial.suggest_float("lr", 1e-4, 3e-3, log=True)``. ``start`` (parameter name
    → value, e.g. the current recipe's) is enqueued as trial 0 and counts among the ``n_trials``:
    a proposal must then beat the incumbent to be chosen, and on a tie the earlier trial, the
    incumbent, stays best.

    Returns:
        The finished study (read ``study.best_params``, ``study.best_value`` and
        ``study.trials_dataframe()``).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    if start is not None:
        study.enqueue_trial(dict(start))
    study.optimize(objective, n_trials=n_trials)
    return study


def plot_study(study: optuna.Study, ax=None, baseline: float | None = None):
    """The optimisation history: each trial's value (dots) and the best so far (line).

    Args:
        ax: a matplotlib axes (default: a new figure).
        baseline: a dashed reference line (e.g. the plain recipe's value on the same data).

    Returns:
        The matplotlib axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    done = [t for t in study.trials if t.value is not None]
    numbers = [t.number for t in done]
    values = [t.value for t in done]
    ax.plot(numbers, values, "o", color="C0", label="trial")
    ax.plot(numbers, np.maximum.accumulate(values), "-", color="C1", label="best so far")
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label=f"plain recipe ({baseline:.3f})")
    ax.set(xlabel="trial", ylabel="objective")
    ax.legend()
    return ax
