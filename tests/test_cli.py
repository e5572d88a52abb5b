"""The real `cec` console script, in subprocesses, on files written here.

Runs that need the model are started together and awaited together (each process pays the
imports and the model load once); error cases exit before the model loads.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
CEC_BIN = shutil.which("cec", path=str(Path(sys.executable).parent)) or shutil.which("cec")
pytestmark = pytest.mark.skipif(CEC_BIN is None, reason="the cec console script is not installed")

ITEMS = [
    {
        "id": "warming",
        "pred": "Rising CO2 traps heat. The planet warms.",
        "refs": ["CO2 traps heat, so the planet warms.", "Greenhouse gases warm the Earth."],
    },
    {
        "id": "ice",
        "pred": "Arctic sea ice is shrinking because the air is warmer.",
        "refs": ["Summers may become ice-free.", "Arctic sea ice shrinks as the air warms."],
    },
    {
        "id": "offtopic",
        "pred": "The evidence is about sea level, not hurricanes.",
        "refs": [
            "The evidence concerns sea level rise. It does not address hurricanes.",
            "Hurricanes are not discussed.",
        ],
    },
]


@dataclass
class Run:
    args: list[str]
    proc: subprocess.Popen
    tty_fd: int | None = None
    stdout: str = ""
    stderr: str = ""
    rc: int | None = None


def _start(args: list[str], cwd: Path, tty_stderr: bool = False) -> Run:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}
    env.pop("CEC_DEBUG", None)
    master = slave = None
    if tty_stderr:  # a terminal on stderr, as when a person runs the command
        master, slave = pty.openpty()
    proc = subprocess.Popen(
        [CEC_BIN, *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        stderr=slave if tty_stderr else subprocess.PIPE,
        text=True,
    )
    if slave is not None:
        os.close(slave)
    return Run(args, proc, master)


def _read_tty(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the child closed its side
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _wait(*runs: Run, timeout: float = 400) -> None:
    for run in runs:
        if run.tty_fd is not None:
            run.stdout = run.proc.stdout.read()  # type: ignore[union-attr]
            run.stderr = _read_tty(run.tty_fd)
            run.rc = run.proc.wait(timeout=timeout)
        else:
            run.stdout, run.stderr = run.proc.communicate(timeout=timeout)
            run.rc = run.proc.returncode


def _write_inputs(d: Path) -> None:
    with open(d / "items.jsonl", "w") as fh:
        for it in ITEMS:  # a list of references in one field, custom field names
            fh.write(json.dumps({"id": it["id"], "output": it["pred"], "gold": it["refs"]}) + "\n")
        fh.write("\n")  # blank lines are skipped
    with open(d / "items.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["key", "hyp", "r1", "r2"])
        for it in ITEMS:
            w.writerow([it["id"], it["pred"], *it["refs"]])
    with open(d / "items.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["id", "prediction", "reference", "reference_b"])
        for it in ITEMS:
            w.writerow([it["id"], it["pred"], *it["refs"]])
    (d / "pred.txt").write_text("".join(it["pred"] + "\n" for it in ITEMS))
    (d / "ref1.txt").write_text("".join(it["refs"][0] + "\n" for it in ITEMS))
    (d / "ref2.txt").write_text("".join(it["refs"][1] + "\n" for it in ITEMS))


def _table_rows(stdout: str) -> dict[str, list[float]]:
    rows = {}
    for line in stdout.splitlines()[1:]:
        if not line.strip():
            break
        parts = line.split()
        rows[parts[0]] = [float(x) for x in parts[1:4]]
    return rows


def test_score_every_input_and_output_format(tmp_path, scorer):
    _write_inputs(tmp_path)
    readme = _start(["score", str(ROOT / "examples" / "pairs.jsonl")], ROOT, tty_stderr=True)
    jsonl = _start(
        [
            "score",
            "items.jsonl",
            "--pred-field",
            "output",
            "--ref-field",
            "gold",
            "--format",
            "json",
            "-o",
            "out/scores.json",
        ],
        tmp_path,
    )
    csv_run = _start(
        [
            "score",
            "items.csv",
            "--pred-field",
            "hyp",
            "--ref-field",
            "r1",
            "--ref-field",
            "r2",
            "--id-field",
            "key",
            "--format",
            "csv",
        ],
        tmp_path,
    )
    tsv = _start(
        [
            "score",
            "items.tsv",
            "--ref-field",
            "reference",
            "--ref-field",
            "reference_b",
            "--format",
            "jsonl",
            "-o",
            "rows.jsonl",
        ],
        tmp_path,
    )
    text = _start(
        [
            "score",
            "--pred",
            "pred.txt",
            "--ref",
            "ref1.txt",
            "--ref",
            "ref2.txt",
            "--format",
            "csv",
            "--summary-only",
            "--quiet",
        ],
        tmp_path,
        tty_stderr=True,
    )
    explain = _start(
        [
            "explain",
            "--input",
            "items.jsonl",
            "--pred-field",
            "output",
            "--ref-field",
            "gold",
            "--item",
            "2",
            "--heatmap",
            "sim.svg",
        ],
        tmp_path,
    )
    runs = [readme, jsonl, csv_run, tsv, text, explain]
    _wait(*runs)
    for run in runs:
        assert run.rc == 0, (run.args, run.stderr)

    preds = [it["pred"] for it in ITEMS]
    refs = [it["refs"] for it in ITEMS]
    expected = scorer.score(preds, refs)
    signature = str(expected.signature)
    assert "nrefs:2" in signature

    # README command: readable table, summary and signature; progress bar on a terminal
    rows = _table_rows(readme.stdout)
    assert list(rows) == ["cf-1", "cf-2", "cf-3", "cf-4"]
    ex = [json.loads(line) for line in (ROOT / "examples" / "pairs.jsonl").read_text().splitlines()]
    ex_scores = scorer.score([r["prediction"] for r in ex], [r["reference"] for r in ex])
    np.testing.assert_allclose([r[2] for r in rows.values()], ex_scores.sym, atol=6e-5)
    assert f"CEC = {ex_scores.mean:.4f}" in readme.stdout
    assert f"signature: {ex_scores.signature}" in readme.stdout
    assert "4/4" in readme.stderr and "pair" in readme.stderr  # tqdm bar on the terminal

    # JSONL with custom fields and a list of references -> one JSON document in a new folder
    doc = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert [r["id"] for r in doc["items"]] == ["warming", "ice", "offtopic"]
    np.testing.assert_allclose([r["sym"] for r in doc["items"]], expected.sym, atol=2e-6)
    assert [r["best_ref"] for r in doc["items"]] == expected.best_ref.tolist() == [0, 1, 0]
    assert doc["summary"]["signature"] == signature
    assert abs(doc["summary"]["cec"] - expected.mean) < 1e-6 and doc["summary"]["n"] == 3
    assert jsonl.stdout == ""  # everything went to the file
    assert jsonl.stderr == ""  # stderr is not a terminal here: no progress bar

    # CSV with chosen columns -> CSV rows on stdout, the summary on stderr
    got = list(csv.DictReader(io.StringIO(csv_run.stdout)))
    assert [r["id"] for r in got] == ["warming", "ice", "offtopic"]
    np.testing.assert_allclose([float(r["sym"]) for r in got], expected.sym, atol=2e-6)
    np.testing.assert_allclose([float(r["forward"]) for r in got], expected.forward, atol=2e-6)
    assert f"signature: {signature}" in csv_run.stderr

    # TSV -> JSONL rows in a file, the summary on stdout
    lines = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([r["backward"] for r in lines], expected.backward, atol=2e-6)
    assert f"CEC = {expected.mean:.4f}" in tsv.stdout and signature in tsv.stdout

    # two plain-text reference files -> CSV summary only; --quiet hides the bar on a terminal
    (summary,) = list(csv.DictReader(io.StringIO(text.stdout)))
    assert abs(float(summary["cec"]) - expected.mean) < 1e-6
    assert summary["signature"] == signature and summary["n"] == "3"
    assert text.stderr.strip() == ""

    # explain item 2 (by number): readable text, the best of its two references, a heatmap
    assert "[best of the references: #1]" in explain.stdout
    assert f"signature: {signature}" in explain.stdout
    assert f"CEC = {expected.sym[1]:.3f}" in explain.stdout
    assert "R1" in explain.stdout and "G1" in explain.stdout
    assert ET.parse(tmp_path / "sim.svg").getroot().tag.endswith("svg")
    assert "heatmap written to sim.svg" in explain.stdout


def test_errors_exit_2_with_one_line_naming_file_and_line(tmp_path):
    _write_inputs(tmp_path)
    (tmp_path / "missing_field.jsonl").write_text(
        '{"prediction": "A.", "reference": "B."}\n{"prediction": "C.", "reference": "D."}\n'
        '{"prediction": "E."}\n'
    )
    (tmp_path / "bad.jsonl").write_text(
        '{"prediction": "A.", "reference": "B."}\n{"prediction": \n'
    )
    (tmp_path / "short.txt").write_text("one\ntwo\n")
    (tmp_path / "empty_pred.jsonl").write_text(
        '{"prediction": "A b c.", "reference": "B."}\n{"prediction": "  ", "reference": "D."}\n'
    )
    (tmp_path / "nolist.csv").write_text("prediction,ref\nA.,B.\n")
    (tmp_path / "numbers.jsonl").write_text('{"prediction": 3, "reference": "B."}\n')
    cases = {
        "no_file": (["score", "nowhere.jsonl"], ["nowhere.jsonl", "no such file"]),
        "missing_field": (
            ["score", "missing_field.jsonl"],
            ["missing_field.jsonl:3:", "missing field 'reference'"],
        ),
        "bad_json": (["score", "bad.jsonl"], ["bad.jsonl:2:", "invalid JSON"]),
        "not_string": (["score", "numbers.jsonl"], ["numbers.jsonl:1:", "must be a string"]),
        "csv_column": (["score", "nolist.csv"], ["nolist.csv:1:", "missing column 'reference'"]),
        "tsv_column": (
            ["score", "items.tsv", "--pred-field", "hyp"],
            ["items.tsv:1:", "missing column 'hyp'"],
        ),
        "counts": (
            ["score", "--pred", "pred.txt", "--ref", "short.txt"],
            ["short.txt has 2 lines", "pred.txt", "line 3"],
        ),
        "suffix": (["score", "pred.txt"], ["pred.txt", "--input-format"]),
        "no_input": (["score"], ["give either INPUT file(s) or --pred"]),
        "splitter": (["score", "items.tsv", "--splitter", "nosuch"], ["splitter", "nosuch"]),
        "empty_error": (
            ["score", "empty_pred.jsonl", "--empty", "error"],
            ["empty_pred.jsonl:2:", "prediction has no sentences"],
        ),
        "heatmap_suffix": (["explain", "A.", "B.", "--heatmap", "x.gif"], ["x.gif"]),
    }
    runs = {name: _start(args, tmp_path) for name, (args, _) in cases.items()}
    usage = _start(["score", "items.tsv", "--format", "xml"], tmp_path)
    _wait(*runs.values(), usage)
    for name, (_, needles) in cases.items():
        run = runs[name]
        assert run.rc == 2, (name, run.stderr)
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("cec: error: "), (name, run.stderr)
        for needle in needles:
            assert needle in lines[0], (name, needle, lines[0])
        assert "Traceback" not in run.stderr
    # the whole file is checked before scoring starts: no rows for the good first lines
    assert runs["missing_field"].stdout == ""
    assert usage.rc == 2 and "--format" in usage.stderr and "Traceback" not in usage.stderr


def test_main_as_a_function_gives_the_process_its_state_back(monkeypatch, capsys, scorer):
    import warnings

    from cec.cli import main

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    before = warnings.showwarning
    assert main(["score", str(ROOT / "examples" / "pairs.jsonl"), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["n"] == 4
    assert warnings.showwarning is before
    assert "HF_HUB_OFFLINE" not in os.environ  # set while it ran, removed again
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    assert main(["score", "no-such-file.jsonl"]) == 2
    assert os.environ["HF_HUB_OFFLINE"] == "0"
