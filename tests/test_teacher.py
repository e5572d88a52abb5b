"""cec_distill.teacher against a real HTTP chat-completions server on 127.0.0.1 (tests/fake_openai.py).

Every failure the issue names (429 with Retry-After, 500, a hang past the timeout, a dropped
connection, malformed JSON, an empty message) must end with each instance labelled exactly once,
with the retries visible in the server's request log; a CLI run killed with SIGKILL resumes
without asking for a finished id again; the API key never appears in any output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from cec_distill.data import Evidence, Instance, write_instances
from cec_distill.prompts import prompt_hash, render_prompt
from cec_distill.teacher import (
    LOCAL_PLACEHOLDER_KEY,
    MissingAPIKeyError,
    Redactor,
    RetryPolicy,
    TeacherConfig,
    label_instances,
)

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI, explanation_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-Zq8x-DO-NOT-LEAK-4f1c9e"


def make_instances(n: int) -> list[Instance]:
    return [
        Instance(
            id=f"climate-fever:{i}",
            dataset="climate-fever",
            claim=f"Claim number {i} says the seas rise.",
            evidence=tuple(
                Evidence(f"Evidence {i}.{k} about ice.", "SUPPORTS", f"Article {k}")
                for k in range(5)
            ),
            label="SUPPORTS",
        )
        for i in range(n)
    ]


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ok_ids(path: Path) -> Counter:
    return Counter(r["id"] for r in records(path) if not r["error"])


@pytest.fixture
def server():
    with FakeOpenAI() as srv:
        yield srv


@pytest.fixture
def api_key(monkeypatch):
    monkeypatch.setenv("CEC_TEST_KEY", SECRET)
    return SECRET


def config(server, **kw) -> TeacherConfig:
    base = dict(
        base_url=server.base_url,
        api_key_env="CEC_TEST_KEY",
        timeout=1.0,
        backoff_base=0.02,
        backoff_max=0.2,
        concurrency=3,
        max_attempts=5,
    )
    base.update(kw)
    return TeacherConfig(**base)


# ----------------------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("429:0.4", "http_429"),
        ("500", "http_500"),
        ("hang:5", "timeout"),
        ("drop", "connection"),
        ("malformed", "malformed"),
        ("empty", "bad_response"),
    ],
)
def test_each_failure_is_retried_until_every_instance_is_labelled_once(
    server, api_key, tmp_path, action, kind
):
    insts = make_instances(8)
    target = insts[3]
    server.script_for(target.claim, [action, action])  # fails twice, then answers
    out = tmp_path / "labels.jsonl"
    summary = label_instances(insts, out, config(server), rng_seed=0)

    assert summary.labelled == 8 and summary.failed == 0 and summary.remaining == 0
    assert ok_ids(out) == Counter({i.id: 1 for i in insts})
    assert len(records(out)) == 8  # nothing but the labels
    by_id = {r["id"]: r for r in records(out)}
    for inst in insts:  # each label answers its own prompt (no mix-up between threads)
        assert by_id[inst.id]["explanation"] == explanation_for(render_prompt(inst))
    # the request log shows the retries: two failures, then the answer
    log = [r for r in server.requests if r["claim"] == target.claim]
    assert [r["action"] for r in log] == [action, action, "ok"]
    assert len(server.requests) == 8 + 2 == summary.requests
    assert summary.retries == 2
    rec = by_id[target.id]
    assert rec["attempts"] == 3 and [h["kind"] for h in rec["retries"]] == [kind, kind]
    if action.startswith("429"):
        gaps = [b["time"] - a["time"] for a, b in zip(log, log[1:], strict=False)]
        assert min(gaps) >= 0.4  # Retry-After honoured
        assert rec["retries"][0]["retry_after"] == pytest.approx(0.4)
    if action.startswith("hang"):
        assert "timed out" in rec["retries"][0]["message"].lower()


def test_record_fields(server, api_key, tmp_path):
    insts = make_instances(2)
    out = tmp_path / "labels.jsonl"
    label_instances(insts, out, config(server, temperature=0.3, seed=7, max_tokens=99))
    rec = {r["id"]: r for r in records(out)}[insts[0].id]
    assert rec["model"] == "gpt-4" and rec["response_model"] == "gpt-4-0613"
    assert rec["temperature"] == 0.3 and rec["seed"] == 7 and rec["max_tokens"] == 99
    assert rec["system_fingerprint"] == "fp_fake123"
    assert rec["prompt_hash"] == prompt_hash(render_prompt(insts[0]))
    assert rec["template"] == "builtin:climate-fever" and len(rec["template_hash"]) == 16
    assert (
        rec["usage"]["total_tokens"]
        == rec["usage"]["prompt_tokens"] + rec["usage"]["completion_tokens"]
        > 0
    )
    assert rec["request_id"].startswith("req_") and rec["finish_reason"] == "stop"
    assert datetime.fromisoformat(rec["started_at"]) <= datetime.fromisoformat(rec["finished_at"])
    assert rec["base_url"] == server.base_url and rec["label"] == "SUPPORTS"
    sent = server.requests[0]
    assert sent["temperature"] == 0.3 and sent["seed"] == 7 and sent["model"] == "gpt-4"
    assert sent["authorization"] == f"Bearer {SECRET}"


def test_failed_item_is_recorded_then_retried_by_the_next_run(server, api_key, tmp_path):
    insts = make_instances(6)
    server.script_for(insts[2].claim, ["500"] * 3)  # exhausts max_attempts=3
    server.script_for(insts[4].claim, ["400"])  # not retryable within a run
    out = tmp_path / "labels.jsonl"
    s1 = label_instances(insts, out, config(server, max_attempts=3))
    assert (s1.labelled, s1.failed, s1.remaining) == (4, 2, 2)
    errs = {r["id"]: r for r in records(out) if r["error"]}
    assert errs[insts[2].id]["error"]["kind"] == "http_500" and errs[insts[2].id]["attempts"] == 3
    assert errs[insts[4].id]["error"]["status"] == 400 and errs[insts[4].id]["attempts"] == 1
    assert errs[insts[4].id]["explanation"] is None
    n1 = len(server.requests)

    s2 = label_instances(insts, out, config(server))
    assert (s2.already_done, s2.labelled, s2.failed, s2.remaining) == (4, 2, 0, 0)
    again = {r["claim"] for r in server.requests[n1:]}
    assert again == {insts[2].claim, insts[4].claim}  # only the failed ones were asked again
    assert ok_ids(out) == Counter({i.id: 1 for i in insts})


def test_budget_of_requests_stops_cleanly_and_resumes(server, api_key, tmp_path):
    insts = make_instances(10)
    out = tmp_path / "labels.jsonl"
    s1 = label_instances(insts, out, config(server, max_requests=4, concurrency=2))
    assert len(server.requests) == 4 == s1.requests
    assert s1.labelled == 4 and s1.remaining == 6 and "max requests (4)" in s1.stopped
    assert len(records(out)) == 4
    first = {r["claim"] for r in server.requests}
    s2 = label_instances(insts, out, config(server))
    assert s2.already_done == 4 and s2.labelled == 6
    assert not first & {r["claim"] for r in server.requests[4:]}  # nothing paid for twice
    assert ok_ids(out) == Counter({i.id: 1 for i in insts})


def test_budget_spent_during_retries_records_nothing_and_is_not_a_failure(
    server, api_key, tmp_path
):
    insts = make_instances(3)
    server.script_for(insts[0].claim, ["500"] * 4)
    out = tmp_path / "labels.jsonl"
    s1 = label_instances(insts, out, config(server, max_requests=3, concurrency=1))
    assert [r["claim"] for r in server.requests] == [insts[0].claim] * 3
    assert (s1.labelled, s1.failed, s1.remaining) == (0, 0, 3) and "max requests" in s1.stopped
    assert not out.read_text()  # three failed attempts bought nothing: no record
    s2 = label_instances(insts, out, config(server))
    assert s2.labelled == 3 and ok_ids(out) == Counter({i.id: 1 for i in insts})


def test_budget_of_tokens(server, api_key, tmp_path):
    insts = make_instances(10)
    out = tmp_path / "labels.jsonl"
    s1 = label_instances(insts, out, config(server, max_total_tokens=250, concurrency=1))
    per_request = records(out)[0]["usage"]["total_tokens"]
    assert per_request < 250
    # stops at the first request that finds the budget spent: ceil(250 / per_request) requests
    assert s1.requests == -(-250 // per_request) and s1.tokens >= 250
    assert "max total tokens" in s1.stopped and s1.remaining == 10 - s1.requests


def test_fatal_auth_error_stops_the_run(server, api_key, tmp_path):
    insts = make_instances(20)
    server.script(["401"] * 50)
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, concurrency=2))
    assert s.fatal and "401" in s.fatal and SECRET not in s.fatal
    assert len(server.requests) <= 2  # the in-flight ones, then stop
    assert SECRET not in out.read_text()


def test_custom_template_file(server, api_key, tmp_path):
    tpl = tmp_path / "mine.txt"
    tpl.write_text("### user\n[Claim]: {claim}\nWhy is it {label}? {{brief}}\n", encoding="utf-8")
    insts = make_instances(1)
    out = tmp_path / "labels.jsonl"
    label_instances(insts, out, config(server), template=tpl)
    assert server.requests[0]["messages"] == [
        {"role": "user", "content": f"[Claim]: {insts[0].claim}\nWhy is it SUPPORTS? {{brief}}"}
    ]
    rec = records(out)[0]
    assert rec["template"] == str(tpl) and rec["prompt_hash"] == prompt_hash(
        server.requests[0]["messages"]
    )


def test_azure_style_deployment(server, api_key, tmp_path):
    out = tmp_path / "labels.jsonl"
    cfg = config(
        server, base_url=f"{server.base_url}/deployments/my-gpt4", api_version="2024-06-01"
    )
    label_instances(make_instances(1), out, cfg)
    (req,) = server.requests
    assert req["path"] == "/v1/deployments/my-gpt4/chat/completions?api-version=2024-06-01"
    assert req["authorization"] == SECRET  # Azure's api-key header
    assert ok_ids(out) == Counter({"climate-fever:0": 1})


def test_api_key_from_environment_only(server, monkeypatch, tmp_path):
    monkeypatch.delenv("CEC_TEST_KEY", raising=False)
    insts = make_instances(1)
    with pytest.raises(MissingAPIKeyError, match="CEC_TEST_KEY"):
        label_instances(
            insts, tmp_path / "a.jsonl", config(server, base_url="https://api.example.invalid/v1")
        )
    # a local server needs no key: a placeholder is sent
    label_instances(insts, tmp_path / "b.jsonl", config(server))
    assert server.requests[0]["authorization"] == f"Bearer {LOCAL_PLACEHOLDER_KEY}"


def test_bad_configuration_is_refused_early():
    with pytest.raises(ValueError, match="concurrency"):
        TeacherConfig(concurrency=0)
    with pytest.raises(ValueError, match="max_requests"):
        TeacherConfig(max_requests=0)
    with pytest.raises(ValueError, match="token_param"):
        TeacherConfig(token_param="tokens")
    with pytest.raises(ValueError, match="duplicate"):
        label_instances(make_instances(2) * 2, "unused.jsonl", TeacherConfig(), client=object())


def test_retry_policy_backoff_and_redactor():
    import random

    p = RetryPolicy(base=1.0, cap=10.0)
    rng = random.Random(1)
    delays = [p.delay(k, None, rng) for k in range(1, 8) for _ in range(50)]
    assert max(delays) <= 10.0 and min(delays) >= 0.0
    assert max(p.delay(1, None, rng) for _ in range(200)) <= 1.0
    assert (
        max(p.delay(6, None, rng) for _ in range(200)) > 5.0
    )  # grows exponentially, up to the cap
    assert all(3.0 <= p.delay(1, 3.0, rng) <= 3.3 for _ in range(50))
    assert RetryPolicy(max_retry_after=5).delay(1, 1e6, rng) <= 5.5
    assert Redactor("sk-123456")("x sk-123456 y sk-123456") == "x [REDACTED] y [REDACTED]"


# ----------------------------------------------------------------------------- the CLI in a subprocess


def _cli(args, env_extra=None, **popen):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cec_distill.cli", "label", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _claim_to_id(insts):
    return {i.claim: i.id for i in insts}


def test_cli_survives_sigkill_and_resumes_without_repeating(tmp_path):
    insts = make_instances(30)
    data = write_instances(insts, tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    args = [
        "--data",
        str(data),
        "--out",
        str(out),
        "--model",
        "gpt-4",
        "--concurrency",
        "3",
        "--no-progress",
    ]
    with FakeOpenAI(delay=0.15) as srv:
        args += ["--base-url", srv.base_url, "--timeout", "5", "--backoff-base", "0.01"]
        proc = _cli(args)
        try:
            deadline = time.monotonic() + 60
            while not (out.exists() and out.read_text().count("\n") >= 6):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no records appeared"
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        assert proc.returncode == -signal.SIGKILL
        finished = {
            json.loads(line)["id"] for line in out.read_text().splitlines() if line.endswith("}")
        }
        time.sleep(0.3)  # let the server log whatever the dying process had half-sent
        n_before = len(srv.requests)
        # a request cut off by the kill arrives without a body (claim ""): it was never answered
        asked_before = [r["claim"] for r in srv.requests if r["claim"]]
        assert 6 <= len(finished) < 30

        srv.delay = 0.0
        proc = _cli(args)
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    recs = [json.loads(line) for line in lines]  # every line parses
    assert Counter(r["id"] for r in recs if not r["error"]) == Counter({i.id: 1 for i in insts})
    asked_after = [_claim_to_id(insts)[r["claim"]] for r in srv.requests[n_before:]]
    assert not finished & set(asked_after)  # no finished id was requested again
    assert len(asked_after) == len(set(asked_after)) == 30 - len(finished)
    # at most the requests in flight at the kill were paid for twice
    lost = set(asked_after) & {_claim_to_id(insts)[c] for c in asked_before}
    assert len(lost) <= 3
    assert "labelled" in stderr and "remaining 0 of 30" in stderr


@pytest.mark.slow  # a third CLI start-up (seconds of imports); the SIGKILL test covers resuming
def test_cli_ctrl_c_writes_the_requests_in_flight(tmp_path):
    insts = make_instances(12)
    data = write_instances(insts, tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    with FakeOpenAI(delay=0.6) as srv:
        args = [
            "--data",
            str(data),
            "--out",
            str(out),
            "--base-url",
            srv.base_url,
            "-j",
            "3",
            "--no-progress",
        ]
        proc = _cli(args)
        deadline = time.monotonic() + 60
        while len(srv.requests) < 4:  # the first wave answered, the second in flight
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    asked = {_claim_to_id(insts)[r["claim"]] for r in srv.requests}
    written = {r["id"] for r in records(out)}
    assert written == asked  # every request paid for was written, none abandoned
    assert len(written) < 12 and "re-run the same command to resume" in stderr


def test_api_key_never_appears_in_logs_errors_or_outputs(tmp_path):
    insts = make_instances(6)
    data = write_instances(insts, tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    log_file = tmp_path / "run.log"
    with FakeOpenAI() as srv:
        # the 400 body echoes the Authorization header back, as a careless server might
        srv.script_for(insts[1].claim, ["400"])
        srv.script_for(insts[2].claim, ["500", "drop", "429:0.05"])
        args = [
            "--data",
            str(data),
            "--out",
            str(out),
            "--base-url",
            srv.base_url,
            "--api-key-env",
            "CEC_TEST_KEY",
        ]
        args += ["--backoff-base", "0.01", "--verbose", "--log-file", str(log_file)]
        proc = _cli(args, env_extra={"CEC_TEST_KEY": SECRET, "OPENAI_LOG": "debug"})
        stdout, stderr = proc.communicate(timeout=60)
        assert srv.requests[0]["authorization"] == f"Bearer {SECRET}"  # the key was really used
    assert proc.returncode == 1  # one item failed (400) and is recorded for the next run
    error = {r["id"]: r for r in records(out)}[insts[1].id]["error"]
    assert "[REDACTED]" in error["message"]  # the echoed key was scrubbed
    assert "retrying" in log_file.read_text() and "retrying" in stderr
    assert "Sending HTTP Request" in stderr  # the openai library's own debug log was on, too
    texts = {
        "stdout": stdout,
        "stderr": stderr,
        "log": log_file.read_text(),
        "out": out.read_text(),
    }
    texts.update({p.name: p.read_text(errors="replace") for p in tmp_path.iterdir() if p.is_file()})
    for name, text in texts.items():
        assert SECRET not in text, name
        assert SECRET[8:20] not in text, name  # not even a fragment


# ----------------------------------------------------------------------------- prompts


def test_esnli_and_climate_fever_in_one_run_use_their_own_templates(server, api_key, tmp_path):
    nli = Instance(
        "esnli:dev:0",
        "esnli",
        "Two women hold packages.",
        (Evidence("Two women embrace holding packages.", "premise"),),
        "entailment",
        ("holding packages is holding packages",),
    )
    out = tmp_path / "labels.jsonl"
    label_instances([*make_instances(1), nli], out, config(server))
    by_id = {r["id"]: r for r in records(out)}
    assert by_id["esnli:dev:0"]["template"] == "builtin:esnli"
    assert by_id["climate-fever:0"]["template"] == "builtin:climate-fever"
    sent = next(r for r in server.requests if r["claim"] == nli.claim)["messages"]
    assert "- Two women embrace holding packages.\n[Label]: entailment" in sent[-1]["content"]
    assert "premise" in sent[-1]["content"] and "[premise]" not in sent[-1]["content"]


def test_paper_layout_and_template_errors(tmp_path):
    from cec_distill.prompts import PromptTemplate, format_instance, load_template

    inst = make_instances(1)[0]
    user = render_prompt(inst)[-1]["content"]
    assert user.startswith(format_instance(inst))  # [Claim]; [Evidence]; [Label], then the request
    assert "[Evidence]:\n- [SUPPORTS] Evidence 0.0 about ice." in user
    assert "supports or contradicts the claim" in user
    assert prompt_hash(render_prompt(inst)) == prompt_hash(render_prompt(inst))
    assert prompt_hash(render_prompt(make_instances(2)[1])) != prompt_hash(render_prompt(inst))
    with pytest.raises(ValueError, match=r"unknown placeholder \{clam\}"):
        PromptTemplate.parse("[Claim]: {clam}")
    with pytest.raises(ValueError, match="stray"):
        PromptTemplate.parse("a { b")
    with pytest.raises(ValueError, match="no user message"):
        PromptTemplate.parse("### system\nYou explain.")
    with pytest.raises(FileNotFoundError, match="template"):
        load_template(tmp_path / "absent.txt")
    assert PromptTemplate.parse("plain {claim}").render(inst) == [
        {"role": "user", "content": f"plain {inst.claim}"}
    ]
