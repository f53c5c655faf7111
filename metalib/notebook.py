"""Small helpers for the chapters' notebooks (rendering, not computing).

Example:
    >>> from metalib import evaluate
    >>> print(source_markdown(evaluate.wilson_interval).splitlines()[0])
    ```python
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Mapping
from typing import Any


def source_markdown(obj: Any) -> str:
    """The source of a metalib function or class as a fenced Markdown code block."""
    return f"```python\n{inspect.getsource(obj).rstrip()}\n```"


def show_source(obj: Any) -> Any:
    """Display the source of ``obj`` in a notebook, so a chapter shows the library's code
    instead of pasting a second copy that could drift."""
    from IPython.display import Markdown

    return Markdown(source_markdown(obj))


def glue(name: str, value: Any, display: bool = False) -> None:
    """``myst_nb.glue`` for a number computed in a notebook, with NumPy scalars turned into Python ones.

    NumPy 2 shows a scalar as ``np.float64(0.63)``, which myst-nb cannot format in a
    ``{glue:text}`name:.3f``` role; ``value.item()`` gives the plain ``0.63``.
    """
    from myst_nb import glue as myst_glue

    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        value = value.item()
    myst_glue(name, value, display=display)


def glue_all(values: Mapping[str, Any] | None = None, /, prefix: str = "", **named: Any) -> None:
    """:func:`glue` every ``name: value`` of ``values`` and of ``named`` (not displayed), as
    ``prefix + name``.

    Example:
        >>> glue_all(n_test=998, accuracy=0.8)  # doctest: +SKIP
        >>> glue_all({"zero": 0.61, "k_max": 8}, prefix="icl_")  # doctest: +SKIP
    """
    for name, value in {**(values or {}), **named}.items():
        glue(prefix + name, value)


def glue_estimate(name: str, estimate: Any, mean_suffix: str = "") -> None:
    """Glue an estimate as three numbers: its mean as ``name + mean_suffix`` (e.g. ``"_acc"``), its
    interval as ``name_low`` and ``name_high``. ``estimate`` is a :class:`metalib.evaluate.Estimate`
    or a row with ``accuracy``, ``low`` and ``high`` (a :func:`metalib.compare.run` row, a line of
    ``compare.summarize``)."""
    if hasattr(estimate, "mean") and hasattr(estimate, "n"):
        mean, low, high = estimate.mean, estimate.low, estimate.high
    else:
        mean, low, high = estimate["accuracy"], estimate["low"], estimate["high"]
    for suffix, value in ((mean_suffix, mean), ("_low", low), ("_high", high)):
        glue(f"{name}{suffix}", float(value))


def glue_paired(prefix: str, row: Any) -> None:
    """Glue one method's line of a paired comparison, as
    :meth:`metalib.methods.finetuning.TechniqueStudy.compare` gives it: ``{prefix}_acc``, ``_low``,
    ``_high`` (its accuracy and interval), ``_diff`` (its mean paired difference from the
    reference) and ``_verdict`` (that difference in words, by
    :func:`metalib.methods.finetuning.verdict`)."""
    from IPython.display import Markdown

    from metalib.methods.finetuning import verdict

    for key, column in (("acc", "mean"), ("low", "low"), ("high", "high"), ("diff", "diff")):
        glue(f"{prefix}_{key}", float(row[column]))
    text = verdict(row["diff"], row["diff_low"], row["diff_high"], n=int(row["seeds"]))
    glue(f"{prefix}_verdict", Markdown(text))


class ChapterClock:
    """Wall-clock and CPU seconds since a chapter started, reported (never asserted) at its end.

    A run time depends on the machine and on what else runs on it, so no notebook or test asserts
    one: a slower or busier machine must still build the book. The budgets per chapter live in
    ``benchmarks/chapter_times.py`` (``make bench``), which runs each notebook on a fresh kernel.
    CPU seconds beside wall seconds tell a reader whether the cores were shared: a kernel that had
    its torch threads to itself uses close to ``wall × threads`` CPU seconds.

    Example:
        >>> clock = ChapterClock()
        >>> clock.wall >= 0 and clock.cpu >= 0
        True
        >>> clock.report().startswith("this chapter ran ")
        True
    """

    def __init__(self) -> None:
        self.wall_start = time.perf_counter()
        self.cpu_start = time.process_time()

    @property
    def wall(self) -> float:
        """Seconds of wall-clock time since the start."""
        return time.perf_counter() - self.wall_start

    @property
    def cpu(self) -> float:
        """CPU seconds this process (all its threads) used since the start."""
        return time.process_time() - self.cpu_start

    def report(self, threads: int | None = None) -> str:
        """What was measured: wall and CPU seconds, threads and the load average, in one line.

        Args:
            threads: the threads the chapter computes on; default ``torch.get_num_threads()``
                (at most the number of cores) when torch is imported, else 1.
        """
        import sys

        torch = sys.modules.get("torch")
        if threads is None:
            threads = min(torch.get_num_threads() if torch else 1, os.cpu_count() or 1)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        return (
            f"this chapter ran {self.wall:.0f} s wall, {self.cpu:.0f} s CPU on {threads} thread(s), "
            f"load average {load:.1f}"
        )

    def finish(self) -> None:
        """Print :meth:`report` and glue the run time as ``chapter_minutes`` (wall clock) and
        ``cpu_minutes``, for the chapter's closing sentence. The last call of a chapter."""
        print(self.report())  # the budgets per chapter: `make bench` (benchmarks/chapter_times.py)
        glue_all(chapter_minutes=self.wall / 60, cpu_minutes=self.cpu / 60)
