"""Prototypical networks on frozen features: class means, distances, and an episodically trained head.

A *prototype* is the mean embedding of a class's support examples; a query gets the class of the
nearest prototype, with logits ``-scale * ||z - c_k||^2`` (squared Euclidean, as Snell et al.) or
``scale * cos(z, c_k)``. Without training this is the *nearest class mean* classifier on the
encoder's features. A ProtoNet trains the embedding so that this classifier works on new classes:
each step samples episodes from the meta-training classes and minimises the cross-entropy of the
query logits.

Fine-tuning the encoder itself episodically is what Snell et al. do with a CNN; for a transformer on
a laptop CPU it is out of budget, so chapter 6 trains a small :class:`ProjectionHead` on top of
*frozen, cached* MiniLM features — a residual low-rank map that starts as the identity, so training
starts from the frozen prototypes and can only move away from them as far as validation allows.

References:
    Snell, Swersky and Zemel 2017, "Prototypical Networks for Few-shot Learning".
    Oreshkin, Rodríguez López and Lacoste 2018, "TADAM: Task dependent adaptive metric for improved
    few-shot learning" (why the distance needs a scale).

Example:
    >>> import torch
    >>> z = torch.tensor([[[0.0, 0.0], [0.0, 2.0], [4.0, 0.0]]])  # one episode, 3 support rows
    >>> prototypes(z, torch.tensor([[0, 0, 1]]), n_way=2)
    tensor([[[0., 1.],
             [4., 0.]]])
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from metalib.fewshot import (
    Classifier,
    EpisodeBatch,
    EpisodicConfig,
    EpisodicHistory,
    check_features,
    episode_accuracies,
    fit_on_episodes,
)

__all__ = [
    "Metric",
    "ProjectionHead",
    "ProtoNetConfig",
    "nearest_mean",
    "protonet_loss",
    "prototype_logits",
    "prototypes",
    "train_protonet",
]

Metric = Literal["sqeuclidean", "cosine"]


def prototypes(z_support: torch.Tensor, y_support: torch.Tensor, n_way: int) -> torch.Tensor:
    """Class means of the support embeddings, per episode.

    Shapes:
        z_support: ``(E, S, D)``; y_support: ``(E, S)`` int in ``0 .. n_way-1``; returns ``(E, N, D)``.

    Raises:
        ValueError: mismatched shapes, or a class without support examples in some episode.
    """
    if z_support.dim() != 3 or y_support.shape != z_support.shape[:2]:
        raise ValueError(
            f"z_support {tuple(z_support.shape)} must be (E, S, D) "
            f"and y_support {tuple(y_support.shape)} (E, S)"
        )
    one_hot = F.one_hot(y_support, n_way).to(z_support.dtype)  # (E, S, N)
    counts = one_hot.sum(1)  # (E, N)
    if (counts == 0).any():
        raise ValueError(f"every episode needs at least one support example of each of the {n_way} classes")
    return one_hot.transpose(1, 2) @ z_support / counts.unsqueeze(-1)  # (E, N, S) @ (E, S, D) -> (E, N, D)


def prototype_logits(
    z_query: torch.Tensor, protos: torch.Tensor, metric: Metric = "sqeuclidean", scale: float = 1.0
) -> torch.Tensor:
    """Logits of each query for each prototype: ``-scale * ||z - c||^2`` or ``scale * cos(z, c)``.

    The scale does not change the arg-max, only how peaked the softmax is — which matters for
    training: unit-length features have squared distances in [0, 4], so with scale 1 every
    softmax is nearly uniform and the loss hardly trains.

    Shapes:
        z_query: ``(E, Q, D)``; protos: ``(E, N, D)``; returns ``(E, Q, N)``.
    """
    if metric == "sqeuclidean":
        # ||z||^2 - 2 z.c + ||c||^2, without the sqrt of cdist (whose gradient is unstable at 0)
        distances = (
            z_query.pow(2).sum(-1, keepdim=True)  # (E, Q, 1)
            - 2 * z_query @ protos.transpose(1, 2)  # (E, Q, N)
            + protos.pow(2).sum(-1).unsqueeze(1)  # (E, 1, N)
        )
        return -scale * distances
    if metric == "cosine":
        return scale * F.normalize(z_query, dim=-1) @ F.normalize(protos, dim=-1).transpose(1, 2)  # (E, Q, N)
    raise ValueError(f"metric={metric!r} must be 'sqeuclidean' or 'cosine'")


class ProjectionHead(nn.Module):
    """A residual linear map ``z = x + (x U) V`` of rank ``rank``, the identity at initialisation.

    Args:
        dim: feature size (384 for MiniLM).
        rank: rank of the learned update (``None``: a full ``dim x dim`` matrix). A low rank is a
            strong regulariser: with only a few dozen meta-training classes, a full map overfits them.
        seed: seed of the initialisation of ``U`` (``V`` starts at zero).

    Shapes:
        ``(..., dim) -> (..., dim)``.
    """

    def __init__(self, dim: int, rank: int | None = 8, seed: int = 0) -> None:
        super().__init__()
        if dim < 1 or (rank is not None and not 1 <= rank <= dim):
            raise ValueError(f"need dim >= 1 and 1 <= rank <= dim (or rank=None), got dim={dim}, rank={rank}")
        inner = dim if rank is None else rank
        generator = torch.Generator().manual_seed(seed)
        self.down = nn.Parameter(torch.randn(dim, inner, generator=generator) / dim**0.5)  # U: (D, r)
        self.up = nn.Parameter(torch.zeros(inner, dim))  # V: (r, D); zero, so the map starts as the identity
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features ``(..., dim)`` to ``(..., dim)``."""
        if x.shape[-1] != self.dim:
            raise ValueError(f"ProjectionHead(dim={self.dim}) got features of size {x.shape[-1]}")
        return x + (x @ self.down) @ self.up  # (..., D) @ (D, r) @ (r, D) -> (..., D)


