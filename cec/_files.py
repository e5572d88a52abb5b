"""File-system helpers shared by the modules that write derived files (ONNX exports, caches)."""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
from functools import lru_cache
from pathlib import Path

__all__ = [
    "cache_dir",
    "atomic_target",
    "atomic_write",
    "durable_replace",
    "fsync_path",
    "file_digest",
    "unwritable_reason",
]


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


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data, or a folder's entries, to disk (a no-op where folders can't be
    fsync'd)."""
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if p.is_dir() else os.O_RDONLY
    try:
        fd = os.open(p, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # e.g. EINVAL for folders on some file systems
        pass
    finally:
        os.close(fd)


def durable_replace(tmp: str | os.PathLike[str], final: str | os.PathLike[str]) -> Path:
    """Put a finished temporary file or folder in place, so that it survives a power loss.

    The data is flushed to disk first (every file of a folder, then the folder), then
    ``os.replace`` makes it appear under its final name at once, then the parent folder is
    flushed so the rename itself is durable. Readers see the old version or the complete new
    one, never a part.
    """
    tmp, final = Path(tmp), Path(final)
    if tmp.is_dir():
        for child in sorted(tmp.rglob("*")):
            if child.is_file():
                fsync_path(child)
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(final.parent)
    return final


def atomic_write(path: str | os.PathLike[str], data: str | bytes) -> Path:
    """Write ``data`` to ``path`` atomically and durably (a temporary file, then
    :func:`durable_replace`); missing folders are created.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / "sub" / "status.json"
        >>> atomic_write(target, '{"ok": true}').read_text()
        '{"ok": true}'
    """
    path = Path(path)
    tmp = atomic_target(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        return durable_replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _file_key(path: Path) -> tuple[str, int, int, int, int]:
    st = os.stat(path)
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)


@lru_cache(maxsize=8)
def _sha256_of(key: tuple[str, int, int, int, int]) -> str:
    with open(key[0], "rb") as fh:
        if key[1] == 0:
            return hashlib.sha256(b"").hexdigest()
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as view:
            return hashlib.sha256(view).hexdigest()  # one call: no copy, the GIL released


def file_digest(path: Path) -> str:
    """sha256 of a file, read once per process for one (path, size, mtime, inode, ctime)."""
    return _sha256_of(_file_key(path))


def unwritable_reason(folder: Path) -> str:
    """Why ``folder`` cannot take new files ("" when it can): tried, not guessed from modes."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cec-probe-"):
            pass
    except OSError as exc:
        return f"{type(exc).__name__}: {exc.strerror or exc}"
    return ""
