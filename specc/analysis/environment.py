"""What the installed torch can do, found without importing it (`specc check` stays fast)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

GPU_LIBRARIES = ("torch_cuda", "torch_hip")
"""Parts of the names of the libraries a CUDA (or ROCm) build of torch ships in torch/lib."""


def torch_version() -> str | None:
    """The installed torch's version (`2.13.0+cpu`), or None when torch is not installed."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def torch_has_cuda() -> bool | None:
    """Whether the installed torch is a build that can use a GPU; None when torch is absent
    or its files do not say (then no warning is given)."""
    found = importlib.util.find_spec("torch")
    if found is None or found.origin is None:
        return None
    if "+cpu" in (torch_version() or ""):
        return False
    lib = Path(found.origin).parent / "lib"
    if not lib.is_dir():
        return None
    return any(part in p.name for p in lib.iterdir() for part in GPU_LIBRARIES)
