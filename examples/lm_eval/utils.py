"""Functions the task YAML names with ``!function`` (lm-eval loads this file by its path).

The scorer is built when lm-eval imports this file, at task load: a bad CEC option here fails
before any generation. Change the options in the ``make_process_results`` call.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cec.integrations.lm_eval import make_process_results, signature

__all__ = ["load_docs", "process_results", "signature"]

DATA = Path(__file__).resolve().with_name("esnli_explain.jsonl")

# CEC options pass through here: model=..., splitter=..., empty=..., precision=..., directional=...
process_results = make_process_results(references="references")


def load_docs(**kwargs: Any) -> dict[str, Any]:
    """The task's documents, found beside this file (so any working directory works)."""
    import datasets

    with DATA.open(encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}
