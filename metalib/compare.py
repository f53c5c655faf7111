"""One protocol to compare methods: label budgets, one result row per fit, a shared results cache.

A :class:`Budget` is a number of labelled training snippets and a draw seed. Its rows are the first
``labels`` of :func:`~metalib.methods.transfer.stratified_subset`'s seeded order, so for one seed the
16-label set is inside the 64-label one. The estimator sees only those rows: anything it chooses
from data (the probe's ``C``) it chooses from them, and the row records how (``selection``). The
test split is used once per row, to score.

:func:`run` fits one :mod:`metalib.classifiers` estimator on one budget and returns a row: accuracy
with its Wilson 95% interval, fit seconds, prediction milliseconds per test text, trainable
parameters, bytes stored per task (what ``save`` writes of the fit: its tensors and, as JSON, other
fitted state such as demonstrations; not the parameters), the labels used and the estimator's
:meth:`~metalib.classifiers.TextClassifier.fit_details` (steps, seconds per step, a chosen
learning rate) and which test texts it got right (``correct``, a string of 0s and 1s), so that
two rows can be compared paired on the same texts (:func:`paired_difference`). A budget of 0 labels
fits zero-shot estimators on nothing (``fit([], [])``). Rows are cached as JSON in metalib's cache,
keyed by the estimator's class and parameters, a fingerprint of the data, the budget and the source
of the code (:func:`metalib.runtime.code_fingerprint`), written atomically under a lock: two
chapters that run the same configuration share one fit.
Times in a cached row are those of the machine and run that computed it.

Example:
    >>> from metalib import classifiers, compare, data                        # doctest: +SKIP
    >>> splits = data.rotten_tomatoes(seed=0)                                  # doctest: +SKIP
    >>> frame = compare.grid({"probe": classifiers.LinearProbeClassifier()}, splits,
    ...                      compare.budgets((16, 64), seeds=(0, 1)))         # doctest: +SKIP
    >>> compare.plot_learning_curves(frame)                                    # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from metalib import runtime
from metalib.classifiers import TextClassifier, params_to_json
from metalib.evaluate import Estimate, accuracy_estimate, mean_estimate
from metalib.methods.transfer import plot_interval_curves, stratified_subset

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "Budget",
    "Rows",
    "Splits",
    "accuracy_table",
    "budgets",
    "crossover",
    "data_fingerprint",
    "decide",
    "estimate",
    "grid",
    "paired_difference",
    "pareto_front",
    "plot_cost",
    "plot_draws",
    "plot_estimates",
    "plot_learning_curves",
    "points_at",
    "run",
    "summarize",
]


class Rows(Protocol):
    """A split: parallel ``texts`` and ``labels``."""

    texts: Sequence[str]
    labels: Sequence[int]


class Splits(Protocol):
    """What :func:`run` needs of a data set: a training and a test split."""

    train: Rows
    test: Rows


@dataclass(frozen=True)
class Budget:
    """``labels`` training snippets drawn with ``seed`` (None: all of them; 0: none, for zero-shot)."""

    labels: int | None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.labels is not None and (self.labels < 0 or self.labels == 1):
            raise ValueError(
                f"a budget is 0 labels (zero-shot) or at least 2 (one per class), got {self.labels}"
            )


def budgets(labels: Iterable[int | None], seeds: Iterable[int] = (0,)) -> list[Budget]:
    """Every (labels, seed) pair, labels outermost."""
    seeds = list(seeds)
    return [Budget(n, seed) for n in labels for seed in seeds]


def data_fingerprint(data: Splits) -> str:
    """16 hex characters of a hash of the training and test texts and labels."""
    digest = hashlib.sha256()
    for rows in (data.train, data.test):
        digest.update("\x1f".join(rows.texts).encode() + b"\x1e")
        digest.update(np.asarray(rows.labels, dtype=np.int64).tobytes() + b"\x1e")
    return digest.hexdigest()[:16]


def _params(estimator: TextClassifier) -> dict[str, Any]:
    """The estimator's parameters as JSON values (:func:`metalib.classifiers.params_to_json`), with
    a long list of texts (unlabelled data) replaced by its length and a hash."""

    def short(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: short(v) for k, v in value.items()}
        if isinstance(value, list) and len(value) > 64 and all(isinstance(v, str) for v in value):
            digest = hashlib.sha256("\x1f".join(value).encode()).hexdigest()[:16]
            return {"texts": len(value), "sha256": digest}
        return value

    return short(params_to_json(estimator))


def run(
    estimator: TextClassifier, data: Splits, budget: Budget, *, name: str | None = None, cache: bool = True
) -> dict[str, Any]:
    """Fit a clone of ``estimator`` on ``budget``'s training rows and score it on the test split.

    Returns one row (a dict): ``method`` (``name``, default the class name), ``estimator``,
    ``params``, ``labels`` (the budget), ``labels_used``, ``seed``, ``selection``, ``accuracy``,
    ``low``, ``high``, ``n_test``, ``fit_seconds``, ``predict_ms_per_text``,
    ``trainable_parameters``, ``bytes_per_task``, ``details`` (a dict: ``fit_details()``),
    ``correct`` (``"1"`` for each test text predicted right, ``"0"`` otherwise), ``cached``
    (whether this call read it from the cache). ``cache=False`` always fits (and stores nothing).

    A :class:`~metalib.classifiers.HoldoutSearchClassifier`'s final refit is the chosen estimator
    fitted on the same labels, so its row is cached under that estimator's key too: running the
    chosen estimator itself afterwards reads it (with integer labels ``0 .. C - 1``, as here).
    """
    from sklearn.base import clone

    label = name or type(estimator).__name__
    if not cache:
        return {"method": label, **_fit_and_score(clone(estimator), data, budget)[1], "cached": False}
    path = _cache_path(estimator, data, budget)
    path.parent.mkdir(parents=True, exist_ok=True)
    with runtime.file_lock(path):
        if not path.exists():
            fitted, row = _fit_and_score(clone(estimator), data, budget)
            _write(path, row)
            _cache_refit(fitted, row, data, budget)
            return {"method": label, **row, "cached": False}
    return {"method": label, **json.loads(path.read_text()), "cached": True}


def _cache_path(estimator: TextClassifier, data: Splits, budget: Budget) -> Path:
    """Where :func:`run` keeps the row of ``estimator`` (its class and parameters) on ``budget``."""
    key = runtime.cache_key(
        estimator=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        params=_params(estimator),
        data=data_fingerprint(data),
        models=_built_models(estimator),
        budget=asdict(budget),
        code=runtime.code_fingerprint(type(estimator).__module__, __name__),
    )
    return runtime.cache_dir() / "results" / f"{type(estimator).__name__}-{key}.json"


def _built_models(estimator: TextClassifier) -> dict[str, str]:
    """The cache entries of the built models (:data:`metalib.recipes.BUILT_ENCODERS`) that the
    estimator's parameters name, nested estimators included: a row is stale once its model is
    rebuilt with another recipe. Builds a model that is not there yet."""
    from metalib import recipes

    named: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str) and value in recipes.BUILT_ENCODERS:
            named.add(value)

    walk(params_to_json(estimator))
    return {name: Path(recipes.encoder_source(name)).name for name in sorted(named)}


def _write(path: Path, row: dict[str, Any]) -> None:
    with runtime.atomic_path(path) as tmp:
        tmp.write_text(json.dumps(row, indent=1))


def _cache_refit(fitted: TextClassifier, row: dict[str, Any], data: Splits, budget: Budget) -> None:
    """Store a fitted search's refit (``best_estimator_``) as the chosen estimator's own row, unless
    there is one already; only with integer labels ``0 .. C - 1``, the refit's own classes."""
    best = getattr(fitted, "best_estimator_", None)
    if best is None or not np.array_equal(fitted.classes_, np.arange(len(fitted.classes_))):
        return
    path = _cache_path(best, data, budget)
    with runtime.file_lock(path):
        if not path.exists():
            _write(path, _refit_row(best, row))


