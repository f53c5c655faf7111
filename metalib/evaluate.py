"""Metrics with uncertainty: every accuracy the book prints comes with its sample size and a 95% CI.

Example:
    >>> low, high = wilson_interval(correct=80, n=100)
    >>> round(low, 3), round(high, 3)
    (0.711, 0.867)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


def wilson_interval(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n``; better than the normal
    approximation near 0 and 1 and for small ``n``.

    Raises:
        ValueError: ``n`` < 1 or ``correct`` outside [0, n].
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in [0, n={n}], got {correct}")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, float(centre - half)), min(1.0, float(centre + half))


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% confidence interval and the number of observations behind it."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}] (n={self.n})"

    def plus_minus(self, digits: int = 3) -> str:
        """``"mean ± half-width"`` of the upper half of the interval, e.g. ``"0.693 ± 0.008"``.

        Example:
            >>> Estimate(0.5, 0.4, 0.6, 10).plus_minus(2)
            '0.50 ± 0.10'
        """
        return f"{self.mean:.{digits}f} ± {self.high - self.mean:.{digits}f}"

    def above(self, other: Estimate) -> bool:
        """Whether this interval lies wholly above ``other``'s (the two do not overlap).

        Example:
            >>> Estimate(0.8, 0.75, 0.85, 998).above(Estimate(0.7, 0.65, 0.74, 998))
            True
        """
        return self.low > other.high

    def sign(self) -> int:
        """For a difference: ``1`` when its interval lies above zero, ``-1`` below, ``0`` when it
        includes zero (no difference shown).

        Example:
            >>> Estimate(0.02, 0.01, 0.03, 600).sign(), Estimate(0.02, -0.01, 0.05, 600).sign()
            (1, 0)
        """
        return 1 if self.low > 0 else -1 if self.high < 0 else 0


def accuracy_estimate(correct: Sequence[bool] | Sequence[int]) -> Estimate:
    """Accuracy of a vector of 0/1 outcomes with a Wilson 95% interval."""
    n = len(correct)
    hits = int(sum(bool(c) for c in correct))
    low, high = wilson_interval(hits, n)
    return Estimate(hits / n, low, high, n)


def prediction_accuracy(predicted: Sequence[int], labels: Sequence[int]) -> Estimate:
    """:func:`accuracy_estimate` of ``predicted == labels`` (lists, arrays or tensors of shape (N,)).

    Raises:
        ValueError: the two have different lengths.
    """
    predicted, labels = list(predicted), list(labels)
    if len(predicted) != len(labels):
        raise ValueError(f"{len(predicted)} predictions for {len(labels)} labels")
    return accuracy_estimate([int(p) == int(y) for p, y in zip(predicted, labels, strict=True)])


def mean_estimate(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """Mean of independent runs (seeds, episodes) with a Student-t interval.

    With one value the interval is that value (no spread can be estimated).
    """
    n = len(values)
    if n < 1:
        raise ValueError("need at least one value")
    mean = float(sum(values) / n)
    if n == 1:
        return Estimate(mean, mean, mean, 1)
    sem = float(stats.sem(values))
    half = sem * float(stats.t.ppf(0.5 + confidence / 2, df=n - 1))
    return Estimate(mean, mean - half, mean + half, n)


def majority_baseline(train_labels: Sequence[object], test_labels: Sequence[object]) -> Estimate:
    """Accuracy on ``test_labels`` of always answering the most frequent label of ``train_labels``:
    the book's one majority baseline (the test set's own rate would use test labels for a choice).

    Ties go to the label seen first in ``train_labels``.

    Example:
        >>> round(majority_baseline([1, 1, 0], [1, 0, 0, 0]).mean, 2)
        0.25

    Raises:
        ValueError: either list is empty.
    """
    train, test = list(train_labels), list(test_labels)
    if not train or not test:
        raise ValueError("majority_baseline needs non-empty train_labels and test_labels")
    counts: dict[object, int] = {}
    for label in train:
        counts[label] = counts.get(label, 0) + 1
    majority = max(counts, key=counts.__getitem__)
    return accuracy_estimate([label == majority for label in test])


def confident_mistakes(
    texts: Sequence[str],
    labels: Sequence[int],
    probabilities: Sequence[Sequence[float]],
    n: int = 8,
    class_names: Sequence[str] | None = None,
) -> list[dict[str, object]]:
    """The ``n`` wrong predictions made with the highest probability, surest first: where to start
    an error analysis (label noise, sarcasm, a verdict on part of the film …).

    ``probabilities`` is (N, C); each row of the result holds ``text``, ``label``, ``predicted``
    (class names if ``class_names`` is given) and ``probability`` (of the predicted class).

    Example:
        >>> rows = confident_mistakes(["a", "b", "c"], [0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.2, 0.8]])
        >>> [(r["text"], r["probability"]) for r in rows]
        [('b', 0.6)]

    Raises:
        ValueError: the three inputs have different lengths.
    """
    if not len(texts) == len(labels) == len(probabilities):
        raise ValueError(f"{len(texts)} texts, {len(labels)} labels, {len(probabilities)} rows")
    name = (lambda k: class_names[k]) if class_names is not None else (lambda k: k)
    wrong = []
    for text, label, row in zip(texts, labels, probabilities, strict=True):
        row = [float(p) for p in row]
        predicted = max(range(len(row)), key=row.__getitem__)
        if predicted != int(label):
            wrong.append({"text": text, "label": name(int(label)), "predicted": name(predicted),
                          "probability": row[predicted]})  # fmt: skip
    return sorted(wrong, key=lambda r: -r["probability"])[:n]
