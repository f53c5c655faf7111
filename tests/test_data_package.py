"""Tests of the metalib.data package: light import, lazy re-exports."""

from __future__ import annotations

import subprocess
import sys

import pytest

import metalib.data


def test_import_is_light() -> None:
    code = "import sys, metalib.data; print(sorted({'torch', 'numpy', 'scattertext'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reexports_resolve() -> None:
    assert sorted(metalib.data.__all__) == sorted(metalib.data._EXPORTS)
    for name in metalib.data.__all__:
        assert getattr(metalib.data, name) is not None
    from metalib.data import EpisodeSampler, SineTasks, rotten_tomatoes, wordnet_supersenses

    assert EpisodeSampler.__module__ == "metalib.data.episodes"
    assert SineTasks.__module__ == "metalib.data.sine"
    assert callable(rotten_tomatoes) and callable(wordnet_supersenses)
    assert set(metalib.data.__all__) <= set(dir(metalib.data))


def test_unknown_name() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        metalib.data.nope  # noqa: B018


def test_sine_is_the_module_whichever_import_comes_first() -> None:
    for first in ("from metalib import data; data.sine", "import metalib.data.sine"):
        code = f"{first}; from metalib import data; print(callable(data.sine.sine), data.sine.__name__)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["True", "metalib.data.sine"], first
