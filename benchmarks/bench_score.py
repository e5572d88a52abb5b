"""Speed benchmark of CEC scoring on explanation-shaped Climate-FEVER text.

One run measures, interleaved (min over repeats, so the ratios hold on a busy machine):

1. cec (default fp32 path) against the physical floor: the floating-point work of encoding each
   distinct sentence once (tokens x FLOP per token / this machine's measured fp32 matmul rate),
   and against the measured time to encode the distinct sentences once;
2. the naive per-pair Algorithm 1 of the paper (encode each pair's sentences separately, Python
   loops) and bert_score with the same MiniLM backbone;
3. the opt-in precision paths (bf16, int8, onnx, onnx-int8) against fp32: time, mean |CEC change|
   on the benchmark pairs, and STS-B test Spearman change;
4. streaming scaling: 1k / 10k / 100k pairs through ``CEC.score_iter``, each size in its own
   process, with pairs per second and peak RSS;
5. start-up: ``cec score examples/pairs.jsonl`` in a fresh process (best of 3; wall and
   user+sys CPU seconds) with the fast start (fp32 from the checked ONNX Runtime copy, no
   transformers import) and without it (torch + transformers), beside bert_score's CLI on the
   same 4 pairs; which heavy modules the fast start imported (none: no torch, no transformers);
   and the throughput of the fast start's fp32 against torch fp32 on the speed set and, through
   ``cec score`` in fresh processes, on the first ``--large-rows`` rows of ``--large``.

The report records the CPU flags (AVX2, AVX-512, VNNI, bf16, AMX) and, per precision path,
which of the targets (>= 2x fp32, mean |dCEC| <= 0.01, |dSpearman| <= 0.005) it meets here.

Prints tables and writes ``benchmarks/results/bench_score.json``. Needs ``../shared/data``.

    HF_HUB_OFFLINE=1 python benchmarks/bench_score.py                  # everything
    HF_HUB_OFFLINE=1 python benchmarks/bench_score.py --quick          # small smoke run
"""

from __future__ import annotations

