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

from cec_distill.data import Evidence, Instance, read_teacher_labels, write_instances
from cec_distill.prompts import prompt_hash, render_prompt
from cec_distill.teacher import (
    LOCAL_PLACEHOLDER_KEY,
    MissingAPIKeyError,
    Redactor,
    RetryPolicy,
    TeacherConfig,
    label_instances,
    redact_keylike,
    server_message,
)

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI, explanation_for  # noqa: E402
from serve_helpers import served, start_serve  # noqa: E402

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
    assert "Incorrect API key provided" in s.fatal  # the server's words
    assert len(server.requests) == 1  # the first request goes alone: nothing else is paid for
    assert out.read_text() == ""  # about the run, not an item: no record
    assert s.remaining == 20 and s.failed == 0


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


# ----------------------------------------------------------------------------- what the server said


def _capture_log():
    import logging

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__(logging.INFO)
            self.lines: list[str] = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    h = Keep()
    logging.getLogger("cec_distill.teacher").addHandler(h)
    return h


@pytest.mark.parametrize(
    ("action", "said"),
    [
        ("detail", "Server is pinned to 'tiny'; requested 'gpt-4'."),  # transformers serve
        ("422", "temperature: Input should be <= 2; seed: Input should be an integer"),
        ("text", "upstream said no: xxxx"),  # not JSON: the start of the body
        ("400", "Bad request from Bearer [REDACTED]"),  # OpenAI's error.message
    ],
)
def test_the_servers_message_is_kept_in_record_log_and_summary(
    server, api_key, tmp_path, action, said
):
    import logging

    insts = make_instances(5)
    server.script_for(insts[3].claim, [action])  # about one item: a per-item failure
    out = tmp_path / "labels.jsonl"
    keep = _capture_log()
    try:
        s = label_instances(insts, out, config(server))
    finally:
        logging.getLogger("cec_distill.teacher").removeHandler(keep)
    assert (s.labelled, s.failed, s.fatal) == (4, 1, None)
    err = {r["id"]: r for r in records(out)}[insts[3].id]["error"]
    assert said in err["message"]
    assert err["status"] == (422 if action == "422" else 400)
    assert any(said in line for line in keep.lines)
    assert said in s.format() and "failed (1 item)" in s.format()
    if action == "text":
        assert len(err["message"]) < 400  # the first 300 characters of a long body, not all
    for text in (out.read_text(), s.format(), *keep.lines):
        assert SECRET not in text


def test_keylike_text_in_a_server_message_is_redacted_even_when_the_key_is_unknown(
    server, tmp_path
):
    import openai

    other_key = "sk-proj-UnknownToTheRedactor0123456789"
    client = openai.OpenAI(base_url=server.base_url, api_key=other_key, max_retries=0)
    server.script(["detail"])
    out = tmp_path / "labels.jsonl"
    label_instances(make_instances(1), out, config(server), client=client)
    assert server.requests[0]["authorization"] == f"Bearer {other_key}"
    (rec,) = records(out)
    assert "Server is pinned" in rec["error"]["message"]
    assert other_key not in out.read_text() and "[REDACTED]" in rec["error"]["message"]
    assert redact_keylike("token=abcdef123456 and api_key: 'zzzzzz999'") == (
        "token=[REDACTED] and api_key: '[REDACTED]'"
    )


def test_server_message_without_a_response():
    assert server_message(ValueError("no response here")) is None


# ----------------------------------------------------------------------------- systematic errors


@pytest.mark.parametrize("action", ["detail", "422", "400"])
def test_the_same_client_error_on_the_first_requests_stops_the_run(
    server, api_key, tmp_path, action
):
    insts = make_instances(12)
    server.script([action] * 50)
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, concurrency=4))
    assert len(server.requests) == 3  # one at a time until a result that is not this error
    assert s.fatal is not None and "HTTP" in s.fatal and SECRET not in s.fatal
    assert out.read_text() == ""  # nothing written: neither for the 3 sent nor the 9 unsent
    assert (s.labelled, s.failed, s.remaining) == (0, 0, 12)
    assert "fatal error" in s.stopped
    # once the server is fixed, a re-run labels everything
    server._queue.clear()
    s2 = label_instances(insts, out, config(server, concurrency=4))
    assert s2.labelled == 12 and ok_ids(out) == Counter({i.id: 1 for i in insts})


def test_client_errors_about_single_items_are_recorded_not_fatal(server, api_key, tmp_path):
    insts = make_instances(8)
    # two alike at the start (e.g. two over-long prompts), then answers: not systematic
    server.script_for(insts[0].claim, ["detail"])
    server.script_for(insts[1].claim, ["detail"])
    server.script_for(insts[5].claim, ["400filter"])  # a filtered prompt: refused, later
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, concurrency=3))
    assert s.fatal is None and (s.labelled, s.failed, s.refused) == (5, 2, 1)
    by_id = {r["id"]: r for r in records(out)}
    assert by_id[insts[0].id]["error"]["status"] == 400
    assert by_id[insts[5].id]["error"]["kind"] == "refused"
    assert len(server.requests) == 8  # each item once: none of these is retried
    # different client errors at the start are about their items, too
    out2 = tmp_path / "labels2.jsonl"
    server.script_for(insts[0].claim, ["text"])
    server.script_for(insts[1].claim, ["422"])
    server.script_for(insts[2].claim, ["detail"])
    s2 = label_instances(insts, out2, config(server))
    assert s2.fatal is None and (s2.labelled, s2.failed) == (5, 3)


