"""Compare sentence splitters: accuracy on the hand-made case set, speed, and linearity.

Accuracy is measured on ``tests/data/segment_cases.jsonl`` (one case a line: ``text`` and the
``expected`` sentence list a careful human would produce). Sentences are compared after collapsing
runs of whitespace to one space, so only the boundaries (and dropped or added characters) count.

- ``exact``: share of cases whose whole sentence list matches; also per class (the case's
  ``category``: ``enumerations``, ``name_punct``, ``number_signs``, ...), printed as a second
  table.
- ``must``: share of the cases marked ``must`` (the categories the issue names) that match.
- boundary precision / recall / F1: a boundary is the offset, in the stream of non-whitespace
  characters, where one sentence ends and the next begins; predicted and expected boundary sets
  are compared per case and the counts are summed over all cases.

On real text, the same corpus gives two more figures: ``CF join R``, the share of the joins
between evidence sentences that the splitter finds (each is a true boundary), and ``CF inner``,
boundaries it puts inside one evidence item, per item (some items hold two sentences, so this is
not all error, but lower is better when join recall is equal).

``--extra-cases PATH`` scores another case file of the same format as well (a suite kept out
of the repository, for instance), reported as ``extra``.

Speed is measured on a realistic corpus: the five Climate-FEVER evidence sentences of each claim
joined into one paragraph (``../shared/data/climate-fever/climate-fever.jsonl``), each paragraph
split by its own call, as the scorer does, in one pass (nupunkt keeps LRU caches of token
properties and memoizes boundary decisions; the bench clears the decisions before every timed
call, see ``cold``). Linearity: one long text of
n, 2n, 4n and 8n characters (best of ``--lin-repeats``); the ratios t(2n)/t(n), t(4n)/t(2n),
t(8n)/t(4n) should be about 2 for a linear-time splitter.

Run (the machine is shared, so lower the priority)::

    nice -n 10 python benchmarks/bench_segment.py

It prints one table and writes ``benchmarks/results/segment.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cec.segment import get_splitter  # noqa: E402

CASES = ROOT / "tests" / "data" / "segment_cases.jsonl"
CLIMATE_FEVER = ROOT.parent / "shared" / "data" / "climate-fever" / "climate-fever.jsonl"
RESULTS = ROOT / "benchmarks" / "results" / "segment.json"
_WS = re.compile(r"\s+")


def load_cases(path: Path = CASES) -> list[dict]:
    """Read the case set (one JSON object a line)."""
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def normalise(sentences: list[str]) -> list[str]:
    """Collapse whitespace runs to one space and strip each sentence."""
    return [_WS.sub(" ", s).strip() for s in sentences]


def boundaries(sentences: list[str]) -> set[int]:
    """Offsets in the non-whitespace character stream where a sentence ends (last excluded)."""
    out: set[int] = set()
    pos = 0
    for s in sentences[:-1]:
        pos += len(_WS.sub("", s))
        out.add(pos)
    return out


def accuracy(split, cases: list[dict]) -> dict:
    """Exact-match rates and boundary precision/recall/F1 of ``split`` on ``cases``."""
    exact = must_ok = must_n = tp = fp = fn = 0
    failures: list[dict] = []
    per_class: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for case in cases:
        got = normalise(split(case["text"]))
        want = normalise(case["expected"])
        ok = got == want
        exact += ok
        per_class[case.get("category", "-")][0] += ok
        per_class[case.get("category", "-")][1] += 1
        if case.get("must", True):
            must_n += 1
            must_ok += ok
        if not ok:
            failures.append({"id": case["id"], "got": got, "expected": want})
        b_got, b_want = boundaries(got), boundaries(want)
        tp += len(b_got & b_want)
        fp += len(b_got - b_want)
        fn += len(b_want - b_got)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "cases": len(cases),
        "exact": exact / len(cases),
        "exact_count": exact,
        "per_class": {k: {"exact": v[0], "cases": v[1]} for k, v in sorted(per_class.items())},
        "must": must_ok / must_n if must_n else 1.0,
        "must_failed": sum(1 for f in failures if _is_must(f["id"], cases)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "failures": failures,
    }


def _is_must(case_id: str, cases: list[dict]) -> bool:
    return any(c["id"] == case_id and c.get("must", True) for c in cases)


def corpus(path: Path = CLIMATE_FEVER, limit: int | None = None) -> list[list[str]]:
    """The five evidence sentences of each Climate-FEVER claim (one paragraph each)."""
    items: list[list[str]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            items.append([e["evidence"].strip() for e in item["evidences"]])
            if limit and len(items) >= limit:
                break
    return items


def join_scores(items: list[list[str]], outputs: list[list[str]]) -> dict:
    """Recall of the joins between evidence sentences, and boundaries inside an evidence item.

    Every join between two evidence sentences of a paragraph is a true sentence boundary; a
    boundary inside one evidence item may be right (some items hold two sentences) or wrong.
    """
    found = total = inner = 0
    for evidence, got in zip(items, outputs, strict=True):
        joins = boundaries(evidence)
        predicted = boundaries(got)
        total += len(joins)
        found += len(joins & predicted)
        inner += len(predicted - joins)
    n_items = sum(map(len, items))
    return {"join_recall": found / total, "inner_per_item": inner / n_items}


def cold() -> None:
    """Forget nupunkt's memoized boundary decisions, so that no timing reuses earlier work.

    nupunkt memoizes per-token decisions on the shared tokenizer (used by ``"nupunkt"`` and
    ``"cec"``); without this the second splitter timed, or the second call on the same text,
    would be flattered.
    """
    get_splitter("nupunkt").engine.__self__.clear_decision_cache()


def best_time(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn``, each from cold nupunkt caches."""
    best = float("inf")
    for _ in range(repeats):
        cold()
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(split, paragraphs: list[str], repeats: int) -> tuple[float, float, list[list[str]]]:
    """Characters and sentences (as this splitter cuts them) per second over the corpus, one
    call per paragraph; and the outputs."""
    chars = sum(map(len, paragraphs))
    outputs: list[list[str]] = []

    def run() -> None:
        outputs[:] = [split(p) for p in paragraphs]

    seconds = best_time(run, repeats)
    return chars / seconds, sum(map(len, outputs)) / seconds, outputs


