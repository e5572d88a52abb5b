"""Streaming readers and writers for scoring files: JSONL, CSV/TSV and parallel plain-text files.

Readers yield one :class:`Record` at a time (bounded memory, whatever the file size) and raise
:class:`InputError` naming the file and line of anything wrong. Writers take per-item rows as
they are produced.

Examples:
    >>> import json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.jsonl").write_text(json.dumps({"prediction": "A.", "reference": "B."}) + "\\n")
    >>> [(r.id, r.prediction, r.references) for r in read_records(d / "p.jsonl")]
    [('1', 'A.', ['B.'])]
"""

from __future__ import annotations

from cec.io.items import ITEM_COLUMNS as ITEM_COLUMNS  # not in __all__, as before
from cec.io.items import (
    OUTPUT_FORMATS,
    DeferredOutput,
    ItemWriter,
    open_output,
    output_format_for,
    read_item_rows,
)
from cec.io.records import (
    FORMATS,
    InputError,
    Record,
    guess_format,
    read_records,
    read_text_pairs,
)
from cec.io.records import check_readable as check_readable  # not in __all__, as before

__all__ = [
    "InputError",
    "Record",
    "FORMATS",
    "guess_format",
    "read_records",
    "read_text_pairs",
    "ItemWriter",
    "DeferredOutput",
    "OUTPUT_FORMATS",
    "output_format_for",
    "open_output",
    "read_item_rows",
]
