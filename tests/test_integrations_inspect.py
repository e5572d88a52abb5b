"""cec as an inspect-ai scorer, end to end with `inspect eval` and the mockllm/model model.

inspect's mockllm counts prompt tokens with tiktoken's o200k_base unless a model output
already carries its usage, and tiktoken downloads that encoding on first use (offline: a
ConnectionError). The task below gives mockllm outputs with their usage set, so the whole
`inspect eval` run stays offline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("inspect_ai")

import cec  # noqa: E402
from cec.integrations.inspect import cec_scorer  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ANSWERS = [
    "CO2 traps heat. The planet warms.",
    "Melting ice raises the sea.",
    "Cows are loud animals.",
]
TARGETS = [
    ["The planet warms. CO2 traps heat.", "Greenhouse gases warm the Earth."],
    ["Sea level rises as ice melts."],
    ["Volcanoes emit gases."],
]

TASK_FILE = textwrap.dedent(
    f"""
    from inspect_ai import Task, task
    from inspect_ai.dataset import Sample
    from inspect_ai.model import ModelOutput, ModelUsage, get_model
    from inspect_ai.solver import generate

    from cec.integrations.inspect import cec_scorer

    ANSWERS = {ANSWERS!r}
    TARGETS = {TARGETS!r}


    def output(text):
        out = ModelOutput.from_content("mockllm/model", text)
        # usage given, so mockllm needs no tiktoken encoding (a download) to count tokens
        out.usage = ModelUsage(input_tokens=8, output_tokens=8, total_tokens=16)
        return out


    @task
    def cec_explain(splitter="cec"):
        return Task(
            dataset=[Sample(input=f"Explain item {{i}}.", target=t) for i, t in enumerate(TARGETS)],
            solver=generate(),
            scorer=cec_scorer(splitter=splitter),
            model=get_model("mockllm/model", custom_outputs=[output(a) for a in ANSWERS]),
        )
    """
)


@pytest.fixture(scope="module")
def eval_log(tmp_path_factory):
    """`inspect eval` on the task file, run once through inspect's own CLI."""
    work = tmp_path_factory.mktemp("inspect")
    (work / "cec_task.py").write_text(TASK_FILE)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    cmd = [
        sys.executable,
        "-m",
        "inspect_ai",
        "eval",
        "cec_task.py",
        "--log-dir",
        "logs",
        "--log-format",
        "json",
        "--display",
        "plain",
    ]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    logs = list((work / "logs").glob("*.json"))
    assert len(logs) == 1, proc.stdout[-3000:]
    return json.loads(logs[0].read_text())


def test_inspect_eval_scores_equal_cec_score(eval_log):
    assert eval_log["status"] == "success"
    expected = cec.score(ANSWERS, TARGETS)
    samples = sorted(eval_log["samples"], key=lambda s: s["id"])
    assert [s["output"]["completion"] for s in samples] == ANSWERS
    values = [s["scores"]["cec"]["value"] for s in samples]
    np.testing.assert_allclose(values, expected.sym, atol=1e-6)
    meta = [s["scores"]["cec"]["metadata"] for s in samples]
    np.testing.assert_allclose([m["forward"] for m in meta], expected.forward, atol=1e-6)
    np.testing.assert_allclose([m["backward"] for m in meta], expected.backward, atol=1e-6)
    assert meta[0]["signature"] == str(expected.signature.with_(nrefs="2"))
    assert meta[1]["signature"] == str(expected.signature.with_(nrefs="1"))

    (score,) = eval_log["results"]["scores"]
    assert score["name"] == "cec" and score["params"] == {"splitter": "cec"}
    assert score["metrics"]["mean"]["value"] == pytest.approx(expected.mean, abs=1e-6)
    want_se = np.std(expected.sym, ddof=1) / np.sqrt(len(ANSWERS))
    assert score["metrics"]["stderr"]["value"] == pytest.approx(want_se, abs=1e-6)


def test_bad_option_fails_when_the_scorer_is_made():
    with pytest.raises(ValueError, match="splitter"):
        cec_scorer(splitter="no-such-splitter")
    with pytest.raises(TypeError, match="colour"):
        cec_scorer(colour="red")


def test_scorer_through_inspect_api_with_several_references():
    import asyncio

    from inspect_ai.model import ModelOutput
    from inspect_ai.scorer import Target
    from inspect_ai.solver import TaskState

    score_fn = cec_scorer()
    state = TaskState(
        model="mockllm/model",
        sample_id=1,
        epoch=1,
        input="q",
        messages=[],
        output=ModelOutput.from_content("mockllm/model", "Ice melts. Seas rise."),
    )
    result = asyncio.run(score_fn(state, Target(["Cows moo.", "Seas rise. Ice melts."])))
    assert result.value == pytest.approx(1.0, abs=1e-6)
    assert result.metadata["best_ref"] == 1 and "nrefs:2" in result.metadata["signature"]
