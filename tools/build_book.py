"""Build the book with Jupyter Book, and never report success while a chapter failed to execute.

``make book`` and ``make book-check`` run this. Around ``jupyter-book build`` it does three things:

1. **Retry what failed.** myst-nb writes ``<html>/reports/<page>.err.log`` for every notebook whose
   execution failed, and its execution cache keeps no result for it; but Sphinx re-reads only the
   pages whose source changed, so a second build would re-execute nothing and keep the pages that
   show tracebacks. Each page with a report is marked changed (its source file's time stamp is
   renewed) and the report removed, so the next build executes it again.
2. **Never mix profiles.** The execution cache is keyed on code only; when ``METALIB_PROFILE``
   differs from the last build's, the cache is cleared.
3. **Refuse success** while any page holds an execution error: the exit code is 1 and the failed
   pages are listed, whatever Sphinx printed.

Usage: ``python tools/build_book.py [--root .] [--path-output DIR] [--profile NAME] [-- jupyter-book flags]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_SUFFIXES = (".ipynb", ".md")


def failed_pages(html: Path) -> list[Path]:
    """The execution-error reports myst-nb left under ``html/reports`` (one per failed page)."""
    reports = html / "reports"
    return sorted(reports.rglob("*.err.log")) if reports.is_dir() else []


def page_source(root: Path, html: Path, report: Path) -> Path | None:
    """The source file of the page that ``report`` belongs to, if it still exists."""
    docname = report.relative_to(html / "reports").as_posix().removesuffix(".err.log")
    for suffix in SOURCE_SUFFIXES:
        source = root / (docname + suffix)
        if source.exists():
            return source
    return None


def mark_failed_pages_for_rerun(root: Path, html: Path) -> list[str]:
    """Renew the time stamp of every page that failed last time and drop its report."""
    pages = []
    for report in failed_pages(html):
        source = page_source(root, html, report)
        if source is not None:
            os.utime(source)  # Sphinx now sees it as changed; the execution cache has no result for it
            pages.append(source.relative_to(root).as_posix())
        report.unlink()
    return pages


def clear_cache_on_profile_change(build: Path, profile: str) -> None:
    """Delete the execution cache when the last build used another profile; record this one."""
    stamp = build / ".profile"
    if stamp.exists() and stamp.read_text().strip() != profile:
        print(f"profile is now {profile}: clearing the notebook execution cache", flush=True)
        shutil.rmtree(build / ".jupyter_cache", ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    stamp.write_text(profile + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the folder holding _config.yml")
    parser.add_argument(
        "--path-output", type=Path, default=None, help="build into DIR/_build (default: root)"
    )
    parser.add_argument(
        "--profile", default=None, help="the run profile (default: metalib's, from the environment)"
    )
    parser.add_argument("--jupyter-book", default=str(Path(sys.executable).with_name("jupyter-book")))
    parser.add_argument("flags", nargs="*", help="passed to jupyter-book build (after --)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    out = (args.path_output or root).resolve()
    build, html = out / "_build", out / "_build" / "html"
    profile = args.profile
    if profile is None:
        from metalib.runtime import get_profile

        profile = get_profile()
    clear_cache_on_profile_change(build, profile)
    rerun = mark_failed_pages_for_rerun(root, html)
    if rerun:
        print(f"executing again the pages that failed last time: {', '.join(rerun)}", flush=True)
    command = [
        args.jupyter_book,
        "build",
        str(root),
        *(["--path-output", str(out)] if args.path_output else []),
    ]
    code = subprocess.run([*command, *args.flags], env={**os.environ, "METALIB_PROFILE": profile}).returncode
    failed = failed_pages(html)
    if failed:
        print(
            "\nthe book is NOT built: these pages failed to execute (tracebacks in the reports):",
            file=sys.stderr,
        )
        for report in failed:
            print(f"  {report}", file=sys.stderr)
        print("run the same command again to execute them again", file=sys.stderr)
        return 1
    if code != 0:
        return code
    print(f"book built ({profile} profile): open file://{html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
