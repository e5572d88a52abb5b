"""Writers of per-item score files (table, JSON, JSONL, CSV/TSV) and reading them back to resume.

Writers take per-item rows as they are produced; :func:`read_item_rows` reads the rows of an
interrupted run back. Re-exported by :mod:`cec.io`.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from cec import _streams
from cec.io.records import InputError

__all__ = [
    "ItemWriter",
    "DeferredOutput",
    "OUTPUT_FORMATS",
    "output_format_for",
    "open_output",
    "read_item_rows",
]

ITEM_COLUMNS = ("id", "forward", "backward", "sym", "empty", "best_ref")
OUTPUT_FORMATS = ("table", "json", "jsonl", "csv", "tsv")
_OUTPUT_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "table",
    "": "table",
}


def output_format_for(path: str | os.PathLike[str] | None) -> str:
    """The output format an output path implies: its suffix; stdout and no suffix are ``table``.

    Raises:
        ValueError: A suffix that names no output format (``.xlsx``), with the known ones.

    Examples:
        >>> output_format_for("scores.csv"), output_format_for("out/s.JSONL"), output_format_for(None)
        ('csv', 'jsonl', 'table')
        >>> output_format_for("scores.txt"), output_format_for("scores")
        ('table', 'table')
        >>> output_format_for("scores.xlsx")
        Traceback (most recent call last):
        ...
        ValueError: unknown output suffix '.xlsx' (known: .json, .jsonl, .ndjson, .csv, .tsv, .tab, .txt)
    """
    if path is None or str(path) == "-":
        return "table"
    suffix = Path(str(path)).suffix.lower()
    if suffix not in _OUTPUT_SUFFIXES:
        known = ", ".join(s for s in _OUTPUT_SUFFIXES if s)
        raise ValueError(f"unknown output suffix {suffix!r} (known: {known})")
    return _OUTPUT_SUFFIXES[suffix]


class DeferredOutput:
    """A text sink that holds everything back until :meth:`commit`, then writes through.

    Nothing reaches the target (the file is not even created) before :meth:`commit`, so an
    error found before the first good row leaves no partial output behind. ``path`` ``None``
    or ``-`` is stdout. With ``append``, the commit appends to the file instead of replacing it
    (``--resume``); ``on_commit`` is called once, just before the target is opened.

    Examples:
        >>> import tempfile, pathlib
        >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.csv"
        >>> out = DeferredOutput(target)
        >>> out.write("id,sym\\n")
        >>> target.exists()
        False
        >>> out.commit(); out.write("a,1\\n"); out.close()
        >>> target.read_text()
        'id,sym\\na,1\\n'
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        append: bool = False,
        on_commit: Callable[[], None] | None = None,
    ):
        self.path = path
        self.append = append
        self._on_commit = on_commit
        self._held: list[str] | None = []
        self._stream: IO[str] | None = None

    @property
    def committed(self) -> bool:
        """Whether the output has gone through to the target."""
        return self._held is None

    @property
    def to_stdout(self) -> bool:
        return self.path is None or str(self.path) == "-"

    def write(self, text: str) -> None:
        if self._held is not None:
            self._held.append(text)
        else:
            assert self._stream is not None
            self._guard(self._stream.write, text)

    def commit(self) -> None:
        """Open the target (creating the file) and write what was held; later writes go through."""
        if self._held is None:
            return
        if self._on_commit is not None:
            self._on_commit()
        self._stream = open_output(self.path, append=self.append)
        held, self._held = "".join(self._held), None
        self._guard(self._stream.write, held)

    def flush(self) -> None:
        if self._stream is not None:
            self._guard(self._stream.flush)

    def close(self) -> None:
        """Commit, flush, and close the file (stdout stays open)."""
        self.commit()
        assert self._stream is not None
        self._guard(self._stream.flush)
        if not self.to_stdout:
            self._guard(self._stream.close)

    def _guard(self, call: Callable[..., Any], *args: Any) -> None:
        """Run a write on the file; an error that shows only when writing (a full disk,
        ``/dev/full``) becomes one :class:`InputError` naming the file. Stdout is left as it is
        (a closed pipe is the caller's to handle)."""
        if self.to_stdout:
            call(*args)
            return
        try:
            call(*args)
        except OSError as exc:
            stream, self._stream = self._stream, _Failed()  # type: ignore[assignment]
            with contextlib.suppress(OSError):  # drop what is buffered: no retry at exit
                stream.close()  # type: ignore[union-attr]
            raise InputError(f"cannot write ({exc.strerror or exc})", self.path) from None


