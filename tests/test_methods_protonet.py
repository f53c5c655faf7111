"""Tests of metalib.methods.protonet: prototypes, distances, the head, episodic training on new classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metalib.data.episodes import EpisodeSampler
from metalib.fewshot import episode_batch, evaluate_episodes
from metalib.methods.protonet import (
    ProjectionHead,
    ProtoNetConfig,
    nearest_mean,
    protonet_loss,
    prototype_logits,
    prototypes,
    train_protonet,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops: 2 threads are slower (see conftest)


def test_prototypes_are_class_means_per_episode() -> None:
    z = torch.randn(3, 6, 4, dtype=torch.float64)
    y = torch.tensor([[0, 1, 2, 0, 1, 2], [2, 2, 0, 1, 1, 0], [1, 0, 2, 2, 1, 0]])
    protos = prototypes(z, y, 3)
    assert protos.shape == (3, 3, 4)
    for e in range(3):
        for k in range(3):
            torch.testing.assert_close(protos[e, k], z[e][y[e] == k].mean(0))
    with pytest.raises(ValueError, match="each of the 4 classes"):
        prototypes(z, y, 4)
    with pytest.raises(ValueError, match=r"\(E, S, D\)"):
        prototypes(z[0], y[0], 3)


def test_logits_match_their_definitions() -> None:
    zq, protos = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 3, 8, dtype=torch.float64)
    euclid = prototype_logits(zq, protos, "sqeuclidean", scale=2.0)
    torch.testing.assert_close(euclid, -2.0 * torch.cdist(zq, protos) ** 2)
    cosine = prototype_logits(zq, protos, "cosine", scale=3.0)
    expected = 3.0 * F.cosine_similarity(zq.unsqueeze(2), protos.unsqueeze(1), dim=-1)  # (2, 5, 3)
    torch.testing.assert_close(cosine, expected)
    with pytest.raises(ValueError, match="metric"):
        prototype_logits(zq, protos, "manhattan")


def test_projection_head_starts_as_the_identity() -> None:
    x = torch.randn(4, 7, 16)
    for rank in (1, 4, None):
        head = ProjectionHead(16, rank)
        assert torch.equal(head(x), x)
    assert ProjectionHead(16, None).down.shape == (16, 16)
    assert torch.equal(ProjectionHead(16, 4, seed=3).down, ProjectionHead(16, 4, seed=3).down)
    with pytest.raises(ValueError, match="rank"):
        ProjectionHead(16, 17)
    with pytest.raises(ValueError, match="size 8"):
        ProjectionHead(16)(torch.randn(2, 8))


def hidden_signal(n_classes: int = 30, per_class: int = 20, dim: int = 16, seed: int = 0):
    """Classes differ only along the first two dimensions; the other 14 are louder noise.

    A metric that stretches the two informative dimensions helps on *any* classes of this kind, so a
    head trained on some classes must help on disjoint ones: the property a ProtoNet relies on.
    """
    generator = torch.Generator().manual_seed(seed)
    means = torch.zeros(n_classes, dim)
    means[:, :2] = torch.randn(n_classes, 2, generator=generator)  # (C, D): signal in two dims
    labels = np.repeat(np.arange(n_classes), per_class)
    noise = torch.full((dim,), 1.0)
    noise[:2] = 0.3  # (D,): quiet in the informative dimensions
    x = means[labels] + noise * torch.randn(len(labels), dim, generator=generator)  # (C*P, D)
    return x, labels


def test_training_on_some_classes_helps_on_new_ones() -> None:
    x, labels = hidden_signal()
    train, val, test = list(range(20)), list(range(20, 25)), list(range(25, 30))

    def fixed(classes, seed):
        return episode_batch(x, list(EpisodeSampler(labels, 5, 1, 5, seed, classes=classes, n_episodes=100)))

    config = ProtoNetConfig(n_way=5, k_shot=1, n_query=5, steps=100, lr=0.1, rank=2, scale=0.1, eval_every=25)
    head, history = train_protonet(x, labels, train, config, val=fixed(val, 1))
    frozen = evaluate_episodes(nearest_mean(), fixed(test, 2))
    trained = evaluate_episodes(nearest_mean(head), fixed(test, 2))
    # measured: 0.36 -> 0.68 (seed 0); nearest mean on the two informative
    # dimensions alone (the best such a metric can do): 0.73
    assert trained.mean > frozen.mean + 0.1, (frozen, trained)
    assert trained.low > frozen.high
    assert not head.training and history.best_step > 0 and len(history.losses) == 100
    # the learned map stretches the two informative dimensions most
    stretch = (torch.eye(16) + head.down @ head.up).detach().norm(dim=1)  # (D,) row norms
    assert set(stretch.topk(2).indices.tolist()) == {0, 1}


def test_loss_and_config_checks() -> None:
    x, labels = hidden_signal()
    batch = episode_batch(x, list(EpisodeSampler(labels, 5, 2, 3, 0, n_episodes=4)))
    head = ProjectionHead(16, 2)
    loss = protonet_loss(head, batch)
    loss.backward()
    assert loss.ndim == 0 and head.up.grad.abs().sum() > 0 and head.down.grad.abs().sum() == 0  # V = 0
    # with the identity head, training-free and trained classifiers agree
    assert torch.equal(nearest_mean(head)(*batch_args(batch)), nearest_mean()(*batch_args(batch)))
    for bad in (dict(steps=0), dict(n_way=True), dict(lr=0.0), dict(metric="l1"), dict(scale=-1.0)):
        with pytest.raises(ValueError, match="ProtoNetConfig"):
            ProtoNetConfig(**bad)
    with pytest.raises(ValueError, match="len\\(labels\\)"):
        train_protonet(x[:10], labels, [0, 1, 2, 3, 4])
    head, history = train_protonet(x, labels, range(10), ProtoNetConfig(steps=2))
    assert history.best_step == 2 and history.evals == []


def batch_args(batch):
    return batch.x_support, batch.y_support, batch.x_query, batch.n_way
