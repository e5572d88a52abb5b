"""`cec score -o FILE` writes rows as it goes; a killed run is continued by `--resume`.

The real `cec` console script in subprocesses, on Climate-FEVER pairs written here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    env = os.environ.copy()
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cec(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["cec", "score", *args], env=_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory, shared_data) -> Path:
    """60 Climate-FEVER pairs (one with an empty prediction)."""
    rows = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for i, line in zip(range(60), fh, strict=False):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            pred = "" if i == 7 else rec["claim"] + " " + ev[i % 5]
            rows.append({"id": f"c{i}", "prediction": pred, "reference": " ".join(ev[:3])})
    path = tmp_path_factory.mktemp("resume") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def full(pairs_file, tmp_path_factory) -> dict[str, Path]:
    """Uninterrupted runs in jsonl and csv: what a resumed run must reproduce."""
    d = tmp_path_factory.mktemp("full")
    out = {}
    for fmt in ("jsonl", "csv"):
        out[fmt] = d / f"full.{fmt}"
        proc = _cec(str(pairs_file), "--format", fmt, "-o", str(out[fmt]), "-q", "--empty", "nan")
        assert proc.returncode == 0, proc.stderr
        out[fmt + "-summary"] = proc.stdout
    return out


def _summary(stdout: str) -> tuple[float, str]:
    cec_line, sig_line = stdout.strip().splitlines()[-2:]
    return float(cec_line.split("=")[1].split()[0]), sig_line


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_resume_after_a_cut_run_gives_the_uninterrupted_output(pairs_file, full, tmp_path, fmt):
    text = full[fmt].read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    keep = 21 if fmt == "csv" else 20  # csv: header + 20 rows
    out = tmp_path / f"cut.{fmt}"
    out.write_text("".join(lines[:keep]) + lines[keep][:9], encoding="utf-8")  # half a row
    (tmp_path / f"cut.{fmt}.cec-run.json").write_text(
        (full[fmt].parent / f"full.{fmt}.cec-run.json").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    proc = _cec(
        str(pairs_file), "--format", fmt, "-o", str(out), "-q", "--empty", "nan", "--resume"
    )
    assert proc.returncode == 0, proc.stderr
    got = out.read_text(encoding="utf-8")
    assert got.startswith("".join(lines[:keep]))  # the stopped run's rows, untouched
    # the new rows were scored in other batches than the uninterrupted run's: equal within the
    # promised 1e-6 (docs/reporting.md), the 6th printed decimal may differ by one
    _assert_rows_close(_rows(got, fmt), _rows(text, fmt))
    (mean, sig), (want_mean, want_sig) = _summary(proc.stdout), _summary(full[fmt + "-summary"])
    assert sig == want_sig and abs(mean - want_mean) <= 1e-4  # printed to 4 decimals


def _rows(text: str, fmt: str) -> list[dict]:
    """The item rows of a jsonl or csv output, as jsonl rows (NaN as None)."""
    if fmt == "jsonl":
        return [json.loads(x) for x in text.splitlines()]
    import csv
    import io

    rows = []
    for r in csv.DictReader(io.StringIO(text)):
        rows.append(
            {
                "id": r["id"],
                "empty": r["empty"],
                "best_ref": r["best_ref"],
                **{k: None if r[k] in ("", "nan") else float(r[k]) for k in ("forward", "backward", "sym")},
            }
        )
    return rows


def test_a_killed_run_leaves_whole_rows_and_resume_finishes_it(pairs_file, full, tmp_path):
    out = tmp_path / "killed.jsonl"
    args = [str(pairs_file), "--format", "jsonl", "-o", str(out), "-q", "--empty", "nan"]
    proc = subprocess.Popen(
        ["cec", "score", *args, "--chunk-size", "4"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if out.is_file() and out.read_text(encoding="utf-8").count("\n") >= 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    lines = out.read_text(encoding="utf-8").splitlines()
    assert 8 <= len(lines) < 60
    want = [json.loads(x) for x in full["jsonl"].read_text(encoding="utf-8").splitlines()]
    # every row on disk is whole JSON and final (chunks of 4 vs 1024: float noise only)
    _assert_rows_close([json.loads(x) for x in lines], want[: len(lines)])
    again = _cec(*args, "--resume")
    assert again.returncode == 0, again.stderr
    got = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    _assert_rows_close(got, want)
    (mean, sig), (want_mean, want_sig) = _summary(again.stdout), _summary(full["jsonl-summary"])
    assert sig == want_sig and abs(mean - want_mean) <= 1e-4  # printed to 4 decimals


def _assert_rows_close(got: list[dict], want: list[dict]) -> None:
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert (a["empty"], a["best_ref"]) == (b["empty"], b["best_ref"])
        for key in ("forward", "backward", "sym"):
            if b[key] is None:  # NaN (the empty prediction under --empty nan)
                assert a[key] is None
            else:
                assert abs(a[key] - b[key]) <= 1.5e-6, (a, b)


def test_resume_refuses_other_options_other_input_and_bad_requests(pairs_file, full, tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text(full["jsonl"].read_text(encoding="utf-8"), encoding="utf-8")
    record = tmp_path / "o.jsonl.cec-run.json"
    record.write_text(
        (full["jsonl"].parent / "full.jsonl.cec-run.json").read_text(encoding="utf-8"),
        encoding="utf-8",
    )
    base = [str(pairs_file), "--format", "jsonl", "-o", str(out), "-q", "--resume"]
    other = _cec(*base, "--empty", "zero")  # another signature (empty:zero)
    assert other.returncode == 2 and "signature" in other.stderr and "--resume" in other.stderr
    shuffled = tmp_path / "shuffled.jsonl"
    lines = pairs_file.read_text(encoding="utf-8").splitlines(keepends=True)
    shuffled.write_text("".join(lines[1:] + lines[:1]), encoding="utf-8")
    moved = _cec(
        str(shuffled), "--format", "jsonl", "-o", str(out), "-q", "--resume", "--empty", "nan"
    )
    assert moved.returncode == 2 and "'c0'" in moved.stderr and "'c1'" in moved.stderr
    record.unlink()
    norec = _cec(*base, "--empty", "nan")
    assert norec.returncode == 2 and "run record" in norec.stderr
    for bad in (["--format", "table", "-o", str(out)], ["--format", "jsonl"]):
        proc = _cec(str(pairs_file), *bad, "--resume")
        assert proc.returncode == 2 and "--resume needs" in proc.stderr, bad


def test_resume_without_an_output_yet_is_a_fresh_run(pairs_file, full, tmp_path):
    out = tmp_path / "new.jsonl"
    args = [str(pairs_file), "--format", "jsonl", "-o", str(out), "-q", "--empty", "nan"]
    proc = _cec(*args, "--resume")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == full["jsonl"].read_text(encoding="utf-8")


def test_a_failing_first_chunk_adds_nothing_on_resume(pairs_file, tmp_path):
    """--empty error fails on item 8 (c7): the run keeps its first chunk; --resume adds nothing."""
    out = tmp_path / "stopped.tsv"  # the suffix picks tsv
    args = [str(pairs_file), "-o", str(out), "-q", "--empty", "error", "--chunk-size", "4"]
    first = _cec(*args)
    assert first.returncode == 2 and "c7" in first.stderr, first.stderr
    assert len(first.stderr.strip().splitlines()) == 1
    kept = out.read_text(encoding="utf-8")
    lines = kept.splitlines()
    assert lines[0].split("\t") == ["id", "forward", "backward", "sym", "empty", "best_ref"]
    assert [x.split("\t")[0] for x in lines[1:]] == ["c0", "c1", "c2", "c3"]
    again = _cec(*args, "--resume")
    assert again.returncode == 2 and "c7" in again.stderr, again.stderr
    assert out.read_text(encoding="utf-8") == kept  # the rows of the stopped run, no new ones


def test_resume_with_several_inputs_is_refused(pairs_file, tmp_path):
    out = tmp_path / "two.jsonl"
    proc = _cec(str(pairs_file), str(pairs_file), "-o", str(out), "--resume")
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("cec: error: --resume takes one INPUT file")
    assert not out.exists()
