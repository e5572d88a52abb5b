"""Write the corpus of the shipped rescaling baseline: cec/baselines/esnli-test-expl-2000.txt.

One e-SNLI test explanation (the first of three) per item, for the first 2,000 items with a
premise not seen before (items that share a premise are about the same picture, so they are not
"unrelated"). e-SNLI is MIT-licensed (OanaMariaCamburu/e-SNLI); the source file is
../shared/data/esnli/esnli_test_3expl.jsonl.

Then the baseline itself::

    python benchmarks/make_baseline_corpus.py
    cec baseline cec/baselines/esnli-test-expl-2000.txt --name esnli-test-expl-2000 \\
        -o cec/baselines/all-MiniLM-L6-v2.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "esnli" / "esnli_test_3expl.jsonl"
TARGET = ROOT / "cec" / "baselines" / "esnli-test-expl-2000.txt"
N = 2000


def main() -> int:
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SOURCE
    if not source.is_file():
        sys.stderr.write(f"error: {source} not found (the shared e-SNLI data)\n")
        return 2
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
            if len(lines) == N:
                break
    TARGET.write_text("".join(t + "\n" for t in lines), encoding="utf-8")
    print(f"wrote {len(lines)} explanations to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
