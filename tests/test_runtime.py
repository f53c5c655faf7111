import multiprocessing
import os
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from metalib import runtime


def test_device_choice_and_override(monkeypatch):
    monkeypatch.delenv("METALIB_DEVICE", raising=False)
    expected = (
        "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert runtime.get_device().type == expected
    monkeypatch.setenv("METALIB_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")
    assert runtime.get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised without CUDA")
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        runtime.get_device("cuda")


def test_seed_everything_reproduces_all_generators():
    draws = []
    for _ in range(2):
        runtime.seed_everything(3)
        draws.append((random.random(), np.random.rand(), torch.rand(1).item()))
    assert draws[0] == draws[1]
    runtime.seed_everything(4)
    assert torch.rand(1).item() != draws[0][2]
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_autocast_is_a_no_op_on_cpu():
    assert runtime.autocast_dtype("cpu") is None
    with runtime.autocast("cpu"):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_autocast_uses_bf16_on_cuda():
    with runtime.autocast("cuda"):
        y = torch.ones(4, 4, device="cuda") @ torch.ones(4, 4, device="cuda")
    assert y.dtype == torch.bfloat16


def test_profile(monkeypatch):
    monkeypatch.delenv("METALIB_PROFILE", raising=False)
    assert runtime.get_profile() == ("gpu" if torch.cuda.is_available() else "full")
    monkeypatch.setenv("METALIB_PROFILE", " Quick ")
    assert runtime.get_profile() == "quick"
    monkeypatch.setenv("METALIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="quick, full, gpu"):
        runtime.get_profile()


def test_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("METALIB_CACHE", str(tmp_path / "c"))
    assert runtime.cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    monkeypatch.delenv("METALIB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert runtime.cache_dir() == tmp_path / "xdg" / "metalib"


def test_cache_key_is_stable_and_sensitive():
    key = runtime.cache_key(model="tiny", config={"a": 1, "b": 2}, seed=0)
    assert key == runtime.cache_key(seed=0, config={"b": 2, "a": 1}, model="tiny")
    assert key != runtime.cache_key(model="tiny", config={"a": 1, "b": 2}, seed=1)
    assert len(key) == 16 and int(key, 16) >= 0


def test_atomic_path_for_files_and_directories(tmp_path):
    target = tmp_path / "out.txt"
    with runtime.atomic_path(target) as tmp:
        tmp.write_text("first")
        assert not target.exists()  # invisible until the block ends
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), runtime.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "first"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary left behind

    folder = tmp_path / "model"
    for version in ("1", "2"):
        with runtime.atomic_path(folder) as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(version)
    assert (folder / "weights").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "out.txt"]


def _append_under_lock(path: str, tag: str, barrier) -> None:
    barrier.wait(60)  # both processes ask for the lock at the same moment
    with runtime.file_lock(path):
        for i in range(5):
            with open(path, "a") as f:
                f.write(f"{tag}{i}\n")
            time.sleep(0.05)  # the other process is waiting meanwhile


def test_file_lock_serialises_processes(tmp_path):
    path = str(tmp_path / "log.txt")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_append_under_lock, args=(path, tag, barrier)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = Path(path).read_text().split()
    tags = [line[0] for line in lines]
    assert len(lines) == 10 and tags in (["a"] * 5 + ["b"] * 5, ["b"] * 5 + ["a"] * 5)  # never interleaved


def test_file_lock_times_out(tmp_path):
    from filelock import FileLock

    with FileLock(str(tmp_path / "x.lock")), pytest.raises(TimeoutError, match="could not lock"):  # noqa: SIM117
        with runtime.file_lock(tmp_path / "x", timeout=0.1):
            pass


def test_describe(monkeypatch):
    monkeypatch.setenv("METALIB_PROFILE", "quick")
    info = runtime.describe()
    assert info["profile"] == "quick" and info["torch"] == torch.__version__
    assert set(info) >= {"device", "profile", "torch", "threads", "cache", "autocast"}


def test_interrupted_directory_replacement_keeps_the_old_copy(tmp_path, monkeypatch):
    folder = tmp_path / "ckpt"
    with runtime.atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("old")

    real_replace, calls = os.replace, []

    def dying_replace(src, dst):  # the process "dies" right after moving the old copy aside
        calls.append((src, dst))
        if len(calls) == 2:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", dying_replace)
    with pytest.raises(KeyboardInterrupt), runtime.atomic_path(folder) as tmp:
        tmp.mkdir()
        (tmp / "weights").write_text("new")
    monkeypatch.undo()
    assert not folder.exists()  # the crash hit between the two renames
    runtime.recover_interrupted(folder)
    assert (folder / "weights").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]

    # a crash after the new copy is in place: recovery only removes the old one
    (tmp_path / ".ckpt.old").mkdir()
    runtime.recover_interrupted(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_build_once_builds_a_directory_once_and_never_leaves_a_half_one(tmp_path, capsys):
    calls = []

    def build(tmp):
        calls.append(tmp)
        (tmp / "weights.bin").write_bytes(b"1234")
        (tmp / "done.json").write_text("{}")

    entry = runtime.build_once(tmp_path / "model-abc", "done.json", build, "making a model")
    assert entry == tmp_path / "model-abc" and (entry / "weights.bin").read_bytes() == b"1234"
    assert "metalib: making a model into" in capsys.readouterr().err
    assert runtime.build_once(entry, "done.json", build, "making a model") == entry and len(calls) == 1

    def broken(tmp):
        (tmp / "weights.bin").write_bytes(b"half")
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        runtime.build_once(tmp_path / "other", "done.json", broken, "failing")
    assert not (tmp_path / "other").exists() and not list(tmp_path.glob(".other*"))


def test_build_once_leaves_the_callers_random_state_alone(tmp_path):
    """A cold build (which reseeds and draws) and a warm hit leave the caller's generators alike."""

    def build(tmp):
        runtime.seed_everything(123)
        random.random(), np.random.rand(), torch.rand(3)
        torch.set_num_threads(1)
        (tmp / "done.json").write_text("{}")

    def draws_after_build():
        runtime.seed_everything(7)
        threads = torch.get_num_threads()
        runtime.build_once(tmp_path / "entry", "done.json", build, "building")
        assert torch.get_num_threads() == threads
        return random.random(), np.random.rand(), torch.rand(1).item()

    cold = draws_after_build()
    assert (tmp_path / "entry" / "done.json").exists()
    warm = draws_after_build()
    assert cold == warm


def test_preserved_random_state_restores_after_an_error():
    torch.manual_seed(5)
    expected = torch.random.get_rng_state()
    with pytest.raises(RuntimeError, match="boom"), runtime.preserved_random_state():
        torch.rand(10)
        raise RuntimeError("boom")
    assert torch.equal(torch.random.get_rng_state(), expected)


def test_code_fingerprint_follows_imports_and_changes_with_the_source(tmp_path, monkeypatch):
    key = runtime.code_fingerprint("metalib.methods.pretraining")
    assert len(key) == 16 and key == runtime.code_fingerprint("metalib.methods.pretraining")
    assert key != runtime.code_fingerprint("metalib.runtime")
    # the transitive closure: pretraining imports metalib.train, so a change to train.py changes the key
    root = tmp_path / "metalib"
    import shutil

    shutil.copytree(Path(runtime.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runtime, "__file__", str(root / "runtime.py"))
    assert runtime.code_fingerprint("metalib.methods.pretraining") == key
    with (root / "train.py").open("a") as f:
        f.write("\n# a change\n")
    assert runtime.code_fingerprint("metalib.methods.pretraining") != key
    assert runtime.code_fingerprint("metalib.data.sine") == runtime.code_fingerprint("metalib.data.sine")
    with pytest.raises(ValueError, match="not a metalib module"):
        runtime.code_fingerprint("numpy")
    with pytest.raises(ValueError, match="no source file"):
        runtime.code_fingerprint("metalib.nowhere")
