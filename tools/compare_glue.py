"""Cold against warm: every number a chapter glues is the same from an empty metalib cache and a full one.

``make test`` runs the notebooks twice in the quick profile: first under nbmake from an empty
``METALIB_CACHE`` (every cached model is built on the way), then in the strict book build with that
cache now full (every cached model is loaded). This script reads the values the chapters glued into
their prose (``myst_nb.glue``) from both sets of executed notebooks and fails on any difference,
except for measured times and speeds, which no two runs share. A difference means that a chapter's
numbers depend on the state of the cache: a cached build that disturbs the notebook's random
state, a cache key that misses an input, or an artifact built by other code.

Usage: ``python tools/compare_glue.py COLD_DIR WARM_DIR`` (folders of executed ``.ipynb`` files).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

TIMING = re.compile(
    r"second|minute|speed|latency|_ms$|_ms_|throughput|per_s|cost|_step$|floor|"
    r"iterations|chapter_|merge_ratio|speedup"
)
"""Names of glued values that are measured times (or ratios of them): left out of the comparison."""


def glued_values(notebook: Path) -> dict[str, str]:
    """``{name: text}`` of every value glued in an executed notebook (its markdown or plain-text form).

    The book build moves glued values out of the notebook into ``<name>.glue.json`` beside it; an
    executed notebook saved by nbmake keeps them as outputs marked ``scrapbook``. Both are read.
    """
    glue_file = notebook.with_suffix(".glue.json")
    if glue_file.exists():
        outputs = list(json.loads(glue_file.read_text()).values())
    else:
        cells = json.loads(notebook.read_text())["cells"]
        outputs = [output for cell in cells for output in cell.get("outputs", [])]
    values = {}
    for output in outputs:
        scrapbook = output.get("metadata", {}).get("scrapbook")
        if scrapbook is None:
            continue
        data = {key.removeprefix(scrapbook.get("mime_prefix", "")): v for key, v in output["data"].items()}
        for mime in ("text/markdown", "text/plain"):
            if mime in data:
                text = data[mime]
                values[scrapbook["name"]] = "".join(text) if isinstance(text, list) else str(text)
                break
    return values


def compare(cold_dir: Path, warm_dir: Path) -> list[str]:
    """Differences between the two runs, one line each; empty when every compared value agrees."""
    problems = []
    cold_notebooks = sorted(cold_dir.glob("*.ipynb"))
    if not cold_notebooks:
        return [f"no executed notebooks in {cold_dir}"]
    for cold_path in cold_notebooks:
        warm_path = warm_dir / cold_path.name
        if not warm_path.exists():
            problems.append(f"{cold_path.name}: not executed in the warm run ({warm_dir})")
            continue
        cold, warm = glued_values(cold_path), glued_values(warm_path)
        if not cold:
            problems.append(f"{cold_path.name}: the cold run glued nothing (was it executed?)")
        compared = 0
        for name in sorted(set(cold) | set(warm)):
            if TIMING.search(name):
                continue
            compared += 1
            if cold.get(name) != warm.get(name):
                problems.append(f"{cold_path.stem}: {name} cold {cold.get(name)!r}, warm {warm.get(name)!r}")
        print(f"{cold_path.stem}: {compared} glued values compared, {len(cold) - compared} timings left out")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    problems = compare(Path(args[0]), Path(args[1]))
    if problems:
        print("cold and warm runs differ:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    print("cold and warm runs agree on every compared glued value")
    return 0


if __name__ == "__main__":
    sys.exit(main())