def nearest_mean(head: torch.nn.Module | None = None, metric: Metric = "sqeuclidean") -> Classifier:
    """The prototype classifier: each query gets the class of its nearest support mean.

    Args:
        head: embeds features first (a trained :class:`ProjectionHead`); ``None`` uses the
            features as they are ("prototypes without training").
        metric: ``"sqeuclidean"`` or ``"cosine"``.

    Returns:
        A :data:`metalib.fewshot.Classifier` for :func:`metalib.fewshot.evaluate_episodes`.
    """
    embed = head if head is not None else nn.Identity()

    def classify(x_support, y_support, x_query, n_way: int) -> torch.Tensor:
        return prototype_logits(embed(x_query), prototypes(embed(x_support), y_support, n_way), metric)

    return classify


def protonet_loss(
    head: torch.nn.Module, batch: EpisodeBatch, metric: Metric = "sqeuclidean", scale: float = 10.0
):
    """Cross-entropy of the query logits against prototypes of the embedded support, mean over queries.

    Shapes:
        batch: x_support ``(E, N*K, D)``, x_query ``(E, N*Q, D)``; returns a scalar.
    """
    protos = prototypes(head(batch.x_support), batch.y_support, batch.n_way)  # (E, N, D')
    logits = prototype_logits(head(batch.x_query), protos, metric, scale)  # (E, N*Q, N)
    return F.cross_entropy(logits.reshape(-1, batch.n_way), batch.y_query.reshape(-1))  # (E*N*Q, N)


@dataclass(frozen=True)
class ProtoNetConfig(EpisodicConfig):
    """Episodic training of a :class:`ProjectionHead` on frozen features: the episodes and optimiser
    of :class:`~metalib.fewshot.EpisodicConfig` (5-way 5-shot, 15 queries, 4 episodes a step, 300
    steps), and the head's rank and metric."""

    rank: int | None = 8
    """rank of the head's update, or None for a full-rank matrix"""
    metric: Metric = "sqeuclidean"
    """distance to the prototypes"""
    scale: float = 10.0
    """logit scale (inverse temperature) during training; accuracy does not depend on it"""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.scale > 0:
            raise ValueError(f"ProtoNetConfig.scale={self.scale} must be > 0")
        if self.metric not in ("sqeuclidean", "cosine"):
            raise ValueError(f"ProtoNetConfig.metric={self.metric!r} must be 'sqeuclidean' or 'cosine'")


def train_protonet(
    features: torch.Tensor,
    labels: Sequence[Hashable],
    classes: Sequence[Hashable],
    config: ProtoNetConfig | None = None,
    val: EpisodeBatch | None = None,
) -> tuple[ProjectionHead, EpisodicHistory]:
    """Train a :class:`ProjectionHead` as a prototypical network on episodes of ``classes``.

    Args:
        features: frozen features, one row per labelled example.
        labels: the label of each row (e.g. WordNet supersenses).
        classes: the meta-training classes; episodes draw only from them.
        config: :class:`ProtoNetConfig` (default: 5-way 5-shot, 300 steps, rank 8).
        val: fixed meta-validation episodes (disjoint classes); the head with the best nearest-mean
            accuracy on them is returned (step 0, the identity, included).

    Shapes:
        features: ``(R, D)``; ``len(labels) == R``.

    Returns:
        The trained head (in eval mode) and the :class:`~metalib.fewshot.EpisodicHistory`.

    Example:
        >>> head, history = train_protonet(x, labels, splits["train"], val=val_batch)  # doctest: +SKIP
        >>> evaluate_episodes(nearest_mean(head), test_batch)  # doctest: +SKIP
    """
    config = config or ProtoNetConfig()
    check_features(features, labels)
    head = ProjectionHead(features.shape[1], config.rank, seed=config.seed).to(features.device)

    def validate() -> float:
        return episode_accuracies(nearest_mean(head, config.metric), val).mean().item()

    history = fit_on_episodes(
        head,
        lambda batch: protonet_loss(head, batch, config.metric, config.scale),
        config.sampler(labels, classes),
        features,
        config,
        validate if val is not None else None,
    )
    return head.eval(), history
