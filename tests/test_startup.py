"""Fast start: fp32 from a checked ONNX Runtime copy, without importing transformers.

Each check runs the real default model in fresh processes (the point is what a new process
imports) against a cache folder of this module, exported once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]

SCORE_SCRIPT = """
import json, sys
import cec
from cec.io import read_records
recs = list(read_records(sys.argv[1]))
s = cec.CEC(device="cpu")
r = s.score([x.prediction for x in recs], [x.references[0] for x in recs])
print(json.dumps({
    "sym": [float(v) for v in r.sym],
    "signature": str(r.signature),
    "transformers": "transformers" in sys.modules,
    "fast": bool(s.encoder._fast),
}))
"""


def _env(cache: Path, fast: bool) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        CEC_CACHE_DIR=str(cache),
        CEC_FAST_START="1" if fast else "0",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def _score(path: Path, cache: Path, fast: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCORE_SCRIPT, str(path)],
        env=_env(cache, fast),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory, shared_data) -> Path:
    """30 Climate-FEVER pairs, one with a reference longer than the 256-token window."""
    rows = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for i, line in zip(range(30), fh, strict=False):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            ref = " ".join(ev * (8 if i == 3 else 1))
            rows.append(
                {"id": f"c{i}", "prediction": rec["claim"] + " " + ev[i % 5], "reference": ref}
            )
    path = tmp_path_factory.mktemp("startup") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, pairs_file) -> Path:
    """A cache folder where `cec score` (fp32, CPU) prepared the checked ONNX copy."""
    cache = tmp_path_factory.mktemp("cec-cache")
    proc = subprocess.run(
        ["cec", "score", str(pairs_file), "-q", "--device", "cpu"],
        env=_env(cache, fast=True),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cache


def _marker(cache: Path) -> Path:
    (marker,) = cache.glob("onnx/*/fp32-check.json")
    return marker


def test_first_cli_run_writes_a_passed_check(prepared):
    info = json.loads(_marker(prepared).read_text(encoding="utf-8"))
    assert info["passed"] is True and info["same_token_ids"] is True
    assert 0 <= info["max_abs_diff"] <= info["tolerance"] == 1e-6
    assert (_marker(prepared).parent / info["graph"]).is_file()


def test_fast_path_skips_transformers_and_keeps_scores_and_signature(prepared, pairs_file):
    fast = _score(pairs_file, prepared, fast=True)
    slow = _score(pairs_file, prepared, fast=False)
    assert fast["fast"] and not fast["transformers"]
    assert not slow["fast"] and slow["transformers"]
    assert fast["signature"] == slow["signature"]
    assert "prec:fp32" in fast["signature"]
    np.testing.assert_allclose(fast["sym"], slow["sym"], rtol=0, atol=1e-6)
    assert len(fast["sym"]) == 30


def test_cli_output_is_the_same_on_both_paths(prepared, pairs_file):
    outs = []
    for fast in (True, False):
        proc = subprocess.run(
            ["cec", "score", str(pairs_file), "--format", "json", "--device", "cpu", "-q"],
            env=_env(prepared, fast),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(json.loads(proc.stdout))
    (fast, slow) = outs
    assert fast["summary"]["signature"] == slow["summary"]["signature"]
    assert abs(fast["summary"]["cec"] - slow["summary"]["cec"]) <= 1e-6
    for a, b in zip(fast["items"], slow["items"], strict=True):
        assert a["id"] == b["id"]
        assert abs(a["sym"] - b["sym"]) <= 1.5e-6  # rows are rounded to 6 decimals


def test_a_marker_for_another_identity_or_a_failed_check_is_not_used(
    prepared, pairs_file, tmp_path
):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(prepared, cache)
    marker = _marker(cache)
    info = json.loads(marker.read_text(encoding="utf-8"))
    for change in ({"identity": "00000000"}, {"passed": False}, {"version": 0}):
        marker.write_text(json.dumps({**info, **change}), encoding="utf-8")
        out = _score(pairs_file, cache, fast=True)
        assert not out["fast"] and out["transformers"], change


def test_fast_tokenizer_gives_the_transformers_token_ids(scorer, shared_data):
    from cec._fast import PROBES, FastTokenizer
    from cec.hf_model import plain_layout

    enc = scorer.encoder
    folder = enc.local_dir()
    layout = plain_layout(folder)
    tok = FastTokenizer(folder, layout.do_lower_case, enc._input_names(), 0)
    with open(shared_data / "esnli" / "esnli_dev_3expl.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["premise"] for line, _ in zip(fh, range(300), strict=False)]
    texts += list(PROBES)
    limit = enc.max_seq_length
    want, _ = enc.tokenize(texts)
    got = tok(texts, truncation=True, max_length=limit)["input_ids"]
    assert [list(x) for x in got] == [list(x) for x in want]
    assert max(len(x) for x in got) == limit  # the long probe was cut at the window


def test_off_switch(monkeypatch):
    from cec import _fast

    monkeypatch.setenv("CEC_FAST_START", "0")
    assert not _fast.enabled()
    monkeypatch.setenv("CEC_FAST_START", "1")
    assert _fast.enabled()
