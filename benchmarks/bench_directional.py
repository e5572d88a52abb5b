"""Direction-aware CEC against Eq. 2: reversals caught, paraphrases left alone.

Three tables:

1. **Written triples** (the ones in tests/test_directional.py): per connective form, Eq. 2 and
   directional scores of a faithful paraphrase and of the causal reversal of a reference.
2. **Real reversals** (e-SNLI test, human explanations): for items whose first explanation
   states exactly one link (found by :mod:`cec.causal`, in one sentence), the reversal is the
   same text with the cause and effect spans swapped in place. Reported: how often the item's
   second human explanation (an honest paraphrase) scores above the reversal, and mean scores.
3. **False alarms** (e-SNLI test, human explanations): explanation 1 vs explanation 2 of the
   same item, both written by people for the same label. How many pairs get a reversed match
   (and lose score)? People rarely explain one item with opposite causal directions, so most
   flags are false alarms; the examples are printed for inspection.
4. **Agreement with people, paired** (``--meta``): the meta-evaluation data of
   benchmarks/meta_eval.py with the same protocol (ROSCOE e-SNLI Spearman/Kendall with Overall
   Quality and Coherency, references = the three human explanations, best kept; e-SNLI test AUC
   on 1,500 positive + 1,500 negative pairs drawn with seed 0; STS-B test Spearman with
   ``splitter="none"``), CEC only, Eq. 2 and directional from one shared encoder, with a paired
   percentile bootstrap 95% CI of the difference (directional minus Eq. 2).

Run (from the project root; reads ../shared/data):
    nice -n 10 python benchmarks/bench_directional.py [--items 3000] [--meta] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # meta_eval's e-SNLI pairs

import cec  # noqa: E402
from cec.causal import find_links  # noqa: E402

SHARED = Path(os.environ.get("CEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def written_triples(eq2: cec.CEC, dirs: cec.CEC) -> list[dict]:
    from test_directional import TRIPLES

    refs = [t[1] for t in TRIPLES]
    gens = [t[2] for t in TRIPLES] + [t[3] for t in TRIPLES]
    a, b = eq2.score(gens, refs + refs), dirs.score(gens, refs + refs)
    n = len(TRIPLES)
    return [
        {
            "form": t[0],
            "eq2_paraphrase": float(a.sym[k]),
            "eq2_reversal": float(a.sym[n + k]),
            "dir_paraphrase": float(b.sym[k]),
            "dir_reversal": float(b.sym[n + k]),
        }
        for k, t in enumerate(TRIPLES)
    ]


def swap_spans(text: str, cause: str, effect: str) -> str | None:
    """``text`` with the cause and effect spans exchanged, or None when they cannot be."""
    low = text.lower()
    i, j = low.find(cause.lower()), low.find(effect.lower())
    if i < 0 or j < 0 or not cause or not effect:
        return None
    (a, la), (b, lb) = sorted([(i, len(cause)), (j, len(effect))])
    if a + la > b:
        return None  # overlapping spans
    first, second = text[a : a + la], text[b : b + lb]
    return text[:a] + second + text[a + la : b] + first + text[b + lb :]


def load_esnli(items: int) -> list[dict]:
    path = SHARED / "esnli" / "esnli_test_3expl.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is absent: this benchmark needs ../shared/data")
    rows = [json.loads(line) for line in path.open()]
    return rows[:items]


def real_reversals(eq2: cec.CEC, dirs: cec.CEC, rows: list[dict], kind: str = "connective") -> dict:
    """First explanations stating exactly one link of ``kind`` ("connective": found with
    ``verbs=False``, the set this benchmark always used; "verb": exactly one link in all, and a
    verb-carried one), reversed by swapping its spans in place."""
    originals, paraphrases, reversals = [], [], []
    for row in rows:
        text = row["explanations"][0]
        found = find_links(eq2.segment(text), verbs=kind == "verb")
        links = [lk for lk in found if not lk.negated]
        if len(links) != 1 or len(links[0].sentences) != 1 or links[0].kind != kind:
            continue
        reversed_text = swap_spans(text, links[0].cause, links[0].effect)
        if reversed_text is None or reversed_text == text:
            continue
        originals.append(text)
        paraphrases.append(row["explanations"][1])
        reversals.append(reversed_text)
    n = len(originals)
    out: dict = {"pairs": n}
    for name, scorer in (("eq2", eq2), ("dir", dirs)):
        res = scorer.score(paraphrases + reversals, originals + originals)
        para, rev = res.sym[:n], res.sym[n:]
        out[name] = {
            "paraphrase_mean": float(para.mean()),
            "reversal_mean": float(rev.mean()),
            "paraphrase_above_reversal": float((para > rev).mean()),
        }
    out["examples"] = [
        {"original": o, "reversal": r} for o, r in list(zip(originals, reversals, strict=True))[:5]
    ]
    return out


def false_alarms(eq2: cec.CEC, dirs: cec.CEC, rows: list[dict]) -> dict:
    gens = [r["explanations"][0] for r in rows]
    refs = [r["explanations"][1] for r in rows]
    a, b = eq2.score(gens, refs), dirs.score(gens, refs)
    flagged = [k for k, d in enumerate(b.details) if d is not None and d.reversed]
    both = sum(
        1
        for d in b.details
        if d is not None
        and any(not lk.negated for lk in d.generated)
        and any(not lk.negated for lk in d.reference)
    )
    return {
        "pairs": len(rows),
        "pairs_with_links_on_both_sides": both,
        "pairs_with_a_reversed_match": len(flagged),
        "mean_eq2": a.mean,
        "mean_dir": b.mean,
        "max_drop": float(np.max(a.sym - b.sym)),
        "examples": [
            {"generated": gens[k], "reference": refs[k], "links": b.details[k].format()}
            for k in flagged[:8]
        ],
    }


def _boot_diff(stat, arrays_a, arrays_b, groups, n_boot: int, seed: int) -> tuple[float, float]:
    """Percentile 95% CI of stat(b) - stat(a), resampling indices within each group."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = [rng.choice(g, size=len(g), replace=True) for g in groups]
        diffs.append(stat(*arrays_b, *idx) - stat(*arrays_a, *idx))
    lo, hi = np.nanpercentile(diffs, [2.5, 97.5])
    return float(lo), float(hi)


