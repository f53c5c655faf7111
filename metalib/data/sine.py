"""Sinusoid regression tasks of Finn et al. 2017, the one intentionally synthetic benchmark.

A task is ``y = amplitude * sin(x - phase)`` with amplitude ~ U[0.1, 5], phase ~ U[0, pi], and inputs
x ~ U[-5, 5] (the ranges and formula of the MAML paper and its code). Everything is drawn from a
``torch.Generator`` in float64 on the CPU and then cast and moved, so a seed gives the same tasks for
every dtype and device (up to rounding). Used by the MAML chapter.

References:
    Finn, Abbeel and Levine 2017, "Model-Agnostic Meta-Learning for Fast Adaptation of Deep Networks".
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["SineBatch", "SineTasks", "sine", "sine_evaluation_set", "sine_regressor"]


@dataclass(frozen=True)
class SineBatch:
    """A batch of ``T`` sinusoid tasks with ``K`` support and ``Q`` query points each.

    Shapes:
        x_support, y_support: ``(T, K, 1)``; x_query, y_query: ``(T, Q, 1)``;
        amplitude, phase: ``(T,)``.
    """

    x_support: torch.Tensor
    y_support: torch.Tensor
    x_query: torch.Tensor
    y_query: torch.Tensor
    amplitude: torch.Tensor
    phase: torch.Tensor

    def __len__(self) -> int:
        return self.amplitude.shape[0]


def _range(name: str, value: tuple[float, float]) -> tuple[float, float]:
    low, high = (float(v) for v in value)
    if not low <= high:
        raise ValueError(f"{name}={value} must be (low, high) with low <= high")
    return low, high


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return value


class SineTasks:
    """Sampler of sinusoid regression tasks, reproducible from ``seed``.

    Args:
        seed: seed of the sampler's ``torch.Generator``.
        amplitude: range of the uniform amplitude; default (0.1, 5.0).
        phase: range of the uniform phase; default (0, pi).
        x_range: range of the uniform inputs; default (-5.0, 5.0).
        dtype: dtype of the returned tensors; default float32.
        device: device of the returned tensors; default CPU.

    Example:
        >>> tasks = SineTasks(seed=0)
        >>> batch = tasks.sample_batch(meta_batch=25, k_shot=10, n_query=10)
        >>> tuple(batch.x_support.shape), batch.x_support.dtype
        ((25, 10, 1), torch.float32)
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        amplitude: tuple[float, float] = (0.1, 5.0),
        phase: tuple[float, float] = (0.0, math.pi),
        x_range: tuple[float, float] = (-5.0, 5.0),
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if not dtype.is_floating_point:
            raise ValueError(f"dtype={dtype} must be a floating-point dtype, e.g. torch.float32")
        self.amplitude = _range("amplitude", amplitude)
        self.phase = _range("phase", phase)
        self.x_range = _range("x_range", x_range)
        self.dtype = dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, bounds: tuple[float, float], *shape: int) -> torch.Tensor:
        low, high = bounds
        return low + (high - low) * torch.rand(*shape, generator=self.generator, dtype=torch.float64)

    def sample_batch(self, meta_batch: int, k_shot: int, n_query: int) -> SineBatch:
        """Draw ``meta_batch`` new tasks with ``k_shot`` support and ``n_query`` query points each.

        Shapes:
            returns x_support, y_support ``(T, K, 1)``, x_query, y_query ``(T, Q, 1)``,
            amplitude, phase ``(T,)`` with T = meta_batch, K = k_shot, Q = n_query.
        """
        t, k, q = _count("meta_batch", meta_batch), _count("k_shot", k_shot), _count("n_query", n_query)
        amplitude = self._uniform(self.amplitude, t)  # (T,)
        phase = self._uniform(self.phase, t)  # (T,)
        x = self._uniform(self.x_range, t, k + q, 1)  # (T, K+Q, 1)
        y = sine(x, amplitude, phase)  # (T, K+Q, 1)

        def out(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device=self.device, dtype=self.dtype)

        return SineBatch(
            x_support=out(x[:, :k]),
            y_support=out(y[:, :k]),
            x_query=out(x[:, k:]),
            y_query=out(y[:, k:]),
            amplitude=out(amplitude),
            phase=out(phase),
        )


def sine(x: torch.Tensor, amplitude: torch.Tensor, phase: torch.Tensor) -> torch.Tensor:
    """The task function ``amplitude * sin(x - phase)``.

    Shapes:
        x: ``(T, N, 1)`` (or ``(T, N)``); amplitude, phase: ``(T,)``; returns the shape of ``x``.
    """
    view = (-1,) + (1,) * (x.dim() - 1)  # (T,) -> (T, 1, 1): broadcast over points
    return amplitude.reshape(view) * torch.sin(x - phase.reshape(view))


def sine_evaluation_set(
    n_tasks: int = 100,
    k_shot: int = 10,
    n_query: int = 100,
    *,
    seed: int = 2017,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> SineBatch:
    """A fixed set of held-out sinusoid tasks for evaluation.

    Drawn from its own generator (``seed``, default 2017), so it is the same whatever seed training
    uses; calling it twice returns equal tensors.

    Shapes:
        x_support, y_support: ``(n_tasks, k_shot, 1)``; x_query, y_query: ``(n_tasks, n_query, 1)``.
    """
    return SineTasks(seed, dtype=dtype, device=device).sample_batch(n_tasks, k_shot, n_query)


def sine_regressor(normalize: bool = False, seed: int = 0) -> nn.Sequential:
    """Finn et al.'s regressor for these tasks: 1-40-40-1 with ReLU, as ``body`` then ``head``.

    Args:
        normalize: end the body with a LayerNorm without parameters, which fixes the scale of the
            40 features the head sees (what ANIL on this network needs to adapt stably).
        seed: ``torch.manual_seed`` before the layers are built, so a seed gives the same weights.

    Shapes:
        input ``(..., 1)`` -> output ``(..., 1)``.
    """
    torch.manual_seed(seed)
    body = [nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU()]
    if normalize:
        body.append(nn.LayerNorm(40, elementwise_affine=False))
    return nn.Sequential(OrderedDict(body=nn.Sequential(*body), head=nn.Linear(40, 1)))
