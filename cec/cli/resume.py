"""``cec score --resume``: the run record beside a row output, and the checks against it.

The run record (``OUTPUT.cec-run.json``) pins what the rows in the output were scored from: the
scorer's signature and one digest per input item (its id, prediction and references), in input
order. A resumed run must give the same signature and, item by item, the same input for every
row already in the output; the first item that differs is named.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cec._files import atomic_target
from cec.io import InputError, Record

__all__ = ["RESUME_FORMATS", "RunRecord", "check_run_record", "row_digest", "run_record"]

#: Output formats whose per-item rows a stopped run can be resumed from.
RESUME_FORMATS = ("jsonl", "csv", "tsv")
RECORD_FORMAT = "cec-run-2"
_DIGEST = 8  # bytes of blake2b per item (16 hex characters in the record)


def run_record(output: Path | None, out_fmt: str, summary_only: bool) -> Path | None:
    """The file beside a per-item row output that records the run (``--resume``)."""
    if output is None or str(output) == "-" or summary_only or out_fmt not in RESUME_FORMATS:
        return None
    return output.with_name(output.name + ".cec-run.json")


def row_digest(rec: Record) -> bytes:
    """The digest of one input item: its id, prediction and references (not where it came
    from, so a moved or renamed file with the same items resumes)."""
    fields = (rec.id, rec.prediction, *rec.references)
    h = hashlib.blake2b(len(fields).to_bytes(8, "little"), digest_size=_DIGEST)
    for text in fields:  # each field length-prefixed: no two items give the same bytes
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


class RunRecord:
    """The digests of the input items a run has read, and the record file that holds them.

    A file input's items are all added by the checking pass before scoring (one write, when the
    output is created); items read from stdin are added as they are read, and :meth:`cover`
    rewrites the record before rows of items it does not yet hold can reach the output. The
    digests are kept packed (8 bytes an item: 8 MB for a million items).
    """

    def __init__(self, path: Path):
        self.path = path
        self.digests = bytearray()
        self.signature = ""
        self._saved = -1

    def __len__(self) -> int:
        return len(self.digests) // _DIGEST

    def add(self, rec: Record) -> None:
        self.digests += row_digest(rec)

    def consume(self, index: int, rec: Record) -> None:
        """Item ``index`` (0-based) as the scoring pass reads it: added, or checked against
        what the checking pass read (a file that changed in between is refused)."""
        digest = row_digest(rec)
        if index < len(self):
            if self.digests[index * _DIGEST : (index + 1) * _DIGEST] != digest:
                raise InputError(
                    f"item {rec.id!r} changed while the input was scored (it is not what the "
                    "first reading found); score it again when the file is complete",
                    rec.source or None,
                )
        else:
            self.digests += digest

    def save(self, signature: str) -> None:
        """Write the record (atomically: a killed run leaves the old one or the new one)."""
        self.signature = signature
        data = {
            "format": RECORD_FORMAT,
            "signature": signature,
            "row_digest": "blake2b-64 of id, prediction, references (length-prefixed UTF-8)",
            "rows": len(self),
            "digests": self.digests.hex(),
        }
        tmp: Path | None = None
        try:
            tmp = atomic_target(self.path)  # makes a missing folder (--run-record in a new one)
            tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise InputError(f"cannot write the run record ({exc.strerror or exc})", self.path) from None
        self._saved = len(self)

    def cover(self) -> None:
        """Rewrite the record if items were read since it was written (stdin)."""
        if self._saved >= 0 and len(self) > self._saved:
            self.save(self.signature)


def check_run_record(record: Path, signature: str, output: Path) -> bytes:
    """Refuse to resume rows that another scorer (model, options, version) wrote; return the
    digests of the input items the stopped run was scoring."""
    try:
        data = json.loads(record.read_text(encoding="utf-8"))
        earlier = data["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"--resume: {output} has no readable run record {record.name} (written by cec score "
            "at the start of a run), so its rows cannot be checked; score again without --resume"
        ) from None
    digests = data.get("digests") if data.get("format") == RECORD_FORMAT else None
    try:
        packed = bytes.fromhex(digests) if isinstance(digests, str) else None
    except ValueError:
        packed = None
    if packed is None or len(packed) % _DIGEST:
        raise InputError(
            f"--resume: the run record {record.name} of {output} does not pin the input the rows "
            "were scored from (an earlier cec wrote it, or it was edited), so its rows cannot be "
            "checked; score again without --resume"
        )
    if earlier != signature:
        raise InputError(
            f"--resume: the rows in {output} were scored with signature {earlier}, but these "
            f"options give {signature}; resume with the same options or score again"
        )
    return packed


def check_resumed_row(n: int, rec: Record, earlier: bytes, output: Path | None) -> None:
    """Row ``n`` (1-based) of the stopped run's output must come from input item ``n``."""
    if n * _DIGEST > len(earlier):
        raise InputError(
            f"--resume: {output} has more rows than its run record pins "
            f"({len(earlier) // _DIGEST}); score again without --resume"
        )
    if row_digest(rec) != earlier[(n - 1) * _DIGEST : n * _DIGEST]:
        raise InputError(
            f"--resume: item {n} of the input (id {rec.id!r}) is not the item row {n} of "
            f"{output} was scored from (other text or references); not the same input: resume "
            "with the input of the stopped run, or score again without --resume",
            rec.source or None,
        )
