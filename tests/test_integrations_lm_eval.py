"""cec inside lm-evaluation-harness: the shipped example task through lm-eval's own CLI and API."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lm_eval")

import cec  # noqa: E402
from cec.integrations.lm_eval import make_process_results, signature  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "lm_eval"
TASK = "cec_esnli_explain"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _lm_eval_cli() -> list[str]:
    exe = shutil.which("lm_eval") or shutil.which("lm-eval")
    return [exe] if exe else [sys.executable, "-m", "lm_eval"]


def _target(sample: dict) -> list[str]:
    """The logged target: lm-eval writes a list target as its Python repr."""
    target = sample["target"]
    return ast.literal_eval(target) if isinstance(target, str) else list(target)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    """The issue's command, run once from the repository root with lm-eval's own CLI."""
    out = tmp_path_factory.mktemp("lm_eval_out")
    cmd = [
        *_lm_eval_cli(),
        "--model",
        "dummy",
        "--tasks",
        TASK,
        "--include_path",
        "examples/lm_eval",
        "--limit",
        "5",
        "--log_samples",
        "--output_path",
        str(out),
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(next(out.rglob("results_*.json")).read_text())
    samples_file = next(out.rglob(f"samples_{TASK}_*.jsonl"))
    samples = [json.loads(line) for line in samples_file.read_text().splitlines() if line]
    return results, samples, proc.stdout


def test_cli_reports_cec_equal_to_cec_score(cli_run):
    results, samples, stdout = cli_run
    assert len(samples) == 5
    res = results["results"][TASK]
    responses = [s["filtered_resps"][0] for s in samples]
    targets = [_target(s) for s in samples]
    assert {len(t) for t in targets} == {1, 2}  # several references per document reached cec
    expected = cec.score(responses, targets)
    assert res["cec,none"] == pytest.approx(expected.mean, abs=1e-6)
    assert res["cec_forward,none"] == pytest.approx(expected.mean_forward, abs=1e-6)
    assert res["cec_backward,none"] == pytest.approx(expected.mean_backward, abs=1e-6)
    # per-document scores are logged with each sample, in document order
    np.testing.assert_allclose([s["cec"] for s in samples], expected.sym, atol=1e-6)
    # a standard error is reported beside the mean
    assert res["cec_stderr,none"] == pytest.approx(np.std(expected.sym, ddof=1) / np.sqrt(5))


def test_cli_carries_the_signature(cli_run):
    results, samples, stdout = cli_run
    sig = results["results"][TASK]["cec_signature,none"]
    parsed = cec.Signature.parse(sig)
    assert parsed.model == "all-MiniLM-L6-v2" and parsed.weights
    assert parsed.nrefs == "var"  # the example has one or two references per document
    assert all(s["cec_signature"].startswith("cec:") for s in samples)
    assert "cec_signature" in stdout and "model:all-MiniLM-L6-v2" in stdout


def test_data_path_does_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sys.path.insert(0, str(EXAMPLE))
    try:
        import utils  # the example's utils.py, as lm-eval's !function loads it

        docs = utils.load_docs()["test"]
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("utils", None)
    assert len(docs) == 8 and {"premise", "hypothesis", "label", "references"} <= set(docs[0])


def _manager(include_path: Path):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(include_path))


def test_simple_evaluate_with_a_real_lm_scores_references_as_one():
    """An LM that answers each prompt with the document's first reference gets CEC 1.0."""
    from lm_eval import simple_evaluate
    from lm_eval.api.model import LM

    docs = {}
    for line in (EXAMPLE / "esnli_explain.jsonl").read_text().splitlines():
        row = json.loads(line)
        docs[row["premise"]] = row["references"][0]

    class Oracle(LM):
        def generate_until(self, requests, disable_tqdm=False):
            out = []
            for req in requests:
                premise = req.args[0].split("\n")[0].removeprefix("Premise: ")
                out.append(docs[premise])
            return out

        def loglikelihood(self, requests, disable_tqdm=False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm=False):
            raise NotImplementedError

    out = simple_evaluate(
        model=Oracle(), tasks=[TASK], task_manager=_manager(EXAMPLE), limit=8, log_samples=True
    )
    res = out["results"][TASK]
    assert res["cec,none"] == pytest.approx(1.0, abs=1e-6)
    responses = [s["filtered_resps"][0] for s in out["samples"][TASK]]
    targets = [_target(s) for s in out["samples"][TASK]]
    assert cec.score(responses, targets).mean == pytest.approx(res["cec,none"], abs=1e-6)


def test_bad_option_fails_at_task_load(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(EXAMPLE, bad)
    utils = bad / "utils.py"
    utils.write_text(
        utils.read_text().replace(
            'make_process_results(references="references")',
            'make_process_results(references="references", splitter="no-such-splitter")',
        )
    )
    with pytest.raises(ValueError, match="splitter"):
        _manager(bad).load([TASK])


def test_process_results_checks_and_scores():
    pr = make_process_results(references="refs", empty="nan")
    out = pr({"refs": "Ice melts. Seas rise."}, ["Seas rise. Ice melts."])
    assert out["cec"] == pytest.approx(1.0, abs=1e-6)
    assert "empty:nan" in out["cec_signature"] and "nrefs:1" in out["cec_signature"]
    with pytest.raises(KeyError, match="refs"):
        pr({"reference": "x"}, ["x"])
    with pytest.raises(TypeError, match="references"):
        make_process_results(references=3)
    with pytest.raises(TypeError, match="unknown CEC option"):
        make_process_results(colour="red")
    # callable references, several per document: the best one counts
    pr2 = make_process_results(references=lambda d: [d["a"], d["b"]])
    out2 = pr2({"a": "Cows moo.", "b": "CO2 traps heat."}, ["CO2 traps heat."])
    assert out2["cec"] == pytest.approx(1.0, abs=1e-6) and "nrefs:2" in out2["cec_signature"]


def test_signature_aggregation_refuses_mixed_scorers():
    a = make_process_results(references="r")({"r": "A b."}, ["A b."])["cec_signature"]
    b = a.replace("empty:zero", "empty:nan")
    assert signature([a, a]) == a
    with pytest.raises(ValueError, match="different scorers"):
        signature([a, b])


def test_example_yaml_lists_every_metric():
    text = (EXAMPLE / f"{TASK}.yaml").read_text()
    from cec.integrations.lm_eval import METRICS

    for name in METRICS:
        assert f"metric: {name}\n" in text
    assert textwrap.dedent("custom_dataset: !function utils.load_docs") in text