import argparse
import csv
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# "fp32" in the sections below is the torch fp32 path; the start-up section turns the fast
# start (cec._fast: a checked ONNX Runtime copy) on where it measures it
os.environ.setdefault("CEC_FAST_START", "0")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("CEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"

import cec  # noqa: E402
from cec.encode import cpu_features  # noqa: E402


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
def load_claims() -> list[dict]:
    path = DATA / "climate-fever" / "climate-fever.jsonl"
    if not path.is_file():
        sys.exit(f"bench_score: needs the real data at {path} (../shared/data); not found")
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def benchmark_pairs(claims: list[dict], n_claims: int) -> list[tuple[str, str]]:
    """Explanation-shaped pairs: reference = the claim's evidence, generated = claim + part of it.

    For each claim: reference is its five evidence sentences; generated is the claim followed
    by three of its evidence sentences (rotated by claim index) and one sentence of the next
    claim's evidence (a distractor), so pairs share many, but not all, sentences.
    """
    pairs = []
    for i, rec in enumerate(claims[:n_claims]):
        ev = [e["evidence"] for e in rec["evidences"]]
        nxt = claims[(i + 1) % len(claims)]["evidences"][i % 5]["evidence"]
        part = [ev[(i + k) % 5] for k in range(3)]
        pairs.append((" ".join([rec["claim"], *part, nxt]), " ".join(ev)))
    return pairs


def stream_pairs(claims: list[dict], n: int, seed: int = 0):
    """``n`` pairs built lazily (never all in memory) by resampling Climate-FEVER sentences."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        c = int(rng.integers(len(claims)))
        ev = [e["evidence"] for e in claims[c]["evidences"]]
        k = int(rng.integers(1, 4))
        part = [ev[j] for j in rng.choice(5, size=k, replace=False)]
        other = claims[int(rng.integers(len(claims)))]["evidences"][int(rng.integers(5))]
        ref = [ev[j] for j in rng.permutation(5)[: int(rng.integers(2, 6))]]
        yield " ".join([claims[c]["claim"], *part, other["evidence"]]), " ".join(ref)


def stsb_test() -> tuple[list[str], list[str], np.ndarray]:
    s1, s2, gold = [], [], []
    with open(DATA / "stsb" / "sts-test.csv", encoding="utf-8") as fh:
        for row in csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                gold.append(float(row[4]))
                s1.append(row[5])
                s2.append(row[6])
    return s1, s2, np.asarray(gold)


# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------
def matmul_gflops(n: int = 2048, reps: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b)[0] for _ in range(reps))
    return 2 * n**3 / best / 1e9


def gemm_seconds(enc, sentences) -> float:
    """Time of the model's Linear GEMMs alone, at the shapes the encoder really runs.

    The same token-budget batches as ``enc.encode(sentences)``; for each batch, each Linear of
    the model (pooler excluded) as one ``torch.mm`` of the padded token rows by the weight,
    on random inputs: the part of a forward pass the FLOP floor counts, at the model's sizes
    (K = 384 or 1536) instead of 2048^3. Anything above this is the memory-bound rest.
    """
    ids, _ = enc.tokenize(sentences)
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    weights = [
        mod.weight.detach()
        for name, mod in enc.model.named_modules()
        if isinstance(mod, torch.nn.Linear) and "pooler" not in name
    ]
    rows = [len(idx) * int(lengths[idx].max()) for idx in enc._batches(lengths)]
    inputs = {k: torch.randn(max(rows), k) for k in {w.shape[1] for w in weights}}
    total = 0.0
    with torch.inference_mode():
        for n in rows:
            for w in weights:
                x = inputs[w.shape[1]][:n]
                t0 = time.perf_counter()
                torch.mm(x, w.t())
                total += time.perf_counter() - t0
    return total


def compiled_encode_seconds(sentences, repeats: int) -> tuple[float, float]:
    """(warm-up s, best encode s) with the transformer under ``torch.compile`` (inductor,
    freezing, dynamic shapes): the fused-epilogue route the fp32 default does not take."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    enc = cec.encode.SentenceTransformerEncoder(
        str(cec.encode.default_model_dir()), torch.device("cpu")
    )
    module = enc.model[0]
    module.model = torch.compile(module.model, dynamic=True)
    t0 = time.perf_counter()
    enc.encode(sentences[:64])
    enc.encode(sentences[-64:])
    warm = time.perf_counter() - t0
    best = min(_timed(lambda: enc.encode(sentences))[0] for _ in range(repeats))
    return warm, best


def _timed(fn):
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def flop_per_token(model) -> float:
    """2 x the multiply-adds of the Linear layers one token goes through (attention excluded)."""
    total = 0
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.Linear) and "pooler" not in name:  # pooler: [CLS] only
            total += mod.in_features * mod.out_features
    return 2.0 * total


def naive_algorithm1(model, splitter, pairs):
    """The paper's Algorithm 1 as usually written: per pair, embed, loop over sentences."""
    out = []
    for g, r in pairs:
        gs, rs = splitter(g), splitter(r)
        G = model.encode(gs, normalize_embeddings=True, show_progress_bar=False)
        A = model.encode(rs, normalize_embeddings=True, show_progress_bar=False)
        fwd = [max(float(np.dot(gi, aj)) for aj in A) for gi in G]
        bwd = [max(float(np.dot(aj, gi)) for gi in G) for aj in A]
        out.append((sum(fwd) / len(fwd) + sum(bwd) / len(bwd)) / 2)
    return np.asarray(out)


