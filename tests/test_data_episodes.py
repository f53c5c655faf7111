"""Tests of metalib.data.episodes: shapes, relabelling, reproducibility, errors."""

from __future__ import annotations

import numpy as np
import pytest

from metalib.data.episodes import Episode, EpisodeSampler
from metalib.data.wordnet import class_splits, wordnet_supersenses


@pytest.fixture(scope="module")
def wordnet_labels() -> tuple[str, ...]:
    return wordnet_supersenses().labels


LABELS = [c for c in "abcde" for _ in range(6)] + ["f"] * 3  # five classes of 6 rows, one of 3


def check_episode(episode: Episode, labels: list, n: int, k: int, q: int) -> None:
    assert episode.support.shape == episode.support_targets.shape == (n * k,)
    assert episode.query.shape == episode.query_targets.shape == (n * q,)
    assert episode.support.dtype == episode.query_targets.dtype == np.int64
    assert np.array_equal(episode.support_targets, np.repeat(np.arange(n), k))
    assert np.array_equal(episode.query_targets, np.repeat(np.arange(n), q))
    assert len(set(episode.classes)) == n
    rows = np.concatenate([episode.support, episode.query])
    assert len(set(rows.tolist())) == len(rows)  # support and query never share a row
    for index, target in [(episode.support, episode.support_targets), (episode.query, episode.query_targets)]:
        assert [labels[i] for i in index] == [episode.classes[t] for t in target]


def test_shapes_and_targets_on_wordnet(wordnet_labels: tuple[str, ...]) -> None:
    train = class_splits()["train"]
    sampler = EpisodeSampler(wordnet_labels, n_way=5, k_shot=5, n_query=15, seed=0, classes=train)
    assert sampler.classes == tuple(sorted(train))
    for _ in range(20):
        episode = sampler.sample()
        check_episode(episode, list(wordnet_labels), 5, 5, 15)
        assert set(episode.classes) <= set(train)


def test_int_labels_and_one_query() -> None:
    labels = [0, 1, 2] * 3
    episode = EpisodeSampler(labels, n_way=3, k_shot=2, n_query=1, seed=3).sample()
    check_episode(episode, labels, 3, 2, 1)


def test_same_seed_same_episodes_other_seed_differs() -> None:
    def draws(seed: int) -> list[list[int]]:
        sampler = EpisodeSampler(LABELS[:30], n_way=3, k_shot=2, n_query=2, seed=seed)
        return [sampler.sample().query.tolist() for _ in range(5)]

    assert draws(0) == draws(0)
    assert draws(0) != draws(1)
    sampler = EpisodeSampler(LABELS[:30], n_way=3, k_shot=2, n_query=2, seed=0)
    assert sampler.sample().query.tolist() != sampler.sample().query.tolist()  # the stream moves on


def test_iteration_is_a_fixed_set() -> None:
    sampler = EpisodeSampler(LABELS[:30], n_way=2, k_shot=1, n_query=3, seed=7, n_episodes=4)
    first, second = list(sampler), list(sampler)
    assert len(sampler) == len(first) == 4
    assert [e.support.tolist() for e in first] == [e.support.tolist() for e in second]
    assert len({tuple(e.query.tolist()) for e in first}) > 1


def test_iteration_needs_n_episodes() -> None:
    sampler = EpisodeSampler(LABELS, n_way=2, k_shot=1, n_query=1)
    with pytest.raises(ValueError, match="pass n_episodes"):
        list(sampler)
    with pytest.raises(TypeError, match="n_episodes"):
        len(sampler)


def test_n_way_larger_than_classes() -> None:
    with pytest.raises(ValueError, match="n_way=7 but only 6 classes are available"):
        EpisodeSampler(LABELS, n_way=7, k_shot=1, n_query=1)


def test_class_too_small_names_it() -> None:
    with pytest.raises(ValueError, match=r"class 'f' has 3 rows, fewer than k_shot \+ n_query = 4"):
        EpisodeSampler(LABELS, n_way=2, k_shot=2, n_query=2)


def test_class_too_small_on_wordnet(wordnet_labels: tuple[str, ...]) -> None:
    labels = wordnet_labels
    with pytest.raises(ValueError, match="class 'noun.motive' has 42 rows.*drop_small_classes=True"):
        EpisodeSampler(labels, n_way=5, k_shot=20, n_query=30)
    sampler = EpisodeSampler(labels, n_way=5, k_shot=20, n_query=30, drop_small_classes=True)
    assert "noun.motive" not in sampler.classes and len(sampler.classes) == 45 - 1


def test_drop_small_classes() -> None:
    sampler = EpisodeSampler(LABELS, n_way=5, k_shot=2, n_query=2, drop_small_classes=True)
    assert sampler.classes == tuple("abcde")
    with pytest.raises(ValueError, match=r"n_way=6 but only 5 classes are available \(1 dropped"):
        EpisodeSampler(LABELS, n_way=6, k_shot=2, n_query=2, drop_small_classes=True)


def test_classes_filter_and_unknown_class() -> None:
    sampler = EpisodeSampler(LABELS, n_way=2, k_shot=3, n_query=3, classes=["b", "d", "b"])
    assert sampler.classes == ("b", "d")
    with pytest.raises(ValueError, match=r"classes \['z'\] do not occur"):
        EpisodeSampler(LABELS, n_way=2, k_shot=1, n_query=1, classes=["a", "z"])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_way": 0}, "n_way=0 must be a positive integer"),
        ({"k_shot": 1.5}, "k_shot=1.5 must be a positive integer"),
        ({"n_query": True}, "n_query=True must be a positive integer"),
        ({"n_episodes": -1}, "n_episodes=-1 must be a positive integer"),
    ],
)
def test_bad_sizes(kwargs: dict, match: str) -> None:
    args = {"n_way": 2, "k_shot": 1, "n_query": 1} | kwargs
    with pytest.raises(ValueError, match=match):
        EpisodeSampler(LABELS, **args)


def test_mixed_label_types() -> None:
    with pytest.raises(ValueError, match="one sortable type"):
        EpisodeSampler([1, "a", 1, "a"], n_way=2, k_shot=1, n_query=1)
