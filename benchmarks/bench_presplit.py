"""Pre-split reasoning chains: does cec score the user's own steps? (issue 18)

On ROSCOE's 151 GPT-3 step-by-step chains for e-SNLI items (one step a line, three human
references each; ``../shared/data/roscoe/roscoe_esnli_overall_joined_with_esnli_refs.json``),
score the chains four ways that should all be Eq. 2 on the lines as the user split them:

- ``callable``: ``splitter=lambda t: t.split("\\n")``;
- ``lines``: the named ``"lines"`` splitter;
- ``segmented``: :func:`cec.score_segmented` on the lists of lines;
- ``old-blocks``: the callable run the way cec ran callables before issue 18 (cec's line-block
  step first, the callable on each block: ``Splitter(..., blocks=True)``),

and compare each with an independent Eq. 2: every step embedded alone, Python loops over the
cosines, best of the three references. Printed: per way, how many items differ from Eq. 2 by
more than 1e-6 and the largest difference; and how many texts the old block step changes, on
these chains and on Climate-FEVER's evidence sentences given one a line
(``../shared/data/climate-fever/climate-fever.jsonl``; no model needed for that count).

Run::

    nice -n 10 python benchmarks/bench_presplit.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cec  # noqa: E402
from cec.segment import Splitter  # noqa: E402

ROSCOE = (
    ROOT.parent / "shared" / "data" / "roscoe" / "roscoe_esnli_overall_joined_with_esnli_refs.json"
)
CLIMATE_FEVER = ROOT.parent / "shared" / "data" / "climate-fever" / "climate-fever.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "presplit.json"


def steps(text: str) -> list[str]:
    """The user's split: one step a line, blank lines dropped."""
    return [line for line in text.split("\n") if line.strip()]


def eq2(vec: dict[str, np.ndarray], gen: list[str], refs: list[list[str]]) -> float:
    """Eq. 2 written out with loops; the best reference is kept."""
    best = -np.inf
    for ref in refs:
        fwd = sum(max(float(vec[g] @ vec[r]) for r in ref) for g in gen) / len(gen)
        bwd = sum(max(float(vec[g] @ vec[r]) for g in gen) for r in ref) / len(ref)
        best = max(best, (fwd + bwd) / 2)
    return best


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROSCOE)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if not args.data.is_file():
        raise SystemExit(f"data file {args.data} is absent")
    items = json.loads(args.data.read_text(encoding="utf-8"))
    gens = [it["generated"] for it in items]
    refs = [it["references"] for it in items]

    on_newlines = lambda t: t.split("\n")  # noqa: E731 - the issue's user code, as written
    old_split = Splitter("old-blocks", on_newlines, blocks=True)
    cf_changed = cf_total = 0
    if CLIMATE_FEVER.is_file():
        with CLIMATE_FEVER.open(encoding="utf-8") as fh:
            for line in fh:
                evidence = [e["evidence"] for e in json.loads(line)["evidences"]]
                cf_total += 1
                kept = [s.strip() for s in evidence if s.strip()]
                cf_changed += old_split("\n".join(evidence)) != kept
        print(
            f"Climate-FEVER evidence, one sentence a line: the old block step changes "
            f"{cf_changed} of {cf_total} texts",
            flush=True,
        )

    base = cec.CEC(device="cpu")
    ways = {
        "callable": cec.CEC(base.encoder, splitter=on_newlines).score(gens, refs),
        "lines": cec.CEC(base.encoder, splitter="lines").score(gens, refs),
        "segmented": base.score_segmented(
            [steps(g) for g in gens], [[steps(r) for r in rs] for rs in refs]
        ),
        "old-blocks": cec.CEC(
            base.encoder, splitter=Splitter("old-blocks", on_newlines, blocks=True)
        ).score(gens, refs),
    }
    sentences = sorted({s for t in [*gens, *(r for rs in refs for r in rs)] for s in steps(t)})
    vec = {}
    for s in sentences:  # one at a time: no batching shared with the scorer
        v = base.encode([s]).double().cpu().numpy()[0]
        vec[s] = v / np.linalg.norm(v)
    expected = np.array(
        [eq2(vec, steps(g), [steps(r) for r in rs]) for g, rs in zip(gens, refs, strict=True)]
    )
    changed = sum(old_split(g) != [s.strip() for s in steps(g)] for g in gens)
    print(
        f"{len(items)} ROSCOE e-SNLI chains, {sum(len(steps(g)) for g in gens)} steps, "
        f"{len(sentences)} distinct sentences; the old block step changes {changed} chains"
    )
    print(f"{'way':<11} {'signature seg':<34} {'differ>1e-6':>11} {'max |d|':>9} {'mean CEC':>9}")
    rows = {}
    for name, result in ways.items():
        diff = np.abs(result.sym - expected)
        rows[name] = {
            "seg": result.signature.splitter,
            "differ": int((diff > 1e-6).sum()),
            "max_abs_diff": float(diff.max()),
            "mean": float(result.mean),
        }
        r = rows[name]
        print(
            f"{name:<11} {r['seg']:<34} {r['differ']:>11} {r['max_abs_diff']:>9.2e} "
            f"{r['mean']:>9.4f}"
        )
    report = {
        "command": "nice -n 10 python benchmarks/bench_presplit.py",
        "items": len(items),
        "chains_changed_by_block_step": int(changed),
        "climate_fever_changed_by_block_step": [int(cf_changed), cf_total],
        "ways": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
