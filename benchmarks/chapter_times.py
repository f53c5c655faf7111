"""How long does each chapter take? Each notebook on a fresh kernel: wall and CPU seconds beside its budget.

The budgets are for a reader's machine that the chapter has to itself: 2 CPU cores for ``quick``
and ``full``, one modern GPU for ``gpu``. No notebook or test asserts a run time (a slower or
busier machine must still build the book); this script is where the budgets are checked. It exits
with status 1 when a chapter failed or went over its budget, or the whole book over its own.

    .venv/bin/python benchmarks/chapter_times.py [--profile quick|full|gpu] [--only NAME ...] [--save DIR]

The profile defaults to ``METALIB_PROFILE``, else ``quick`` (about ten minutes for the whole book;
``full`` about 35 minutes for chapters 0–6 from an empty cache, plus 15–18 for chapter 7).
Chapters run one after the other, never two at once, with the metalib cache as it is: the first
run after a change also pays for the cached models it builds (say which you measured). With more
than one chapter, a last line gives the total (against ``BOOK_BUDGETS`` when every chapter ran).
CPU seconds include every thread of the kernel; compare them with ``wall × cores`` to see
whether the machine was shared.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
BUDGETS = {  # seconds of wall-clock time per chapter, per profile
    "quick": dict.fromkeys(CHAPTERS, 90),
    "full": {
        "00_quickstart": 120,
        "01_pretraining": 300,
        "02_transfer": 720,
        "03_zero_shot": 360,
        "04_peft": 1140,
        "05_distillation": 480,
        "06_maml": 480,
        "07_comparison": 900,
    },
    "gpu": dict.fromkeys(CHAPTERS, 300),
}
# every chapter together (other profiles: the chapters' sum)
BOOK_BUDGETS = {"quick": 600, "full": 50 * 60}
EXECUTE = """
import sys, nbformat, nbclient
path, timeout, cwd, save = sys.argv[1:5]
notebook = nbformat.read(path, as_version=4)
client = nbclient.NotebookClient(notebook, timeout=int(timeout), kernel_name="python3",
                                 resources={"metadata": {"path": cwd}})
try:
    client.execute()
finally:
    if save:
        nbformat.write(notebook, save)
"""


def run_notebook(
    path: Path, profile: str, timeout: int, save: Path | None = None
) -> tuple[float, float, str]:
    """Execute ``path`` on a fresh kernel in ``profile``.

    Returns (wall seconds, CPU seconds of the kernel and its client, the error's last line or "").
    With ``save``, the executed notebook (outputs and glued values) is written there.
    """
    env = {**os.environ, "METALIB_PROFILE": profile}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", EXECUTE, str(path), str(timeout), str(path.parent), str(save or "")],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel is reaped by its client, so it counts
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    error = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or ["failed"])[-1][:200]
    return wall, cpu, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--profile", default=os.environ.get("METALIB_PROFILE") or "quick", choices=sorted(BUDGETS)
    )
    parser.add_argument("--only", nargs="*", help="notebook names without .ipynb (default: all)")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds per cell")
    parser.add_argument("--save", type=Path, help="folder for the executed notebooks (default: not kept)")
    args = parser.parse_args(argv)
    budgets = BUDGETS[args.profile]
    names = args.only or sorted(budgets)
    unknown = [name for name in names if name not in budgets]
    if unknown:
        parser.error(f"no budget for {', '.join(unknown)}; known: {', '.join(sorted(budgets))}")
    print(
        f"profile {args.profile}, {os.cpu_count()} cores, cache {os.environ.get('METALIB_CACHE', 'default')}"
    )
    print(f"{'chapter':<18}{'wall s':>8}{'CPU s':>8}{'budget s':>10}  verdict")
    bad, total_wall, total_cpu = 0, 0.0, 0.0
    for name in names:
        save = None
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            save = args.save / f"{name}.ipynb"
        wall, cpu, error = run_notebook(NOTEBOOKS / f"{name}.ipynb", args.profile, args.timeout, save)
        budget = budgets[name]
        verdict = f"FAILED: {error}" if error else "over budget" if wall > budget else "within budget"
        bad += bool(error) or wall > budget
        print(f"{name:<18}{wall:>8.0f}{cpu:>8.0f}{budget:>10.0f}  {verdict}", flush=True)
        total_wall, total_cpu = total_wall + wall, total_cpu + cpu
    if len(names) > 1:  # the book's own budget holds for every chapter together
        budget = sum(budgets[name] for name in names)
        if set(names) == set(budgets):
            budget = BOOK_BUDGETS.get(args.profile, budget)
        verdict = "over budget" if total_wall > budget else "within budget"
        bad += total_wall > budget
        print(f"{'total':<18}{total_wall:>8.0f}{total_cpu:>8.0f}{budget:>10.0f}  {verdict}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
