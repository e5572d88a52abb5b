"""Write the corpus of the shipped rescaling baseline to build/esnli-test-expl-2000.txt.

One e-SNLI test explanation (the first of three) per item, for the first 2,000 items with a
premise not seen before (items that share a premise are about the same picture, so they are not
"unrelated"). e-SNLI is MIT-licensed (OanaMariaCamburu/e-SNLI); the source file is
../shared/data/esnli/esnli_test_3expl.jsonl. The corpus is derived from the shared data each
time, never kept in the repository (only the baseline made from it is shipped).

Then the baseline itself::

    python benchmarks/make_baseline_corpus.py
    cec baseline build/esnli-test-expl-2000.txt --name esnli-test-expl-2000 \\
        -o cec/baselines/all-MiniLM-L6-v2.json

Usage: ``make_baseline_corpus.py [SOURCE [TARGET]]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "esnli" / "esnli_test_3expl.jsonl"
TARGET = ROOT / "build" / "esnli-test-expl-2000.txt"
N = 2000


def corpus_lines(source: Path, n: int = N) -> list[str]:
    """The first explanation of the first ``n`` e-SNLI items with a premise not seen before."""
    seen: set[str] = set()
    lines: list[str] = []
    with open(source, encoding="utf-8") as fh:
        for raw in fh:
            item = json.loads(raw)
            text = " ".join(item["explanations"][0].split())
            if item["premise"] in seen or not text:
                continue
            seen.add(item["premise"])
            lines.append(text)
            if len(lines) == n:
                break
    return lines


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else TARGET
    if not source.is_file():
        sys.stderr.write(f"error: {source} not found (the shared e-SNLI data)\n")
        return 2
    lines = corpus_lines(source)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    print(f"wrote {len(lines)} explanations to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
