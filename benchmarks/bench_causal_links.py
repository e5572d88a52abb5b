"""Precision, recall and F1 of cec.causal link extraction on hand-annotated sentences.

The set is tests/data/causal_links.jsonl: one text per line with the links a person marked
(cause and effect spans; none for texts that state no link). A predicted link counts as correct
when it points the same way as a gold link of the same text and its cause and effect overlap the
gold cause and effect: *strict* needs token F1 >= 0.5 on both spans, *lenient* needs one shared
content word on both. Negated links (reported with ``negated=True``) are not predictions of a
stated link and are left out. A *reversed* error is a prediction whose cause matches the gold
effect and whose effect matches the gold cause (the error the directional score must not make).

Run:
    python benchmarks/bench_causal_links.py [--split dev|heldout|real|all] [--json out.json] [-v]
    python benchmarks/bench_causal_links.py --verbs dev|test [-v]
    python benchmarks/bench_causal_links.py --speed

The connective splits score connective links only (``kind == "connective"``), so verb-carried
links, which that set does not annotate, neither help nor hurt them. ``--verbs`` scores
tests/data/verb_links.jsonl (verb-carried links: 163 sentences with links, 38 without, half dev,
half test): every verb link counts, and a connective link counts when it is an annotated one.

Splits: ``dev`` (written with the patterns), ``heldout`` (written before looking at any output
on it; two fixes followed, so it is no longer strictly held out), ``real`` (40 texts sampled
with a fixed seed from e-SNLI dev explanations and ROSCOE GPT-3 chains, annotated by hand before
running the extractor on them; the texts are read from ../shared/data, not stored here).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cec.causal import find_links  # noqa: E402
from cec.segment import get_splitter  # noqa: E402

DATA = ROOT / "tests" / "data" / "causal_links.jsonl"
VERB_DATA = ROOT / "tests" / "data" / "verb_links.jsonl"
_STOP = {
    *[
        "a",
        "an",
        "the",
        "of",
        "in",
        "on",
        "to",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "and",
        "or",
        "that",
        "which",
        "this",
        "it",
        "its",
    ],
    *["their", "there", "by", "for", "with", "as", "at", "from", "has", "have", "had", "so"],
}


def tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def token_f1(pred: str, gold: str) -> float:
    p, g = tokens(pred), tokens(gold)
    if not p or not g:
        return 0.0
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def content_overlap(pred: str, gold: str) -> bool:
    return bool((set(tokens(pred)) - _STOP) & (set(tokens(gold)) - _STOP))


def span_match(pred: str, gold: str, mode: str) -> bool:
    return token_f1(pred, gold) >= 0.5 if mode == "strict" else content_overlap(pred, gold)


SHARED = Path(os.environ.get("CEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _real_text(row: dict) -> str | None:
    """Rows of split "real" point into ../shared/data (texts are not copied into the repo)."""
    if row["source"].startswith("esnli"):
        path = SHARED / "esnli" / row["source"]
        if not path.is_file():
            return None
        for line in path.open():
            item = json.loads(line)
            if item["idx"] == row["idx"]:
                text = item["explanations"][row["explanation"]]
                break
    else:
        path = SHARED / "roscoe" / row["source"]
        if not path.is_file():
            return None
        text = next(
            r["generated"] for r in json.loads(path.read_text()) if r["id"] == row["roscoe_id"]
        )
    if hashlib.sha1(text.encode()).hexdigest()[:10] != row["text_sha1_prefix"]:
        raise ValueError(f"{row['id']}: the text in {path} is not the one annotated")
    return text


def load(split: str) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    rows = rows if split == "all" else [r for r in rows if r["split"] == split]
    out = []
    for row in rows:
        if "text" not in row:
            text = _real_text(row)
            if text is None:
                print(f"skipping {row['id']}: {SHARED} is absent", file=sys.stderr)
                continue
            row = {**row, "text": text}
        out.append(row)
    return out


def _matches_gold(link, gold: list[dict], mode: str) -> bool:
    return any(
        span_match(link.cause, g["cause"], mode) and span_match(link.effect, g["effect"], mode)
        for g in gold
    )


def evaluate(rows: list[dict], mode: str, verbose: bool = False, kind: str = "connective") -> dict:
    """Score the predicted links of one ``kind`` ("connective" or "verb") against the gold."""
    split = get_splitter(None)
    tp_pred = n_pred = tp_gold = n_gold = reversed_err = 0
    neg_texts = neg_clean = 0
    per_form: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        gold = row["links"]
        preds = [lk for lk in find_links(split(row["text"])) if not lk.negated]
        if kind == "verb":
            # the verb set annotates verb-carried links only: a connective link counts when it
            # is one of them ("Heavy rain triggered landslides") and is left out otherwise
            preds = [lk for lk in preds if lk.kind == "verb" or _matches_gold(lk, gold, mode)]
        else:
            preds = [lk for lk in preds if lk.kind == kind]
        n_pred += len(preds)
        n_gold += len(gold)
        if not gold:
            neg_texts += 1
            neg_clean += not preds
        ok_pred = [
            any(
                span_match(p.cause, g["cause"], mode) and span_match(p.effect, g["effect"], mode)
                for g in gold
            )
            for p in preds
        ]
        ok_gold = [
            any(
                span_match(p.cause, g["cause"], mode) and span_match(p.effect, g["effect"], mode)
                for p in preds
            )
            for g in gold
        ]
        reversed_err += sum(
            any(
                span_match(p.cause, g["effect"], mode)
                and span_match(p.effect, g["cause"], mode)
                and not ok
                for g in gold
            )
            for p, ok in zip(preds, ok_pred, strict=True)
        )
        tp_pred += sum(ok_pred)
        tp_gold += sum(ok_gold)
        per_form[row.get("form", "?")][0] += sum(ok_gold) if gold else int(not preds)
        per_form[row.get("form", "?")][1] += len(gold) if gold else 1
        if verbose and (not all(ok_pred) or not all(ok_gold) or (not gold and preds)):
            print(f"  [{row['id']}] {row['text']}")
            print(f"      gold: {[(g['cause'], g['effect']) for g in gold]}")
            print(f"      pred: {[(p.cause, p.effect) for p in preds]}")
    precision = tp_pred / n_pred if n_pred else float("nan")
    recall = tp_gold / n_gold if n_gold else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "mode": mode,
        "texts": len(rows),
        "gold_links": n_gold,
        "predicted": n_pred,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "reversed_errors": reversed_err,
        "negative_texts": neg_texts,
        "negatives_without_false_link": neg_clean,
    }


def speed(n: int = 3000) -> dict:
    """Milliseconds per sentence of find_links with and without verb links, on the first ``n``
    Climate-FEVER evidence sentences (best of 3 runs)."""
    import time

    path = SHARED / "climate-fever" / "climate-fever.jsonl"
    texts = [e["evidence"] for line in path.open() for e in json.loads(line)["evidences"]][:n]
    out: dict = {"sentences": len(texts)}
    for verbs in (False, True):
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            links = sum(len(find_links([t], verbs=verbs)) for t in texts)
            best = min(best, time.perf_counter() - t0)
        key = "with_verbs" if verbs else "connectives_only"
        out[key] = {"ms_per_sentence": 1e3 * best / len(texts), "links": links}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["dev", "heldout", "real", "all"], default="all")
    ap.add_argument("--json", type=Path, help="write the table as JSON here")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every miss")
    ap.add_argument(
        "--verbs",
        choices=["dev", "test"],
        help="score verb-carried links on tests/data/verb_links.jsonl (this half) instead",
    )
    ap.add_argument("--speed", action="store_true", help="time find_links (verbs on / off)")
    args = ap.parse_args(argv)
    if args.speed:
        r = speed()
        for key in ("connectives_only", "with_verbs"):
            print(
                f"{key}: {r[key]['ms_per_sentence']:.3f} ms/sentence, {r[key]['links']} links "
                f"in {r['sentences']} Climate-FEVER evidence sentences"
            )
        return 0
    table = []
    if args.verbs:
        rows = [json.loads(line) for line in VERB_DATA.read_text().splitlines() if line.strip()]
        rows = [r for r in rows if r["split"] == args.verbs]
        for mode in ("strict", "lenient"):
            row = evaluate(rows, mode, args.verbose and mode == "strict", kind="verb")
            table.append({"split": f"verbs-{args.verbs}", **row})
    splits = [] if args.verbs else ["dev", "heldout", "real", "all"]
    splits = [args.split] if args.split != "all" and not args.verbs else splits
    for s in splits:
        rows = load(s)
        if not rows:
            continue
        for mode in ("strict", "lenient"):
            table.append({"split": s, **evaluate(rows, mode, args.verbose and mode == "strict")})
    head = "| split | match | texts | gold | pred | precision | recall | F1 | reversed | negatives clean |"
    print(head)
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in table:
        print(
            f"| {r['split']} | {r['mode']} | {r['texts']} | {r['gold_links']} | {r['predicted']} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['reversed_errors']} | "
            f"{r['negatives_without_false_link']}/{r['negative_texts']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(table, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
