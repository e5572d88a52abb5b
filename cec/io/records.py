"""Streaming readers of the files ``cec score`` reads: JSONL, CSV/TSV and parallel plain-text files.

Readers yield one :class:`Record` at a time (bounded memory, whatever the file size) and raise
:class:`InputError` naming the file and line of anything wrong. Re-exported by :mod:`cec.io`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any

__all__ = [
    "InputError",
    "Record",
    "FORMATS",
    "guess_format",
    "read_records",
    "read_text_pairs",
]

FORMATS = ("jsonl", "csv", "tsv")
_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
}
_MISSING = object()


class InputError(ValueError):
    """Bad input data; the message starts with ``file:line:`` where a line is known."""

    def __init__(
        self, message: str, path: str | os.PathLike[str] | None = None, line: int | None = None
    ):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
        self.path = None if path is None else str(path)
        self.line = line


@dataclass(frozen=True)
class Record:
    """One item to score.

    Attributes:
        id: The item's id (the id field/column when present, else its 1-based item number).
        prediction: The generated explanation.
        references: One or more reference explanations.
        source: ``file:line`` the item came from (for messages).
    """

    id: str
    prediction: str
    references: list[str]
    source: str = ""


def guess_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The input format: ``fmt`` when given, else from the file suffix.

    Raises:
        InputError: Unknown format or suffix.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise InputError(f"unknown input format {fmt!r}; choose one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(str(path)).suffix.lower()
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    raise InputError(
        f"cannot tell the format from the suffix {suffix or '(none)'!r}; use .jsonl/.csv/.tsv "
        "or give --input-format",
        path,
    )


def _open_text(path: str | os.PathLike[str]) -> IO[str]:
    """Open a text file for reading (``-`` is stdin), turning OS errors into InputError."""
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="strict")
    p = Path(path)
    if not p.exists():
        raise InputError("no such file", path)
    if p.is_dir():
        raise InputError("is a directory, not a file", path)
    try:
        return open(p, encoding="utf-8", newline="")  # noqa: SIM115 - closed by the caller
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", path) from None


def check_readable(*paths: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` unless each path (other than ``-``) is a readable file."""
    for path in paths:
        if str(path) != "-":
            _open_text(path).close()


def _as_text(value: Any, what: str, path: Any, line: int) -> str:
    if value is _MISSING:
        raise InputError(f"missing field {what}", path, line)
    if not isinstance(value, str):
        raise InputError(f"field {what} must be a string, got {type(value).__name__}", path, line)
    if not value.isascii():  # a JSON "\\udfff" escape is valid JSON but not valid text
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = f"a lone surrogate {value[exc.start]!r} at character {exc.start}"
            raise InputError(
                f"field {what} holds {bad} (not valid Unicode text)", path, line
            ) from None
    return value


def _refs_from(values: list[Any], fields: Sequence[str], path: Any, line: int) -> list[str]:
    refs: list[str] = []
    for name, value in zip(fields, values, strict=False):
        if value is _MISSING:
            raise InputError(f"missing field {name!r}", path, line)
        if isinstance(value, list):
            if not value:
                raise InputError(f"field {name!r} is an empty list of references", path, line)
            for k, v in enumerate(value):
                refs.append(_as_text(v, f"{name!r}[{k}]", path, line))
        else:
            refs.append(_as_text(value, repr(name), path, line))
    return refs