def cpu() -> dict:
    """The CPU model and the vector extensions it has (from /proc/cpuinfo where there is one)."""
    info = {"processor": platform.processor(), "model": "", "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and not info["model"]:
            info["model"] = value.strip()
        if key.strip() == "flags" and not info["flags"]:
            wanted = ("sse4_2", "avx", "avx2", "avx512f", "avx512bw", "avx512_vnni", "amx_tile")
            info["flags"] = [f for f in value.split() if f in wanted]
    return info


def linearity(split, paragraphs: list[str], n: int, repeats: int) -> dict:
    """Time one text of n, 2n, 4n, 8n characters; report the times and successive ratios."""
    long_text = " ".join(paragraphs)
    while len(long_text) < 8 * n:
        long_text = long_text + " " + long_text
    times = {}
    for k in (1, 2, 4, 8):
        text = long_text[: k * n]
        times[k * n] = best_time(lambda text=text: split(text), repeats)
    sizes = sorted(times)
    ratios = [times[b] / times[a] for a, b in zip(sizes, sizes[1:], strict=False)]
    return {"seconds": {str(k): v for k, v in times.items()}, "ratios": ratios}


ADVERSARIAL = {
    "one long word": "a",
    "lower-case stops": "ab. Cd ",
    "inline bullets": "• ab ",
    "enumeration starts": "x: 1) a ",
    "! before lower case": "ab! cd ",
    "number signs": "No. 1 ",
    "pronoun I": "you and I. A ",
    "dotted numbers": "a 1.2.3. A ",
    "unit stops": "2 m. A ",
    "spaced semicolons": "a ; ",
    "short lines": "x\n",
    "hard-wrapped lines": "word of the\n",
    "list items": "- a.\n",
}


def adversarial(split, n: int, repeats: int) -> dict:
    """Linearity on repetitive inputs that would expose quadratic rules (one long block each)."""
    out = {}
    for label, unit in ADVERSARIAL.items():
        unit_text = unit * (8 * n // len(unit) + 1)
        out[label] = linearity(split, [unit_text], n, repeats)["ratios"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--splitters",
        nargs="+",
        default=[
            "cec",
            "nupunkt",
            "punkt+rules",
            "punkt",
            "pysbd+rules",
            "pysbd",
            "newline",
            "none",
        ],
        help="splitter names to compare (any name get_splitter accepts)",
    )
    parser.add_argument("--paragraphs", type=int, default=None, help="limit the speed corpus")
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="passes over the speed corpus (best is kept); later passes hit nupunkt's token caches",
    )
    parser.add_argument(
        "--n", type=int, default=20_000, help="smallest size of the linearity check"
    )
    parser.add_argument("--lin-repeats", type=int, default=3, help="linearity timing repeats")
    parser.add_argument(
        "--adversarial",
        nargs="*",
        default=["cec"],
        help="splitters to time on repetitive worst-case inputs (n to 8n characters)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument(
        "--extra-cases",
        type=Path,
        default=None,
        help="another case file (same JSONL format) to score, reported as 'extra'",
    )
    args = parser.parse_args(argv)

    cases = load_cases()
    extra = load_cases(args.extra_cases) if args.extra_cases else None
    if not CLIMATE_FEVER.is_file():
        raise SystemExit(f"speed corpus {CLIMATE_FEVER} is absent")
    items = corpus(limit=args.paragraphs)
    paragraphs = [" ".join(evidence) for evidence in items]
    header = (
        f"{'splitter':<12} {'label':<26} {'exact':>6} {'must':>6} {'P':>6} {'R':>6} {'F1':>6} "
        f"{'CF join R':>9} {'CF inner':>8} {'kchar/s':>8} {'sent/s':>8} "
        f"{'t2n/tn':>7} {'t4n/t2n':>7} {'t8n/t4n':>7}"
    )
    print(
        f"{len(cases)} cases ({sum(c.get('must', True) for c in cases)} must-pass); "
        f"speed corpus {len(paragraphs)} paragraphs, {sum(map(len, paragraphs)):,} chars; "
        f"linearity n={args.n:,}"
    )
    print(header)
    print("-" * len(header), flush=True)
    rows = {}
    for name in args.splitters:
        split = get_splitter(name)
        split("Warm-up. Loads the model.")
        r = accuracy(split, cases)
        r["label"] = split.label
        r["chars_per_s"], r["sentences_per_s"], outputs = speed(split, paragraphs, args.repeats)
        if extra is not None:  # counts and ids only: the file's texts stay out of the results
            scored = accuracy(split, extra)
            r["extra"] = {
                "cases": scored["cases"],
                "exact_count": scored["exact_count"],
                "failed_ids": [f["id"] for f in scored["failures"]],
            }
        r["climate_fever"] = join_scores(items, outputs)
        r["linearity"] = linearity(split, paragraphs, args.n, args.lin_repeats)
        rows[name] = r
        ratios = r["linearity"]["ratios"]
        print(
            f"{name:<12} {r['label']:<26} {r['exact']:>6.3f} {r['must']:>6.3f} "
            f"{r['precision']:>6.3f} {r['recall']:>6.3f} {r['f1']:>6.3f} "
            f"{r['climate_fever']['join_recall']:>9.3f} {r['climate_fever']['inner_per_item']:>8.3f} "
            f"{r['chars_per_s'] / 1000:>8.0f} {r['sentences_per_s']:>8.0f} "
            + " ".join(f"{x:>7.2f}" for x in ratios),
            flush=True,
        )
    classes = sorted({c.get("category", "-") for c in cases})
    print("exact per class (cases exact / cases):")
    print(f"  {'class':<22} {'n':>3} " + " ".join(f"{name[:11]:>11}" for name in rows))
    for cls in classes:
        counts = [rows[name]["per_class"][cls] for name in rows]
        print(
            f"  {cls:<22} {counts[0]['cases']:>3} "
            + " ".join(f"{c['exact'] / c['cases']:>11.2f}" for c in counts)
        )
    if extra is not None:
        print(
            f"extra cases ({args.extra_cases.name}, {len(extra)}): "
            + ", ".join(f"{name} {r['extra']['exact_count']}" for name, r in rows.items())
        )
    worst = {}
    for name in args.adversarial:
        worst[name] = adversarial(get_splitter(name), args.n, args.lin_repeats)
        print(f"worst-case inputs, {name} (t2n/tn t4n/t2n t8n/t4n):")
        for label, ratios in worst[name].items():
            print(f"  {label:<20} " + " ".join(f"{x:>6.2f}" for x in ratios), flush=True)
    if args.show_failures:
        for name, r in rows.items():
            for f in r["failures"]:
                print(f"{name} {f['id']}: got {f['got']} expected {f['expected']}")

    report = {
        "command": " ".join(
            [
                "nice -n 10 python benchmarks/bench_segment.py",
                *(sys.argv[1:] if argv is None else argv),
            ]
        ),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu(),
        "cases": len(cases),
        "corpus_paragraphs": len(paragraphs),
        "corpus_chars": sum(map(len, paragraphs)),
        "linearity_n": args.n,
        "splitters": rows,
        "adversarial": worst,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
