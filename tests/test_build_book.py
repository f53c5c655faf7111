"""tools/build_book.py: a chapter that failed to execute is executed again, never published as success."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "build_book.py"
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")


def _tiny_book(folder: Path) -> None:
    """A one-page book whose only cell fails until a file named ``ok`` exists beside it."""
    (folder / "_config.yml").write_text(
        "title: planted failure\nexecute:\n  execute_notebooks: cache\n  allow_errors: false\n"
        "sphinx:\n  config:\n    nb_kernel_rgx_aliases: {'.*': python3}\n"
    )
    (folder / "_toc.yml").write_text("format: jb-article\nroot: page\n")
    cell = {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": ["import pathlib\n", "assert pathlib.Path('ok').exists(), 'planted'\n", "print('ran')"],
    }
    notebook = {
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": ["# Page"]}, cell],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (folder / "page.ipynb").write_text(json.dumps(notebook))


def _build(folder: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, SCRIPT, "--root", folder, "--profile", "quick", "--jupyter-book", JUPYTER_BOOK]
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600)


@pytest.mark.skipif(not JUPYTER_BOOK.exists(), reason="needs jupyter-book in this environment")
def test_a_failed_page_fails_every_build_until_it_executes(tmp_path):
    _tiny_book(tmp_path)
    first = _build(tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "NOT built" in first.stderr and "page.err.log" in first.stderr
    second = _build(tmp_path)  # nothing changed: plain Sphinx would re-execute nothing and say "succeeded"
    assert second.returncode == 1, second.stdout + second.stderr
    assert "executing again the pages that failed last time: page.ipynb" in second.stdout
    (tmp_path / "ok").write_text("")
    third = _build(tmp_path)  # the notebook's code is unchanged, yet it is executed (and now passes)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "book built (quick profile)" in third.stdout
    assert not list((tmp_path / "_build" / "html").rglob("*.err.log"))
    assert "ran" in (tmp_path / "_build" / "html" / "page.html").read_text()


def test_profile_change_clears_the_execution_cache(tmp_path):
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import build_book
    finally:
        sys.path.pop(0)
    cache = tmp_path / "_build" / ".jupyter_cache"
    cache.mkdir(parents=True)
    build_book.clear_cache_on_profile_change(tmp_path / "_build", "quick")
    assert cache.exists()
    build_book.clear_cache_on_profile_change(tmp_path / "_build", "full")
    assert not cache.exists() and (tmp_path / "_build" / ".profile").read_text() == "full\n"
