"""Meta-evaluation: do the metrics agree with people? (real human data in ``../shared/data``)

Three checks, one table:

1. **ROSCOE e-SNLI** (151 GPT-3 step-by-step explanations, one expert rating each of Overall
   Quality and Coherency on 1-5; references = the item's three human e-SNLI explanations):
   Spearman rho, Kendall tau-b and Pearson r of each metric's per-item score with each rating,
   with percentile bootstrap 95% CIs (items resampled), and CEC's Spearman minus each other
   metric's with its CI and a paired permutation p-value: exactly what
   ``cec-distill meta-eval`` computes (this stage calls :mod:`cec_distill.meta_eval`).
2. **e-SNLI test, paraphrase vs non-pair**: for ``--esnli-items`` items drawn with ``--seed``,
   explanation 1 vs explanation 2 of the same item is a positive pair; explanation 1 vs
   explanation 2 of a different random item is a negative pair. ROC AUC of each metric
   (Mann-Whitney U / (n_pos n_neg)) with a stratified percentile bootstrap 95% CI.
3. **STS-B test** (1,379 sentence pairs, human similarity 0-5): Spearman rho of each metric with
   the human score (and Pearson r), through :func:`cec_distill.meta_eval.meta_evaluate`.
   The CEC rows here use ``splitter="none"``, so each text is one sentence and
   CEC is the cosine of the two sentence embeddings (forward = backward = sym).

Metrics: BLEU (sentence BLEU), ROUGE-1/2/L, METEOR, BERTScore (default backbone: embedded
all-MiniLM-L6-v2, layer 5) and CEC (sym, forward, backward), all via
:func:`cec_distill.meta_eval.score_metrics` (the registry of :mod:`cec_distill.metrics`) with
their default settings. Nothing here is tuned to the
result.

Usage (from the project root)::

    nice -n 10 python benchmarks/meta_eval.py            # writes benchmarks/results/meta_eval.json
    nice -n 10 python benchmarks/meta_eval.py --directional --out benchmarks/results/meta_eval_dir.json

Each stage is saved as it completes (``<out>.<stage>.json`` beside ``--out``) and reused by a later
run with the same settings, so ``--stages roscoe``, ``--stages esnli`` and ``--stages stsb`` can run
as three processes and a final run without ``--stages`` merges them and prints the table.
torch runs with one CPU thread by default (``--threads``), which is much faster than two on a
shared, oversubscribed machine.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
from scipy import stats as sps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cec_distill.meta_eval import meta_evaluate, read_ratings, score_metrics  # noqa: E402
from cec_distill.stats import bootstrap_ci  # noqa: E402

COLUMNS = [
    "bleu", "rouge1", "rouge2", "rougeL", "meteor", "bertscore", "cec", "cec_forward",
    "cec_backward",
]  # fmt: skip
LABELS = {
    "bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L",
    "meteor": "METEOR", "bertscore": "BERTScore (F1)", "cec": "CEC (sym)",
    "cec_forward": "CEC forward", "cec_backward": "CEC backward",
}  # fmt: skip


def _auc(pos: np.ndarray, neg: np.ndarray) -> float:
    return float(sps.mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg)))


def _ci(
    data: tuple[np.ndarray, ...], stat: Any, paired: bool, n: int, seed: int
) -> dict[str, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # constant resamples give NaN correlations
        iv = bootstrap_ci(data, stat, paired=paired, n_resamples=n, seed=seed)
    return {"value": iv.estimate, "low": iv.low, "high": iv.high}


def _cells(res: Any, ratings: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """cec_distill.meta_eval's rows in this file's format: by_metric[col][rating][stat] and
    cec_minus[col][rating] (Spearman of CEC minus Spearman of col, with its permutation p)."""
    by_metric: dict[str, Any] = {}
    cec_minus: dict[str, Any] = {}
    for row in res.rows:
        rating = ratings[row["rating"]]
        by_metric.setdefault(row["metric"], {})[rating] = {
            s: row[s] for s in res.meta["statistics"]
        }
        if "against" in row:
            cec_minus.setdefault(row["metric"], {})[rating] = row["against"]["spearman"]
    return by_metric, cec_minus


# --------------------------------------------------------------------------------------------
ROSCOE_FILE = Path("roscoe") / "roscoe_esnli_overall_joined_with_esnli_refs.json"
ROSCOE_RATINGS = {"human.Overall Quality": "Overall Quality", "human.Coherency": "Coherency"}


def roscoe(
    data: Path, opts: dict[str, Any], n_boot: int, seed: int, n_perm: int = 1000
) -> dict[str, Any]:
    """The same as ``cec-distill meta-eval ROSCOE_FILE --human "human.Overall Quality"
    --human human.Coherency --metrics <COLUMNS>`` (rows are items: one rating each)."""
    rated = read_ratings(data / ROSCOE_FILE, list(ROSCOE_RATINGS), references_fields="references")
    scores, signatures = score_metrics(rated.generated, rated.references, COLUMNS, **opts)
    res = meta_evaluate(
        scores, {ROSCOE_RATINGS[h]: v for h, v in rated.human.items()}, against="cec",
        n_bootstrap=n_boot, n_permutations=n_perm, seed=seed,
    )  # fmt: skip
    by_metric, cec_minus = _cells(res, {r: r for r in ROSCOE_RATINGS.values()})
    return {
        "n": len(rated), "signatures": signatures, "by_metric": by_metric,
        "cec_minus": cec_minus, "rating_counts": res.meta["rating_counts"],
        "permutation": res.meta["permutation"],
        "items": {c: np.round(scores[c], 6).tolist() for c in COLUMNS},
    }  # fmt: skip


def esnli_pairs(data: Path, n_items: int, seed: int) -> tuple[list[str], list[str], np.ndarray]:
    rows = [json.loads(line) for line in (data / "esnli" / "esnli_test_3expl.jsonl").open()]
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(rows), size=min(n_items, len(rows)), replace=False)
    other = (idx + rng.integers(1, len(rows), size=len(idx))) % len(rows)  # never the same item
    gens, refs, labels = [], [], []
    for i, j in zip(idx, other, strict=True):
        e1 = rows[i]["explanations"][0]
        gens += [e1, e1]
        refs += [rows[i]["explanations"][1], rows[j]["explanations"][1]]
        labels += [1, 0]
    return gens, refs, np.array(labels)


def esnli(data: Path, opts: dict[str, Any], n_items: int, n_boot: int, seed: int) -> dict[str, Any]:
    gens, refs, labels = esnli_pairs(data, n_items, seed)
    scores, _ = score_metrics(gens, [[r] for r in refs], COLUMNS, **opts)
    out: dict[str, Any] = {
        "n_pos": int(labels.sum()),
        "n_neg": int((1 - labels).sum()),
        "by_metric": {},
    }
    for col in COLUMNS:
        x = scores[col]
        pos, neg = x[labels == 1], x[labels == 0]
        out["by_metric"][col] = {
            "auc": _ci((pos, neg), _auc, False, n_boot, seed),
            "mean_pos": float(pos.mean()),
            "mean_neg": float(neg.mean()),
        }
    return out


def read_stsb(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """STS-B: tab-separated genre, file, year, id, score, s1, s2 (extra columns ignored)."""
    a, b, s = [], [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split("\t")
        if len(parts) < 7:
            raise ValueError(f"{path}:{n}: expected at least 7 tab-separated fields")
        s.append(float(parts[4]))
        a.append(parts[5])
        b.append(parts[6])
    return a, b, np.array(s)


def stsb(data: Path, opts: dict[str, Any], n_boot: int, seed: int) -> dict[str, Any]:
    a, b, human = read_stsb(data / "stsb" / "sts-test.csv")
    one = dict(opts)
    one["cec_options"] = {**opts.get("cec_options", {}), "splitter": "none"}
    scores, signatures = score_metrics(a, [[x] for x in b], COLUMNS, **one)
    res = meta_evaluate(
        scores, {"score": human}, against=None, statistics=("spearman", "pearson"),
        n_bootstrap=n_boot, seed=seed,
    )  # fmt: skip
    by_metric, _ = _cells(res, {"score": "score"})
    return {"n": len(a), "cec_signature": signatures["cec"],
            "by_metric": {c: v["score"] for c, v in by_metric.items()}}  # fmt: skip


# --------------------------------------------------------------------------------------------
def _cell(d: dict[str, float]) -> str:
    return f"{d['value']:.3f} [{d['low']:.2f}, {d['high']:.2f}]"


def table(results: dict[str, Any]) -> str:
    head = [
        "metric", "ROSCOE OQ rho", "ROSCOE OQ tau", "ROSCOE Coh rho", "ROSCOE Coh tau",
        "e-SNLI AUC", "STS-B rho",
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    r, e, s = results["roscoe"], results["esnli"], results["stsb"]
    for col in COLUMNS:
        cells = [LABELS[col]]
        for rating in ("Overall Quality", "Coherency"):
            cells += [_cell(r["by_metric"][col][rating][k]) for k in ("spearman", "kendall")]
        cells.append(_cell(e["by_metric"][col]["auc"]))
        cells.append(_cell(s["by_metric"][col]["spearman"]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


STAGES = ("roscoe", "esnli", "stsb")


def _stage_config(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    keys = {"roscoe": ("bootstrap", "permutations", "seed", "directional"),
            "esnli": ("esnli_items", "bootstrap", "seed", "directional"),
            "stsb": ("bootstrap", "seed", "directional")}[stage]  # fmt: skip
    return {k: getattr(args, k) for k in keys}


def _checkpoint(out: Path, stage: str) -> Path:
    return out.with_name(f"{out.stem}.{stage}.json")


def diff_table(results: dict[str, Any]) -> str:
    """ROSCOE: Spearman of CEC minus Spearman of each other metric, with a paired bootstrap CI
    and the paired permutation p-value (cec_distill.meta_eval)."""
    d = results["roscoe"]["cec_minus"]
    lines = [
        "| CEC rho minus | Overall Quality | p | Coherency | p |",
        "|---|---|---|---|---|",
    ]

    def p(x: dict[str, Any]) -> str:
        return f"{x['p']:.3f}" if "p" in x else "n/a"

    for col in COLUMNS:
        if col in d:
            oq, coh = d[col]["Overall Quality"], d[col]["Coherency"]
            lines.append(f"| {LABELS[col]} | {_cell(oq)} | {p(oq)} | {_cell(coh)} | {p(coh)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "meta_eval.json")
    ap.add_argument(
        "--esnli-items", type=int, default=1500, help="items -> 2x pairs (default 1500)"
    )
    ap.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)"
    )
    ap.add_argument(
        "--permutations", type=int, default=1000,
        help="permutations of the paired test against CEC (ROSCOE; default 1000)",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: fastest on a shared machine)",
    )
    ap.add_argument(
        "--stages",
        default=",".join(STAGES),
        help="comma-separated stages to run (default all); each is saved as it "
        "completes and reused by a later run with the same settings",
    )
    ap.add_argument("--force", action="store_true", help="recompute saved stages")
    ap.add_argument("--directional", action="store_true", help="CEC with directional=True")
    args = ap.parse_args(argv)

    stages = [x.strip() for x in args.stages.split(",") if x.strip()]
    if not stages or any(x not in STAGES for x in stages):
        ap.error(f"--stages: choose from {','.join(STAGES)}")
    if not args.data.is_dir():
        print(f"data folder {args.data} is absent; nothing to do", file=sys.stderr)
        return 2
    cec_options: dict[str, Any] = {}
    if args.directional:
        import cec

        if "directional" not in inspect.signature(cec.CEC).parameters:
            ap.error("--directional: this version of cec.CEC has no 'directional' option")
        cec_options["directional"] = True
    import torch

    torch.set_num_threads(max(1, args.threads))
    opts: dict[str, Any] = {"device": args.device, "cec_options": cec_options}
    logging.getLogger("sacrebleu").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="sacrebleu")

    results: dict[str, Any] = {
        "command": "python benchmarks/meta_eval.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "platform": {"python": platform.python_version(), "machine": platform.machine()},
        "seconds": {},
    }
    runners = {
        "roscoe": lambda: roscoe(args.data, opts, args.bootstrap, args.seed, args.permutations),
        "esnli": lambda: esnli(args.data, opts, args.esnli_items, args.bootstrap, args.seed),
        "stsb": lambda: stsb(args.data, opts, args.bootstrap, args.seed),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in stages:
        ckpt = _checkpoint(args.out, name)
        config = _stage_config(args, name)
        if ckpt.is_file() and not args.force:
            saved = json.loads(ckpt.read_text())
            if saved.get("config") == config:
                results[name], results["seconds"][name] = saved["result"], saved["seconds"]
                print(f"{name}: reused {ckpt}", file=sys.stderr, flush=True)
                continue
        t0 = time.perf_counter()
        results[name] = runners[name]()
        results["seconds"][name] = round(time.perf_counter() - t0, 1)
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps({"config": config, "seconds": results["seconds"][name],
                                   "result": results[name]}) + "\n")  # fmt: skip
        os.replace(tmp, ckpt)
        print(f"{name}: done in {results['seconds'][name]} s", file=sys.stderr, flush=True)

    if any(x not in results for x in STAGES):
        print(f"stages {stages} saved; run all stages to print the table", file=sys.stderr)
        return 0
    results["table_markdown"] = table(results)
    results["diff_table_markdown"] = diff_table(results)
    print(results["table_markdown"])
    print("\n" + results["diff_table_markdown"])
    print(
        f"\nROSCOE n={results['roscoe']['n']}; e-SNLI {results['esnli']['n_pos']} positive + "
        f"{results['esnli']['n_neg']} negative pairs; STS-B n={results['stsb']['n']}; "
        f"95% percentile bootstrap CIs ({args.bootstrap} resamples, seed {args.seed})"
    )
    for m, sig in results["roscoe"]["signatures"].items():
        print(f"  {m}: {sig}")
    print(f"  STS-B cec: {results['stsb']['cec_signature']}")
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
