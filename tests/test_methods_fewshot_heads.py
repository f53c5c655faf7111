"""Tests of metalib.methods.fewshot_heads: the fixed MetaModel, MAML/ANIL, the meta-loss, support fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from metalib.data.episodes import EpisodeSampler
from metalib.fewshot import episode_accuracies, episode_batch, evaluate_episodes
from metalib.methods.fewshot_heads import (
    FewShotHead,
    HeadTrainingConfig,
    adapted_classifier,
    fit_on_support,
    multitask_loss,
    train_maml_head,
    train_multitask_head,
)
from metalib.methods.maml import MAML, MAMLConfig

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny ops: 2 threads are slower (see conftest)


def clusters(n_classes: int = 24, per_class: int = 20, dim: int = 12, noise: float = 0.5, seed: int = 0):
    """Gaussian classes around random unit-scale means: learnable from a few examples."""
    generator = torch.Generator().manual_seed(seed)
    means = torch.randn(n_classes, dim, generator=generator)  # (C, D)
    labels = np.repeat(np.arange(n_classes), per_class)
    return means[labels] + noise * torch.randn(len(labels), dim, generator=generator), labels


def fixed(x, labels, classes, k_shot=2, n=60, seed=1):
    return episode_batch(x, list(EpisodeSampler(labels, 5, k_shot, 4, seed, classes=classes, n_episodes=n)))


def test_head_fixes_the_survey_model() -> None:
    head = FewShotHead(384, 5)
    assert head(torch.randn(3, 7, 384)).shape == (3, 7, 5)
    assert head.features(torch.randn(2, 384)).shape == (2, 64)
    with pytest.raises(ValueError, match="size 768"):  # the survey's BERT-base size on MiniLM features
        head(torch.randn(2, 768))
    zero = FewShotHead(8, 3, 4, zero_head=True)
    assert torch.equal(zero(torch.randn(5, 8)), torch.zeros(5, 3))  # uniform whatever the class order
    state = torch.random.get_rng_state()
    a, b = FewShotHead(8, 3, seed=7), FewShotHead(8, 3, seed=7)
    assert torch.equal(a.body[0].weight, b.body[0].weight)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global stream is untouched
    with pytest.raises(ValueError, match="hidden=0"):
        FewShotHead(8, 3, 0)


def test_multitask_loss_is_the_mean_of_task_losses_over_each_tasks_classes() -> None:
    x, labels = clusters()
    batch = fixed(x, labels, range(12), n=3)
    class_index = {c: i for i, c in enumerate(range(12))}
    model = FewShotHead(12, 12, 8)
    expected = []
    for t in range(3):
        inputs = torch.cat([batch.x_support[t], batch.x_query[t]])  # (S, D)
        targets = torch.cat([batch.y_support[t], batch.y_query[t]])
        columns = [class_index[c] for c in batch.classes[t]]
        expected.append(F.cross_entropy(model(inputs)[:, columns], targets))
    torch.testing.assert_close(multitask_loss(model, batch, class_index), torch.stack(expected).mean())
    with pytest.raises(ValueError, match="not in class_index"):
        multitask_loss(model, batch, {0: 0})


def test_fit_on_support_learns_each_episode() -> None:
    x, labels = clusters(noise=0.3)
    batch = fixed(x, labels, range(24), k_shot=3)
    logits = fit_on_support(steps=50)(batch.x_support, batch.y_support, batch.x_query, batch.n_way)
    assert logits.shape == (60, 20, 5) and not logits.requires_grad
    assert episode_accuracies(fit_on_support(steps=50), batch).mean() > 0.95
    # a transform is applied to support and query alike: a constant one makes every prediction a tie
    flat = evaluate_episodes(fit_on_support(lambda z: torch.zeros(*z.shape[:-1], 3), steps=5), batch)
    assert flat.mean == pytest.approx(0.2)
    with pytest.raises(ValueError, match="steps"):
        fit_on_support(steps=0)


def test_maml_head_learns_to_adapt_to_new_classes() -> None:
    x, labels = clusters()
    test = fixed(x, labels, range(16, 24), seed=2)
    config = HeadTrainingConfig(
        k_shot=2, n_query=4, meta_batch=4, steps=40, lr=1e-2, hidden=16, eval_every=10
    )
    inner = MAMLConfig(inner_lr=0.5, steps=3)
    maml, history = train_maml_head(x, labels, range(16), inner, config)
    assert isinstance(maml, MAML) and not maml.training and history.best_step == 40
    before = evaluate_episodes(adapted_classifier(maml, steps=0), test)
    after = evaluate_episodes(adapted_classifier(maml, steps=5), test)
    assert before.mean < 0.3, before  # unadapted: chance on new classes in random order
    assert after.mean > 0.8 and after.low > before.high, after  # measured 0.20 -> 0.92
    with pytest.raises(ValueError, match="5 outputs but the episodes are 3-way"):
        adapted_classifier(maml)(test.x_support[:, :6], test.y_support[:, :6] % 3, test.x_query, 3)


def test_anil_and_validation_selection() -> None:
    x, labels = clusters()
    val = fixed(x, labels, range(16, 24))
    config = HeadTrainingConfig(k_shot=2, n_query=4, meta_batch=4, steps=20, lr=1e-2, hidden=16, eval_every=5)
    maml, history = train_maml_head(
        x,
        labels,
        range(16),
        MAMLConfig(inner_lr=0.5, steps=2, adapted=("head",)),
        config,
        val=val,
        val_steps=4,
    )
    assert maml.adapted_names == ("head.weight", "head.bias")
    assert [s for s, _ in history.evals] == [0, 5, 10, 15, 20]
    assert history.best_accuracy == max(a for _, a in history.evals) > 0.5


def test_multitask_head_reuses_its_hidden_layer() -> None:
    x, labels = clusters()
    val = fixed(x, labels, range(16, 24))
    config = HeadTrainingConfig(meta_batch=4, steps=30, lr=1e-2, hidden=16, eval_every=10)
    model, history = train_multitask_head(x, labels, range(16), config, val=val, support_steps=30)
    assert model.head.out_features == 16 and not model.training
    assert history.losses[-1] < history.losses[0]
    assert evaluate_episodes(fit_on_support(model.features, steps=30), val).mean > 0.6
    with pytest.raises(ValueError, match="len\\(labels\\)"):
        train_multitask_head(x[:5], labels, range(16))
    for bad in (dict(steps=0), dict(hidden=1.5), dict(lr=-1.0)):
        with pytest.raises(ValueError, match="HeadTrainingConfig"):
            HeadTrainingConfig(**bad)


def test_adapted_classifier_uses_learned_rates() -> None:
    x, labels = clusters()
    batch = fixed(x, labels, range(24), n=6)
    maml = MAML(FewShotHead(12, 5, 8, zero_head=True), MAMLConfig(inner_lr=0.5, steps=1, learn_inner_lr=True))
    args = (batch.x_support, batch.y_support, batch.x_query, 5)
    with torch.no_grad():
        for rate in maml.inner_lrs:
            rate.zero_()  # zero learned rates: adapting changes nothing, the zero head stays uniform
    assert torch.equal(adapted_classifier(maml)(*args), torch.zeros(6, 20, 5))
    with torch.no_grad():
        for rate in maml.inner_lrs:
            rate.fill_(0.5)
    fixed_rate = MAML(maml.model, MAMLConfig(inner_lr=0.5, steps=1))
    torch.testing.assert_close(adapted_classifier(maml)(*args), adapted_classifier(fixed_rate)(*args))
