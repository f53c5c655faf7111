"""Where and how code runs: device, seeds, mixed precision, run profile, cache directory.

Every chapter starts from these few functions, so that one environment variable changes the
behaviour of the whole book:

- ``METALIB_DEVICE``: ``cpu``, ``cuda``, ``cuda:1`` or ``mps`` (default: cuda > mps > cpu).
- ``METALIB_PROFILE``: ``quick`` (CI, about 90 s a chapter), ``full`` (the book's claims, on a CPU
  laptop) or ``gpu`` (longer schedules on one GPU). Default: ``gpu`` when CUDA is present, else ``full``.
- ``METALIB_CACHE``: directory for converted weights, pretrained models and features
  (default: the user cache directory, ``~/.cache/metalib`` on Linux).

Example:
    >>> from metalib import runtime
    >>> runtime.seed_everything(0)
    >>> runtime.get_profile() in runtime.PROFILES
    True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

if TYPE_CHECKING:  # keep `import metalib.runtime` free of torch
    import torch

PROFILES = ("quick", "full", "gpu")
"""The run profiles, from cheapest to most expensive."""
T = TypeVar("T")


def get_device(name: str | None = None) -> torch.device:
    """The device to compute on.

    Args:
        name: an explicit choice (``"cpu"``, ``"cuda:0"``, ``"mps"``). When ``None``, the
            ``METALIB_DEVICE`` environment variable, else the best available: cuda > mps > cpu.

    Raises:
        ValueError: the requested device does not exist on this machine.
    """
    import torch

    name = name or os.environ.get("METALIB_DEVICE") or None
    if name is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available; use 'cpu'")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {name!r} was requested but MPS is not available; use 'cpu'")
    return device


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy and torch (all devices) with ``seed``.

    Library code never draws from these global generators (it takes explicit seeds); this is
    for notebooks and scripts, so that model initialisation and dropout are reproducible.
    """
    import numpy as np
    import torch

    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS generators too


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The reduced-precision dtype used on ``device``: bf16 on CUDA where supported, else ``None``.

    CPU and MPS run in float32: on CPU bf16 autocast is slower for small models and changes the
    numbers a reader compares with the book.
    """
    import torch

    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False):  # not on T4/V100
        return torch.bfloat16
    return None


def autocast(device: torch.device | str) -> contextlib.AbstractContextManager[Any]:
    """Mixed precision for the forward pass: ``torch.autocast`` in bf16 on CUDA, a no-op elsewhere.

    Example:
        >>> import torch
        >>> with autocast("cpu"):
        ...     y = torch.ones(2, 2) @ torch.ones(2, 2)
        >>> y.dtype
        torch.float32
    """
    import torch

    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def get_profile() -> str:
    """The run profile: ``METALIB_PROFILE`` if set, else ``"gpu"`` when CUDA is present, else ``"full"``.

    Raises:
        ValueError: ``METALIB_PROFILE`` is set to something other than quick, full or gpu.
    """
    profile = os.environ.get("METALIB_PROFILE", "").strip().lower()
    if not profile:
        import torch

        return "gpu" if torch.cuda.is_available() else "full"
    if profile not in PROFILES:
        raise ValueError(f"METALIB_PROFILE={profile!r} is not one of {', '.join(PROFILES)}")
    return profile


def by_profile(quick: T, full: T, gpu: T, profile: str | None = None) -> T:
    """The value for ``profile`` (default: :func:`get_profile`): one place per setting that differs
    between the quick, full and gpu runs.

    Example:
        >>> by_profile(quick=16, full=256, gpu=4096, profile="full")
        256
    """
    profile = get_profile() if profile is None else profile
    values = {"quick": quick, "full": full, "gpu": gpu}
    if profile not in values:
        raise ValueError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return values[profile]


class ProfileRecipe:
    """Base of the book's frozen recipe dataclasses: the defaults are the full profile's settings,
    ``PROFILE_CHANGES`` the fields the quick and gpu profiles change.

    Example:
        >>> from dataclasses import dataclass
        >>> @dataclass(frozen=True)
        ... class Recipe(ProfileRecipe):
        ...     steps: int = 600
        ...     PROFILE_CHANGES = {"quick": dict(steps=60)}
        >>> Recipe.for_profile("quick").steps, Recipe.for_profile("full").steps
        (60, 600)
    """

    PROFILE_CHANGES: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def for_profile(cls, profile: str | None = None) -> Any:
        """The book's recipe for ``profile`` (default: :func:`get_profile`)."""
        changes = {name: cls.PROFILE_CHANGES.get(name, {}) for name in PROFILES}
        return cls(**by_profile(**changes, profile=profile))


