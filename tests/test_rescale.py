"""Baseline rescaling (issue 13.16): opt-in, (x - b) / (1 - b), in the signature."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

import cec
from cec.rescale import B_RANGE, Baseline, compute_baseline, load_baseline, unrelated_pairs

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "cec" / "baselines" / "all-MiniLM-L6-v2.json"
GEN = ["CO2 traps heat. The planet warms.", "Ice melts.", "Bananas are yellow.", "   "]
REF = ["The planet warms because CO2 traps heat.", "Ice melts.", "Stock prices fell.", "Seas rise."]


def test_rescale_is_opt_in_and_maps_every_score(scorer):
    shipped = load_baseline(SHIPPED)
    b = shipped.value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cec.EmptyTextWarning)
        raw = scorer.score(GEN, REF)
        resc = cec.CEC(scorer.encoder, rescale=True).score(GEN, REF)
    assert "rescale" not in str(raw.signature)  # default off: Eq. 2
    assert f"|rescale:{shipped.hash}" in str(resc.signature)
    for name in ("forward", "backward", "sym"):
        r, x = getattr(raw, name)[:3], getattr(resc, name)[:3]
        np.testing.assert_allclose(x, (r - b) / (1 - b), atol=1e-9)
    assert resc.sym[1] == pytest.approx(1.0, abs=1e-6)  # identical stays 1
    assert resc.sym[2] < raw.sym[2]  # unrelated moves toward 0
    assert resc.sym[3] == 0.0 and resc.empty[3]  # the empty policy's value, unrescaled
    np.testing.assert_allclose(resc.sym, (resc.forward + resc.backward) / 2, atol=1e-12)
    # rankings are unchanged (a linear map)
    assert np.argsort(resc.sym[:3]).tolist() == np.argsort(raw.sym[:3]).tolist()


def test_baseline_files_are_checked(tmp_path, scorer):
    shipped = load_baseline(SHIPPED)
    data = json.loads(SHIPPED.read_text())
    data.pop("format"), data.pop("hash")
    wrong_model = Baseline(**{**data, "model": "other-model"})
    with pytest.raises(ValueError, match="made with model 'other-model'"):
        cec.CEC(scorer.encoder, rescale=wrong_model)
    wrong_weights = Baseline(**{**data, "weights": "deadbeef"})
    with pytest.raises(ValueError, match="weights 'deadbeef'"):
        cec.CEC(scorer.encoder, rescale=wrong_weights)
    edited = tmp_path / "edited.json"
    edited.write_text(SHIPPED.read_text().replace(str(shipped.value), "0.2"))
    with pytest.raises(ValueError, match="was edited"):
        cec.CEC(scorer.encoder, rescale=edited)
    with pytest.raises(ValueError, match="does not exist"):
        cec.CEC(scorer.encoder, rescale=tmp_path / "nope.json")
    with pytest.raises(TypeError, match="rescale must be"):
        cec.CEC(scorer.encoder, rescale=3)
    with pytest.raises(ValueError, match="no baseline ships for model"):
        cec.CEC(lambda s: np.ones((len(s), 4)), rescale=True)  # a callable has no shipped one
    with pytest.raises(ValueError, match=r"\[-0.1, 0.9\]"):
        Baseline(**{**data, "value": 1.0})


def _baseline_file(path: Path, drop: tuple[str, ...] = (), **fields) -> Path:
    """The shipped baseline with ``fields`` changed and its hash made to match (a consistent file,
    so only the check against the scorer can refuse it)."""
    data = json.loads(SHIPPED.read_text())
    data.update(fields)
    body = {k: v for k, v in data.items() if k not in ("format", "hash")}
    data["hash"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
    for key in drop:
        data.pop(key)
    path.write_text(json.dumps(data, indent=2))
    return path


def test_shipped_baselines_load_and_match_their_scorer(scorer):
    files = sorted((ROOT / "cec" / "baselines").glob("*.json"))
    assert files
    for path in files:
        loaded = load_baseline(path)
        assert B_RANGE[0] <= loaded.value <= B_RANGE[1] and loaded.n_pairs >= 2
    default = cec.CEC(scorer.encoder, rescale=True)  # checked against the default scorer
    assert default.baseline == load_baseline(SHIPPED)
    assert default.baseline.splitter == scorer.splitter.label


@pytest.mark.parametrize(
    ("fields", "drop", "match"),
    [
        ({"precision": "int8"}, (), "precision 'int8'.*'fp32'"),
        ({"weights": ""}, (), "weights ''.*'63e71cc4'"),
        ({"splitter": "lines"}, (), "splitter 'lines'"),
        ({}, ("hash",), "lacks the field.*hash"),
        ({}, ("precision",), "lacks the field.*precision"),
        ({"value": 0.999999, "forward": 0.999999, "backward": 0.999999}, (), r"\[-0.1, 0.9\]"),
        ({"value": -1, "forward": -1, "backward": -1}, (), r"\[-0.1, 0.9\]"),
        ({"value": 0.3}, (), "not the mean of forward"),
        ({"n_pairs": 0}, (), "n_pairs must be at least 2"),
        ({"seed": "0"}, (), "seed must be an integer"),
        ({"extra": 1}, (), "unexpected field"),
    ],
)
def test_a_baseline_file_that_does_not_define_this_scorers_b_is_refused(
    scorer, tmp_path, fields, drop, match
):
    path = _baseline_file(tmp_path / "b.json", drop, **fields)
    with pytest.raises(ValueError, match=match) as info:
        cec.CEC(scorer.encoder, rescale=path)
    assert str(info.value).startswith("rescale:")


def test_a_baseline_for_another_splitter_is_refused(scorer):
    """The shipped baseline (made with the default splitter) with the lines splitter: another b."""
    default = cec.CEC(scorer.encoder).splitter.label
    with pytest.raises(ValueError, match=re.escape(f"splitter '{default}'") + ".*'lines'.*--splitter"):
        cec.CEC(scorer.encoder, rescale=True, splitter="lines")


def test_cli_refuses_a_baseline_made_for_other_options(tmp_path):
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"prediction": "Ice melts.", "reference": "Seas rise."}) + "\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    bad = _baseline_file(tmp_path / "int8.json", precision="int8")
    runs = [
        ["--baseline", str(bad)],
        ["--rescale", "--splitter", "lines"],
    ]
    for args in runs:
        proc = subprocess.run(
            ["cec", "score", str(pairs), *args], env=env, capture_output=True, text=True
        )
        assert proc.returncode == 2 and proc.stdout == "", (args, proc.stderr)
        (line,) = proc.stderr.strip().splitlines()
        assert line.startswith("cec: error: rescale: the baseline was made with"), line
    # `cec baseline` of texts that are not unrelated (one sentence, reworded): b above 0.9
    same = tmp_path / "same.txt"
    same.write_text("".join(f"The sky is blue{'!' * (i % 3 + 1)}\n" for i in range(6)))
    proc = subprocess.run(
        ["cec", "baseline", str(same), "-o", str(tmp_path / "b.json")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and not (tmp_path / "b.json").exists(), proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"cec: error: {same}: baseline value must lie in [-0.1, 0.9]"), line


def test_compute_baseline_pairs_each_text_with_another(scorer, tmp_path):
    perm = unrelated_pairs(7, seed=2)
    assert sorted(perm.tolist()) == list(range(7)) and (perm != np.arange(7)).all()
    texts = ["Ice melts.", "Stock prices fell.", "Bananas are yellow.", "Dogs bark at night."]
    base = compute_baseline(scorer, texts, corpus="toy", seed=2)
    p = unrelated_pairs(4, seed=2)
    expected = scorer.score(texts, [texts[j] for j in p]).mean
    assert base.value == pytest.approx(expected, abs=1e-6) and base.n_pairs == 4
    assert base.model == "all-MiniLM-L6-v2" and base.weights == scorer.encoder.identity
    again = load_baseline(base.save(tmp_path / "b.json"))
    assert again == base and again.hash == base.hash
    mine = cec.CEC(scorer.encoder, rescale=tmp_path / "b.json")
    assert f"rescale:{base.hash}" in str(mine.signature)
    with pytest.raises(ValueError, match="at least 2"):
        compute_baseline(scorer, ["one"])


@pytest.mark.slow
def test_shipped_baseline_is_what_its_documented_command_makes(scorer, shared_data):
    """docs/rescaling.md: make_baseline_corpus.py, then `cec baseline build/esnli-... ...`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "make_baseline_corpus", ROOT / "benchmarks" / "make_baseline_corpus.py"
    )
    maker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maker)
    shipped = load_baseline(SHIPPED)
    texts = maker.corpus_lines(shared_data / "esnli" / "esnli_test_3expl.jsonl")
    assert len(texts) == 2000
    made = compute_baseline(scorer, texts, corpus="esnli-test-expl-2000", seed=0)
    assert math.isclose(made.value, shipped.value, abs_tol=2e-6)
    assert made.n_pairs == shipped.n_pairs == 2000
