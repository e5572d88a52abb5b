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
    _assert_rows_close(_parse(out, fmt), _parse(full[fmt], fmt))
    (mean, sig), (want_mean, want_sig) = _summary(proc.stdout), _summary(full[fmt + "-summary"])
    assert sig == want_sig and abs(mean - want_mean) <= 1e-4  # printed to 4 decimals


def _parse(path: Path, fmt: str) -> list[dict]:
    """Rows of a jsonl or csv output as jsonl dicts (NaN as None)."""
    text = path.read_text(encoding="utf-8")
    if fmt == "jsonl":
        return [json.loads(x) for x in text.splitlines()]
    import csv
    import math

    rows = []
    for r in csv.DictReader(text.splitlines()):
        row: dict = {"id": r["id"], "empty": r["empty"], "best_ref": r["best_ref"]}
        for key in ("forward", "backward", "sym"):
            v = float(r[key]) if r[key] not in ("", "nan", "NaN") else math.nan
            row[key] = None if math.isnan(v) else v
        rows.append(row)
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


# --------------------------------------------------------------------------------------------
# the run record pins the input, not only its ids (issue 24.5)
# --------------------------------------------------------------------------------------------
def _cut_copy(full_out: Path, dest: Path, rows: int) -> Path:
    """The first ``rows`` rows of an uninterrupted jsonl run, with that run's record."""
    lines = full_out.read_text(encoding="utf-8").splitlines(keepends=True)
    dest.write_text("".join(lines[:rows]), encoding="utf-8")
    record = full_out.with_name(full_out.name + ".cec-run.json")
    dest.with_name(dest.name + ".cec-run.json").write_text(
        record.read_text(encoding="utf-8"), encoding="utf-8"
    )
    return dest


def _error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_resume_refuses_an_input_with_the_same_ids_but_other_items(pairs_file, full, tmp_path):
    items = [json.loads(x) for x in pairs_file.read_text(encoding="utf-8").splitlines()]
    args = ["--format", "jsonl", "-q", "--empty", "nan", "--resume"]
    for k, change in (
        (24, {"prediction": "Bananas are yellow."}),
        (3, {"reference": ["A.", "B."]}),
    ):
        other = [dict(r) for r in items]
        other[k].update(change)  # same ids, other text / two references instead of one
        path = tmp_path / f"other{k}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in other), encoding="utf-8")
        out = _cut_copy(full["jsonl"], tmp_path / f"o{k}.jsonl", 30)
        kept = out.read_text(encoding="utf-8")
        line = _error_line(_cec(str(path), "-o", str(out), *args))
        assert line.startswith(f"cec: error: {path}:{k + 1}: --resume: item {k + 1} "), line
        assert f"id 'c{k}'" in line and f"row {k + 1} of {out}" in line, line
        assert out.read_text(encoding="utf-8") == kept  # nothing added, nothing cut
    # the same items in a moved file resume (the record pins items, not the file's name)
    moved = tmp_path / "moved.jsonl"
    moved.write_text(pairs_file.read_text(encoding="utf-8"), encoding="utf-8")
    out = _cut_copy(full["jsonl"], tmp_path / "ok.jsonl", 30)
    proc = _cec(str(moved), "-o", str(out), *args)
    assert proc.returncode == 0, proc.stderr
    _assert_rows_close(
        [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()],
        [json.loads(x) for x in full["jsonl"].read_text(encoding="utf-8").splitlines()],
    )


def test_resume_of_items_without_ids_checks_their_texts(tmp_path):
    """Items without ids are numbered 1, 2, ...: any long enough file had the same ids."""
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("".join(f"Ice sheet {i} melts. Seas rise.\n" for i in range(12)), "utf-8")
    b.write_text("".join(f"Stock {i} fell. Banks closed.\n" for i in range(12)), "utf-8")
    out = tmp_path / "a.csv"
    first = _cec("--pred", str(a), "--ref", str(a), "-o", str(out), "-q", "--chunk-size", "4")
    assert first.returncode == 0, first.stderr
    lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
    out.write_text("".join(lines[:6]), encoding="utf-8")  # header + 5 rows
    other = _cec("--pred", str(b), "--ref", str(a), "-o", str(out), "-q", "--resume")
    line = _error_line(other)
    assert "--resume: item 1 of the input (id '1')" in line and f"row 1 of {out}" in line, line
    same = _cec("--pred", str(a), "--ref", str(a), "-o", str(out), "-q", "--resume")
    assert same.returncode == 0, same.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 13


def test_resume_from_stdin_pins_what_was_read(pairs_file, full, tmp_path):
    out = _cut_copy(full["jsonl"], tmp_path / "s.jsonl", 25)
    # the record of a stdin run holds only what it read: make one by scoring the first 25 items
    head = tmp_path / "head.jsonl"
    head.write_text("".join(pairs_file.read_text("utf-8").splitlines(True)[:25]), "utf-8")
    fresh = tmp_path / "fresh.jsonl"
    with open(head, encoding="utf-8") as stdin:
        proc = subprocess.run(
            ["cec", "score", "-", "-o", str(fresh), "-q", "--empty", "nan", "--chunk-size", "8"],
            env=_env(),
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(fresh.with_name("fresh.jsonl.cec-run.json").read_text("utf-8"))
    assert record["rows"] == 25 and len(record["digests"]) == 25 * 16
    out.with_name(out.name + ".cec-run.json").write_text(json.dumps(record), "utf-8")
    bad = pairs_file.read_text("utf-8").replace('"id": "c9"', '"id": "c9", "x": 1', 1)
    bad = bad.replace(json.loads(bad.splitlines()[9])["prediction"], "Dogs bark.", 1)
    resume = ["cec", "score", "-", "-o", str(out), "-q", "--empty", "nan", "--resume"]
    proc = subprocess.run(resume, env=_env(), input=bad, capture_output=True, text=True)
    assert "--resume: item 10 of the input (id 'c9')" in _error_line(proc)
    proc = subprocess.run(
        resume, env=_env(), input=pairs_file.read_text("utf-8"), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    _assert_rows_close(
        [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()],
        [json.loads(x) for x in full["jsonl"].read_text(encoding="utf-8").splitlines()],
    )
    record = json.loads(out.with_name(out.name + ".cec-run.json").read_text("utf-8"))
    assert record["rows"] == 60  # rewritten as the resumed run read on


def test_a_run_record_that_pins_no_input_is_refused(pairs_file, full, tmp_path):
    out = _cut_copy(full["jsonl"], tmp_path / "old.jsonl", 10)
    record = json.loads((full["jsonl"].parent / "full.jsonl.cec-run.json").read_text("utf-8"))
    old = {"signature": record["signature"]}  # what cec wrote before the input was pinned
    out.with_name("old.jsonl.cec-run.json").write_text(json.dumps(old), "utf-8")
    proc = _cec(str(pairs_file), "-o", str(out), "-q", "--empty", "nan", "--resume")
    assert "does not pin the input" in _error_line(proc)
