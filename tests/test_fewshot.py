"""Tests of metalib.fewshot: episodes as tensors, accuracy with CIs, the episodic training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from metalib.data.episodes import Episode, EpisodeSampler
from metalib.evaluate import Estimate
from metalib.fewshot import (
    EpisodeBatch,
    centroid_accuracies,
    episode_accuracies,
    episode_batch,
    evaluate_episodes,
    fit_episodic,
    sample_episodes,
)

LABELS = np.repeat(np.arange(6), 10)  # six classes of ten rows


def features() -> torch.Tensor:
    """Row i is (i, label): the gathered rows can be checked by value."""
    return torch.stack([torch.arange(60.0), torch.as_tensor(LABELS, dtype=torch.float32)], dim=1)  # (60, 2)


def test_episode_batch_gathers_the_episodes_rows() -> None:
    sampler = EpisodeSampler(LABELS, n_way=3, k_shot=2, n_query=4, seed=0, n_episodes=5)
    episodes = list(sampler)
    batch = episode_batch(features(), episodes)
    assert len(batch) == 5 and batch.n_way == 3 and batch.k_shot == 2
    assert batch.x_support.shape == (5, 6, 2) and batch.x_query.shape == (5, 12, 2)
    assert batch.y_support.dtype == torch.int64 and batch.y_query.shape == (5, 12)
    for e, episode in enumerate(episodes):
        assert batch.x_support[e, :, 0].long().tolist() == episode.support.tolist()
        assert batch.y_query[e].tolist() == episode.query_targets.tolist()
        # target j is class classes[j]: the second feature column holds the original label
        expected = [episode.classes[t] for t in episode.support_targets]
        assert batch.x_support[e, :, 1].long().tolist() == expected
    assert batch.classes == tuple(e.classes for e in episodes)


def test_slicing_chunks_and_device() -> None:
    batch = episode_batch(features(), list(EpisodeSampler(LABELS, 2, 1, 2, seed=1, n_episodes=7)))
    parts = list(batch.chunks(3))
    assert [len(p) for p in parts] == [3, 3, 1]
    assert torch.equal(torch.cat([p.x_query for p in parts]), batch.x_query)
    assert parts[2].classes == batch.classes[6:]
    assert batch.to("cpu").x_support.device.type == "cpu"
    with pytest.raises(TypeError, match="slice"):
        batch[0]
    with pytest.raises(ValueError, match="size"):
        list(batch.chunks(0))


def test_sample_episodes_continues_the_stream() -> None:
    sampler = EpisodeSampler(LABELS, 3, 1, 1, seed=0)
    first, second = sample_episodes(sampler, features(), 4), sample_episodes(sampler, features(), 4)
    assert len(first) == 4 and not torch.equal(first.x_support, second.x_support)
    with pytest.raises(ValueError, match="n=0"):
        sample_episodes(sampler, features(), 0)


def test_episode_batch_errors() -> None:
    sampler = EpisodeSampler(LABELS, 3, 1, 1, seed=0)
    with pytest.raises(ValueError, match="empty"):
        episode_batch(features(), [])
    other = EpisodeSampler(LABELS, 2, 1, 1, seed=0).sample()
    with pytest.raises(ValueError, match="differ"):
        episode_batch(features(), [sampler.sample(), other])
    with pytest.raises(ValueError, match="only 30 rows"):
        episode_batch(features()[:30], [sampler.sample() for _ in range(20)])


def label_oracle(x_support, y_support, x_query, n_way):
    """Reads the label column of the query rows and maps it to episode targets via the support set."""
    logits = torch.zeros(*x_query.shape[:2], n_way)
    for e in range(x_query.shape[0]):
        mapping = {int(label): int(t) for label, t in zip(x_support[e, :, 1], y_support[e], strict=True)}
        for q in range(x_query.shape[1]):
            logits[e, q, mapping[int(x_query[e, q, 1])]] = 1.0
    return logits


def test_accuracies_and_estimate() -> None:
    batch = episode_batch(features(), list(EpisodeSampler(LABELS, 3, 2, 3, seed=0, n_episodes=30)))
    perfect = episode_accuracies(label_oracle, batch, chunk_size=7)
    assert perfect.shape == (30,) and torch.all(perfect == 1.0)
    constant = episode_accuracies(lambda xs, ys, xq, n: torch.zeros(*xq.shape[:2], n), batch)
    assert torch.allclose(constant, torch.full((30,), 1 / 3))  # arg-max of ties is class 0: one in three
    estimate = evaluate_episodes(lambda xs, ys, xq, n: torch.randn(*xq.shape[:2], n), batch)
    assert isinstance(estimate, Estimate) and estimate.n == 30
    assert estimate.low < estimate.mean < estimate.high and 0.0 < estimate.mean < 1.0
    with pytest.raises(ValueError, match="expected"):
        episode_accuracies(lambda xs, ys, xq, n: torch.zeros(xq.shape[0], n), batch)


def test_fit_episodic_keeps_the_best_validated_weights() -> None:
    torch.manual_seed(0)
    model = nn.Linear(1, 1, bias=False)
    start = model.weight.detach().clone()
    sample = lambda: None  # noqa: E731 - the loss ignores the batch

    # training pushes the weight up; validation prefers it small: the initial weights win
    history = fit_episodic(
        model, lambda _: -model.weight.sum(), sample, steps=6, lr=0.1, eval_every=2,
        validate=lambda: -model.weight.item(),
    )  # fmt: skip
    assert [s for s, _ in history.evals] == [0, 2, 4, 6] and history.best_step == 0
    assert torch.equal(model.weight, start) and len(history.losses) == 6
    assert history.best_accuracy == pytest.approx(-start.item())
    # validation that agrees with training keeps the last weights
    history = fit_episodic(
        model, lambda _: -model.weight.sum(), sample, steps=4, lr=0.1, validate=lambda: model.weight.item()
    )
    assert history.best_step == 4 and model.weight.item() > start.item()
    # no validation: the last weights, best_step = steps, no accuracy
    history = fit_episodic(model, lambda _: (model.weight**2).sum(), sample, steps=3, lr=0.1)
    assert history.best_step == 3 and np.isnan(history.best_accuracy) and history.seconds >= 0


def test_fit_episodic_errors() -> None:
    model = nn.Linear(1, 1)
    with pytest.raises(ValueError, match="steps"):
        fit_episodic(model, lambda _: model.weight.sum(), lambda: None, steps=0, lr=0.1)
    with pytest.raises(ValueError, match="eval_every"):
        fit_episodic(model, lambda _: model.weight.sum(), lambda: None, steps=1, lr=0.1, eval_every=0)
    with pytest.raises(ValueError, match="no trainable"):
        fit_episodic(nn.ReLU(), lambda _: torch.zeros(()), lambda: None, steps=1, lr=0.1)
    with pytest.raises(FloatingPointError, match="step 1"):
        fit_episodic(model, lambda _: model.weight.sum() * float("nan"), lambda: None, steps=1, lr=0.1)


def test_batch_is_a_maml_task_batch() -> None:
    """EpisodeBatch has the four tensors metalib.methods.maml expects, with the task axis first."""
    episode = Episode(np.array([0, 10]), np.array([0, 1]), np.array([1, 11]), np.array([0, 1]), (0, 1))
    batch = episode_batch(features(), [episode, episode])
    assert isinstance(batch, EpisodeBatch)
    assert {t.shape[0] for t in (batch.x_support, batch.y_support, batch.x_query, batch.y_query)} == {2}


def test_the_episodic_configs_share_one_base_and_keep_their_own_defaults():
    from metalib.fewshot import EpisodicConfig
    from metalib.methods.fewshot_heads import HeadTrainingConfig
    from metalib.methods.protonet import ProtoNetConfig

    assert issubclass(ProtoNetConfig, EpisodicConfig) and issubclass(HeadTrainingConfig, EpisodicConfig)
    assert ProtoNetConfig().meta_batch == 4 and HeadTrainingConfig().meta_batch == 8
    assert "hidden" in HeadTrainingConfig.POSITIVE and "hidden" not in EpisodicConfig.POSITIVE
    with pytest.raises(ValueError, match="EpisodicConfig.k_shot=0 must be a positive integer"):
        EpisodicConfig(k_shot=0)
    sampler = EpisodicConfig(n_way=2, k_shot=1, n_query=1).sampler([0, 0, 1, 1, 2, 2], classes=[0, 1])
    assert sorted(sampler.classes) == [0, 1]


def test_centroid_accuracies_equal_dense_cosine_prototypes_and_accept_sparse_rows() -> None:
    from scipy import sparse

    from metalib.methods.protonet import nearest_mean

    rng = np.random.default_rng(0)
    rows = rng.normal(size=(60, 5)) + 2 * np.eye(6)[LABELS][:, :5]  # (60, 5), classes apart
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    episodes = list(EpisodeSampler(LABELS, n_way=3, k_shot=2, n_query=3, seed=1, n_episodes=20))
    dense = centroid_accuracies(rows, episodes)
    assert dense.shape == (20,) and 0 < dense.mean() <= 1
    torch.testing.assert_close(centroid_accuracies(sparse.csr_matrix(rows), episodes), dense)
    batch = episode_batch(torch.from_numpy(rows), episodes)
    torch.testing.assert_close(episode_accuracies(nearest_mean(metric="cosine"), batch), dense)
