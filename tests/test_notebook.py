import pytest
import torch

from metalib import notebook
from metalib.evaluate import wilson_interval


def test_notebook_source_helpers():
    md = notebook.source_markdown(wilson_interval)
    assert md.startswith("```python\ndef wilson_interval(") and md.endswith("\n```")
    assert notebook.show_source(wilson_interval).data == md


def test_glue_turns_numpy_scalars_into_python_numbers(monkeypatch):
    import myst_nb
    import numpy as np

    from metalib import notebook

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: (value, display)}))
    notebook.glue("acc", np.float64(0.625))
    notebook.glue("n", np.int64(998), display=True)
    notebook.glue("label", "overlap")
    assert seen == {"acc": (0.625, False), "n": (998, True), "label": ("overlap", False)}
    assert type(seen["acc"][0]) is float and type(seen["n"][0]) is int


class _FakeClocks:
    """Stands in for time.perf_counter and time.process_time in metalib.notebook."""

    def __init__(self, monkeypatch):
        self.wall = self.cpu = 0.0
        monkeypatch.setattr(notebook.time, "perf_counter", lambda: self.wall)
        monkeypatch.setattr(notebook.time, "process_time", lambda: self.cpu)


def test_chapter_clock_asserts_the_bar_only_on_an_unshared_machine(monkeypatch):
    clocks = _FakeClocks(monkeypatch)
    clock = notebook.ChapterClock()
    clocks.wall, clocks.cpu = 80.0, 150.0  # two threads kept busy: an unshared machine
    assert (clock.wall, clock.cpu) == (80.0, 150.0)
    assert clock.check(90, threads=2, device="cpu").startswith(
        "within the run-time bar: 80 s wall, 150 s CPU"
    )
    clocks.wall, clocks.cpu = 120.0, 200.0
    with pytest.raises(AssertionError, match="over its time budget: 120 s wall"):
        clock.check(90, threads=2, device="cpu")
    clocks.cpu = 100.0  # 0.83 busy cores of 2: other jobs took the rest
    assert clock.check(90, threads=2, device="cpu").startswith(
        "run-time bar not checked, the machine was shared"
    )
    with pytest.raises(AssertionError):  # one thread fully busy is an unshared machine for it
        clock.check(90, threads=1, device="cpu")
    assert clock.check(90, threads=1, device="meta").startswith("run-time bar not checked on meta")


def test_chapter_clock_defaults_to_torch_threads_on_the_cpu(monkeypatch):
    clocks = _FakeClocks(monkeypatch)
    clock = notebook.ChapterClock()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    monkeypatch.setattr(notebook.os, "cpu_count", lambda: 2)
    clocks.wall, clocks.cpu = 100.0, 190.0
    assert "on 2 thread(s)" in clock.check(120, device="cpu")  # capped at the cores
