"""The first hour of a new user (issue 13): the real `cec` and `cec-distill` console scripts in
subprocesses, on files written here.

Runs that need the model start together and are awaited together; error cases that exit before
the model loads run in a separate, fast test. A missing optional package is simulated the only
way a test can without a second environment: a ``sitecustomize`` on PYTHONPATH that blocks its
import (``sys.modules[name] = None``, so ``import name`` raises ModuleNotFoundError).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CEC_BIN = shutil.which("cec", path=str(BIN)) or shutil.which("cec")
DISTILL_BIN = shutil.which("cec-distill", path=str(BIN)) or shutil.which("cec-distill")
pytestmark = pytest.mark.skipif(
    CEC_BIN is None or DISTILL_BIN is None, reason="the console scripts are not installed"
)

PAIRS_A = [
    ("CO2 traps heat. The planet warms.", "The planet warms because CO2 traps heat."),
    ("Ice melts in summer.", "Summer heat melts the ice."),
    ("Sea level rises as water warms.", "Warm water expands, so the sea rises."),
]
PAIRS_B = [
    ("Deforestation releases carbon.", "Cutting forests puts carbon into the air."),
    ("The evidence is about hurricanes.", "Storm frequency is not addressed."),
]


@dataclass
class Run:
    args: list[str]
    proc: subprocess.Popen
    tty_fd: int | None = None
    stdout: str = ""
    stderr: str = ""
    rc: int | None = None


def _env(**changes: str | None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "COLUMNS": "120"}
    env.pop("CEC_DEBUG", None)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _start(
    exe: str | None,
    args: list[str],
    cwd: Path,
    *,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    tty_stderr: bool = False,
) -> Run:
    master = slave = None
    if tty_stderr:
        master, slave = pty.openpty()
    proc = subprocess.Popen(
        [exe, *args],  # type: ignore[list-item]
        cwd=cwd,
        env=env or _env(),
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stderr=slave if tty_stderr else subprocess.PIPE,
        text=True,
    )
    if slave is not None:
        os.close(slave)
    run = Run(args, proc, master)
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
        proc.stdin = None
    return run


def _read_tty(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def _wait(*runs: Run, timeout: float = 600) -> None:
    for run in runs:
        if run.tty_fd is not None:
            run.stdout = run.proc.stdout.read()  # type: ignore[union-attr]
            run.stderr = _read_tty(run.tty_fd)
            run.rc = run.proc.wait(timeout=timeout)
        else:
            run.stdout, run.stderr = run.proc.communicate(timeout=timeout)
            run.rc = run.proc.returncode


def _write_jsonl(path: Path, pairs: list[tuple[str, str]]) -> None:
    path.write_text(
        "".join(
            json.dumps({"id": f"i{k}", "prediction": p, "reference": r}) + "\n"
            for k, (p, r) in enumerate(pairs)
        )
    )


def _blocker(tmp: Path, module: str) -> dict[str, str]:
    """An environment in which ``import module`` fails as if it were not installed."""
    d = tmp / f"no-{module}"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(f"import sys\nsys.modules[{module!r}] = None\n")
    return _env(PYTHONPATH=os.pathsep.join([str(d), os.environ.get("PYTHONPATH", "")]))


def _one_error_line(run: Run, prefix: str) -> str:
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, (run.args, run.stderr)
    assert lines[0].startswith(prefix), (run.args, lines[0])
    assert "Traceback" not in run.stderr
    return lines[0]


# ---------------------------------------------------------------------------------------------
# fast: no model loads
# ---------------------------------------------------------------------------------------------
def test_user_errors_of_both_clis_exit_2_with_one_line(tmp_path):
    _write_jsonl(tmp_path / "pairs.jsonl", PAIRS_A)
    study = (ROOT / "examples" / "study_smollm2.yaml").read_text()
    study = re.sub(r"path: .*esnli_dev_3expl.jsonl", "path: missing/esnli.jsonl", study)
    study = study.replace("run_dir: runs/study-smollm2", "run_dir: runs/typo")
    (tmp_path / "study.yaml").write_text(study)
    no_mpl, no_pandas = _blocker(tmp_path, "matplotlib"), _blocker(tmp_path, "pandas")
    empty_hub = tmp_path / "hub"
    empty_hub.mkdir()
    hub_env = {"HF_HUB_CACHE": str(empty_hub), "HF_HOME": str(tmp_path / "hf")}
    distill = {
        "compare_missing": (["compare", "nowhere.json"], ["nowhere.json", "no such file"]),
        "compare_k": (["compare", "pairs.jsonl", "-k", "50"], ["k=50", "number of items (3)"]),
        "compare_metric": (
            ["compare", "pairs.jsonl", "--metric-b", "nosuch", "-k", "2"],
            ["unknown metric 'nosuch'"],
        ),
        "run_data": (
            ["run", "--config", "study.yaml"],
            ["data.path", "missing/esnli.jsonl"],
        ),
    }
    runs = {n: _start(DISTILL_BIN, a, tmp_path) for n, (a, _) in distill.items()}
    runs["no_pandas"] = _start(
        DISTILL_BIN, ["compare", "pairs.jsonl", "-k", "2"], tmp_path, env=no_pandas
    )
    heatmap = _start(
        CEC_BIN, ["explain", "A b.", "C d.", "--heatmap", "h.png"], tmp_path, env=no_mpl
    )
    hub_default = _start(
        CEC_BIN,
        ["score", "pairs.jsonl", "--model", "org-x/not-cached"],
        tmp_path,
        env=_env(HF_HUB_OFFLINE=None, TRANSFORMERS_OFFLINE=None, **hub_env),
    )
    hub_user = _start(
        CEC_BIN,
        ["score", "pairs.jsonl", "--model", "org-x/not-cached"],
        tmp_path,
        env=_env(**hub_env),
    )
    stdin_bad = json.dumps({"prediction": "A b.", "reference": "C d."}) + '\n{"prediction": 3}\n'
    stdin_json = _start(CEC_BIN, ["score", "-", "-o", "never.csv"], tmp_path, stdin=stdin_bad)
    stdin_csv = _start(
        CEC_BIN, ["score", "-", "--input-format", "csv"], tmp_path, stdin="hyp,gold\nA b.,C d.\n"
    )
    _wait(*runs.values(), heatmap, hub_default, hub_user, stdin_json, stdin_csv)

    # 5. errors in stdin (read once, not checked ahead like files): no partial output
    for run, needle in (
        (stdin_json, "-:2: field 'prediction' must be a string"),
        (stdin_csv, "-:1: missing column 'prediction'"),
    ):
        assert run.rc == 2, run.stderr
        assert needle in _one_error_line(run, "cec: error: ")
        assert run.stdout == ""
    assert not (tmp_path / "never.csv").exists()

    for name, (_, needles) in distill.items():
        run = runs[name]
        assert run.rc == 2, (name, run.stderr)
        line = _one_error_line(run, "cec-distill: error: ")
        for needle in needles:
            assert needle in line, (name, needle, line)
    assert not (tmp_path / "runs").exists()  # the typo in data.path left no run folder
    line = _one_error_line(runs["no_pandas"], "cec-distill: error: ")
    assert runs["no_pandas"].rc == 2 and 'pip install ".[distill]"' in line and "pandas" in line

    # a missing optional package is the user's to fix: exit 2, one line, an install hint
    assert heatmap.rc == 2, heatmap.stderr
    line = _one_error_line(heatmap, "cec: error: ")
    assert "--heatmap" in line and "matplotlib" in line and 'pip install ".[plot]"' in line
    assert heatmap.stdout == "" and not (tmp_path / "h.png").exists()

    # the CLI runs offline by default: say so (the user set nothing), and name the flag
    assert hub_default.rc == 2
    line = _one_error_line(hub_default, "cec: error: ")
    assert "offline by default" in line and "--allow-download" in line
    assert "HF_HUB_OFFLINE" not in line
    # ... and when the user did set HF_HUB_OFFLINE, that is the reason given
    assert hub_user.rc == 2 and "HF_HUB_OFFLINE is set" in hub_user.stderr


def _all_commands() -> list[tuple[str, list[str]]]:
    return [
        (CEC_BIN, ["--help"]),
        (CEC_BIN, ["score", "--help"]),
        (CEC_BIN, ["explain", "--help"]),
        (CEC_BIN, ["baseline", "--help"]),
        (DISTILL_BIN, ["--help"]),
        *[
            (DISTILL_BIN, [c, "--help"])
            for c in (
                "label", "evaluate", "compare", "report", "train", "generate", "run", "meta-eval",
            )  # fmt: skip
        ],
    ]


def test_help_and_version(tmp_path):
    from cec import __version__

    runs = [_start(exe, args, tmp_path) for exe, args in _all_commands()]
    version = _start(CEC_BIN, ["--version"], tmp_path)
    dversion = _start(DISTILL_BIN, ["--version"], tmp_path)
    _wait(*runs, version, dversion)
    assert version.rc == 0 and version.stdout.strip() == f"cec {__version__}"
    assert dversion.rc == 0 and dversion.stdout.strip() == f"cec-distill {__version__}"
    for run in runs:
        assert run.rc == 0, (run.args, run.stderr)
        text = run.stdout
        # no Python type names as placeholders
        for bad in ("<bool>", "<list[", "<str>", "<path>", "<int>", "{results}", "{"):
            assert bad not in text, (run.args, bad)
    distill_help = runs[4].stdout
    assert "compare" in distill_help and "stats," not in distill_help
    assert "Usage: cec-distill report [OPTIONS] RESULTS..." in runs[8].stdout


def test_every_option_has_a_description():
    """Every option and argument of every command says what it is for (click's view of the CLI)."""
    import typer

    from cec.cli import app as cec_app
    from cec_distill.cli import _register
    from cec_distill.cli import app as distill_app

    _register()
    missing = []
    for app in (cec_app, distill_app):
        group = typer.main.get_command(app)
        for name, command in group.commands.items():  # type: ignore[attr-defined]
            for param in command.params:
                if not (getattr(param, "help", None) or "").strip():
                    missing.append(f"{group.name} {name} {param.name}")
    assert not missing, missing


# ---------------------------------------------------------------------------------------------
# with the model: started together, awaited together
# ---------------------------------------------------------------------------------------------
def test_score_outputs_files_and_no_partial_output(tmp_path, scorer):
    import cec
    from cec.rescale import load_baseline

    _write_jsonl(tmp_path / "a.jsonl", PAIRS_A)
    _write_jsonl(tmp_path / "b.jsonl", PAIRS_B)
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "config.json").write_text("{}")
    (tmp_path / "corpus.txt").write_text(
        "".join(p + "\n" for p, _ in PAIRS_A + PAIRS_B) + "\n" + "Bananas are yellow.\n"
    )
    a, b = str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")
    start = {
        "csv": ["score", a, "-o", "s.csv"],
        "two_json": ["score", a, b, "-o", "two.json"],
        "two_tsv": ["score", a, b, "-o", "two.tsv"],
        "dir_table": ["score", a, "--directional", "--format", "table", "-o", "t.csv"],
        "rescale": ["score", a, "empty.jsonl", "--rescale", "--summary-only", "-o", "r.jsonl"],
        "model": ["score", a, "--model", "notamodel", "-o", "never.csv"],
        "baseline": ["baseline", "corpus.txt", "-o", "base.json", "--seed", "3"],
    }
    runs = {k: _start(CEC_BIN, args, tmp_path) for k, args in start.items()}
    runs["two_tty"] = _start(CEC_BIN, ["score", a, b], tmp_path, tty_stderr=True)
    _wait(*runs.values(), timeout=1500)

    exp_a = scorer.score([p for p, _ in PAIRS_A], [r for _, r in PAIRS_A])
    exp_b = scorer.score([p for p, _ in PAIRS_B], [r for _, r in PAIRS_B])
    for k in ("csv", "two_json", "two_tsv", "dir_table", "rescale", "baseline", "two_tty"):
        assert runs[k].rc == 0, (k, runs[k].stderr)

    # 4. the suffix of -o picks the format, unless --format says otherwise
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    np.testing.assert_allclose([float(r["sym"]) for r in rows], exp_a.sym, atol=2e-6)
    table = (tmp_path / "t.csv").read_text()
    assert table.startswith("id ")

    # 14. several files, model loaded once, one summary per file
    files = json.loads((tmp_path / "two.json").read_text())["files"]
    assert [f["input"] for f in files] == [a, b]
    assert abs(files[0]["summary"]["cec"] - exp_a.mean) < 1e-6
    assert abs(files[1]["summary"]["cec"] - exp_b.mean) < 1e-6 and len(files[1]["items"]) == 2
    got = list(csv.DictReader(io.StringIO((tmp_path / "two.tsv").read_text()), delimiter="\t"))
    assert [r["input"] for r in got] == [a] * 3 + [b] * 2
    np.testing.assert_allclose(
        [float(r["backward"]) for r in got], [*exp_a.backward, *exp_b.backward], atol=2e-6
    )
    two = runs["two_tty"].stdout
    assert f"{a}: CEC = {exp_a.mean:.4f}" in two and f"{b}: CEC = {exp_b.mean:.4f}" in two
    assert two.count("signature: ") == 2 and f"== {a} ==" in two and f"== {b} ==" in two

    # --directional on cec score: the direction-aware score, named in the signature
    exp_dir = cec.score([p for p, _ in PAIRS_A], [r for _, r in PAIRS_A], directional=True)
    assert f"CEC = {exp_dir.mean:.4f}" in table and "|dir:yes" in table

    # 16. --rescale: (x - b) / (1 - b) with the shipped baseline, whose hash is in the signature
    shipped = load_baseline(ROOT / "cec" / "baselines" / "all-MiniLM-L6-v2.json")
    resc, empty = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert abs(resc["cec"] - (exp_a.mean - shipped.value) / (1 - shipped.value)) < 1e-6
    assert f"rescale:{shipped.hash}" in resc["signature"]
    made = load_baseline(tmp_path / "base.json")
    texts = [p for p, _ in PAIRS_A + PAIRS_B] + ["Bananas are yellow."]
    perm = cec.rescale.unrelated_pairs(len(texts), seed=3)
    raw = scorer.score(texts, [texts[j] for j in perm])
    assert made.n_pairs == 6 and abs(made.value - raw.mean) < 1e-6
    assert f"b = {made.value:.6f}" in runs["baseline"].stdout

    # 8. empty input: n=0 and a warning, not a silent NaN
    assert empty["n"] == 0 and empty["cec"] is None and empty["input"] == "empty.jsonl"
    assert "cec: warning: empty.jsonl: no items to score: n=0" in runs["rescale"].stderr

    # 5. a model folder that is not a model: one line, no output, no output file
    run = runs["model"]
    assert run.rc == 2, run.stderr
    assert "--model: 'notamodel' could not be loaded" in _one_error_line(run, "cec: error: ")
    assert run.stdout == "" and not (tmp_path / "never.csv").exists()

    # 9. the progress bar starts once the model is ready (loading is its own step before it)
    err = runs["two_tty"].stderr
    ready = err.index("ready (")
    assert err.index("cec: loading model") < ready < err.index("/3 [") and "3/3" in err
