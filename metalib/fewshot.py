"""Few-shot episodes on fixed features: episodes as tensors, accuracy with a 95% CI, episodic training.

The book's few-shot methods all work on *frozen* sentence embeddings (chapter 6: MiniLM features of
WordNet glosses), so an N-way K-shot episode is just four tensors gathered from one feature matrix.
This module holds what every method shares:

- :class:`EpisodeBatch` and :func:`episode_batch` — episodes of :class:`metalib.data.episodes.EpisodeSampler`
  as stacked tensors ``(E, N*K, D)``; the batch satisfies :class:`metalib.methods.maml.TaskBatch`.
- :func:`episode_accuracies` and :func:`evaluate_episodes` — run a *classifier* (any function from
  support set and query inputs to query logits) on every episode and report the mean accuracy with
  a Student-t 95% interval over episodes, as few-shot papers do.
- :func:`fit_episodic` — the outer training loop of episodic methods (Adam, periodic validation,
  the best validation state restored at the end); :class:`EpisodicConfig` and
  :func:`fit_on_episodes` — the episodes and optimiser every episodic trainer of the book shares.

A classifier has the signature ``classify(x_support, y_support, x_query, n_way) -> logits``
with shapes ``(E, N*K, D)``, ``(E, N*K)``, ``(E, N*Q, D)`` → ``(E, N*Q, N)``.

Example:
    >>> import numpy as np, torch
    >>> from metalib.data.episodes import EpisodeSampler
    >>> features = torch.randn(30, 8)
    >>> sampler = EpisodeSampler(np.repeat(np.arange(5), 6), n_way=3, k_shot=2, n_query=2, n_episodes=4)
    >>> batch = episode_batch(features, list(sampler))
    >>> tuple(batch.x_support.shape), tuple(batch.y_query.shape)
    ((4, 6, 8), (4, 6))
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

from metalib.data.episodes import Episode, EpisodeSampler
from metalib.evaluate import Estimate, mean_estimate

__all__ = [
    "Classifier",
    "EpisodeBatch",
    "EpisodicConfig",
    "EpisodicHistory",
    "centroid_accuracies",
    "check_features",
    "episode_accuracies",
    "episode_batch",
    "evaluate_episodes",
    "fit_episodic",
    "fit_on_episodes",
    "sample_episodes",
]

Classifier = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, int], torch.Tensor]
"""``classify(x_support (E, N*K, D), y_support (E, N*K), x_query (E, N*Q, D), n_way) -> (E, N*Q, N)``."""


@dataclass(frozen=True)
class EpisodeBatch:
    """``E`` episodes of one N-way K-shot shape, as tensors.

    Shapes:
        x_support: ``(E, N*K, D)``; y_support: ``(E, N*K)`` int64 in ``0 .. N-1``.
        x_query: ``(E, N*Q, D)``; y_query: ``(E, N*Q)`` int64.
        classes: ``E`` tuples of the ``N`` original labels (target ``j`` of episode ``e`` is its ``j``-th).
    """

    x_support: torch.Tensor
    y_support: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor
    classes: tuple[tuple[Hashable, ...], ...]
    n_way: int

    def __len__(self) -> int:
        return self.x_support.shape[0]

    @property
    def k_shot(self) -> int:
        """Support examples per class."""
        return self.x_support.shape[1] // self.n_way

    def __getitem__(self, index: slice) -> EpisodeBatch:
        """The episodes ``index`` (a slice) as a smaller batch."""
        if not isinstance(index, slice):
            raise TypeError(
                f"index an EpisodeBatch with a slice, e.g. batch[:10], not {type(index).__name__}"
            )
        return EpisodeBatch(
            self.x_support[index],
            self.y_support[index],
            self.x_query[index],
            self.y_query[index],
            self.classes[index],
            self.n_way,
        )

    def chunks(self, size: int) -> Iterator[EpisodeBatch]:
        """Consecutive batches of at most ``size`` episodes (to bound memory)."""
        if size < 1:
            raise ValueError(f"size={size} must be >= 1")
        for start in range(0, len(self), size):
            yield self[start : start + size]

    def to(self, device: torch.device | str) -> EpisodeBatch:
        """The same episodes on ``device``."""
        move = lambda t: t.to(device)  # noqa: E731
        return EpisodeBatch(
            move(self.x_support), move(self.y_support), move(self.x_query), move(self.y_query),
            self.classes, self.n_way,
        )  # fmt: skip


def episode_batch(features: torch.Tensor, episodes: Sequence[Episode]) -> EpisodeBatch:
    """Gather the rows of ``episodes`` from ``features`` into one :class:`EpisodeBatch`.

    Args:
        features: one row per example of the sampler's rows, e.g. frozen sentence embeddings.
        episodes: from one :class:`~metalib.data.episodes.EpisodeSampler` (all of one N-way K-shot shape).

    Shapes:
        features: ``(R, D)`` (any trailing shape works); returns x_support ``(E, N*K, D)`` etc.

    Raises:
        ValueError: no episodes, episodes of different shapes, or rows beyond ``features``.
    """
    if not episodes:
        raise ValueError("episodes is empty; sample at least one episode")
    shapes = {(len(e.classes), len(e.support), len(e.query)) for e in episodes}
    if len(shapes) != 1:
        raise ValueError(f"episodes differ in (n_way, support size, query size): {sorted(shapes)}")
    highest = max(max(int(e.support.max()), int(e.query.max())) for e in episodes)
    if highest >= features.shape[0]:
        raise ValueError(f"episodes index row {highest} but features has only {features.shape[0]} rows")

    def stacked(name: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([getattr(e, name) for e in episodes])).to(features.device)

    return EpisodeBatch(
        x_support=features[stacked("support")],  # (E, N*K) row indices -> (E, N*K, D)
        y_support=stacked("support_targets"),  # (E, N*K)
        x_query=features[stacked("query")],  # (E, N*Q) row indices -> (E, N*Q, D)
        y_query=stacked("query_targets"),  # (E, N*Q)
        classes=tuple(e.classes for e in episodes),
        n_way=len(episodes[0].classes),
    )


def sample_episodes(sampler: EpisodeSampler, features: torch.Tensor, n: int) -> EpisodeBatch:
    """The next ``n`` episodes of ``sampler``'s running stream, gathered from ``features``
    (a meta-batch for training; use ``episode_batch(features, list(sampler))`` for a fixed set)."""
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    return episode_batch(features, [sampler.sample() for _ in range(n)])


@torch.no_grad()
def episode_accuracies(classify: Classifier, batch: EpisodeBatch, chunk_size: int = 200) -> torch.Tensor:
    """Query accuracy of ``classify`` on each episode of ``batch``, ``chunk_size`` episodes at a time.

    Shapes:
        returns ``(E,)`` float, one accuracy per episode.

    Raises:
        ValueError: ``classify`` returned logits of the wrong shape.
    """
    out = []
    for part in batch.chunks(chunk_size):
        logits = classify(part.x_support, part.y_support, part.x_query, part.n_way)
        expected = (*part.y_query.shape, part.n_way)
        if tuple(logits.shape) != expected:
            raise ValueError(
                f"classifier returned logits of shape {tuple(logits.shape)}, expected {expected}"
            )
        out.append((logits.argmax(-1) == part.y_query).float().mean(-1).cpu())  # (E_chunk,)
    return torch.cat(out)


def centroid_accuracies(rows, episodes: Sequence[Episode]) -> torch.Tensor:
    """Query accuracy per episode of the cosine nearest-centroid rule on any row matrix, sparse too.

    Each class centroid is the mean of its support rows, scaled to unit length; a query gets the
    class of the largest dot product (its cosine when the rows have unit length, as TF-IDF rows do).
    :func:`episode_accuracies` does the same on dense tensors; this one never densifies a
    vocabulary-wide matrix.

    Args:
        rows: ``(R, V)`` numpy array or scipy sparse matrix, one row per sampler row.
        episodes: from one :class:`~metalib.data.episodes.EpisodeSampler`.

    Shapes:
        returns ``(E,)`` float, one accuracy per episode.
    """
    from sklearn.preprocessing import normalize

    out = []
    for e in episodes:
        centroids = np.vstack(
            [np.asarray(rows[e.support[e.support_targets == j]].mean(0)) for j in range(len(e.classes))]
        )  # (N, V)
        predicted = np.asarray(rows[e.query] @ normalize(centroids).T).argmax(1)  # (N*Q,)
        out.append(float((predicted == e.query_targets).mean()))
    return torch.tensor(out)


def evaluate_episodes(classify: Classifier, batch: EpisodeBatch, chunk_size: int = 200) -> Estimate:
    """Mean query accuracy over the episodes with a Student-t 95% interval (episodes are the unit).

    Example:
        >>> from metalib.methods.protonet import nearest_mean  # doctest: +SKIP
        >>> print(evaluate_episodes(nearest_mean(), test_batch))  # doctest: +SKIP
        0.693 [0.685, 0.701] (n=600)
    """
    return mean_estimate(episode_accuracies(classify, batch, chunk_size).tolist())


@dataclass
class EpisodicHistory:
    """What :func:`fit_episodic` did: the training loss per step and the validation accuracy at
    each evaluation; ``best_step`` is the step whose weights were kept (0 = the initial weights)."""

    losses: list[float] = field(default_factory=list)
    evals: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0
    seconds: float = 0.0

    @property
    def best_accuracy(self) -> float:
        """Validation accuracy at ``best_step`` (nan without validation)."""
        return dict(self.evals).get(self.best_step, math.nan)


def fit_episodic(
    model: torch.nn.Module,
    episode_loss: Callable[[EpisodeBatch], torch.Tensor],
    sample: Callable[[], EpisodeBatch],
    *,
    steps: int,
    lr: float,
    validate: Callable[[], float] | None = None,
    eval_every: int = 50,
    weight_decay: float = 0.0,
) -> EpisodicHistory:
    """Train ``model`` on episodes with Adam(W); keep the weights that validate best.

    Each step draws a meta-batch with ``sample()``, minimises ``episode_loss(batch)`` and, every
    ``eval_every`` steps (and before the first), calls ``validate()`` — e.g. the mean accuracy on
    fixed meta-validation episodes. At the end the best validated weights are loaded back into
    ``model`` (early stopping without stopping); without ``validate`` the last weights are kept.

    Args:
        model: holds every trained parameter (for MetaSGD pass the :class:`~metalib.methods.maml.MAML`
            wrapper, whose parameters include the learned inner rates).
        episode_loss: ``batch -> scalar`` to minimise.
        sample: draws the next training meta-batch.
        steps: optimizer steps (>= 1).
        lr, weight_decay: of ``torch.optim.AdamW``.
        validate: ``() -> accuracy`` (higher is better), called in ``eval`` mode without gradients.
        eval_every: steps between validations.

    Returns:
        :class:`EpisodicHistory`; ``model`` holds the selected weights.
    """
    import time

    if steps < 1:
        raise ValueError(f"steps={steps} must be >= 1")
    if eval_every < 1:
        raise ValueError(f"eval_every={eval_every} must be >= 1")
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError("model has no trainable parameters")
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    history = EpisodicHistory()
    best = (-math.inf, None)
    start = time.perf_counter()

    def check(step: int) -> None:
        nonlocal best
        if validate is None:
            return
        model.eval()
        with torch.no_grad():
            accuracy = float(validate())
        model.train()
        history.evals.append((step, accuracy))
        if accuracy > best[0]:
            best = (accuracy, copy.deepcopy(model.state_dict()))
            history.best_step = step

    check(0)
    for step in range(1, steps + 1):
        optimizer.zero_grad(set_to_none=True)
        loss = episode_loss(sample())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"episode loss is {loss.item()} at step {step}; lower lr")
        loss.backward()
        optimizer.step()
        history.losses.append(loss.item())
        if step % eval_every == 0 or step == steps:
            check(step)
    if best[1] is not None:
        model.load_state_dict(best[1])
    else:
        history.best_step = steps
    history.seconds = time.perf_counter() - start
    return history


@dataclass(frozen=True)
class EpisodicConfig:
    """Episodes and optimiser of episodic training (:func:`fit_on_episodes`); each method's config
    (:class:`~metalib.methods.protonet.ProtoNetConfig`,
    :class:`~metalib.methods.fewshot_heads.HeadTrainingConfig`) adds its own fields."""

    n_way: int = 5
    """classes per training episode"""
    k_shot: int = 5
    """support examples per class"""
    n_query: int = 15
    """query examples per class"""
    meta_batch: int = 4
    """episodes per optimizer step"""
    steps: int = 300
    """optimizer (outer) steps"""
    lr: float = 1e-3
    """Adam learning rate (of the outer loop)"""
    eval_every: int = 25
    """steps between validations; the best validated weights are kept"""
    seed: int = 0
    """seed of the episode sampler and of the initialisation"""

    POSITIVE: ClassVar[tuple[str, ...]] = ("n_way", "k_shot", "n_query", "meta_batch", "steps", "eval_every")
    """the fields that must be positive integers"""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field_name in self.POSITIVE:
            value = getattr(self, field_name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}.{field_name}={value!r} must be a positive integer")
        if not self.lr > 0:
            raise ValueError(f"{name}.lr={self.lr} must be > 0")

    def sampler(self, labels: Sequence[Hashable], classes: Sequence[Hashable]) -> EpisodeSampler:
        """The training episodes: ``n_way``-way ``k_shot``-shot from ``classes`` only, seeded."""
        return EpisodeSampler(labels, self.n_way, self.k_shot, self.n_query, self.seed, classes=classes)


def check_features(features: torch.Tensor, labels: Sequence[Hashable]) -> None:
    """A ``ValueError`` unless ``features`` is ``(R, D)`` with one row per label."""
    if features.dim() != 2 or features.shape[0] != len(labels):
        raise ValueError(
            f"features {tuple(features.shape)} must be (R, D) with R = len(labels) = {len(labels)}"
        )


def fit_on_episodes(
    model: torch.nn.Module,
    episode_loss: Callable[[EpisodeBatch], torch.Tensor],
    sampler: EpisodeSampler,
    features: torch.Tensor,
    config: EpisodicConfig,
    validate: Callable[[], float] | None = None,
) -> EpisodicHistory:
    """:func:`fit_episodic` on meta-batches of ``config.meta_batch`` episodes that ``sampler`` draws
    from the rows of ``features``, for ``config.steps`` steps at ``config.lr``."""
    return fit_episodic(
        model,
        episode_loss,
        lambda: sample_episodes(sampler, features, config.meta_batch),
        steps=config.steps,
        lr=config.lr,
        validate=validate,
        eval_every=config.eval_every,
    )
