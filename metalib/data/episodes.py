"""N-way K-shot episodes over any labelled rows.

An *episode* picks ``n_way`` classes, then ``k_shot`` support and ``n_query`` query rows from each,
without overlap, and relabels the chosen classes ``0 .. n_way-1``. The sampler returns row indices,
so it works for any dataset held as parallel lists (texts, features, tensors). Used by the
prototypical-network and MAML chapters.

References:
    Vinyals et al. 2016, "Matching Networks for One Shot Learning".
    Snell et al. 2017, "Prototypical Networks for Few-shot Learning".
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Episode", "EpisodeSampler"]


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot episode, as indices into the sampler's rows.

    Rows are grouped by class: support is ``[class 0] * K + [class 1] * K + ...``, query likewise with
    ``Q`` per class; within a class the order is random.

    Shapes (int64 arrays):
        support: ``(N*K,)`` row indices; support_targets: ``(N*K,)`` in ``0 .. N-1``.
        query: ``(N*Q,)`` row indices; query_targets: ``(N*Q,)`` in ``0 .. N-1``.
        classes: the ``N`` original labels; target ``j`` means ``classes[j]``.
    """

    support: np.ndarray
    support_targets: np.ndarray
    query: np.ndarray
    query_targets: np.ndarray
    classes: tuple[Hashable, ...]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


class EpisodeSampler:
    """Sample N-way K-shot episodes from labelled rows, reproducibly from a seed.

    Args:
        labels: one label per row (ints or strings, e.g. ``SupersenseData.labels``).
        n_way: classes per episode, N.
        k_shot: support rows per class, K.
        n_query: query rows per class, Q.
        seed: seed of the ``numpy.random.Generator`` behind :meth:`sample` and iteration.
        classes: restrict episodes to these labels (e.g. the meta-train classes); default all labels.
        n_episodes: number of episodes one pass of ``iter(sampler)`` yields; required for iteration.
        drop_small_classes: skip classes with fewer than ``k_shot + n_query`` rows instead of raising.

    Raises:
        ValueError: bad sizes; a requested class absent from ``labels``; a class too small for
            ``k_shot + n_query`` (names it and its size) unless ``drop_small_classes``; fewer eligible
            classes than ``n_way``.

    Iterating restarts from ``seed`` each time, so ``list(sampler)`` is a fixed evaluation set of
    ``n_episodes`` episodes; :meth:`sample` continues one running stream instead.

    Example:
        >>> sampler = EpisodeSampler(["a", "b", "c"] * 4, n_way=2, k_shot=1, n_query=2, seed=0)
        >>> episode = sampler.sample()
        >>> episode.support.shape, episode.query_targets.tolist()
        ((2,), [0, 0, 1, 1])
    """

    def __init__(
        self,
        labels: Sequence[int | str],
        n_way: int,
        k_shot: int,
        n_query: int,
        seed: int = 0,
        *,
        classes: Sequence[int | str] | None = None,
        n_episodes: int | None = None,
        drop_small_classes: bool = False,
    ) -> None:
        self.n_way = _positive_int("n_way", n_way)
        self.k_shot = _positive_int("k_shot", k_shot)
        self.n_query = _positive_int("n_query", n_query)
        self.n_episodes = None if n_episodes is None else _positive_int("n_episodes", n_episodes)
        self.seed = seed
        rows_by_class: dict[Hashable, list[int]] = {}
        for i, label in enumerate(labels):
            rows_by_class.setdefault(label, []).append(i)
        if classes is not None:
            missing = [c for c in dict.fromkeys(classes) if c not in rows_by_class]
            if missing:
                raise ValueError(f"classes {missing[:5]} do not occur in labels")
            rows_by_class = {c: rows_by_class[c] for c in dict.fromkeys(classes)}
        try:
            names = sorted(rows_by_class)
        except TypeError as err:
            raise ValueError("labels must all be of one sortable type (all int or all str)") from err
        need = self.k_shot + self.n_query
        small = [c for c in names if len(rows_by_class[c]) < need]
        if small and not drop_small_classes:
            worst = min(small, key=lambda c: len(rows_by_class[c]))
            raise ValueError(
                f"class {worst!r} has {len(rows_by_class[worst])} rows, fewer than k_shot + n_query = "
                f"{need} ({len(small)} class(es) too small); lower k_shot/n_query or pass "
                "drop_small_classes=True"
            )
        #: eligible class labels, sorted; ``rows[c]`` are the row indices of ``classes[c]``.
        self.classes: tuple[Hashable, ...] = tuple(c for c in names if c not in small)
        self.rows: tuple[np.ndarray, ...] = tuple(
            np.asarray(rows_by_class[c], dtype=np.int64) for c in self.classes
        )
        if self.n_way > len(self.classes):
            dropped = f" ({len(small)} dropped as smaller than {need} rows)" if small else ""
            raise ValueError(
                f"n_way={self.n_way} but only {len(self.classes)} classes are available{dropped}"
            )
        self._rng = np.random.default_rng(seed)

    def _draw(self, rng: np.random.Generator) -> Episode:
        n, k, q = self.n_way, self.k_shot, self.n_query
        chosen = rng.choice(len(self.classes), size=n, replace=False)  # (N,)
        picked = np.stack([rng.choice(self.rows[c], size=k + q, replace=False) for c in chosen])  # (N, K+Q)
        targets = np.arange(n, dtype=np.int64)
        return Episode(
            support=picked[:, :k].reshape(-1),  # (N, K) -> (N*K,)
            support_targets=np.repeat(targets, k),  # (N*K,)
            query=picked[:, k:].reshape(-1),  # (N, Q) -> (N*Q,)
            query_targets=np.repeat(targets, q),  # (N*Q,)
            classes=tuple(self.classes[c] for c in chosen),
        )

    def sample(self) -> Episode:
        """Draw the next episode from the sampler's running generator."""
        return self._draw(self._rng)

    def __iter__(self) -> Iterator[Episode]:
        if self.n_episodes is None:
            raise ValueError("pass n_episodes=... to the EpisodeSampler to iterate over it")
        rng = np.random.default_rng(self.seed)
        for _ in range(self.n_episodes):
            yield self._draw(rng)

    def __len__(self) -> int:
        if self.n_episodes is None:
            raise TypeError("len() needs n_episodes=... set on the EpisodeSampler")
        return self.n_episodes