def _refit_row(best: TextClassifier, row: dict[str, Any]) -> dict[str, Any]:
    """The row of a search's refitted estimator: the search's predictions (they are the refit's),
    with the refit's own parameters, cost and details."""
    return {
        **row,
        "estimator": type(best).__name__,
        "params": _params(best),
        "selection": best.selection,
        "fit_seconds": best.fit_seconds_,
        "trainable_parameters": best.n_trainable_parameters_,
        "bytes_per_task": _stored_bytes(best),
        "details": best.fit_details(),
    }


def _stored_bytes(estimator: TextClassifier) -> int:
    """Bytes ``save`` writes of the fit: the tensors and the fitted state as JSON, without the
    measured times in it (``*seconds*`` fields: their number of digits varies from run to run)."""
    with tempfile.TemporaryDirectory() as tmp:
        stored = estimator.save(Path(tmp) / "estimator")
        state = _without_times(json.loads((stored / "estimator.json").read_text())["state"])
        return (stored / "weights.safetensors").stat().st_size + len(json.dumps(state).encode())


def _without_times(value: Any) -> Any:
    """``value`` (parsed JSON) without the dictionary fields whose name contains ``seconds``.

    >>> _without_times({"steps": 8, "seconds_per_step": 0.123, "runs": [{"teacher_seconds": 2.0}]})
    {'steps': 8, 'runs': [{}]}
    """
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def _fit_and_score(
    estimator: TextClassifier, data: Splits, budget: Budget
) -> tuple[TextClassifier, dict[str, Any]]:
    """(the fitted ``estimator``, its row without ``method`` and ``cached``)."""
    rows = [] if budget.labels == 0 else stratified_subset(data.train.labels, budget.labels, budget.seed)
    texts = [data.train.texts[i] for i in rows]
    labels = [data.train.labels[i] for i in rows]
    with runtime.preserved_random_state():
        estimator.fit(texts, labels)
        predicted = estimator.predict(data.test.texts)
    correct = (predicted == np.asarray(data.test.labels)).tolist()
    score = accuracy_estimate(correct)
    return estimator, {
        "estimator": type(estimator).__name__,
        "params": _params(estimator),
        "labels": budget.labels,
        "labels_used": len(rows),
        "seed": budget.seed,
        "selection": estimator.selection,
        "accuracy": score.mean,
        "low": score.low,
        "high": score.high,
        "n_test": score.n,
        "fit_seconds": estimator.fit_seconds_,
        "predict_ms_per_text": 1000 * estimator.predict_seconds_ / max(1, len(data.test.texts)),
        "trainable_parameters": estimator.n_trainable_parameters_,
        "bytes_per_task": _stored_bytes(estimator),
        "details": estimator.fit_details(),
        "correct": "".join("1" if hit else "0" for hit in correct),
    }


