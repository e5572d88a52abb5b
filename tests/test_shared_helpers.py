"""One helper each (issue 16.2): the signature's ``nrefs`` label and JSON-safe values.

Every place that reports a score labels ``nrefs`` with :func:`cec.signature.nrefs_label` and
turns NaN into ``null`` with :func:`cec.result.json_safe`; here the places are run for real and
must agree.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cec.result import json_safe
from cec.signature import Signature, nrefs_label

GENS = ["CO2 traps heat. The planet warms.", "Ice melts. Seas rise."]
SAME = [["CO2 traps heat.", "The planet warms."], ["Seas rise.", "Ice melts."]]
MIXED = [["CO2 traps heat.", "The planet warms."], ["Seas rise."]]


@pytest.mark.parametrize(
    ("counts", "label"),
    [([1], "1"), ([3, 3, 3], "3"), ([1, 2], "var"), ([], "1"), (iter([2, 2]), "2")],
)
def test_nrefs_label(counts, label):
    assert nrefs_label(counts) == label


@pytest.mark.parametrize(("refs", "label"), [(SAME, "2"), (MIXED, "var")])
def test_scorer_metric_explain_and_cli_label_nrefs_alike(scorer, tmp_path, capsys, refs, label):
    from cec.cli import main
    from cec.metric import CECMetric

    result = scorer.score(GENS, refs)
    metric = CECMetric(scorer=scorer)
    metric.update(GENS, refs)
    alignments = scorer.align(GENS, refs)
    path = tmp_path / "items.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prediction": g, "reference": r}) + "\n"
            for g, r in zip(GENS, refs, strict=True)
        )
    )
    assert main(["score", str(path), "--format", "json", "--quiet", "--device", "cpu"]) == 0
    cli = json.loads(capsys.readouterr().out)["summary"]["signature"]
    labels = {
        "scorer": result.signature.nrefs,
        "metric": metric.compute().signature.nrefs,
        "align": alignments[0].signature.nrefs,
        "cli": Signature.parse(cli).nrefs,
    }
    assert labels == dict.fromkeys(labels, label)


def test_json_safe_values():
    values = [math.nan, np.float32("nan"), np.float64(0.25), 1.5, np.int64(7), np.bool_(True), "x"]
    out = [json_safe(v) for v in values]
    assert out == [None, None, 0.25, 1.5, 7, True, "x"]
    assert [type(v) for v in out[2:]] == [float, float, int, bool, str]
    json.dumps(out, allow_nan=False)  # raises on NaN or a numpy scalar


def test_results_with_nan_are_valid_json_everywhere():
    """`CECResult.to_dict`, `cec.metric.compute` and an `EvaluationResult` write NaN as null."""
    import cec
    import cec.metric
    from cec_distill.metrics import evaluate

    nan_scorer = cec.CEC(device="cpu", empty="nan")
    gens, refs = ["Ice melts.", ""], ["Ice melts.", "Seas rise."]
    d = nan_scorer.score(gens, refs).to_dict()
    assert d["per_item"]["sym"][1] is None and d["cec"] == pytest.approx(1.0, abs=1e-6)
    out = cec.metric.compute(predictions=gens, references=refs, device="cpu", empty="nan")
    assert out["scores"][1] is None and out["cec"] == pytest.approx(1.0, abs=1e-6)
    evaluation = evaluate(gens, refs, metrics=["cec"], scorer=nan_scorer, system="s")
    items = json.loads(json.dumps(evaluation.to_dict(), allow_nan=False))["items"]
    cec_col = next(k for k in items[1] if k.startswith("cec"))
    assert items[1][cec_col] is None and items[0][cec_col] == pytest.approx(1.0, abs=1e-6)
