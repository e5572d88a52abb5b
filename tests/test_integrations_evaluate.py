"""cec as a real HF evaluate module: evaluate.load(cec.integrations.EVALUATE_SCRIPT)."""

from __future__ import annotations

import numpy as np
import pytest

evaluate = pytest.importorskip("evaluate")

import cec  # noqa: E402
import cec.integrations  # noqa: E402

PREDS = [
    "CO2 traps heat. The planet warms.",
    "Ice sheets melt, so seas rise.",
    "Cows are loud animals.",
]
ONE_REF = [
    "The planet warms because CO2 traps heat.",
    "Sea level rises as ice melts.",
    "Volcanoes emit gases.",
]
MANY_REFS = [
    ["The planet warms because CO2 traps heat.", "Greenhouse gases warm the Earth."],
    ["Sea level rises as ice melts.", "Melting ice raises the sea."],
    ["Volcanoes emit gases.", "Cows moo loudly."],
]


@pytest.fixture(scope="module")
def module():
    return evaluate.load(cec.integrations.EVALUATE_SCRIPT)


@pytest.mark.parametrize("refs", [ONE_REF, MANY_REFS], ids=["one-ref", "many-refs"])
def test_compute_equals_cec_score(module, refs):
    out = module.compute(predictions=PREDS, references=refs)
    expected = cec.score(PREDS, refs)
    assert out["cec"] == pytest.approx(expected.mean, abs=1e-6)
    assert out["forward"] == pytest.approx(expected.mean_forward, abs=1e-6)
    assert out["backward"] == pytest.approx(expected.mean_backward, abs=1e-6)
    np.testing.assert_allclose(out["scores"], expected.sym, atol=1e-6)
    assert out["signature"] == str(expected.signature)


def test_batches_added_then_computed(module):
    for pred, refs in zip(PREDS, MANY_REFS, strict=True):
        module.add_batch(predictions=[pred], references=[refs])
    out = module.compute()
    assert out["cec"] == pytest.approx(cec.score(PREDS, MANY_REFS).mean, abs=1e-6)


def test_module_info(module):
    assert module.name == "cec"
    assert "Causal Distillation" in module.citation and "sentence" in module.description
    kinds = [type(f["references"]).__name__ for f in module.info.features]
    assert len(kinds) == 2 and "Value" in kinds  # one reference or a list of them


def test_options_pass_through_at_load_and_compute(module):
    loaded = evaluate.load(cec.integrations.EVALUATE_SCRIPT, splitter="none", empty="nan")
    out = loaded.compute(predictions=PREDS + [""], references=ONE_REF + ["A reference."])
    expected = cec.score(PREDS + [""], ONE_REF + ["A reference."], splitter="none", empty="nan")
    assert "seg:none" in out["signature"] and "empty:nan" in out["signature"]
    assert out["scores"][-1] is None and out["n_empty"] == 1
    assert out["cec"] == pytest.approx(expected.mean, abs=1e-6)
    # a compute kwarg overrides for that call only
    again = module.compute(predictions=PREDS, references=ONE_REF, directional=True)
    assert "dir:yes" in again["signature"]
    assert "dir:yes" not in module.compute(predictions=PREDS, references=ONE_REF)["signature"]


def test_bad_options_fail_early(module):
    with pytest.raises(ValueError, match="splitter"):
        evaluate.load(cec.integrations.EVALUATE_SCRIPT, splitter="no-such-splitter")
    with pytest.raises(ValueError, match="precision"):
        evaluate.load(cec.integrations.EVALUATE_SCRIPT, precision="fp7")
    with pytest.raises(TypeError, match="colour"):
        module.compute(predictions=PREDS, references=ONE_REF, colour="red")