def estimate(row: Mapping[str, Any]) -> Estimate:
    """A :func:`run` row or a line of :func:`summarize` as an :class:`~metalib.evaluate.Estimate`:
    the accuracy, its 95% interval and ``n`` (the row's test texts, or the line's draws)."""
    n = row["draws"] if "draws" in row else row["n_test"]
    return Estimate(float(row["accuracy"]), float(row["low"]), float(row["high"]), int(n))


def paired_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> Estimate:
    """Accuracy of row ``a`` minus row ``b`` (rows of :func:`run` on the same test texts), paired text
    by text: the mean of the per-text differences with a Student-t 95% interval. Pairing removes the
    variation between test texts that both rows share, so the interval is narrower than the two
    accuracies' own intervals suggest. It covers test sampling only, not training seeds."""
    if len(a["correct"]) != len(b["correct"]) or a["n_test"] != b["n_test"]:
        raise ValueError("paired rows must be scored on the same test texts (their n_test differs)")
    diff = [int(x) - int(y) for x, y in zip(a["correct"], b["correct"], strict=True)]
    return mean_estimate(diff)


def grid(
    estimators: Mapping[str, TextClassifier],
    data: Splits,
    budgets: Sequence[Budget],
    *,
    cache: bool = True,
    progress: bool = True,
) -> pd.DataFrame:
    """:func:`run` for every estimator (by display name) and budget; one row each, in that order."""
    import pandas as pd
    from tqdm.auto import tqdm

    pairs = [(name, estimator, budget) for name, estimator in estimators.items() for budget in budgets]
    rows = [
        run(estimator, data, budget, name=name, cache=cache)
        for name, estimator, budget in tqdm(pairs, desc="compare", disable=not progress)
    ]
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Per method and budget size: mean test accuracy over draws with a Student-t 95% interval
    (one draw: its Wilson interval), the lowest and highest draw, and the mean of every cost column
    and of every numeric ``details`` entry (e.g. ``seconds_per_step``; missing for methods that do
    not report it).

    Returns:
        Indexed by (``method``, ``labels_used``); columns ``accuracy``, ``low``, ``high``, ``min``,
        ``max``, ``draws``, ``fit_seconds``, ``predict_ms_per_text``, ``trainable_parameters``,
        ``bytes_per_task``, then the details.
    """
    import pandas as pd

    out = {}
    for (method, labels), group in frame.groupby(["method", "labels_used"], sort=False):
        if len(group) == 1:
            est = group.iloc[0]
            low, high = float(est["low"]), float(est["high"])
            mean = float(est["accuracy"])
        else:
            estimate = mean_estimate(group["accuracy"].tolist())
            mean, low, high = estimate.mean, estimate.low, estimate.high
        costs = group[["fit_seconds", "predict_ms_per_text", "trainable_parameters", "bytes_per_task"]].mean()
        details = pd.DataFrame([d for d in group.get("details", []) if isinstance(d, dict)])
        numbers = details.apply(pd.to_numeric, errors="coerce").select_dtypes("number").mean().dropna()
        out[method, labels] = {
            "accuracy": mean,
            "low": low,
            "high": high,
            "min": float(group["accuracy"].min()),
            "max": float(group["accuracy"].max()),
            "draws": len(group),
            **costs,
            **numbers.to_dict(),
        }
    summary = pd.DataFrame.from_dict(out, orient="index")
    summary.index = summary.index.set_names(["method", "labels_used"])
    return summary


def pareto_front(points: pd.DataFrame, cost: str, accuracy: str = "accuracy") -> pd.Series:
    """Which points no other point beats on both axes: ``True`` where no other point has a ``cost``
    at most this one's and a higher ``accuracy``, or a lower cost and at least its accuracy (a
    point without a cost is never on the front). A boolean Series on ``points``' index.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"ms": [1.0, 2.0, 3.0, 2.0], "accuracy": [0.7, 0.8, 0.75, 0.8]})
    >>> pareto_front(points, "ms").tolist()
    [True, True, False, True]
    """
    import pandas as pd

    c, a = points[cost].to_numpy(float), points[accuracy].to_numpy(float)
    better = (c[None, :] <= c[:, None]) & (a[None, :] > a[:, None])  # [i, j]: j beats i
    better |= (c[None, :] < c[:, None]) & (a[None, :] >= a[:, None])
    return pd.Series(~better.any(axis=1) & ~np.isnan(c), index=points.index, name="pareto")


def accuracy_table(
    summary: pd.DataFrame,
    budgets: Sequence[int],
    not_run: Mapping[tuple[str, int], str] | None = None,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Methods × label budgets: each cell ``"mean [low, high] ×draws"`` from :func:`summarize`'s
    ``summary``, the reason from ``not_run[(method, labels)]`` where the method was not run at that
    budget, and ``""`` where neither is given (a zero-shot method at a budget above 0, say).

    >>> import pandas as pd
    >>> frame = pd.DataFrame({"method": ["a"] * 2, "labels_used": [8, 8], "accuracy": [0.6, 0.7],
    ...                       "low": 0.0, "high": 1.0, "fit_seconds": 1.0, "predict_ms_per_text": 1.0,
    ...                       "trainable_parameters": 0, "bytes_per_task": 0})
    >>> accuracy_table(summarize(frame), [8, 16], {("a", 16): "too slow"}).loc["a"].tolist()
    ['0.650 [0.015, 1.285] ×2', 'too slow']
    """
    import pandas as pd

    not_run = dict(not_run or {})
    methods = list(methods) if methods is not None else list(summary.index.unique("method"))
    cells = {}
    for method in methods:
        row = {}
        for n in budgets:
            if (method, n) in summary.index:
                point = summary.loc[(method, n)]
                row[n] = (
                    f"{point['accuracy']:.3f} [{point['low']:.3f}, {point['high']:.3f}] ×{point['draws']:.0f}"
                )
            else:
                row[n] = not_run.get((method, n), "")
        cells[method] = row
    table = pd.DataFrame.from_dict(cells, orient="index")
    table.columns.name = "labels"
    return table


