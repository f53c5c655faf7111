"""Training checkpoints: safetensors for tensors, JSON for the rest, written atomically.

A checkpoint is a directory::

    model.safetensors       the model's weights (tied weights stored once)
    optimizer.safetensors   the optimizer's per-parameter tensors (AdamW moments, step counts)
    rng.safetensors         torch's CPU random state (and the current CUDA device's, if in use)
    <name>.safetensors      any extra tensor dicts of the caller (e.g. the best weights so far)
    state.json              optimizer hyper-parameters, Python and NumPy random states, and the
                            caller's JSON-able state (loop position, scheduler, history, config)

No pickles: a checkpoint from an untrusted source cannot run code when loaded. The directory
is replaced under a file lock with :func:`metalib.runtime.atomic_path`, so a crash while saving
leaves the previous checkpoint. Resuming is exact for one process; under ``torchrun`` every
process restores the random state of process 0.
:class:`metalib.train.Trainer` saves and resumes with these functions.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from metalib import runtime


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` returns besides restoring the model and optimizer in place."""

    state: dict[str, Any]
    """the caller's JSON state, as saved"""
    extra: dict[str, dict[str, torch.Tensor]]
    """the extra tensor dicts, by name"""
    rng: dict[str, Any]
    """the random states at saving time; apply with :func:`set_rng_state` when the caller is ready"""


def rng_state() -> dict[str, Any]:
    """The current states of torch (CPU and every CUDA device), Python's ``random`` and NumPy."""
    torch_states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():  # never create a CUDA context here
        torch_states["cuda"] = torch.cuda.get_rng_state()  # this process's current device
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch_states,
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
    }


def set_rng_state(rng: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (also after a JSON round trip)."""
    torch.set_rng_state(rng["torch"]["cpu"])
    if "cuda" in rng["torch"] and torch.cuda.is_available():
        torch.cuda.set_rng_state(rng["torch"]["cuda"])
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = rng["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    state: dict[str, Any],
    extra: dict[str, dict[str, torch.Tensor]] | None = None,
) -> None:
    """Write a checkpoint directory at ``path`` (replacing any previous one atomically).

    Args:
        state: JSON-able values (paths, tuples and NumPy scalars are converted).
        extra: named dicts of tensors, each saved as ``<name>.safetensors``; tensors must not
            share storage (pass copies).
    """
    path = Path(path)
    rng = rng_state()
    tensors, scalars = _flatten_optimizer(optimizer.state_dict())
    meta = {
        "state": state,
        "python_rng": rng["python"],
        "numpy_rng": rng["numpy"],
        "optimizer": {"param_groups": optimizer.state_dict()["param_groups"], "scalars": scalars},
    }
    with runtime.file_lock(path), runtime.atomic_path(path) as tmp:
        tmp.mkdir()
        save_model(model, str(tmp / "model.safetensors"))
        save_file(tensors, str(tmp / "optimizer.safetensors"))
        save_file(rng["torch"], str(tmp / "rng.safetensors"))
        for name, named_tensors in (extra or {}).items():
            save_file(named_tensors, str(tmp / f"{name}.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=_json_default))


def load_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    device: torch.device | str = "cpu",
) -> Checkpoint:
    """Load the weights into ``model`` and the state into ``optimizer``; return the rest.

    Raises:
        FileNotFoundError: ``path`` holds no checkpoint.
    """
    path = Path(path)
    with runtime.file_lock(path):
        meta = _read_meta(path)
        load_model(model, str(path / "model.safetensors"), device=str(device))
        # on the CPU: load_state_dict moves moments to their parameters' devices and keeps
        # AdamW's step counts on the CPU, where torch expects them
        tensors = load_file(str(path / "optimizer.safetensors"))
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
        torch_rng = load_file(str(path / "rng.safetensors"))
        reserved = {"model", "optimizer", "rng"}
        extra = {
            f.stem: load_file(str(f)) for f in sorted(path.glob("*.safetensors")) if f.stem not in reserved
        }
    rng = {"torch": torch_rng, "python": meta["python_rng"], "numpy": meta["numpy_rng"]}
    return Checkpoint(meta["state"], extra, rng)


def read_state(path: str | Path) -> dict[str, Any]:
    """The caller's JSON state of the checkpoint at ``path``, without loading any tensor
    (e.g. to check that it was made with the same configuration before loading it).

    Raises:
        FileNotFoundError: ``path`` holds no checkpoint.
    """
    with runtime.file_lock(path):
        return _read_meta(Path(path))["state"]


def _read_meta(path: Path) -> dict[str, Any]:
    if not has_checkpoint(path):
        raise FileNotFoundError(f"no checkpoint at {path} (state.json missing)")
    return json.loads((path / "state.json").read_text())


def has_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a complete checkpoint (after undoing an interrupted save)."""
    runtime.recover_interrupted(path)
    return (Path(path) / "state.json").exists()


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split the per-parameter optimizer state into tensors (``"<param id>.<name>"``) and scalars."""
    tensors, scalars = {}, {}
    for param_id, param_state in state_dict["state"].items():
        for name, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"{param_id}.{name}"] = value.contiguous()
            else:
                scalars[f"{param_id}.{name}"] = value
    return tensors, scalars


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        param_id, name = key.split(".", 1)
        state.setdefault(int(param_id), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, set | tuple):
        return list(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint's JSON")
