"""A million pairs through ``cec score`` and ``CEC.score_iter``: throughput and peak RSS over time.

1. Writes (once) a JSONL file of ``--pairs`` Climate-FEVER-derived pairs. Every pair has new
   sentences: the generated text is the claim and one of its evidence sentences, each reworded
   with the pair's number ("In case 123, ...", "Source 123 notes that ..."), plus a distractor
   sentence of another claim; the reference is 2-5 of the claim's evidence sentences. So the
   encoder sees about two new sentences per pair (a million pairs: two million distinct
   generated sentences), and no text repeats.
2. ``--mode cli``: runs ``cec score FILE --format jsonl -o OUT -q`` in a child process and samples
   its RSS (and the rows on disk) every ``--sample`` seconds. With ``--max-seconds`` the child
   is killed (SIGKILL) at that time, the rows on disk are checked (complete, in input order),
   and ``--resume`` is run for ``--resume-seconds`` to show it continues after the last row.
   ``--mode iter`` does the same with ``CEC.score_iter`` over the file in a child process.
3. ``--ray N``: scores the first N items of the file with Ray Data on a local 2-worker Ray
   instance and compares them with the rows the single-process run wrote.

Prints a table of the samples and writes ``benchmarks/results/bench_million.json``.

    python benchmarks/bench_million.py --mode cli                       # the whole million
    python benchmarks/bench_million.py --mode cli --max-seconds 1200 --resume-seconds 120
    python benchmarks/bench_million.py --mode iter --max-seconds 600 --ray 2000
    python benchmarks/bench_million.py --mode resume --resume-seconds 600   # continue a killed cli run
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text


def write_pairs(path: Path, n: int, seed: int = 0) -> None:
    """Write ``n`` pairs to ``path`` (streamed; never all in memory)."""
    import numpy as np

    src = DATA / "climate-fever" / "climate-fever.jsonl"
    if not src.is_file():
        sys.exit(f"bench_million: needs the real data at {src} (../shared/data); not found")
    with open(src, encoding="utf-8") as fh:
        claims = [json.loads(line) for line in fh]
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        for i in range(n):
            c = claims[int(rng.integers(len(claims)))]
            ev = [e["evidence"] for e in c["evidences"]]
            j = int(rng.integers(5))
            other = claims[int(rng.integers(len(claims)))]["evidences"][int(rng.integers(5))]
            gen = " ".join(
                [
                    f"In case {i}, {_lower_first(c['claim'])}",
                    f"Source {i} notes that {_lower_first(ev[j])}",
                    other["evidence"],
                ]
            )
            ref = " ".join(ev[k] for k in rng.permutation(5)[: int(rng.integers(2, 6))])
            out.write(json.dumps({"id": f"p{i}", "prediction": gen, "reference": ref}) + "\n")
    os.replace(tmp, path)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (MB)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return sum(p.memory_info().rss for p in procs if p.is_running()) / 2**20
    except psutil.Error:
        return float("nan")


class RowCounter:
    """Counts complete lines of a growing file incrementally."""

    def __init__(self, path: Path):
        self.path, self.offset, self.rows = path, 0, 0

    def update(self) -> int:
        if self.path.is_file():
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                block = fh.read()
            cut = block.rfind(b"\n") + 1
            self.rows += block[:cut].count(b"\n")
            self.offset += cut
        return self.rows


def iter_child(src: Path, out: Path, chunk: int) -> None:
    """Child of ``--mode iter``: stream the file through CEC.score_iter, append rows."""
    sys.path.insert(0, str(ROOT))
    import cec
    from cec.io import read_records

    scorer = cec.CEC(device="cpu")
    records = read_records(src)
    ids: deque[str] = deque()

    def pairs():
        for rec in records:
            ids.append(rec.id)
            yield rec.prediction, rec.references[0]

    with open(out, "w", encoding="utf-8") as fh:
        for k, ps in enumerate(scorer.score_iter(pairs(), chunk_size=chunk)):
            fh.write(json.dumps({"id": ids.popleft(), "sym": round(ps.sym, 6)}) + "\n")
            if k % chunk == chunk - 1:
                fh.flush()


def run_child(cmd: list[str], out: Path, limit: float | None, sample: float) -> dict:
    """Run ``cmd``, sampling RSS and rows on disk; SIGKILL it after ``limit`` seconds."""
    import resource

    counter = RowCounter(out)
    start_rows = counter.update()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    samples = []
    killed = False
    while proc.poll() is None:
        time.sleep(sample)
        t = time.perf_counter() - t0
        load = round(os.getloadavg()[0], 1)
        samples.append(
            {"t": round(t, 1), "rows": counter.update(), "rss_mb": rss_mb(proc.pid), "load": load}
        )
        s = samples[-1]
        print(
            f"   {s['t']:8.1f} s {s['rows']:>9,d} rows {s['rss_mb']:8.0f} MB RSS  load {load}",
            flush=True,
        )
        if limit is not None and t > limit:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            killed = True
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    dt = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    rows = counter.update() - start_rows
    return {
        "cpu_seconds": cpu,
        "rows_per_cpu_s": rows / cpu if cpu else float("nan"),
        "cmd": cmd,
        "seconds": dt,
        "rows": rows,
        "killed": killed,
        "returncode": proc.returncode,
        "stderr_tail": err[-1500:],
        "samples": samples,
        "peak_rss_mb": max((s["rss_mb"] for s in samples), default=float("nan")),
    }


def check_rows(out: Path, n: int) -> dict:
    """Rows on disk: every line complete JSON, ids p0, p1, ... in order, no gap or repeat."""
    count, bad = 0, 0
    with open(out, encoding="utf-8") as fh:
        for k, line in enumerate(fh):
            try:
                ok = json.loads(line)["id"] == f"p{k}"
            except (ValueError, KeyError):
                ok = False
            bad += not ok
            count += 1
    return {"rows": count, "bad_rows": bad, "of": n}


def ray_check(src: Path, out: Path, n: int) -> dict:
    """Score the first n items with Ray Data (2 workers) and compare with the rows in ``out``."""
    import itertools

    import ray

    sys.path.insert(0, str(ROOT))
    from cec.ray import score_ray_dataset

    with open(src, encoding="utf-8") as fh:
        items = [json.loads(line) for line in itertools.islice(fh, n)]
    with open(out, encoding="utf-8") as fh:
        single = {r["id"]: r["sym"] for r in map(json.loads, itertools.islice(fh, n))}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    t0 = time.perf_counter()
    ds = ray.data.from_items(
        [{"id": r["id"], "generated": r["prediction"], "reference": r["reference"]} for r in items]
    )
    rows = score_ray_dataset(ds, num_actors=2, batch_size=256).take_all()
    dt = time.perf_counter() - t0
    ray.shutdown()
    diffs = [abs(r["cec_sym"] - single[r["id"]]) for r in rows if r["id"] in single]
    return {
        "items": len(rows),
        "compared": len(diffs),
        "max_abs_diff": max(diffs) if diffs else None,
        "seconds": dt,
        "note": "single-process rows are rounded to 6 decimals, so |d| <= 5e-7 + float noise",
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, default=Path("/tmp/cec_million.jsonl"))
    ap.add_argument("--mode", choices=["cli", "iter", "resume", "none"], default="cli")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--sample", type=float, default=15.0, help="seconds between RSS samples")
    ap.add_argument("--max-seconds", type=float, default=None, help="SIGKILL the run after this")
    ap.add_argument("--resume-seconds", type=float, default=0.0, help="then --resume this long")
    ap.add_argument("--ray", type=int, default=0, help="compare this many items with Ray Data")
    ap.add_argument("--json", type=Path, default=RESULTS / "bench_million.json")
    ap.add_argument("--_iter-child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._iter_child:
        iter_child(Path(args._iter_child[0]), Path(args._iter_child[1]), args.chunk)
        return
    if not args.file.is_file():
        t = time.perf_counter()
        write_pairs(args.file, args.pairs)
        print(f"wrote {args.pairs:,} pairs to {args.file} in {time.perf_counter() - t:.0f} s")
    # --mode none --ray N compares with the rows of an earlier --mode cli run
    mode = "cli" if args.mode in ("none", "resume") else args.mode
    out = args.file.with_name(args.file.stem + f".{mode}.scores.jsonl")
    report: dict = {"pairs": args.pairs, "file": str(args.file), "mode": args.mode}
    report["load_avg_start"] = os.getloadavg()
    sys.path.insert(0, str(ROOT))
    from cec.encode import cpu_features

    report["cpu_count"] = os.cpu_count()
    report["cpu_features"] = cpu_features()
    if args.mode == "resume":  # continue an earlier (killed) --mode cli run for --resume-seconds
        cmd = ["cec", "score", str(args.file), "--format", "jsonl", "-o", str(out), "-q"]
        cmd += ["--chunk-size", str(args.chunk), "--resume"]
        print("== resume: " + " ".join(cmd))
        before = check_rows(out, args.pairs)
        again = run_child(cmd, out, args.resume_seconds or None, args.sample)
        again["rows_per_s"] = again["rows"] / again["seconds"]
        again["check_before"] = before
        again["check"] = check_rows(out, args.pairs)
        report["resume"] = again
        print(f"   {before['rows']:,} rows before, +{again['rows']:,} rows; check={again['check']}")
    elif args.mode != "none":
        out.unlink(missing_ok=True)
        if args.mode == "cli":
            cmd = ["cec", "score", str(args.file), "--format", "jsonl", "-o", str(out), "-q"]
            cmd += ["--chunk-size", str(args.chunk)]
        else:
            cmd = [sys.executable, __file__, "--_iter-child", str(args.file), str(out)]
            cmd += ["--chunk", str(args.chunk)]
        print(f"== {args.mode}: {' '.join(cmd)}")
        run = run_child(cmd, out, args.max_seconds, args.sample)
        run["rows_per_s"] = run["rows"] / run["seconds"]
        run["check"] = check_rows(out, args.pairs)
        report["run"] = run
        print(
            f"   {run['rows']:,} rows in {run['seconds']:.0f} s = {run['rows_per_s']:.1f} rows/s"
            f" ({run['rows_per_cpu_s']:.1f} rows per CPU-second),"
            f" peak RSS {run['peak_rss_mb']:.0f} MB, killed={run['killed']}, check={run['check']}"
        )
        if run["killed"] and args.mode == "cli" and args.resume_seconds > 0:
            print("== resume after SIGKILL: " + " ".join([*cmd, "--resume"]))
            again = run_child([*cmd, "--resume"], out, args.resume_seconds, args.sample)
            again["rows_per_s"] = again["rows"] / again["seconds"]
            again["check"] = check_rows(out, args.pairs)
            report["resume"] = again
            print(f"   +{again['rows']:,} rows; check={again['check']}")
    if args.ray:
        try:
            report["ray"] = ray_check(args.file, out, args.ray)
        except Exception as exc:  # noqa: BLE001 - e.g. Ray's node start times out on a busy machine
            report["ray"] = {"error": f"{type(exc).__name__}: {exc}"}
        print(f"== ray (2 workers) vs single process: {report['ray']}")
    report["load_avg_end"] = os.getloadavg()
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