def cache_dir() -> Path:
    """The directory for artifacts that take time to make (created if missing).

    ``METALIB_CACHE`` if set, else the platform's user cache directory
    (``~/.cache/metalib`` on Linux).
    """
    env = os.environ.get("METALIB_CACHE")
    if env:
        path = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        path = Path(user_cache_dir("metalib", appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_key(**parts: Any) -> str:
    """A short, stable hash of everything that produced a cache entry.

    Args:
        **parts: JSON-serialisable values (config dicts, profile, seed, split, recipe version).
            Key order does not matter.

    Returns:
        16 hexadecimal characters.

    Example:
        >>> cache_key(model="tiny-bert", seed=0) == cache_key(seed=0, model="tiny-bert")
        True
    """
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], timeout: float = 1800.0) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` (the lock file is ``path + '.lock'``).

    Two notebooks that build the same cache entry at once (``nbmake -n 2``) then do the work
    once: the second waits, then finds the finished entry.

    Raises:
        TimeoutError: the lock was not acquired within ``timeout`` seconds.
    """
    from filelock import FileLock
    from filelock import Timeout as LockTimeout

    lock_path = Path(str(path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(lock_path, timeout=timeout):
            yield
    except LockTimeout as err:
        raise TimeoutError(f"could not lock {lock_path} within {timeout} s; is another run stuck?") from err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it onto ``path``.

    Readers never see a half-written file: either the old content or the new. A file is
    replaced in one rename. A directory (write into the yielded path as a directory) cannot be
    renamed over a non-empty one, so the old directory is first renamed aside to
    ``.<name>.old``, the new one renamed in, and the old one deleted; if the process dies in
    between, :func:`recover_interrupted` (called here and by the readers in metalib) puts the
    old one back. On error the temporary is removed and ``path`` is untouched. Hold
    :func:`file_lock` around it when several processes may write the same path.

    Example:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "x.txt"
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text("done")
        >>> target.read_text()
        'done'
    """
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    tmp.rmdir()  # the caller decides whether it becomes a file or a directory
    try:
        yield tmp
        if path.is_dir() and tmp.is_dir():
            aside = _aside(path)
            os.replace(path, aside)
            os.replace(tmp, path)
            shutil.rmtree(aside)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def build_once(entry: str | os.PathLike[str], marker: str, build: Callable[[Path], None], what: str) -> Path:
    """The cache directory ``entry``, built by ``build(tmp_dir)`` unless ``entry / marker`` exists.

    Under :func:`file_lock` (a second process waits, then finds the finished entry), after
    :func:`recover_interrupted`, into a temporary directory that :func:`atomic_path` moves in only
    when ``build`` returns; ``build`` writes ``marker`` last. Prints ``metalib: <what> into <entry>
    (once)`` to stderr before building.

    The build runs inside :func:`preserved_random_state`: whether the entry was built now (cold
    cache) or found (warm cache), the caller's random generators continue from the same state, so
    a notebook computes the same numbers from an empty cache and from a full one.
    """
    entry = Path(entry)
    with file_lock(entry):
        recover_interrupted(entry)
        if not (entry / marker).exists():
            print(f"metalib: {what} into {entry} (once)", file=sys.stderr, flush=True)
            with atomic_path(entry) as tmp, preserved_random_state():
                tmp.mkdir()
                build(tmp)
    return entry


@contextlib.contextmanager
def preserved_random_state() -> Iterator[None]:
    """Run the block without disturbing the global random generators.

    Saves the state of Python's ``random``, NumPy's legacy generator and torch's CPU (and CUDA)
    generators, and restores it on exit, even if the block raised; the block may reseed them freely.
    Torch's thread count is restored as well.

    Example:
        >>> import random
        >>> random.seed(0)
        >>> with preserved_random_state():
        ...     random.seed(123)
        ...     _ = random.random()
        >>> random.seed(0); expected = random.random(); random.seed(0)
        >>> with preserved_random_state():
        ...     _ = random.random()
        >>> random.random() == expected
        True
    """
    import numpy as np

    python_state, numpy_state = random.getstate(), np.random.get_state()
    torch = sys.modules.get("torch")  # a build that imports torch only now cannot have consumed its state
    torch_state = torch.random.get_rng_state() if torch is not None else None
    cuda_states = (
        torch.cuda.get_rng_state_all() if torch is not None and torch.cuda.is_initialized() else None
    )
    threads = torch.get_num_threads() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        if torch is not None:
            torch.random.set_rng_state(torch_state)
            torch.set_num_threads(threads)
            if cuda_states is not None:
                torch.cuda.set_rng_state_all(cuda_states)


def code_fingerprint(*modules: str) -> str:
    """A hash of the source of metalib ``modules`` and of every metalib module they import.

    Part of each cache key, so that a changed recipe never silently reuses a model built by older
    code: imports are followed through the syntax tree (function-level imports included) without
    importing anything.

    Args:
        *modules: dotted names, e.g. ``"metalib.methods.pretraining"``.

    Returns:
        16 hexadecimal characters.

    Example:
        >>> code_fingerprint("metalib.runtime") == code_fingerprint("metalib.runtime")
        True
    """
    root = Path(__file__).resolve().parent
    seen: dict[str, bytes] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        source = _module_file(root, name).read_bytes()
        seen[name] = source
        todo += _metalib_imports(source)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + seen[name] + b"\0")
    return digest.hexdigest()[:16]


def _module_file(root: Path, name: str) -> Path:
    """The source file of the metalib module ``name`` (a package's ``__init__.py``)."""
    parts = name.split(".")
    if parts[0] != "metalib":
        raise ValueError(f"{name!r} is not a metalib module")
    base = root.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    raise ValueError(f"no source file for module {name!r} under {root}")


def _metalib_imports(source: bytes) -> list[str]:
    """The metalib modules that ``source`` imports (absolute imports, anywhere in its body)."""
    import ast

    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    root = Path(__file__).resolve().parent
    modules = []
    for name in names:
        if name == "metalib" or name.startswith("metalib."):
            try:
                _module_file(root, name)
            except ValueError:  # `from metalib.x import a_function`: not a module
                continue
            modules.append(name)
    return modules


def recover_interrupted(path: str | os.PathLike[str]) -> None:
    """Finish or undo a directory replacement by :func:`atomic_path` that a crash interrupted.

    If ``path`` is missing but its ``.<name>.old`` copy exists, the old copy is put back; if
    both exist (the crash came after the new one was in place), the old copy is deleted.
    """
    import shutil

    path = Path(path)
    aside = _aside(path)
    if aside.exists():
        if path.exists():
            shutil.rmtree(aside)
        else:
            os.replace(aside, path)


def _aside(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def describe() -> dict[str, str]:
    """A one-line summary of the runtime for the top of a notebook: device, profile, versions."""
    import torch

    device = get_device()
    info = {
        "device": str(device),
        "profile": get_profile(),
        "torch": torch.__version__,
        "threads": str(torch.get_num_threads()),
        "cache": str(cache_dir()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    dtype = autocast_dtype(device)
    info["autocast"] = str(dtype).removeprefix("torch.") if dtype else "off (float32)"
    return info