def crossover(summary: pd.DataFrame, a: str, b: str) -> int | None:
    """The smallest budget (``labels_used``) at which method ``a``'s 95% interval lies wholly above
    method ``b``'s in :func:`summarize`'s ``summary``, among the budgets where both were measured (a
    ``b`` measured only at 0 labels, zero-shot, is compared at every budget of ``a``); None if there
    is none.

    >>> import pandas as pd
    >>> s = pd.DataFrame({"method": ["a", "a", "b", "b"], "labels_used": [8, 64, 8, 64],
    ...                   "accuracy": [0.6, 0.8, 0.65, 0.7], "low": [0.5, 0.75, 0.6, 0.65],
    ...                   "high": [0.7, 0.85, 0.7, 0.74]}).set_index(["method", "labels_used"])
    >>> crossover(s, "a", "b"), crossover(s, "b", "a")
    (64, None)
    >>> zero_shot = pd.DataFrame({"method": ["z"], "labels_used": [0], "accuracy": [0.72], "low": [0.7],
    ...                           "high": [0.74]}).set_index(["method", "labels_used"])
    >>> crossover(pd.concat([s, zero_shot]), "a", "z")
    64
    """
    theirs = summary.loc[b]
    zero_shot = list(theirs.index) == [0]
    for n in sorted(summary.loc[a].index):
        if zero_shot or n in theirs.index:
            rival = theirs.loc[0 if zero_shot else n]
            if summary.loc[(a, n), "low"] > rival["high"]:
                return int(n)
    return None


