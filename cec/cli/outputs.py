"""Where the commands write: every output path is checked before the model loads.

A missing folder on the way to an output is made (when the file is written, not before), so
``-o runs/new/s.jsonl`` works; a path that cannot be written at all (a parent that is a file, a
folder given as the file, no permission) or that is one of the call's inputs (the same path, a
hard or symbolic link to it) is refused with an :class:`~cec.io.InputError` before anything is
opened for writing. Errors that show only when writing (a full disk, ``/dev/full``) become an
``InputError`` naming the file too (see :class:`cec.io.DeferredOutput`).

Examples:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "in.jsonl").write_text("{}\\n")
    >>> check_output("--output", d / "new" / "s.csv", [d / "in.jsonl"])
    >>> check_output("--output", d / "in.jsonl", [d / "in.jsonl"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    cec.io.records.InputError: --output .../in.jsonl is the input .../in.jsonl (the same file): ...
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from cec.io import InputError

__all__ = ["check_output", "same_file"]


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` name one file (the same path, or a hard or symbolic link to it)."""
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)  # st_dev and st_ino: the same path, a hard or symbolic link
    except OSError:  # one of them does not exist (yet): not the same file
        return False


def check_output(option: str, path: Path | None, inputs: Iterable[Path | None] = ()) -> None:
    """Refuse an output ``path`` that cannot be written or that is one of ``inputs``.

    Args:
        option: The option that named the path, for the message (``--output``).
        path: The output file; ``None`` or ``-`` (stdout) passes.
        inputs: The files the call reads (``None`` and ``-`` are skipped).

    Raises:
        InputError: ``path`` is an input, a folder, under a file, or in a folder that cannot
            be written.
    """
    if path is None or str(path) == "-":
        return
    for source in inputs:
        if source is not None and str(source) != "-" and same_file(path, source):
            how = "" if os.path.abspath(path) == os.path.abspath(source) else ", linked"
            raise InputError(
                f"{option} {path} is the input {source} (the same file{how}): writing it would "
                "destroy the input; write to another file"
            )
    if path.is_dir():
        raise InputError(f"{option} {path} is a folder; give a file name")
    if path.exists():
        if not os.access(path, os.W_OK):
            raise InputError(f"{option} {path}: cannot write (permission denied)")
        return
    folder = path.parent  # the nearest folder that exists is where missing ones will be made
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{option} {path}: cannot write there: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{option} {path}: cannot write in {folder} (permission denied)")