class _Failed:
    """Where writes go after a write error: nowhere (the error has been raised once)."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_output(path: str | os.PathLike[str] | None, *, append: bool = False) -> IO[str]:
    """A text stream for ``path`` (``None`` or ``-`` is stdout); missing folders are created.

    Args:
        path: The file.
        append: Append to the file instead of replacing it (``--resume``).

    Raises:
        InputError: The file cannot be created.
    """
    if path is None or str(path) == "-":
        return _streams.out()
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        mode = "a" if append else "w"
        return open(path, mode, encoding="utf-8", newline="")  # noqa: SIM115 - caller closes
    except OSError as exc:
        raise InputError(f"cannot write ({exc.strerror or exc})", path) from None


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), 6)  # NaN -> None (null in JSON)


class ItemWriter:
    """Writes per-item rows as they come, in ``jsonl``, ``csv``, ``tsv``, ``json`` or ``table`` form.

    ``json`` writes ``{"items": [...], "summary": {...}}`` incrementally, so memory stays bounded.
    ``table`` writes fixed-width rows under a header. With ``source`` (several input files
    scored in one run), each ``csv``/``tsv``/``jsonl`` row starts with an ``input`` field naming
    its file, and ``json`` writes ``{"input": ..., "items": [...], "summary": {...}}``;
    ``header=False`` leaves out the csv/tsv header (for the second file on).

    Examples:
        >>> import io
        >>> out = io.StringIO()
        >>> w = ItemWriter(out, "csv")
        >>> w.write("a", 1.0, 0.5, 0.75, False, 0)
        >>> w.close({"cec": 0.75})
        >>> out.getvalue().splitlines()
        ['id,forward,backward,sym,empty,best_ref', 'a,1.000000,0.500000,0.750000,0,0']
    """

    def __init__(
        self,
        stream: Any,
        fmt: str,
        id_width: int = 12,
        *,
        source: str | None = None,
        header: bool = True,
    ):
        if fmt not in ("jsonl", "csv", "tsv", "json", "table"):
            raise ValueError(f"fmt must be jsonl, csv, tsv, json or table, got {fmt!r}")
        self.stream, self.fmt, self.count = stream, fmt, 0
        self.id_width = id_width
        self.source = source
        self._lead = [] if source is None else [source]
        self._csv = (
            csv.writer(stream, lineterminator="\n", delimiter="\t" if fmt == "tsv" else ",")
            if fmt in ("csv", "tsv")
            else None
        )
        if self._csv is not None:
            if header:
                self._csv.writerow([*(["input"] if source is not None else []), *ITEM_COLUMNS])
        elif fmt == "json":
            lead = "" if source is None else f'"input": {json.dumps(source)}, '
            stream.write("{" + lead + '"items": [')
        elif fmt == "table":
            stream.write(f"{'id':<{id_width}}  {'forward':>8}  {'backward':>8}  {'CEC':>8}  note\n")

    def write(
        self, ident: str, forward: float, backward: float, sym: float, empty: bool, best_ref: int
    ) -> None:
        """Write one item's row."""
        if self._csv is not None:
            self._csv.writerow(
                [
                    *self._lead,
                    ident,
                    *(f"{v:.6f}" for v in (forward, backward, sym)),
                    int(empty),
                    best_ref,
                ]
            )
        elif self.fmt in ("jsonl", "json"):
            row = {
                **(
                    {"input": self.source}
                    if self.source is not None and self.fmt == "jsonl"
                    else {}
                ),
                "id": ident,
                "forward": _num(forward),
                "backward": _num(backward),
                "sym": _num(sym),
                "empty": bool(empty),
                "best_ref": int(best_ref),
            }
            if self.fmt == "json":
                self.stream.write(("\n  " if self.count == 0 else ",\n  ") + json.dumps(row))
            else:
                self.stream.write(json.dumps(row) + "\n")
        else:
            shown = ident if len(ident) <= self.id_width else ident[: self.id_width - 1] + "…"
            note = "empty" if empty else (f"best ref {best_ref}" if best_ref else "")
            self.stream.write(
                f"{shown:<{self.id_width}}  {forward:>8.4f}  {backward:>8.4f}  "
                f"{sym:>8.4f}  {note}".rstrip()
                + "\n"
            )
        self.count += 1

    def close(self, summary: dict[str, Any] | None = None, *, end: str = "\n") -> None:
        """Finish the document (``json`` writes the summary here, then ``end``) and flush."""
        if self.fmt == "json":
            self.stream.write(("\n" if self.count else "") + '], "summary": ')
            self.stream.write(json.dumps(summary or {}, indent=2) + "}" + end)
        self.stream.flush()


