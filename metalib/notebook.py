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


class ChapterClock:
    """Wall-clock and CPU seconds since a chapter started, and the check of its run-time bar.

    A chapter's bar is for a machine it has to itself. There the kernel keeps its torch threads busy
    (CPU seconds close to wall seconds × threads, less serial parts); when other jobs share the cores
    it gets far less CPU per wall second, and the wall time then measures them, not the chapter. So
    :meth:`check` asserts the bar only when the kernel got at least ``min_share`` of its threads.

    Example:
        >>> clock = ChapterClock()
        >>> clock.wall >= 0 and clock.cpu >= 0
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

    def check(
        self, budget: float, threads: int | None = None, min_share: float = 0.6, device: str | None = None
    ) -> str:
        """Assert ``wall <= budget`` seconds unless the machine was shared; return what was measured.

        Args:
            budget: the bar in wall-clock seconds.
            threads: the threads the chapter computes on; default ``torch.get_num_threads()``, at
                most the number of cores.
            min_share: below ``min_share × threads`` busy cores on average, the machine counts as shared
                and the bar is reported, not asserted.
            device: where the chapter computed (default :func:`metalib.runtime.get_device`). The bars
                are for CPUs; on another device the time is reported, not asserted.

        Raises:
            AssertionError: the chapter ran on an unshared CPU machine and took longer than ``budget``.
        """
        import torch

        from metalib import runtime

        if threads is None:
            threads = min(torch.get_num_threads(), os.cpu_count() or 1)
        device_type = runtime.get_device(device).type
        wall, cpu = self.wall, self.cpu
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        timing = f"{wall:.0f} s wall, {cpu:.0f} s CPU on {threads} thread(s), load average {load:.1f}"
        timing += f"; bar {budget:.0f} s"
        if device_type != "cpu":
            return f"run-time bar not checked on {device_type} (the bars are for CPUs): {timing}"
        if cpu / max(wall, 1e-9) < min_share * threads:
            return f"run-time bar not checked, the machine was shared: {timing}"
        assert wall <= budget, f"the chapter is over its time budget: {timing}"
        return f"within the run-time bar: {timing}"
