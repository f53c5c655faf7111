"""tools/compare_glue.py: glued values of a cold-cache and a warm-cache run must agree (timings aside)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
import compare_glue  # noqa: E402

PREFIX = "application/papermill.record/"


def _output(name, text, mime="text/plain"):
    return {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": name, "mime_prefix": PREFIX}},
        "data": {PREFIX + mime: text},
    }


def _nbmake_notebook(folder: Path, name: str, outputs: list) -> None:
    """An executed notebook as nbmake --overwrite saves it: glued values stay in the outputs."""
    cell = {"cell_type": "code", "metadata": {}, "source": [], "outputs": outputs, "execution_count": 1}
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}}))


def _book_notebook(folder: Path, name: str, outputs: list) -> None:
    """An executed notebook as the book build leaves it: glued values moved to <name>.glue.json,
    their mime types without the prefix (as myst-nb writes them)."""
    (folder / f"{name}.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}))
    glue = {}
    for output in outputs:
        data = {key.removeprefix(PREFIX): value for key, value in output["data"].items()}
        glue[output["metadata"]["scrapbook"]["name"]] = {**output, "data": data}
    (folder / f"{name}.glue.json").write_text(json.dumps(glue))


def test_same_values_agree_and_timings_are_left_out(tmp_path, capsys):
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    cold.mkdir(), warm.mkdir()
    _nbmake_notebook(
        cold,
        "01",
        [_output("acc", "0.75"), _output("fit_seconds", "12.5"), _output("v", "ok", "text/markdown")],
    )
    _book_notebook(
        warm,
        "01",
        [_output("acc", "0.75"), _output("fit_seconds", "99.0"), _output("v", "ok", "text/markdown")],
    )
    assert compare_glue.glued_values(cold / "01.ipynb") == {"acc": "0.75", "fit_seconds": "12.5", "v": "ok"}
    assert compare_glue.compare(cold, warm) == []
    assert "2 glued values compared, 1 timings left out" in capsys.readouterr().out
    assert compare_glue.main([str(cold), str(warm)]) == 0


def test_a_changed_value_or_a_missing_notebook_fails(tmp_path):
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    cold.mkdir(), warm.mkdir()
    _nbmake_notebook(cold, "01", [_output("acc", "0.75")])
    _nbmake_notebook(cold, "02", [_output("acc", "0.5")])
    _book_notebook(warm, "01", [_output("acc", "0.74")])
    problems = compare_glue.compare(cold, warm)
    assert problems == [
        "01: acc cold '0.75', warm '0.74'",
        f"02.ipynb: not executed in the warm run ({warm})",
    ]
    assert compare_glue.main([str(cold), str(warm)]) == 1
    assert compare_glue.compare(tmp_path / "empty", warm) == [
        f"no executed notebooks in {tmp_path / 'empty'}"
    ]
    assert compare_glue.main([]) == 2