# ----------------------------------------------------------------------------- cut answers


def test_cut_answers_are_flagged_counted_and_kept_by_default(server, api_key, tmp_path):
    insts = make_instances(4)
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, max_tokens=6))
    assert (s.labelled, s.failed, s.truncated) == (4, 0, 4)
    assert "4 of 4 explanations hit the token limit" in s.format()
    for rec in records(out):
        assert rec["truncated"] is True and rec["finish_reason"] == "length"
        assert len(rec["explanation"].split()) == 6
    assert len(server.requests) == 4
    # an answer that fits is not flagged
    out2 = tmp_path / "labels2.jsonl"
    s2 = label_instances(insts[:1], out2, config(server))
    assert s2.truncated == 0 and records(out2)[0]["truncated"] is False
    assert "token limit" not in s2.format()
    # downstream: training-data assembly reports them, and can drop or refuse them
    labels = read_teacher_labels(out)
    assert labels.truncated == {i.id for i in insts} and len(labels.explanations) == 4
    assert read_teacher_labels(out, truncated="drop").explanations == {}
    with pytest.raises(ValueError, match="4 teacher label"):
        read_teacher_labels(out, truncated="error")
    with pytest.raises(ValueError, match="truncated must be"):
        read_teacher_labels(out, truncated="yes")
    from cec_distill.train import targets_for

    assert targets_for(insts, str(out), truncated="drop") == {}
    assert set(targets_for(insts, str(out))) == {i.id for i in insts}


def test_on_length_retry_longer_doubles_the_limit(server, api_key, tmp_path):
    insts = make_instances(2)
    words = len(explanation_for(render_prompt(insts[0])).split())
    assert 10 < words <= 20  # 5 -> 10 -> 20: the third answer fits
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, max_tokens=5, on_length="retry-longer"))
    assert (s.labelled, s.truncated) == (2, 0) and s.requests == 6
    sent = [r["max_tokens"] for r in server.requests if r["claim"] == insts[0].claim]
    assert sent == [5, 10, 20]
    rec = records(out)[0]
    assert rec["truncated"] is False and rec["max_tokens"] == 20 and rec["attempts"] == 3
    assert [h["kind"] for h in rec["retries"]] == ["length", "length"]
    assert rec["usage_all_attempts"]["completion_tokens"] == 5 + 10 + words
    # attempts run out: the last (longer) answer is kept, flagged
    out2 = tmp_path / "labels2.jsonl"
    s2 = label_instances(
        insts[:1], out2, config(server, max_tokens=5, on_length="retry-longer", max_attempts=2)
    )
    assert s2.truncated == 1 and records(out2)[0]["max_tokens"] == 10


def test_on_length_fail_records_the_item_as_failed(server, api_key, tmp_path):
    insts = make_instances(3)
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, max_tokens=4, on_length="fail"))
    assert (s.labelled, s.failed, s.remaining) == (0, 3, 3)
    rec = records(out)[0]
    assert rec["error"]["kind"] == "length" and rec["explanation"] is None
    assert len(rec["truncated_explanation"].split()) == 4  # what was paid for is kept
    s2 = label_instances(insts, out, config(server))  # a larger limit labels them
    assert s2.labelled == 3 and ok_ids(out) == Counter({i.id: 1 for i in insts})
    with pytest.raises(ValueError, match="on_length"):
        TeacherConfig(on_length="truncate")


# ----------------------------------------------------------------------------- content filter


@pytest.mark.parametrize("action", ["filter", "400filter"])
def test_content_filtered_item_is_recorded_once_as_refused_and_not_retried(
    server, api_key, tmp_path, action
):
    insts = make_instances(4)
    server.script_for(insts[2].claim, [action] * 10)
    out = tmp_path / "labels.jsonl"
    s = label_instances(insts, out, config(server, max_attempts=8))
    asked = [r for r in server.requests if r["claim"] == insts[2].claim]
    assert len(asked) == 1  # not retried (it was retried up to 8 times before)
    assert (s.labelled, s.failed, s.refused, s.remaining) == (3, 0, 1, 0)
    errs = [r for r in records(out) if r["error"]]
    assert len(errs) == 1 and errs[0]["error"]["kind"] == "refused"
    assert "refused by the content filter: 1" in s.format()
    # the next run does not pay for it again ...
    n = len(server.requests)
    s2 = label_instances(insts, out, config(server))
    assert len(server.requests) == n and s2.refused_before == 1 and s2.remaining == 0
    # ... unless asked to
    s3 = label_instances(insts, out, config(server, retry_refused=True))
    assert len(server.requests) == n + 1 and s3.refused == 1


# ----------------------------------------------------------------------------- a server that is not ours
# `transformers serve` (transformers >= 5, with fastapi and uvicorn) serving a tiny random Llama
# built here: a real OpenAI-compatible server, offline, a few seconds to start.


