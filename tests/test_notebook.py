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
