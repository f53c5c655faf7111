"""The stack is pinned in one place: pyproject.toml. environment.yml and constraints.txt must agree."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)$")


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        match = PIN.match(line.strip())
        if match:
            pins[match[1].lower().replace("_", "-")] = match[2]
    return pins


def _pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines += extra
    return _pins(lines)


def test_every_pyproject_requirement_is_an_exact_pin():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = project["dependencies"] + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    assert len(_pyproject_pins()) == len(requirements), "every requirement must be pinned with =="


def test_environment_yml_repeats_pyproject_pins():
    lines = [line.strip().removeprefix("- ") for line in (ROOT / "environment.yml").read_text().splitlines()]
    env = _pins(lines)
    assert env == _pyproject_pins()
    assert "python=3.11" in lines


def test_constraints_lock_agrees_with_pyproject():
    lock = _pins((ROOT / "constraints.txt").read_text().splitlines())
    for name, version in _pyproject_pins().items():
        assert lock.get(name) == version, f"{name}: pyproject {version}, constraints.txt {lock.get(name)}"


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    for name, pinned in _pyproject_pins().items():
        assert version(name) == pinned, name
    no_deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["metalib"]["no-deps"]
    for name, pinned in _pins(no_deps["build-ext"] + no_deps["data"]).items():
        assert version(name) == pinned, name


def test_learn2learn_imports_with_the_pinned_torch():
    import learn2learn
    import torch

    assert torch.__version__.split("+")[0] == _pyproject_pins()["torch"]
    assert hasattr(learn2learn.algorithms, "MAML")