def meta(eq2: cec.CEC, dirs: cec.CEC, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    from scipy import stats as sps

    rows_out: list[dict] = []

    def corr(kind):
        f = sps.spearmanr if kind == "spearman" else sps.kendalltau

        def stat(x, y, idx):
            return float(f(x[idx], y[idx])[0])

        return stat

    # ROSCOE
    rows = json.loads(
        (SHARED / "roscoe" / "roscoe_esnli_overall_joined_with_esnli_refs.json").read_text()
    )
    gens, refs = [r["generated"] for r in rows], [r["references"] for r in rows]
    a, b = eq2.score(gens, refs).sym, dirs.score(gens, refs).sym
    changed = int(np.sum(a != b))
    for rating in ("Overall Quality", "Coherency"):
        human = np.array([float(r["human"][rating]) for r in rows])
        for kind in ("spearman", "kendall"):
            st = corr(kind)
            full = np.arange(len(rows))
            lo, hi = _boot_diff(st, (a, human), (b, human), [full], n_boot, seed)
            rows_out.append({
                "check": f"ROSCOE {rating} {kind}", "n": len(rows), "changed": changed,
                "eq2": st(a, human, full), "dir": st(b, human, full), "diff_ci": (lo, hi),
            })  # fmt: skip

    # e-SNLI paraphrase vs non-pair (the pairs of meta_eval.py: 1500 items, seed 0)
    from meta_eval import esnli_pairs

    gens, refs, labels = esnli_pairs(SHARED, 1500, 0)
    a, b = eq2.score(gens, refs).sym, dirs.score(gens, refs).sym
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)

    def auc(x, ip, ineg):
        return float(sps.mannwhitneyu(x[ip], x[ineg]).statistic / (len(ip) * len(ineg)))

    lo, hi = _boot_diff(auc, (a,), (b,), [pos, neg], n_boot, seed)
    rows_out.append({
        "check": "e-SNLI AUC", "n": len(labels), "changed": int(np.sum(a != b)),
        "eq2": auc(a, pos, neg), "dir": auc(b, pos, neg), "diff_ci": (lo, hi),
    })  # fmt: skip

    # STS-B test, one sentence per text
    sa, sb, human = [], [], []
    for line in (SHARED / "stsb" / "sts-test.csv").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        human.append(float(parts[4]))
        sa.append(parts[5])
        sb.append(parts[6])
    human = np.array(human)
    one_eq2 = cec.CEC(eq2.encoder, splitter="none", cache=eq2.cache)
    one_dir = cec.CEC(eq2.encoder, splitter="none", cache=eq2.cache, directional=True)
    a, b = one_eq2.score(sa, sb).sym, one_dir.score(sa, sb).sym
    st = corr("spearman")
    full = np.arange(len(sa))
    lo, hi = _boot_diff(st, (a, human), (b, human), [full], n_boot, seed)
    rows_out.append({
        "check": "STS-B spearman", "n": len(sa), "changed": int(np.sum(a != b)),
        "eq2": st(a, human, full), "dir": st(b, human, full), "diff_ci": (lo, hi),
    })  # fmt: skip
    return rows_out


