"""Inference latency of several models, measured side by side so that their ratios are fair.

Timing one model and then another compares them under different conditions: a laptop CPU changes
its clock, other processes come and go, caches warm up. :func:`compare_latency` therefore times
the models in alternating rounds on the same inputs (round 1: A, B, C; round 2: B, C, A; ...) and
reports the median seconds per batch of each, and each one's ratio to a reference model. A drift
in the machine's speed then hits every model alike and cancels out of the ratios.

Used by chapter 5 (distillation: how much faster is the student?).

Example:
    >>> import torch
    >>> models = {"big": torch.nn.Linear(256, 256), "small": torch.nn.Linear(256, 8)}
    >>> inputs = {1: torch.randn(1, 256), 32: torch.randn(32, 256)}
    >>> table = compare_latency(models, lambda m, x: m(x), inputs, rounds=3, reference="big")
    >>> sorted(table.columns)[:2]
    ['batch_size', 'model']
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["compare_latency"]


def compare_latency(
    models: Mapping[str, torch.nn.Module],
    run: Callable[[torch.nn.Module, Any], Any],
    inputs: Mapping[int, Any],
    *,
    rounds: int = 10,
    warmup: int = 2,
    reference: str | None = None,
) -> pd.DataFrame:
    """Median seconds per call of ``run(model, inputs[b])`` for every model and batch size ``b``.

    Every model is put in eval mode and called under ``torch.inference_mode``. For each batch size,
    each model first runs ``warmup`` untimed calls; then ``rounds`` rounds follow, and in round ``r``
    the models are called in the order rotated by ``r`` (so no model is always first or last). The
    inputs are the same objects for every model (models that need different inputs, e.g. their own
    tokenizer, can receive a dict and pick their part in ``run``).

    Args:
        models: name → model.
        run: ``(model, batch) -> anything``: one timed call (one forward pass).
        inputs: batch size → the batch passed to ``run``.
        rounds: timed calls per model and batch size (the median is over these).
        warmup: untimed calls per model and batch size before the rounds.
        reference: the model the ratios are relative to (default: the first).

    Returns:
        pandas.DataFrame: one row per model and batch size, with columns ``model``, ``batch_size``,
        ``seconds`` (median seconds per call), ``ms_per_example``, ``speedup`` (reference seconds /
        these seconds, > 1 is faster) and ``spread`` (interquartile range / median of this model's
        rounds, i.e. how noisy the timing was).
    """
    import pandas as pd
    import torch

    if not models:
        raise ValueError("models is empty")
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be >= 1 and warmup >= 0, got rounds={rounds}, warmup={warmup}")
    names = list(models)
    reference = names[0] if reference is None else reference
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not among the models {names}")
    for model in models.values():
        model.eval()
    rows = []
    with torch.inference_mode():
        for batch_size, batch in inputs.items():
            for name in names:
                for _ in range(warmup):
                    run(models[name], batch)
            times: dict[str, list[float]] = {name: [] for name in names}
            for r in range(rounds):
                shift = r % len(names)
                for name in names[shift:] + names[:shift]:  # rotated order
                    start = time.perf_counter()
                    run(models[name], batch)
                    times[name].append(time.perf_counter() - start)
            medians = {name: statistics.median(ts) for name, ts in times.items()}
            for name in names:
                ts = sorted(times[name])
                quartiles = statistics.quantiles(ts, n=4) if len(ts) > 1 else [ts[0]] * 3
                rows.append(
                    {
                        "model": name,
                        "batch_size": int(batch_size),
                        "seconds": medians[name],
                        "ms_per_example": 1000 * medians[name] / batch_size,
                        "speedup": medians[reference] / medians[name],
                        "spread": (quartiles[2] - quartiles[0]) / medians[name],
                    }
                )
    return pd.DataFrame(rows)