def _cut_partial_line(path: Path) -> int:
    """Cut a last line that has no newline (a run killed mid-write); return bytes removed."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        pos, step = size, 1 << 16
        while pos > 0:  # find the last newline, reading backwards
            start = max(0, pos - step)
            fh.seek(start)
            block = fh.read(pos - start)
            k = block.rfind(b"\n")
            if k >= 0:
                keep = start + k + 1
                break
            pos = start
        else:
            keep = 0
        fh.truncate(keep)
        return size - keep


def read_item_rows(
    path: str | os.PathLike[str], fmt: str
) -> Iterator[tuple[str, float, float, float, bool]]:
    """Stream the per-item rows of an earlier ``jsonl``, ``csv`` or ``tsv`` output (``--resume``).

    A last line without its newline (the run was killed while writing it) is cut from the file
    first, so appending continues after the last complete row. NaN scores (``null`` in JSONL,
    ``nan`` in CSV) come back as NaN.

    Args:
        path: The output file.
        fmt: ``jsonl``, ``csv`` or ``tsv``.

    Returns:
        An iterator of ``(id, forward, backward, sym, empty)`` per row, in file order.

    Raises:
        InputError: (while iterating) The file holds something other than rows of that format.
    """
    if fmt not in ("jsonl", "csv", "tsv"):
        raise ValueError(f"fmt must be jsonl, csv or tsv, got {fmt!r}")
    p = Path(path)
    _cut_partial_line(p)  # now, not on the first row: the caller may look at the file next
    return _item_rows(p, fmt)


def _item_rows(path: Path, fmt: str) -> Iterator[tuple[str, float, float, float, bool]]:
    def num(value: Any, line: int) -> float:
        if value is None or value == "nan":
            return math.nan
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"not a score: {value!r}", path, line) from None

    with open(path, encoding="utf-8", newline="") as fh:
        if fmt == "jsonl":
            for line_no, raw in enumerate(fh, start=1):
                if not raw.strip():
                    continue
                try:
                    row = json.loads(raw)
                    ident = row["id"]
                    values = [num(row[k], line_no) for k in ("forward", "backward", "sym")]
                    empty = bool(row["empty"])
                except (ValueError, KeyError, TypeError):
                    raise InputError(
                        "not a row of cec score --format jsonl", path, line_no
                    ) from None
                yield str(ident), values[0], values[1], values[2], empty
            return
        reader = csv.reader(fh, delimiter="\t" if fmt == "tsv" else ",")
        header = next(reader, None)
        if header is None:
            return
        if tuple(header) != ITEM_COLUMNS:
            raise InputError(f"not a cec score --format {fmt} file (header {header})", path, 1)
        for row in reader:
            if len(row) != len(ITEM_COLUMNS):
                raise InputError(f"not a row of cec score --format {fmt}", path, reader.line_num)
            fwd, bwd, sym = (num(v, reader.line_num) for v in row[1:4])
            yield row[0], fwd, bwd, sym, row[4] not in ("0", "", "False", "false")
