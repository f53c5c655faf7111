"""The chapters as committed: valid nbformat, unique cell ids, no outputs.

A duplicated cell id is silently renumbered by nbformat when a notebook runs under nbmake, but
it makes the strict (``-W``) book build warn and fail; this test names the cell instead.
"""

import json
from collections import Counter
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_is_committed_clean(path):
    cells = json.loads(path.read_text())["cells"]
    repeated = [cell_id for cell_id, count in Counter(c.get("id") for c in cells).items() if count > 1]
    assert not repeated, f"{path.name}: cell ids used more than once: {repeated}; give each cell its own id"
    with_outputs = [i for i, c in enumerate(cells) if c.get("outputs") or c.get("execution_count")]
    assert not with_outputs, f"{path.name}: cells {with_outputs} carry outputs; clear them before committing"


def test_there_are_chapters_to_check():
    assert len(NOTEBOOKS) >= 7
