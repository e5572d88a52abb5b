"""cec's own output streams, and third-party output held back while a command runs.

A ``cec`` command imports and loads libraries it does not control (torch, transformers,
sentence-transformers, ONNX Runtime, bitsandbytes and what they import in turn). Any of them may
speak at import or load time: a ``print`` to either stream, a C library writing to file
descriptor 1 or 2, a ``logging`` record with no handler (Python's last-resort handler writes it
to ``sys.stderr``), a handler a library attached at import, a ``warnings.warn``. None of that is
the user's business, and on stdout it would corrupt the scores.

:func:`hold_third_party` therefore points file descriptors 1 and 2 and ``sys.stdout`` /
``sys.stderr`` at one temporary file for the whole command, and hands cec's own messages and
rows to :func:`out` and :func:`err`, streams on duplicates of the original descriptors (or the
original stream objects where they have no descriptor, as under a test runner's capture). The
class of the output, not its wording, decides: whatever is not written through :func:`out` or
:func:`err` is held back. ``CEC_VERBOSE=1`` (or ``cec --verbose``) lets it through.

Outside a command (the library used from Python) nothing is redirected: :func:`out` and
:func:`err` are ``sys.stdout`` and ``sys.stderr``.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO, TextIO

__all__ = ["err", "held_text", "hold_third_party", "out", "verbose"]

_lock = threading.Lock()
_out: TextIO | None = None
_err: TextIO | None = None
_held = ""


def verbose() -> bool:
    """Whether third-party output is shown (``CEC_VERBOSE`` set to anything but ``0``/empty)."""
    return os.environ.get("CEC_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off")


def out() -> TextIO:
    """The stream for cec's own output rows and reports (the user's stdout)."""
    return _out if _out is not None else sys.stdout


def err() -> TextIO:
    """The stream for cec's own messages (the user's stderr)."""
    return _err if _err is not None else sys.stderr


def held_text() -> str:
    """What third parties wrote during the last held command (empty if nothing, or verbose)."""
    return _held


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None


class _Redirect:
    """Descriptor ``fd`` pointed at the hold file, and cec's own stream for ``stream``.

    Where ``stream`` writes to ``fd`` (a real console or file), cec's stream is a new one on a
    duplicate of the original descriptor; where it does not (a test runner's capture object),
    cec keeps writing to ``stream`` itself. The descriptor is held back in both cases.
    """

    def __init__(self, stream: TextIO, fd: int, hold_fd: int, line_buffering: bool):
        self.fd = fd
        self.own: TextIO = stream
        self.opened = False
        with contextlib.suppress(Exception):
            stream.flush()
        try:
            self.saved: int | None = os.dup(fd)
        except OSError:  # no such descriptor (a daemon without stdout): nothing to hold
            self.saved = None
            return
        if _fileno(stream) == fd:
            self.own = open(  # noqa: SIM115 - closed in restore()
                self.saved,
                "w",
                encoding=getattr(stream, "encoding", None) or "utf-8",
                errors=getattr(stream, "errors", None) or "strict",
                buffering=1 if line_buffering or os.isatty(self.saved) else -1,
                closefd=False,
            )
            self.opened = True
        os.dup2(hold_fd, fd)

    def restore(self) -> OSError | None:
        """Put the descriptor back; return the error of flushing cec's own stream, if any
        (a full disk or a closed pipe: the caller raises it, it is never swallowed)."""
        failed: OSError | None = None
        try:
            self.own.flush()
        except OSError as exc:
            failed = exc
        except ValueError:  # already closed
            pass
        if self.saved is None:
            return failed
        if self.opened:
            with contextlib.suppress(Exception):  # flushed above: a second error adds nothing
                self.own.close()
        os.dup2(self.saved, self.fd)
        os.close(self.saved)
        return failed


class _HoldStream(io.TextIOBase):
    """``sys.stdout``/``sys.stderr`` while held: unbuffered writes to the hold file's descriptor
    (the same open file as descriptors 1 and 2, so C and Python writes keep their order)."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd: int | None = fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def write(self, s: str) -> int:
        if self._fd is None:  # after the command: a handler a library bound to this stream
            return 0 if sys.stderr is self else sys.stderr.write(s)
        os.write(self._fd, s.encode("utf-8", errors="backslashreplace"))
        return len(s)

    def release(self) -> None:
        self._fd = None

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("the held command has ended")
        return self._fd

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def hold_third_party(show: bool | None = None) -> Iterator[None]:
    """Hold back every byte written to stdout/stderr except through :func:`out` and :func:`err`.

    Args:
        show: Let third-party output through instead (default: :func:`verbose`).

    Not re-entrant across threads: one command holds the process's streams at a time (a nested
    call inside a held block is a no-op).

    Example:
        >>> import sys
        >>> with hold_third_party(show=False):
        ...     print("a library's notice")
        ...     _ = err().write("")
        >>> "notice" in held_text()
        True
    """
    global _out, _err, _held
    show = verbose() if show is None else show
    if show or not _lock.acquire(blocking=False):
        yield
        return
    hold = tempfile.TemporaryFile(mode="w+b", buffering=0)  # noqa: SIM115 - closed below
    saved_streams = sys.stdout, sys.stderr
    redirects: list[_Redirect] = []
    stream: _HoldStream | None = None
    try:
        redirects.append(_Redirect(sys.stdout, 1, hold.fileno(), line_buffering=False))
        redirects.append(_Redirect(sys.stderr, 2, hold.fileno(), line_buffering=True))
        _out, _err = redirects[0].own, redirects[1].own
        stream = _HoldStream(hold.fileno())
        sys.stdout = sys.stderr = stream
        _held = ""
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        if stream is not None:
            stream.release()
        failed = [e for e in (r.restore() for r in reversed(redirects)) if e is not None]
        _out = _err = None
        try:
            os.lseek(hold.fileno(), 0, os.SEEK_SET)
            _held = hold.read().decode("utf-8", errors="backslashreplace")
        finally:
            hold.close()
            _lock.release()
        if failed and sys.exc_info()[1] is None:
            raise failed[0]  # cec's rows or messages did not all reach the user
