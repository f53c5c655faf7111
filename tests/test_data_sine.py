"""Tests of metalib.data.sine: shapes, ranges, the task function, reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from metalib.data.sine import SineTasks, sine, sine_evaluation_set, sine_regressor


def test_shapes_dtype_and_ranges() -> None:
    batch = SineTasks(seed=0).sample_batch(meta_batch=25, k_shot=10, n_query=7)
    assert len(batch) == 25
    assert batch.x_support.shape == batch.y_support.shape == (25, 10, 1)
    assert batch.x_query.shape == batch.y_query.shape == (25, 7, 1)
    assert batch.amplitude.shape == batch.phase.shape == (25,)
    assert all(t.dtype == torch.float32 and t.device.type == "cpu" for t in vars(batch).values())
    big = SineTasks(seed=1).sample_batch(meta_batch=2000, k_shot=5, n_query=5)
    assert 0.1 <= big.amplitude.min() < 0.2 and 4.9 < big.amplitude.max() <= 5.0
    assert 0.0 <= big.phase.min() < 0.1 and math.pi - 0.1 < big.phase.max() <= math.pi
    xs = torch.cat([big.x_support, big.x_query], dim=1)
    assert -5.0 <= xs.min() < -4.99 and 4.99 < xs.max() <= 5.0


def test_targets_follow_the_task_function() -> None:
    batch = SineTasks(seed=2, dtype=torch.float64).sample_batch(4, 3, 5)
    expected = batch.amplitude[:, None, None] * torch.sin(batch.x_query - batch.phase[:, None, None])
    torch.testing.assert_close(batch.y_query, expected)
    torch.testing.assert_close(sine(batch.x_support, batch.amplitude, batch.phase), batch.y_support)
    flat = sine(batch.x_query[..., 0], batch.amplitude, batch.phase)  # (T, Q) also works
    torch.testing.assert_close(flat, batch.y_query[..., 0])


def test_seed_reproducibility_and_dtype_independence() -> None:
    a = SineTasks(seed=0).sample_batch(5, 4, 4)
    b = SineTasks(seed=0).sample_batch(5, 4, 4)
    c = SineTasks(seed=1).sample_batch(5, 4, 4)
    assert torch.equal(a.x_query, b.x_query) and torch.equal(a.amplitude, b.amplitude)
    assert not torch.equal(a.x_query, c.x_query)
    tasks = SineTasks(seed=0)
    assert not torch.equal(tasks.sample_batch(5, 4, 4).phase, tasks.sample_batch(5, 4, 4).phase)
    d = SineTasks(seed=0, dtype=torch.float64, device="cpu").sample_batch(5, 4, 4)
    assert d.y_query.dtype == torch.float64
    torch.testing.assert_close(d.y_query.float(), a.y_query)


def test_custom_ranges() -> None:
    tasks = SineTasks(seed=0, amplitude=(1.0, 1.0), phase=(0.0, 0.0), x_range=(0.0, 1.0))
    batch = tasks.sample_batch(3, 2, 2)
    assert torch.equal(batch.amplitude, torch.ones(3))
    torch.testing.assert_close(batch.y_support, torch.sin(batch.x_support))


def test_evaluation_set_is_fixed() -> None:
    first, second = sine_evaluation_set(), sine_evaluation_set()
    assert first.x_support.shape == (100, 10, 1) and first.x_query.shape == (100, 100, 1)
    assert torch.equal(first.y_query, second.y_query)
    other = sine_evaluation_set(n_tasks=3, k_shot=5, n_query=20, seed=1, dtype=torch.float64)
    assert other.y_query.shape == (3, 20, 1) and other.y_query.dtype == torch.float64
    assert not torch.equal(other.amplitude.float(), first.amplitude[:3])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: SineTasks().sample_batch(0, 5, 5), "meta_batch=0 must be a positive integer"),
        (lambda: SineTasks().sample_batch(2, 5.0, 5), "k_shot=5.0 must be a positive integer"),
        (lambda: SineTasks().sample_batch(2, 5, False), "n_query=False must be a positive integer"),
        (lambda: SineTasks(amplitude=(5.0, 0.1)), r"amplitude=\(5.0, 0.1\) must be \(low, high\)"),
        (lambda: SineTasks(dtype=torch.int64), "must be a floating-point dtype"),
    ],
)
def test_errors(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_sine_regressor_is_seeded_and_normalises_on_request() -> None:
    a, b = sine_regressor(seed=4), sine_regressor(seed=4)
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert a(torch.zeros(3, 7, 1)).shape == (3, 7, 1)
    assert [name for name, _ in a.named_children()] == ["body", "head"]
    normalised = sine_regressor(normalize=True)
    assert isinstance(normalised.body[-1], torch.nn.LayerNorm) and not list(normalised.body[-1].parameters())
    features = normalised.body(torch.linspace(-5, 5, 20).reshape(-1, 1))  # (20, 40)
    torch.testing.assert_close(features.mean(-1), torch.zeros(20), atol=1e-5, rtol=0)