def make_bertscore(model_dir: str):
    from bert_score import BERTScorer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BERTScorer(model_type=model_dir, num_layers=6, batch_size=64, device="cpu")


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def stsb_spearman(scorer, s1, s2, gold) -> float:
    e1, e2 = scorer.encode(s1), scorer.encode(s2)
    return spearman((e1 * e2).sum(1).numpy(), gold)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (VmHWM: unlike ru_maxrss, not inherited across the
    fork + exec that started it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
def section_speed(args, claims, report):
    pairs = benchmark_pairs(claims, args.claims)
    gens, refs = [g for g, _ in pairs], [r for _, r in pairs]
    base = cec.CEC(device="cpu")
    enc = base.encoder
    sentences = list(dict.fromkeys(s for t in (*gens, *refs) for s in base.segment(t)))
    occurrences = sum(len(base.segment(t)) for t in (*gens, *refs))
    ids, _ = enc.tokenize(sentences)
    tokens = sum(len(x) for x in ids)
    fpt = flop_per_token(enc.model)
    base.score(gens[:4], refs[:4])  # warm-up: model loaded, threads up
    times: dict[str, list[float]] = {
        "cec": [],
        "encode_once": [],
        "matmul_gflops": [],
        "gemm_only": [],
    }
    result = None
    for _ in range(args.repeats):  # interleaved: each repeat sees the same machine state
        times["matmul_gflops"].append(matmul_gflops())
        dt, result = _timed(lambda: base.score(gens, refs))
        times["cec"].append(dt)
        times["encode_once"].append(_timed(lambda: enc.encode(sentences))[0])
        times["gemm_only"].append(gemm_seconds(enc, sentences))
    gflops = max(times["matmul_gflops"])
    floor = tokens * fpt / (gflops * 1e9)
    row = {
        "pairs": len(pairs),
        "texts": len(gens) + len(refs),
        "sentence_occurrences": occurrences,
        "unique_sentences": len(sentences),
        "tokens": tokens,
        "flop_per_token": fpt,
        "matmul_gflops": gflops,
        "floor_s": floor,
        "encode_once_s": min(times["encode_once"]),
        "cec_s": min(times["cec"]),
        "gemm_only_s": min(times["gemm_only"]),
        "all_times": times,
        "padding": enc.stats["padded_tokens"] / max(enc.stats["tokens"], 1),
        "threads": torch.get_num_threads(),
    }
    row["cec_over_floor"] = row["cec_s"] / floor
    row["cec_over_encode_once"] = row["cec_s"] / row["encode_once_s"]
    row["gemm_only_over_floor"] = row["gemm_only_s"] / floor
    if args.compile:
        row["compile_warmup_s"], row["compile_encode_s"] = compiled_encode_seconds(
            sentences, args.repeats
        )
    if not args.skip_naive:
        sub = pairs[: args.naive_pairs] if args.naive_pairs else pairs
        dt, naive = _timed(lambda: naive_algorithm1(enc.model, base.splitter, sub))
        cec_sub = base.score([g for g, _ in sub], [r for _, r in sub]).sym
        row["naive_pairs"] = len(sub)
        row["naive_s"] = dt * len(pairs) / len(sub)  # scaled to the full set if subsampled
        row["naive_max_abs_diff"] = float(np.abs(naive - cec_sub).max())
        row["naive_over_cec"] = row["naive_s"] / row["cec_s"]
    if not args.skip_bertscore:
        bs = make_bertscore(str(cec.encode.default_model_dir()))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bs.score(gens[:4], refs[:4])
            row["bertscore_s"] = min(
                _timed(lambda: bs.score(gens, refs))[0] for _ in range(max(1, args.repeats - 1))
            )
        row["bertscore_over_cec"] = row["bertscore_s"] / row["cec_s"]
    report["speed"] = row
    report["speed_signature"] = str(result.signature)
    print_speed(row)
    return base, pairs


def print_speed(row):
    print(
        f"\n== speed: {row['pairs']} pairs, {row['texts']} texts, {row['sentence_occurrences']} "
        f"sentence occurrences, {row['unique_sentences']} unique sentences, {row['tokens']:,} "
        f"tokens encoded (padding x{row['padding']:.3f}), {row['threads']} torch threads"
    )
    print(
        f"   floor = {row['tokens']:,} tokens x {row['flop_per_token'] / 1e6:.1f} MFLOP / "
        f"{row['matmul_gflops']:.1f} GFLOP/s (fp32 2048^2 matmul here) = {row['floor_s']:.2f} s"
    )
    lines = [
        ("FLOP floor (computed)", row["floor_s"]),
        ("the Linear GEMMs alone, model shapes", row["gemm_only_s"]),
        ("encode unique sentences once", row["encode_once_s"]),
        ("cec (segment+dedupe+encode+kernel)", row["cec_s"]),
    ]
    if "compile_encode_s" in row:
        lines.append(("encode once, torch.compile (after warm-up)", row["compile_encode_s"]))
    if "naive_s" in row:
        lines.append((f"naive Algorithm 1 ({row['naive_pairs']} pairs, scaled)", row["naive_s"]))
    if "bertscore_s" in row:
        lines.append(("bert_score, same MiniLM backbone", row["bertscore_s"]))
    print(f"   {'method':40s} {'seconds':>9s} {'/ floor':>8s} {'/ cec':>7s}")
    for name, t in lines:
        print(f"   {name:40s} {t:9.2f} {t / row['floor_s']:8.2f} {t / row['cec_s']:7.2f}")
    if "compile_warmup_s" in row:
        print(
            f"   torch.compile warm-up (first batches, both shapes): {row['compile_warmup_s']:.1f} s"
        )
    if "naive_max_abs_diff" in row:
        print(f"   naive vs cec max |diff| = {row['naive_max_abs_diff']:.2e}")


def section_precision(args, claims, base, pairs, report):
    gens, refs = [g for g, _ in pairs], [r for _, r in pairs]
    s1, s2, gold = stsb_test()
    base_sym = base.score(gens, refs).sym
    base_sts = stsb_spearman(base, s1, s2, gold)
    rows = []
    print(
        f"\n== precision paths vs fp32 ({len(pairs)} pairs; STS-B test, fp32 Spearman "
        f"{base_sts:.4f}); targets: speedup >= 2, mean |dCEC| <= 0.01, |dSpearman| <= 0.005"
    )
    print(
        f"   {'path':10s} {'fp32 s':>7s} {'path s':>7s} {'speedup':>8s} {'mean|dCEC|':>11s} "
        f"{'max|dCEC|':>10s} {'dSpearman':>10s}  all targets",
        flush=True,
    )
    for prec in args.precisions:
        if prec == "fp32":
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fast = cec.CEC(device="cpu", precision=prec)
                fast.score(gens[:4], refs[:4])  # load, export/quantise once, warm up
        except (ValueError, RuntimeError, ImportError) as exc:
            rows.append({"precision": prec, "error": str(exc)})
            print(f"   {prec:10s} unavailable here: {exc}", flush=True)
            continue
        t32, tp = [], []
        sym = None
        for _ in range(args.repeats):  # interleave fp32 and this path
            t32.append(_timed(lambda: base.score(gens, refs))[0])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt, res = _timed(lambda fast=fast: fast.score(gens, refs))
            tp.append(dt)
            sym = res.sym
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sts = stsb_spearman(fast, s1, s2, gold)
        r = {
            "precision": prec,
            "fp32_s": min(t32),
            "path_s": min(tp),
            "speedup": min(t32) / min(tp),
            "mean_abs_cec_change": float(np.abs(sym - base_sym).mean()),
            "max_abs_cec_change": float(np.abs(sym - base_sym).max()),
            "stsb_spearman": sts,
            "stsb_spearman_fp32": base_sts,
            "stsb_change": sts - base_sts,
            "signature": str(res.signature),
            "all_fp32_s": t32,
            "all_path_s": tp,
        }
        r["targets"] = {  # per target, on this machine (report["cpu_features"])
            "speedup_2x": bool(r["speedup"] >= 2),
            "mean_abs_dcec_0.01": bool(r["mean_abs_cec_change"] <= 0.01),
            "abs_dspearman_0.005": bool(abs(r["stsb_change"]) <= 0.005),
        }
        r["ok"] = all(r["targets"].values())
        rows.append(r)
        print(
            f"   {r['precision']:10s} {r['fp32_s']:7.2f} {r['path_s']:7.2f} {r['speedup']:8.2f} "
            f"{r['mean_abs_cec_change']:11.4f} {r['max_abs_cec_change']:10.4f} "
            f"{r['stsb_change']:+10.4f}  {'yes' if r['ok'] else 'no'} "
            f"({', '.join(k for k, v in r['targets'].items() if not v) or 'all met'})",
            flush=True,
        )
        del fast
        gc.collect()
    report["precision"] = {"stsb_spearman_fp32": base_sts, "rows": rows}


def _fresh_run(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and user+sys CPU seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-800:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def section_startup(args, claims, report):
    """Fresh-process start-up of `cec score` (fast start on/off) and of bert_score's CLI."""
    import shutil
    import tempfile

    example = ROOT / "examples" / "pairs.jsonl"
    items = [json.loads(x) for x in example.read_text(encoding="utf-8").splitlines() if x]
    tmp = Path(tempfile.mkdtemp(prefix="cec_startup_"))
    (tmp / "cand.txt").write_text("".join(r["prediction"] + "\n" for r in items), "utf-8")
    (tmp / "ref.txt").write_text("".join(r["reference"] + "\n" for r in items), "utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cec_cmd = [shutil.which("cec") or "cec", "score", str(example), "--format", "json", "-q"]
    variants = {
        "cec, fast start (fp32 via the checked ONNX copy)": (cec_cmd, {"CEC_FAST_START": "1"}),
        "cec, torch + transformers (CEC_FAST_START=0)": (cec_cmd, {"CEC_FAST_START": "0"}),
    }
    bs_cli = shutil.which("bert-score")
    if bs_cli and not args.skip_bertscore:
        model_dir = str(cec.encode.default_model_dir())
        variants["bert_score CLI, same MiniLM"] = (
            [bs_cli, "-r", str(tmp / "ref.txt"), "-c", str(tmp / "cand.txt")]
            + ["-m", model_dir, "-l", "6"],
            {},
        )
    # the first fast-start run prepares the checked copy if it is not there yet (not timed)
    _fresh_run(cec_cmd, {**env, "CEC_FAST_START": "1"})
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    outputs = {}
    for _ in range(3):  # interleaved, best of 3
        for name, (cmd, extra) in variants.items():
            times[name].append(_fresh_run(cmd, {**env, **extra}))
    for name, (cmd, extra) in variants.items():
        if name.startswith("cec"):
            proc = subprocess.run(cmd, env={**env, **extra}, capture_output=True, text=True)
            outputs[name] = json.loads(proc.stdout)
    rows = []
    print("\n== start-up: a fresh process on examples/pairs.jsonl (4 pairs), best of 3")
    print(f"   {'command':52s} {'wall s':>7s} {'user+sys s':>11s}")
    for name, runs in times.items():
        wall, cpu = min(w for w, _ in runs), min(c for _, c in runs)
        rows.append({"command": name, "wall_s": wall, "cpu_s": cpu, "all": runs})
        print(f"   {name:52s} {wall:7.2f} {cpu:11.2f}")
    fast_out, slow_out = (outputs[k] for k in list(outputs)[:2])
    same = {
        "signature_equal": fast_out["summary"]["signature"] == slow_out["summary"]["signature"],
        "max_abs_item_diff": max(
            abs(a["sym"] - b["sym"])
            for a, b in zip(fast_out["items"], slow_out["items"], strict=True)
        ),
        "cec_diff": abs(fast_out["summary"]["cec"] - slow_out["summary"]["cec"]),
    }
    print(f"   fast start vs torch: {same}")
    # throughput of the two fp32 paths on the speed set (interleaved, min of repeats)
    pairs = benchmark_pairs(claims, args.claims)
    gens, refs = [g for g, _ in pairs], [r for _, r in pairs]
    os.environ["CEC_FAST_START"] = "1"
    fast = cec.CEC(device="cpu")
    fast.score(gens[:4], refs[:4])
    os.environ["CEC_FAST_START"] = "0"
    torch_path = cec.CEC(device="cpu")
    torch_path.score(gens[:4], refs[:4])
    t_fast, t_torch = [], []
    for _ in range(args.repeats):
        dt, rf = _timed(lambda: fast.score(gens, refs))
        t_fast.append(dt)
        dt, rt = _timed(lambda: torch_path.score(gens, refs))
        t_torch.append(dt)
    tp = {
        "fast_start_used": bool(fast.encoder._fast),
        "fast_s": min(t_fast),
        "torch_s": min(t_torch),
        "torch_over_fast": min(t_torch) / min(t_fast),
        "max_abs_diff": float(np.abs(rf.sym - rt.sym).max()),
        "pairs": len(pairs),
    }
    print(
        f"   fp32 throughput on {len(pairs)} pairs: fast start {tp['fast_s']:.2f} s, torch "
        f"{tp['torch_s']:.2f} s (torch/fast {tp['torch_over_fast']:.2f}; max |d| "
        f"{tp['max_abs_diff']:.1e}; fast start used: {tp['fast_start_used']})"
    )
    imports = _fast_start_imports(cec_cmd, env)
    print(f"   heavy modules the fast start imported: {imports or 'none'}")
    large = _large_input(args, cec_cmd, env, tmp)
    report["startup"] = {
        "rows": rows,
        "same_output": same,
        "throughput": tp,
        "fast_start_imports": imports,
        "large_input": large,
    }
    shutil.rmtree(tmp, ignore_errors=True)


_IMPORTS_PROBE = """
import sys
from cec.cli import main
main(sys.argv[1:])
heavy = ("torch", "transformers", "sentence_transformers", "sklearn", "pandas")
print("\\nLOADED " + ",".join(m for m in heavy if m in sys.modules), file=sys.stderr)
"""


def _fast_start_imports(cec_cmd: list[str], env: dict[str, str]) -> list[str]:
    """The heavy modules a fresh fast-start `cec score` imports (none is the goal)."""
    cmd = [sys.executable, "-c", _IMPORTS_PROBE, *cec_cmd[1:]]
    proc = subprocess.run(cmd, env={**env, "CEC_FAST_START": "1"}, capture_output=True, text=True)
    line = [x for x in proc.stderr.splitlines() if x.startswith("LOADED")][-1]
    return [m for m in line.removeprefix("LOADED").strip().split(",") if m]


def _large_input(args, cec_cmd: list[str], env: dict[str, str], tmp: Path) -> dict | None:
    """`cec score` on the first rows of a large JSONL file: fast start against torch fp32
    (fresh processes, interleaved, best of ``--repeats``; wall and user+sys CPU seconds)."""
    if not args.large or not Path(args.large).is_file():
        return None
    src = tmp / "large.jsonl"
    with open(args.large, encoding="utf-8") as fh, open(src, "w", encoding="utf-8") as out:
        for line, _ in zip(fh, range(args.large_rows), strict=False):
            out.write(line)
    base = [cec_cmd[0], "score", str(src), "-q"]
    runs: dict[str, list[tuple[float, float]]] = {"fast": [], "torch": []}
    for _ in range(args.repeats):
        for kind, flag in (("fast", "1"), ("torch", "0")):
            cmd = [*base, "-o", str(tmp / f"large-{kind}.csv")]
            runs[kind].append(_fresh_run(cmd, {**env, "CEC_FAST_START": flag}))
    syms = {}
    for kind in runs:
        with open(tmp / f"large-{kind}.csv", encoding="utf-8") as fh:
            syms[kind] = np.array([float(r["sym"]) for r in csv.DictReader(fh)])
    res = {
        "file": str(args.large),
        "rows": int(len(syms["fast"])),
        "fast_wall_s": min(w for w, _ in runs["fast"]),
        "fast_cpu_s": min(c for _, c in runs["fast"]),
        "torch_wall_s": min(w for w, _ in runs["torch"]),
        "torch_cpu_s": min(c for _, c in runs["torch"]),
        "max_abs_diff": float(np.abs(syms["fast"] - syms["torch"]).max()),
        "all": runs,
    }
    print(
        f"   {res['rows']} rows of {Path(args.large).name} through `cec score`: fast start "
        f"{res['fast_wall_s']:.2f} s wall / {res['fast_cpu_s']:.2f} s CPU, torch fp32 "
        f"{res['torch_wall_s']:.2f} s wall / {res['torch_cpu_s']:.2f} s CPU "
        f"(max |d| {res['max_abs_diff']:.1e}, rows rounded to 6 decimals)"
    )
    return res


def scale_child(n: int, precision: str, chunk: int) -> None:
    """Runs in its own process: stream n pairs through score_iter, write scores, report."""
    claims = load_claims()
    scorer = cec.CEC(device="cpu", precision=precision)
    scorer.score("Warm up.", "Warm up.")
    rss_loaded = peak_rss_mb()
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"cec_scale_{os.getpid()}.jsonl"
    t0 = time.perf_counter()
    total = 0.0
    count = 0
    with open(out, "w", encoding="utf-8") as fh:
        for ps in scorer.score_iter(stream_pairs(claims, n), chunk_size=chunk):
            fh.write(f'{{"sym": {ps.sym:.6f}}}\n')
            total += ps.sym
            count += 1
    dt = time.perf_counter() - t0
    out.unlink()
    stats = scorer.encoder.stats
    print(
        json.dumps(
            {
                "pairs": count,
                "seconds": dt,
                "pairs_per_s": count / dt,
                "mean_sym": total / count,
                "peak_rss_mb": peak_rss_mb(),
                "rss_after_load_mb": rss_loaded,
                "sentences_encoded": stats["sentences"] - 1,
                "tokens_encoded": stats["tokens"],
            }
        )
    )


def section_scaling(args, report):
    rows = []
    print(
        f"\n== streaming scaling (score_iter, chunk {args.chunk}, one process per size; pairs "
        "resampled from Climate-FEVER)"
    )
    print(
        f"   {'pairs':>8s} {'seconds':>8s} {'pairs/s':>8s} {'peak RSS MB':>12s} "
        f"{'RSS after load':>15s} {'sentences encoded':>18s}"
    )
    for n in args.scaling:
        cmd = [
            sys.executable,
            __file__,
            "--_scale-child",
            str(n),
            "--chunk",
            str(args.chunk),
            "--scale-precision",
            args.scale_precision,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            rows.append({"pairs": n, "error": proc.stderr[-500:]})
            continue
        row = json.loads(proc.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(
            f"   {row['pairs']:8d} {row['seconds']:8.1f} {row['pairs_per_s']:8.0f} "
            f"{row['peak_rss_mb']:12.0f} {row['rss_after_load_mb']:15.0f} "
            f"{row['sentences_encoded']:18d}"
        )
    report["scaling"] = rows


def section_exactness(args, claims, report):
    """How much a vector depends on its batch companions, and what bit-exactness would cost.

    docs/reporting.md "How many digits are exact": 30 sentences encoded alone and inside a batch
    of the others (how many vectors differ, by how much), and the CPU time of encoding every
    sentence in a shape of its own (one at a time) against batched encoding, the cheapest way to
    make a vector independent of its companions bit for bit.
    """
    scorer = cec.CEC(device="cpu")
    enc = scorer.encoder
    sents = [e["evidence"] for c in claims for e in c["evidences"]][: max(60, args.claims)]
    probe, rest = sents[:30], sents[30:]
    alone = np.stack([np.asarray(enc.encode_array([s]))[0] for s in probe])
    inside = np.asarray(enc.encode_array(rest[: len(rest) // 2] + probe + rest[len(rest) // 2 :]))
    inside = inside[len(rest) // 2 : len(rest) // 2 + len(probe)]
    d = np.abs(alone - inside).max(axis=1)
    enc.encode_array(sents[:32])  # warm
    t = time.process_time()
    enc.encode_array(sents)
    batched = time.process_time() - t
    t = time.process_time()
    for s in sents:
        enc.encode_array([s])
    single = time.process_time() - t
    row = {
        "sentences": len(sents),
        "probe_vectors_differing": int((d > 0).sum()),
        "probe_max_abs_diff": float(d.max()),
        "batched_cpu_s": batched,
        "one_at_a_time_cpu_s": single,
        "one_at_a_time_cost_ratio": single / batched,
    }
    report["exactness"] = row
    print(
        f"\nexactness: {row['probe_vectors_differing']}/30 vectors differ alone vs in a batch of "
        f"{len(sents)} (max |d| {row['probe_max_abs_diff']:.1e}); encoding one sentence at a "
        f"time costs {row['one_at_a_time_cost_ratio']:.2f}x the CPU of batched encoding"
    )


def machine_kind(feats: dict[str, bool]) -> str:
    """A short name of the CPU kind for the per-machine tables of docs/performance.md."""
    if not feats.get("avx2"):
        return "no AVX2"
    if not feats.get("avx512"):
        return "AVX2" + (" + VNNI" if feats.get("vnni") else "") + " (no AVX-512)"
    parts = ["AVX-512"] + [k.upper() for k in ("vnni", "bf16", "amx") if feats.get(k)]
    missing = [k.upper() for k in ("vnni", "bf16", "amx") if not feats.get(k)]
    return " + ".join(parts) + (f" (no {', '.join(missing)})" if missing else "")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--claims", type=int, default=500, help="claims -> pairs in the speed set")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats (min is kept)")
    ap.add_argument(
        "--naive-pairs",
        type=int,
        default=0,
        help="run the naive loop on this many pairs and scale (0: all)",
    )
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-bertscore", action="store_true")
    ap.add_argument(
        "--compile", action="store_true", help="also time encoding under torch.compile (slow)"
    )
    ap.add_argument("--precisions", default="fp32,bf16,int8,onnx,onnx-int8")
    ap.add_argument("--scaling", default="1000,10000,100000", help="pair counts; '' to skip")
    ap.add_argument("--chunk", type=int, default=2048)
    ap.add_argument("--scale-precision", default="fp32")
    ap.add_argument(
        "--sections",
        default="speed,precision,scaling,startup",
        help="comma-separated: speed, precision, scaling, startup, exactness",
    )
    ap.add_argument(
        "--large",
        default="/tmp/cec_million.jsonl",
        help="start-up section: a large JSONL file for the fast start's throughput ('' to skip)",
    )
    ap.add_argument("--large-rows", type=int, default=1500, help="rows of --large to score")
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--out", type=Path, default=RESULTS / "bench_score.json")
    ap.add_argument("--_scale-child", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they finish, also in a log
    if args._scale_child:
        scale_child(args._scale_child, args.scale_precision, args.chunk)
        return
    args.precisions = [p for p in args.precisions.split(",") if p]
    args.scaling = [int(x) for x in args.scaling.split(",") if x]
    if args.quick:
        args.claims, args.repeats, args.naive_pairs = 60, 2, 30
        args.scaling = [1000]
    sections = set(args.sections.split(","))
    feats = cpu_features()
    report = {
        "cec_version": cec.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_features": feats,
        "machine_kind": machine_kind(feats),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "load_avg_start": os.getloadavg(),
        "argv": sys.argv[1:],
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(
        f"cec {cec.__version__}, torch {torch.__version__} ({report['torch_cpu_capability']}), "
        f"{os.cpu_count()} CPUs, features {feats} ({report['machine_kind']}), "
        f"load {report['load_avg_start']}"
    )
    claims = load_claims()
    base = pairs = None
    if "speed" in sections or "precision" in sections:
        base, pairs = section_speed(args, claims, report)
    if "precision" in sections:
        section_precision(args, claims, base, pairs, report)
    if "scaling" in sections and args.scaling:
        del base
        gc.collect()
        section_scaling(args, report)
    if "startup" in sections:
        section_startup(args, claims, report)
    if "exactness" in sections:
        section_exactness(args, claims, report)
    report["load_avg_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
