"""File-system helpers shared by the modules that write derived files (ONNX exports, caches)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "atomic_target"]


def cache_dir() -> Path:
    """Where derived model files (ONNX exports) live: ``$CEC_CACHE_DIR`` or ``~/.cache/cec``."""
    env = os.environ.get("CEC_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "cec"


def atomic_target(path: Path) -> Path:
    """A temporary file next to ``path`` (same file system, for an atomic ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)
