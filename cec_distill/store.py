"""An append-only JSONL file of records keyed by id, safe against crashes.

Every :meth:`JsonlStore.append` writes one whole line with a single ``write`` on a file opened
with ``O_APPEND``, then ``fsync``\\ s it, before returning: once ``append`` returns, the record
survives ``kill -9`` and power loss. A crash can at worst leave a torn last line (a record cut
short, or zero bytes the file system allocated but never wrote); opening the store for writing
moves such a tail to ``<path>.torn`` and truncates the file to its last whole line, and reading
skips it, so every line of the file parses.

A record is a JSON object with the key field (``"id"`` by default). Records are never rewritten:
a later record for the same id supersedes the earlier one (see :meth:`JsonlStore.latest`). An id
is *done* when its latest record has no truthy ``"error"`` field, so a failed item, recorded with
its error, is picked up again by the next run.

One process writes a store at a time: opening for writing takes an exclusive ``flock`` on the
file (released by the kernel when the process dies, even by ``kill -9``).

Examples:
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "labels.jsonl")
    >>> with JsonlStore.open(path) as store:
    ...     store.append({"id": "a", "error": "HTTP 500"})
    ...     store.append({"id": "a", "explanation": "CO2 traps heat."})
    ...     store.append({"id": "b", "error": "timeout"})
    >>> store = JsonlStore.open(path, mode="r")
    >>> sorted(store.done_ids()), sorted(store.failed_ids())
    (['a'], ['b'])
    >>> store.latest()["a"]["explanation"]
    'CO2 traps heat.'
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

try:  # POSIX advisory lock; absent on Windows, where the store still works without it.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

__all__ = ["JsonlStore", "StoreLockedError", "open_store"]


class StoreLockedError(RuntimeError):
    """Another process holds the store open for writing."""


class JsonlStore:
    """Append-only, fsync'd JSONL records keyed by ``key``.

    Use :meth:`open` (or :func:`open_store`); ``mode="a"`` (default) repairs a torn tail, locks
    the file and allows :meth:`append`; ``mode="r"`` only reads. Thread-safe: appends from many
    threads are serialized by a lock.
    """

    def __init__(
        self, path: str | os.PathLike, *, key: str = "id", mode: str = "a", fsync: bool = True
    ):
        if mode not in ("a", "r"):
            raise ValueError(f"mode must be 'a' or 'r', got {mode!r}")
        if not isinstance(key, str) or not key:
            raise ValueError(f"key must be a non-empty string, got {key!r}")
        self.path = Path(path)
        self.key = key
        self.mode = mode
        self.fsync = fsync
        self.skipped_lines = 0  # unparseable lines met while reading (not counting a torn tail)
        self._lock = threading.Lock()
        self._fd: int | None = None
        if mode == "a":
            self._open_for_append()
        elif not self.path.exists():
            raise FileNotFoundError(f"store file does not exist: {self.path}")

    @classmethod
    def open(
        cls, path: str | os.PathLike, *, key: str = "id", mode: str = "a", fsync: bool = True
    ) -> JsonlStore:
        """Open (and in mode ``"a"`` create) the store at ``path``."""
        return cls(path, key=key, mode=mode, fsync=fsync)

    # ------------------------------------------------------------------ writing

    def _open_for_append(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StoreLockedError(
                        f"{self.path} is open for writing in another process; "
                        "wait for it to finish or use another output file"
                    ) from None
            self._repair_tail(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if created and self.fsync:
            _fsync_dir(self.path.parent)

    def _repair_tail(self, fd: int) -> None:
        """Cut a torn last line (no newline, or not JSON) off the file, keeping it in ``.torn``."""
        size = os.fstat(fd).st_size
        if size == 0:
            return
        # Find the start of the last line: read backwards in blocks until a newline before the end.
        end = size
        tail = os.pread(fd, 1, size - 1)
        if tail == b"\n":
            end = size - 1
        pos = end
        block = 1 << 16
        start = 0
        while pos > 0:
            lo = max(0, pos - block)
            chunk = os.pread(fd, pos - lo, lo)
            i = chunk.rfind(b"\n")
            if i >= 0:
                start = lo + i + 1
                break
            pos = lo
        last = os.pread(fd, size - start, start)
        if tail == b"\n" and (_parses(last) or not last.strip(b" \t\r\n")):
            return  # a whole record (or a blank line) ends the file
        torn = last
        with open(str(self.path) + ".torn", "ab") as fh:
            fh.write(torn + (b"" if torn.endswith(b"\n") else b"\n"))
            fh.flush()
            os.fsync(fh.fileno())
        os.ftruncate(fd, start)
        if self.fsync:
            os.fsync(fd)
        warnings.warn(
            f"{self.path}: removed a torn last line ({len(torn)} bytes, kept in {self.path}.torn); "
            "its record was not complete and will be redone",
            RuntimeWarning,
            stacklevel=4,
        )

    def append(self, record: dict[str, Any]) -> None:
        """Write ``record`` as one line and fsync it; returns only once it is on disk.

        Raises:
            ValueError: the record lacks the key field or is not JSON-serializable.
            RuntimeError: the store is read-only or closed.
        """
        if not isinstance(record, dict) or self.key not in record:
            raise ValueError(
                f"record must be a dict with a {self.key!r} field, got {record!r:.200}"
            )
        try:
            line = (json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"record {record.get(self.key)!r} is not JSON-serializable: {exc}"
            ) from None
        with self._lock:
            if self._fd is None:
                raise RuntimeError(
                    f"store {self.path} is {'read-only' if self.mode == 'r' else 'closed'}"
                )
            view = memoryview(line)
            while view:  # a regular-file write is whole in practice; loop for the rare partial
                n = os.write(self._fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(self._fd)

    def close(self) -> None:
        """Release the lock and the file descriptor (idempotent)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)  # closing releases the flock
                self._fd = None

    def __enter__(self) -> JsonlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()

    # ------------------------------------------------------------------ reading

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """All records in file order; skips blank lines and a torn last line.

        An unparseable line elsewhere (which a crash cannot produce) is skipped with a
        ``RuntimeWarning`` and counted in :attr:`skipped_lines`.
        """
        if not self.path.exists():
            return
        with self.path.open("rb") as fh:
            lines = fh.readlines()
        self.skipped_lines = 0
        for i, raw in enumerate(lines):
            is_last = i == len(lines) - 1
            if not raw.strip(b"\x00 \t\r\n"):
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                if is_last:
                    continue  # torn tail of a crashed run
                self.skipped_lines += 1
                warnings.warn(
                    f"{self.path}:{i + 1}: skipping an unparseable line",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            if is_last and not raw.endswith(b"\n"):
                continue  # parsed by luck but never completed (newline is written with the record)
            if not isinstance(rec, dict) or self.key not in rec:
                self.skipped_lines += 1
                warnings.warn(
                    f"{self.path}:{i + 1}: record without {self.key!r}",
                    RuntimeWarning,
                    stacklevel=2,
                )
                continue
            yield rec

    def latest(self) -> dict[str, dict[str, Any]]:
        """The latest record per id (later lines supersede earlier ones)."""
        out: dict[str, dict[str, Any]] = {}
        for rec in self.iter_records():
            out[str(rec[self.key])] = rec
        return out

    def done_ids(self) -> set[str]:
        """Ids whose latest record has no truthy ``"error"`` field."""
        return {k for k, r in self.latest().items() if not r.get("error")}

    def failed_ids(self) -> set[str]:
        """Ids whose latest record carries an ``"error"`` (to be retried)."""
        return {k for k, r in self.latest().items() if r.get("error")}

    def __repr__(self) -> str:
        return f"JsonlStore({str(self.path)!r}, key={self.key!r}, mode={self.mode!r})"


def open_store(
    path: str | os.PathLike, *, key: str = "id", mode: str = "a", fsync: bool = True
) -> JsonlStore:
    """Shorthand for :meth:`JsonlStore.open`."""
    return JsonlStore.open(path, key=key, mode=mode, fsync=fsync)


def _parses(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