def points_at(summary: pd.DataFrame, labels: int) -> pd.DataFrame:
    """What each method of :func:`summarize`'s ``summary`` reaches with ``labels`` labels: its line at
    the largest budget it was measured at up to ``labels`` (a zero-shot method: 0), one row per
    method (methods measured only above ``labels`` are left out), ``labels_used`` a column.

    >>> import pandas as pd
    >>> s = pd.DataFrame({"method": ["a", "a", "z"], "labels_used": [8, 64, 0], "accuracy": [0.6, 0.8, 0.7]})
    >>> points_at(s.set_index(["method", "labels_used"]), 32)[["method", "labels_used"]].values.tolist()
    [['a', 8], ['z', 0]]
    """
    flat = summary.reset_index()
    usable = flat[flat["labels_used"] <= labels]
    return usable.loc[usable.groupby("method", sort=False)["labels_used"].idxmax()]


def decide(
    summary: pd.DataFrame,
    labels: Sequence[int],
    max_costs: Sequence[float],
    cost: str = "predict_ms_per_text",
) -> pd.DataFrame:
    """The method to use with ``labels`` labelled examples and at most ``max_costs`` of ``cost``.

    ``summary`` is :func:`summarize`'s. With ``n`` labels a method may use its point at the largest
    budget it was measured at that is at most ``n`` (zero-shot methods: 0); among those points whose
    ``cost`` is within the limit, the one with the highest mean accuracy is chosen. ``separated``
    says whether its 95% interval lies above the runner-up's (else the two are not distinguishable,
    and the cheaper one is as good a choice).

    Returns:
        One row per (``labels``, ``max_cost``): ``method``, ``labels_used``, ``accuracy``, ``low``,
        ``high``, ``cost``, ``runner_up``, ``runner_up_accuracy``, ``separated``; ``method`` is
        missing (NaN) where no method fits the limit.
    """
    import pandas as pd

    rows = []
    for n in labels:
        usable = points_at(summary, n)
        for limit in max_costs:
            fits = usable[usable[cost] <= limit].sort_values("accuracy", ascending=False)
            row = {"labels": n, "max_cost": limit, "method": None, "separated": False}
            if len(fits):
                best = fits.iloc[0]
                row |= {k: best[k] for k in ("method", "labels_used", "accuracy", "low", "high")}
                row["cost"] = best[cost]
            if len(fits) > 1:
                second = fits.iloc[1]
                row |= {"runner_up": second["method"], "runner_up_accuracy": second["accuracy"]}
                row["separated"] = bool(fits.iloc[0]["low"] > second["high"])
            rows.append(row)
    columns = ["labels", "max_cost", "method", "labels_used", "accuracy", "low", "high", "cost"]
    columns += ["runner_up", "runner_up_accuracy", "separated"]
    return pd.DataFrame(rows).reindex(columns=columns).set_index(["labels", "max_cost"])