# hf_serve: tests/conftest.py (one server per session, shared with test_llm_judge)


@pytest.fixture(scope="module")
def hf_serve_short(tmp_path_factory):
    """A 64-token window: every labelling prompt is longer (the user's problem, on item 1)."""
    yield from start_serve(tmp_path_factory.mktemp("serve-short"), max_positions=64)


def _label_args(data, out, hf_serve, *extra):
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--base-url",
        hf_serve.base_url,
        "--no-progress",
        "--timeout",
        "60",
        *extra,
    ]


def test_transformers_serve_unknown_model_is_fatal_with_the_servers_words(hf_serve, tmp_path):
    data = write_instances(make_instances(12), tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    before = served(hf_serve, 400)
    proc = _cli(_label_args(data, out, hf_serve, "--model", "m", "-j", "4"))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    said = [line for line in stderr.splitlines() if "Server is pinned to" in line]
    assert len(said) == 1 and said[0].startswith("cec-distill: error:"), stderr
    assert "requested 'm'" in said[0], stderr
    assert not out.exists() or out.read_text() == ""  # nothing written for any item
    time.sleep(0.2)
    assert served(hf_serve, 400) - before == 3  # three requests, not twelve


def test_transformers_serve_cut_explanations_are_flagged_and_counted(hf_serve, tmp_path):
    insts = make_instances(4)
    data = write_instances(insts, tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    proc = _cli(_label_args(data, out, hf_serve, "--model", hf_serve.model, "--max-tokens", "8"))
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    recs = records(out)
    assert len(recs) == 4 and not any(r["error"] for r in recs)
    cut = [r for r in recs if r["finish_reason"] == "length"]
    assert all(r["truncated"] for r in cut) and not any(
        r["truncated"] for r in recs if r not in cut
    )
    assert cut and all(r["usage"]["completion_tokens"] == 8 for r in cut)  # a random model rambles
    assert f"{len(cut)} of 4 explanations hit the token limit" in stderr
    assert read_teacher_labels(out, truncated="drop").dropped == {r["id"] for r in cut}


def test_transformers_serve_kill_and_restart_labels_each_item_once(hf_serve, tmp_path):
    insts = make_instances(10)
    data = write_instances(insts, tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    args = _label_args(data, out, hf_serve, "--model", hf_serve.model, "--max-tokens", "16")
    args += ["-j", "2"]
    proc = _cli(args)
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_text().count("\n") >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no records appeared"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    first = {r["id"] for r in records(out)}
    assert 3 <= len(first) < 10
    proc = _cli(args)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 0, stderr
    recs = records(out)  # every line parses
    assert Counter(r["id"] for r in recs if not r["error"]) == Counter({i.id: 1 for i in insts})
    assert f"already done {len(first)}" in stderr and "remaining 0 of 10" in stderr


def test_transformers_serve_prompt_past_the_window_stops_on_item_1(hf_serve_short, tmp_path):
    """transformers serve's 400 for a prompt past the window is the user's to fix: one clear
    line on the first request, exit 2, nothing else sent or written."""
    data = write_instances(make_instances(6), tmp_path / "instances.jsonl")
    out = tmp_path / "labels.jsonl"
    before = served(hf_serve_short, 400)
    args = _label_args(data, out, hf_serve_short, "--model", hf_serve_short.model, "-j", "3")
    proc = _cli(args)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2, stderr
    said = [line for line in stderr.splitlines() if "context window" in line]
    assert len(said) == 1 and said[0].startswith("cec-distill: error: the prompt of item "), stderr
    assert "The prompt has" in said[0] and "at most 64" in said[0]  # the server's own words
    assert not out.exists() or out.read_text() == ""
    time.sleep(0.2)
    assert served(hf_serve_short, 400) - before == 1  # the first request went alone


def test_openai_context_length_error_is_fatal_with_advice(server, api_key, tmp_path):
    insts = make_instances(8)
    out = tmp_path / "labels.jsonl"
    server.script(["400context"] * 50)
    s = label_instances(insts, out, config(server, concurrency=4))
    assert s.fatal is not None and s.labelled == 0
    assert f"the prompt of item {insts[0].id} does not fit" in s.fatal
    assert "maximum context length is 8192 tokens" in s.fatal  # the server's words
    assert "--max-tokens" in s.fatal
    assert len(server.requests) == 1
    assert not out.exists() or out.read_text() == ""


def test_study_references_warn_about_cut_teacher_labels(server, api_key, tmp_path, caplog):
    import logging

    from cec_distill.pipeline import _references

    insts = make_instances(3)
    data = write_instances(insts, tmp_path / "test.jsonl")
    out = tmp_path / "labels.jsonl"
    label_instances(insts, out, config(server, max_tokens=6))
    with caplog.at_level(logging.WARNING, logger="cec_distill.pipeline"):
        refs = _references({"test": data}, out)
    assert len(refs) == 3 and all(len(r[0].split()) == 6 for r in refs.values())
    assert "3 teacher references were cut by the token limit" in caplog.text
