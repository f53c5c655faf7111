import numpy as np
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


def test_glue_estimate_glues_a_mean_and_its_interval(monkeypatch):
    import myst_nb

    from metalib.evaluate import Estimate

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    notebook.glue_estimate("kd", Estimate(0.8, 0.75, 0.85, 998))
    notebook.glue_estimate("row", {"accuracy": 0.6, "low": 0.5, "high": 0.7, "n_test": 998})
    assert seen == {"kd": 0.8, "kd_low": 0.75, "kd_high": 0.85, "row": 0.6, "row_low": 0.5, "row_high": 0.7}
    seen.clear()
    notebook.glue_estimate("teacher", Estimate(0.8, 0.75, 0.85, 998), mean_suffix="_acc")
    assert seen == {"teacher_acc": 0.8, "teacher_low": 0.75, "teacher_high": 0.85}


class _FakeClocks:
    """Stands in for time.perf_counter and time.process_time in metalib.notebook."""

    def __init__(self, monkeypatch):
        self.wall = self.cpu = 0.0
        monkeypatch.setattr(notebook.time, "perf_counter", lambda: self.wall)
        monkeypatch.setattr(notebook.time, "process_time", lambda: self.cpu)


def test_chapter_clock_reports_and_never_asserts(monkeypatch):
    clocks = _FakeClocks(monkeypatch)
    clock = notebook.ChapterClock()
    clocks.wall, clocks.cpu = 80.0, 150.0
    assert (clock.wall, clock.cpu) == (80.0, 150.0)
    assert clock.report(threads=2).startswith(
        "this chapter ran 80 s wall, 150 s CPU on 2 thread(s), load average "
    )
    clocks.wall, clocks.cpu = 5000.0, 20.0  # far over any budget, on a busy machine: still only a report
    assert clock.report(threads=1).startswith("this chapter ran 5000 s wall, 20 s CPU on 1 thread(s)")
    assert not hasattr(clock, "check")


def test_chapter_clock_finish_prints_the_report_and_glues_minutes(monkeypatch, capsys):
    import myst_nb

    clocks = _FakeClocks(monkeypatch)
    clock = notebook.ChapterClock()
    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    clocks.wall, clocks.cpu = 90.0, 150.0
    clock.finish()
    assert seen == {"chapter_minutes": 1.5, "cpu_minutes": 2.5}
    assert capsys.readouterr().out.startswith("this chapter ran 90 s wall, 150 s CPU")


def test_chapter_clock_defaults_to_torch_threads_capped_at_the_cores(monkeypatch):
    _FakeClocks(monkeypatch)
    clock = notebook.ChapterClock()
    monkeypatch.setattr(torch, "get_num_threads", lambda: 64)
    monkeypatch.setattr(notebook.os, "cpu_count", lambda: 2)
    assert "on 2 thread(s)" in clock.report()


def test_glue_all_glues_every_value_under_its_prefix_without_display(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: (value, display)}))
    notebook.glue_all({"a": np.float64(0.5)}, prefix="x_", n=3)
    assert seen == {"x_a": (0.5, False), "x_n": (3, False)} and type(seen["x_a"][0]) is float
    notebook.glue_all(b=1)
    assert seen["b"] == (1, False)


def test_glue_paired_glues_a_line_and_its_verdict(monkeypatch):
    import myst_nb

    seen = {}
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display: seen.update({name: value}))
    row = {
        "mean": 0.7,
        "low": 0.65,
        "high": 0.75,
        "diff": 0.02,
        "diff_low": 0.01,
        "diff_high": 0.03,
        "seeds": 3,
    }
    notebook.glue_paired("fgm", row)
    assert {k: seen[k] for k in ("fgm_acc", "fgm_low", "fgm_high", "fgm_diff")} == {
        "fgm_acc": 0.7,
        "fgm_low": 0.65,
        "fgm_high": 0.75,
        "fgm_diff": 0.02,
    }
    assert seen["fgm_verdict"].data.startswith("ahead of the plain fine-tune by 0.020")