def read_records(
    path: str | os.PathLike[str],
    *,
    fmt: str | None = None,
    pred_field: str = "prediction",
    ref_fields: Sequence[str] = ("reference",),
    id_field: str | None = "id",
) -> Iterator[Record]:
    """Stream records from a JSONL, CSV or TSV file (``-`` reads stdin; then give ``fmt``).

    Args:
        path: The file.
        fmt: ``jsonl``, ``csv`` or ``tsv``; ``None`` guesses from the suffix.
        pred_field: Field (column) holding the generated explanation.
        ref_fields: Field(s) holding the reference(s). In JSONL a field may hold a list of
            references; several fields give several references per item.
        id_field: Field holding the item id, if present (items without it are numbered).

    Raises:
        InputError: Unreadable file, bad JSON, a missing field or a non-string value, with
            ``file:line``.
    """
    fmt = guess_format(path, fmt) if str(path) != "-" or fmt else "jsonl"
    if not ref_fields:
        raise InputError("give at least one reference field")
    fh = _open_text(path)
    with fh:
        if fmt == "jsonl":
            yield from _read_jsonl(fh, path, pred_field, list(ref_fields), id_field)
        else:
            yield from _read_csv(
                fh, path, "," if fmt == "csv" else "\t", pred_field, list(ref_fields), id_field
            )


def _read_jsonl(
    fh: IO[str], path: Any, pred_field: str, ref_fields: list[str], id_field: str | None
) -> Iterator[Record]:
    item = 0
    for line_no, raw in enumerate(fh, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"invalid JSON ({exc.msg} at column {exc.colno})", path, line_no
            ) from None
        if not isinstance(obj, dict):
            raise InputError(f"expected a JSON object, got {type(obj).__name__}", path, line_no)
        item += 1
        pred = _as_text(obj.get(pred_field, _MISSING), repr(pred_field), path, line_no)
        refs = _refs_from([obj.get(f, _MISSING) for f in ref_fields], ref_fields, path, line_no)
        ident = obj.get(id_field) if id_field else None
        yield Record(str(item) if ident is None else str(ident), pred, refs, f"{path}:{line_no}")


def _read_csv(
    fh: IO[str],
    path: Any,
    delimiter: str,
    pred_field: str,
    ref_fields: list[str],
    id_field: str | None,
) -> Iterator[Record]:
    reader = csv.reader(fh, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("empty file (no header row)", path, 1) from None
    except csv.Error as exc:
        raise InputError(f"bad CSV ({exc})", path, 1) from None
    columns = {name.strip(): k for k, name in enumerate(header)}
    for name in [pred_field, *ref_fields]:
        if name not in columns:
            raise InputError(
                f"missing column {name!r} in the header (columns: {', '.join(columns) or 'none'})",
                path,
                1,
            )
    id_col = columns.get(id_field) if id_field else None
    want = [columns[pred_field], *(columns[f] for f in ref_fields)]
    item = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise InputError(f"bad CSV ({exc})", path, reader.line_num) from None
        line_no = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise InputError(
                f"row has {len(row)} fields but the header has {len(header)}", path, line_no
            )
        item += 1
        pred, *refs = (row[k] for k in want)
        ident = row[id_col] if id_col is not None else str(item)
        yield Record(ident, pred, refs, f"{path}:{line_no}")


def _text_lines(fh: IO[str]) -> Iterator[str]:
    for raw in fh:
        yield raw.rstrip("\r\n")


def read_text_pairs(
    pred_path: str | os.PathLike[str], ref_paths: Sequence[str | os.PathLike[str]]
) -> Iterator[Record]:
    """Stream items from parallel plain-text files, one explanation per line.

    Several reference files give several references per item.

    Raises:
        InputError: A file is missing or unreadable, or the files have different numbers of
            lines (the message names both files and the line where one ran out).
    """
    if not ref_paths:
        raise InputError("give at least one reference file")
    with ExitStack() as stack:
        handles = [stack.enter_context(_open_text(p)) for p in [pred_path, *ref_paths]]
        names = [str(p) for p in [pred_path, *ref_paths]]
        for line_no, lines in enumerate(zip_longest(*map(_text_lines, handles)), start=1):
            if any(x is None for x in lines):
                short = names[lines.index(None)]
                longer = next(n for n, x in zip(names, lines, strict=False) if x is not None)
                raise InputError(
                    f"{short} has {line_no - 1} lines but {longer} has more "
                    f"({short} ran out at line {line_no}); the files must have one line per item"
                )
            yield Record(str(line_no), lines[0], list(lines[1:]), f"{names[0]}:{line_no}")