VERB_DATA = ROOT / "tests" / "data" / "verb_links.jsonl"


def verb_triples(eq2: cec.CEC, dirs: cec.CEC, split: str) -> dict:
    """(original, reversal, paraphrase) triples of tests/data/verb_links.jsonl, one half.

    Each sentence with an annotated verb-carried link is the reference; its reversal swaps the
    first link's cause and effect spans in place; the paraphrases are the other voice (active
    <-> passive) and a reworded one. A paraphrase outranks the reversal when its CEC against the
    reference is higher.
    """
    rows = [json.loads(line) for line in VERB_DATA.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r["split"] == split and r["links"]]
    refs = [r["text"] for r in rows]
    out: dict = {"split": split, "triples": len(rows)}
    for name, scorer in (("eq2", eq2), ("dir", dirs)):
        rev = scorer.score([r["reversal"] for r in rows], refs).sym
        res: dict = {"reversal_mean": float(rev.mean())}
        for kind in ("voice", "reworded"):
            para = scorer.score([r[kind] for r in rows], refs).sym
            res[f"{kind}_mean"] = float(para.mean())
            res[f"{kind}_above_reversal"] = float((para > rev).mean())
            if name == "dir":
                res[f"{kind}_lowered"] = int((para < out["eq2"][f"{kind}_mean_raw"] - 1e-9).sum())
            else:
                res[f"{kind}_mean_raw"] = para
        out[name] = res
    for kind in ("voice", "reworded"):
        out["eq2"].pop(f"{kind}_mean_raw")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=3000, help="e-SNLI test items to use")
    ap.add_argument("--json", type=Path, help="write all tables here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print examples")
    ap.add_argument("--meta", action="store_true", help="also the paired meta-evaluation table")
    ap.add_argument("--only-meta", action="store_true", help="only the meta-evaluation table")
    ap.add_argument(
        "--verbs",
        choices=["dev", "test"],
        help="only the verb-carried triples of tests/data/verb_links.jsonl (this half)",
    )
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", cec.EmptyTextWarning)
    t0 = time.time()
    eq2 = cec.CEC(cache="memory")  # both scorers share the model and the sentence vectors
    dirs = cec.CEC(eq2.encoder, splitter=eq2.splitter, cache=eq2.cache, directional=True)
    report: dict = {}
    if args.verbs:
        vt = verb_triples(eq2, dirs, args.verbs)
        print(
            f"Verb-carried triples, {args.verbs} half: {vt['triples']} (original, reversal, paraphrase)"
        )
        print(
            "| score | reversal mean | other voice mean | voice > reversal | reworded mean | "
            "reworded > reversal |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for name, label in (("eq2", "Eq. 2"), ("dir", "directional")):
            r = vt[name]
            print(
                f"| {label} | {r['reversal_mean']:.3f} | {r['voice_mean']:.3f} | "
                f"{r['voice_above_reversal']:.1%} | {r['reworded_mean']:.3f} | "
                f"{r['reworded_above_reversal']:.1%} |"
            )
        print(
            f"paraphrases lowered by the directional score: voice {vt['dir']['voice_lowered']}, "
            f"reworded {vt['dir']['reworded_lowered']}"
        )
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"verb_triples": vt}, indent=2))
        return 0
    if args.meta or args.only_meta:
        table = meta(eq2, dirs)
        report["meta"] = table
        print("Agreement with people, CEC only (paired; CI = percentile bootstrap of dir - Eq. 2)")
        print("| check | n | pairs changed | Eq. 2 | directional | difference [95% CI] |")
        print("|---|---:|---:|---:|---:|---|")
        for r in table:
            lo, hi = r["diff_ci"]
            print(
                f"| {r['check']} | {r['n']} | {r['changed']} | {r['eq2']:.4f} | {r['dir']:.4f} | "
                f"{r['dir'] - r['eq2']:+.4f} [{lo:+.4f}, {hi:+.4f}] |"
            )
        print()
        if args.only_meta:
            if args.json:
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(report, indent=2))
            return 0

    triples = written_triples(eq2, dirs)
    print("Written triples (tests/test_directional.py): CEC of paraphrase / reversal vs reference")
    print("| form | Eq. 2 paraphrase | Eq. 2 reversal | dir paraphrase | dir reversal |")
    print("|---|---:|---:|---:|---:|")
    for r in triples:
        print(
            f"| {r['form']} | {r['eq2_paraphrase']:.3f} | {r['eq2_reversal']:.3f} | "
            f"{r['dir_paraphrase']:.3f} | {r['dir_reversal']:.3f} |"
        )

    rows = load_esnli(args.items)
    rev = real_reversals(eq2, dirs, rows)
    rev_verb = real_reversals(eq2, dirs, rows, kind="verb")
    for title, r_all in (("connective", rev), ("verb-carried", rev_verb)):
        print(
            f"\nReal reversals (e-SNLI test, first {args.items} items): {r_all['pairs']} "
            f"explanations with one {title} link"
        )
        print("reversal = cause and effect spans swapped; paraphrase = 2nd human explanation")
        print("| score | paraphrase mean | reversal mean | paraphrase > reversal |")
        print("|---|---:|---:|---:|")
        for name, label in (("eq2", "Eq. 2"), ("dir", "directional")):
            r = r_all[name]
            print(
                f"| {label} | {r['paraphrase_mean']:.3f} | {r['reversal_mean']:.3f} | "
                f"{r['paraphrase_above_reversal']:.1%} |"
            )

    fa = false_alarms(eq2, dirs, rows)
    print(f"\nFalse alarms (e-SNLI test, explanation 1 vs 2 of the same item, {fa['pairs']} pairs)")
    print(
        f"links on both sides: {fa['pairs_with_links_on_both_sides']}; reversed match: "
        f"{fa['pairs_with_a_reversed_match']}; mean CEC {fa['mean_eq2']:.4f} (Eq. 2) -> "
        f"{fa['mean_dir']:.4f} (directional); largest drop {fa['max_drop']:.3f}"
    )
    if args.verbose:
        for ex in rev["examples"]:
            print("\n  original:", ex["original"], "\n  reversal:", ex["reversal"])
        for ex in fa["examples"]:
            print("\n  G:", ex["generated"], "\n  R:", ex["reference"])
            print("  " + ex["links"].replace("\n", "\n  "))
    print(f"\n({time.time() - t0:.0f} s; signature {dirs.signature})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    **report,
                    "triples": triples,
                    "real_reversals": rev,
                    "real_verb_reversals": rev_verb,
                    "false_alarms": fa,
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
