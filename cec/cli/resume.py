"""``cec score --resume``: the run record beside a row output, and the check against it."""

from __future__ import annotations

import json
from pathlib import Path

from cec.io import InputError

__all__ = ["RESUME_FORMATS", "run_record", "check_run_record"]

#: Output formats whose per-item rows a stopped run can be resumed from.
RESUME_FORMATS = ("jsonl", "csv", "tsv")


def run_record(output: Path | None, out_fmt: str, summary_only: bool) -> Path | None:
    """The file beside a per-item row output that records the run's signature (``--resume``)."""
    if output is None or str(output) == "-" or summary_only or out_fmt not in RESUME_FORMATS:
        return None
    return output.with_name(output.name + ".cec-run.json")


def check_run_record(record: Path, signature: str, output: Path) -> None:
    """Refuse to resume rows that another scorer (model, options, version) wrote."""
    try:
        earlier = json.loads(record.read_text(encoding="utf-8"))["signature"]
    except (OSError, ValueError, KeyError, TypeError):
        raise InputError(
            f"--resume: {output} has no readable run record {record.name} (written by cec score "
            "at the start of a run), so its rows cannot be checked; score again without --resume"
        ) from None
    if earlier != signature:
        raise InputError(
            f"--resume: the rows in {output} were scored with signature {earlier}, but these "
            f"options give {signature}; resume with the same options or score again"
        )
