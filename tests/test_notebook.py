from metalib import notebook
from metalib.evaluate import wilson_interval


def test_notebook_source_helpers():
    md = notebook.source_markdown(wilson_interval)
    assert md.startswith("```python\ndef wilson_interval(") and md.endswith("\n```")
    assert notebook.show_source(wilson_interval).data == md