def plot_learning_curves(frame: pd.DataFrame, ax=None, baseline: float | None = None):
    """Test accuracy against labels (log scale), one line per method with its shaded 95% interval
    (:func:`summarize`). ``baseline`` draws a dashed line (e.g. the majority class's accuracy).
    Returns the axes."""
    summary = summarize(frame).rename(columns={"accuracy": "mean"})
    curves = {method: summary.loc[method] for method in summary.index.unique("method")}
    return plot_interval_curves(curves, ax, baseline, xlabel="labelled training examples (log scale)")


def plot_cost(
    frame: pd.DataFrame,
    cost: str = "fit_seconds",
    labels: int | None = None,
    ax=None,
    front: bool = False,
):
    """Accuracy (with its 95% interval) against a cost column (log scale), one point per method: what
    it reaches with ``labels`` labels (default: the largest budget every method ran), at the largest
    budget it was measured at up to that (a zero-shot method at 0). ``front`` rings the points on
    the Pareto front (:func:`pareto_front`) and joins them with a line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    summary = summarize(frame)
    if labels is None:
        labels = int(summary.reset_index().groupby("method")["labels_used"].max().min())
    at = points_at(summary, labels)
    for i, row in enumerate(at.itertuples()):
        yerr = [[row.accuracy - row.low], [row.high - row.accuracy]]
        ax.errorbar(
            getattr(row, cost), row.accuracy, yerr=yerr, fmt="o", color=f"C{i}", capsize=3, label=row.method
        )
    if front:
        best = at[pareto_front(at, cost)].sort_values(cost)
        ax.plot(best[cost], best["accuracy"], "k--", lw=0.8, zorder=0, label="Pareto front")
        ax.scatter(best[cost], best["accuracy"], s=160, facecolors="none", edgecolors="k")
    ax.set_xscale("log")
    ax.set(xlabel=cost.replace("_", " ") + " (log scale)", ylabel=f"test accuracy at {labels} labels")
    ax.legend()
    return ax


def plot_estimates(
    estimates: Mapping[str, Sequence[Estimate]],
    names: Sequence[str],
    ax=None,
    baseline: float | None = None,
    baseline_label: str = "majority class",
):
    """Accuracies with their 95% intervals side by side: one point per name and series (e.g. raw and
    calibrated accuracy of every prompt template), ``estimates[series][i]`` for ``names[i]``;
    ``baseline`` draws a dashed line. Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.24 / max(1, len(estimates) - 1)
    for i, (series, values) in enumerate(estimates.items()):
        x = np.arange(len(names)) + (i - (len(estimates) - 1) / 2) * width
        means = np.array([e.mean for e in values])
        yerr = np.array([[e.mean - e.low for e in values], [e.high - e.mean for e in values]])
        ax.errorbar(x, means, yerr=yerr, fmt="o", color=f"C{i}", label=series, capsize=3)
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls="--", label=baseline_label)
    ax.set_xticks(range(len(names)), names, rotation=20)
    return ax


def plot_draws(
    frame: pd.DataFrame,
    x: str,
    columns: Sequence[str],
    ax=None,
    baseline: float | None = None,
    baseline_label: str = "majority class",
):
    """The spread between draws: every draw of ``frame`` as a dot at ``frame[x]``, per column of
    ``columns`` the mean over draws as a line and the min–max range shaded (columns side by side,
    nudged along x). Returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.4))
    for i, column in enumerate(columns):
        dx = 0.08 * (2 * i - (len(columns) - 1))
        stats = frame.groupby(x)[column].agg(["mean", "min", "max"])
        ax.scatter(frame[x] + dx, frame[column], color=f"C{i}", alpha=0.5, s=18)
        ax.plot(stats.index + dx, stats["mean"], color=f"C{i}", marker="o", label=f"{column} (mean of draws)")
        ax.fill_between(stats.index + dx, stats["min"], stats["max"], color=f"C{i}", alpha=0.15)
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls="--", label=baseline_label)
    ax.set_xticks(sorted(frame[x].unique()))
    ax.set_xlabel(x)
    return ax
