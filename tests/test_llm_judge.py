"""``llm_judge`` (issue 27.1): the rubric, the strict parse, and the runs against real HTTP servers.

The mechanics and the faults run against tests/fake_openai.py (a real server on 127.0.0.1 that
answers as a judge would, or fails on demand); the end-to-end run against ``transformers serve``
with a tiny random Llama, whose answers never follow the rubric: it checks that a real server's
run goes through, is counted as unparsed (never 0) and resumes without asking again.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cec_distill.data import Evidence, Instance, write_instances
from cec_distill.metrics import evaluate, get_metric
from cec_distill.metrics.judge_rubric import (
    DEFAULT_RUBRIC,
    FOLLOW_UP,
    format_context,
    load_rubric,
    parse_judgement,
)
from cec_distill.teacher import MissingAPIKeyError, TeacherError

sys.path.insert(0, str(Path(__file__).parent))
from fake_openai import FakeOpenAI  # noqa: E402
from serve_helpers import served  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-judge-Zq8x-DO-NOT-LEAK-77aa31"
_GRADED = re.compile(r"\[Explanation to grade\]:\n(.*)\n")


def grade(messages) -> str:
    """The fake judge: the score is the first digit of the explanation to grade (1-5)."""
    user = next(m["content"] for m in messages if m["role"] == "user")
    text = _GRADED.search(user).group(1)
    digit = re.search(r"[1-5]", text)
    return f"Score: {digit.group(0) if digit else 1}\nReason: graded {len(text.split())} words."


def data(n: int):
    gens = [f"Explanation {i % 5 + 1} of item {i}: the ice melts, so seas rise." for i in range(n)]
    refs = [[f"Reference for item {i}: melting ice raises the sea."] for i in range(n)]
    ctxs = [{"claim": f"Claim {i}: seas rise.", "evidence": [f"Ice {i} melts."]} for i in range(n)]
    return gens, refs, ctxs


def expected(n: int) -> np.ndarray:
    return np.array([i % 5 + 1 for i in range(n)], dtype=float)


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def server():
    with FakeOpenAI(answer=grade) as srv:
        yield srv


def opts(server, tmp_path, **kw):
    base = dict(
        judge_model="judge-m",
        judge_base_url=server.base_url,
        judge_records=tmp_path / "judge.jsonl",
        judge_timeout=2.0,
        judge_backoff_base=0.01,
        judge_max_attempts=3,
        judge_concurrency=3,
    )
    base.update(kw)
    return base


def judged(server, tmp_path, n=6, system="sys", **kw):
    gens, refs, ctxs = data(n)
    return evaluate(gens, refs, ["llm_judge"], system=system, contexts=ctxs,
                    **opts(server, tmp_path, **kw))  # fmt: skip


# ----------------------------------------------------------------------------- rubric and parse


@pytest.mark.parametrize(
    ("answer", "want"),
    [
        ("Score: 4\nReason: Same cause.", (4, "Same cause.")),
        ("  score: 1 \n\n reason:  Wrong   cause. \n", (1, "Wrong cause.")),
        ("Score: 5\nReason: Two\nlines.", (5, "Two lines.")),
        ("Score: 0\nReason: x", None),
        ("Score: 6\nReason: x", None),
        ("Score: 4.5\nReason: x", None),
        ("Score: 4/5\nReason: x", None),
        ("**Score:** 4\nReason: x", None),
        ("Sure! Score: 4\nReason: x", None),
        ("Score: 4", None),
        ("Score: 4\nReason:", None),
        ("4", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_is_strict(answer, want):
    assert parse_judgement(answer) == want


def test_rubric_is_versioned_hashed_and_shows_the_instance():
    rubric = load_rubric()
    text = DEFAULT_RUBRIC.read_text(encoding="utf-8")
    assert DEFAULT_RUBRIC.name == "judge-rubric-v1.txt" and rubric.version == 1
    assert rubric.hash == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert rubric.label == f"v1@{rubric.hash}"
    cf = {"claim": "Seas rise.", "evidence": [{"text": "Ice melts.", "label": "SUPPORTS"}],
          "label": "SUPPORTS"}  # fmt: skip
    assert format_context(cf) == (
        "[Claim]: Seas rise.\n[Evidence]:\n- [SUPPORTS] Ice melts.\n[Label]: SUPPORTS\n\n"
    )
    nli = {"premise": "A man sleeps.", "hypothesis": "A man rests.", "label": "entailment"}
    assert format_context(nli).splitlines()[:2] == [
        "[Premise]: A man sleeps.",
        "[Hypothesis]: A man rests.",
    ]
    assert format_context(None) == "" == format_context({})
    user = rubric.render(nli, ["Sleeping is resting.", "Rest."], "He rests.")[-1]["content"]
    assert user.startswith("[Premise]: A man sleeps.")
    assert "1. Sleeping is resting.\n2. Rest." in user and "He rests." in user
    no_ctx = rubric.render(None, ["R."], "G.")[-1]["content"]
    assert no_ctx.startswith("[Reference explanation]:\nR.")


def test_a_user_rubric_is_checked_when_loaded(tmp_path):
    good = tmp_path / "mine.txt"
    good.write_text("### user\n{context}Ref: {reference}\nGen: {generated}\nUse {{braces}}.")
    r = load_rubric(good)
    assert r.version is None and r.label.startswith("file@")
    assert r.render(None, ["a"], "b")[0]["content"] == "Ref: a\nGen: b\nUse {braces}."
    for text, words in [("{reference} {generated} {claim}", "unknown placeholder {claim}"),
                        ("{reference} only", "no {generated} placeholder"),
                        ("{reference} {generated} }", "stray '}'")]:  # fmt: skip
        bad = tmp_path / "bad.txt"
        bad.write_text(text)
        with pytest.raises(ValueError, match=re.escape(words)):
            load_rubric(bad)
    with pytest.raises(FileNotFoundError, match="judge_rubric: no such file"):
        load_rubric(tmp_path / "missing.txt")


# ----------------------------------------------------------------------------- options


def test_options_are_plain_keyword_options_of_get_metric(server, tmp_path, monkeypatch):
    m = get_metric("llm_judge", **opts(server, tmp_path, judge_temperature=0.3))
    assert m.config.model == "judge-m" and m.config.temperature == 0.3
    assert m.records == tmp_path / "judge.jsonl" and m.config.concurrency == 3
    with pytest.raises(ValueError, match="judge_model: llm_judge needs the judge's model name"):
        get_metric("llm_judge", judge_base_url=server.base_url)
    with pytest.raises(ValueError, match="did you mean 'judge_model'"):
        get_metric("llm_judge", judge_modle="m")
    with pytest.raises(ValueError, match="judge_concurrency must be an integer >= 1"):
        get_metric("llm_judge", **opts(server, tmp_path, judge_concurrency=0))
    with pytest.raises(ValueError, match="judge_temperature must be in"):
        get_metric("llm_judge", **opts(server, tmp_path, judge_temperature=3))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY is not set"):
        get_metric("llm_judge", judge_model="m", judge_base_url="https://api.example.com/v1")
    # the offline default set is unchanged: a judge needs a server
    from cec_distill.metrics import DEFAULT_METRICS, available_metrics

    assert "llm_judge" in available_metrics() and "llm_judge" not in DEFAULT_METRICS


# ----------------------------------------------------------------------------- the fake server


def test_scores_records_signature_and_what_was_sent(server, tmp_path):
    res = judged(server, tmp_path, n=6, system="Phi-2")
    np.testing.assert_allclose(res.items["llm_judge"].to_numpy(), expected(6), atol=1e-6)
    assert res.corpus.loc["llm_judge", "score"] == pytest.approx(expected(6).mean(), abs=1e-6)
    info = res.meta["llm_judge"]
    assert (info["scored"], info["unparsed"], info["failed"], info["pending"]) == (6, 0, 0, 0)
    sig = res.signatures["llm_judge"]
    rubric = load_rubric()
    for part in ("model:judge-m", "served:judge-m-0613", f"rubric:v1@{rubric.hash}", "temp:0|"):
        assert part in sig, sig
    assert len(server.requests) == 6
    sent = server.requests[0]
    assert sent["model"] == "judge-m" and sent["temperature"] == 0 and sent["max_tokens"] == 128
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    user = sent["messages"][1]["content"]
    assert (
        "[Claim]: Claim" in user and "[Evidence]:\n- Ice" in user and "Reference for item" in user
    )
    recs = {r["item"]: r for r in records(tmp_path / "judge.jsonl")}
    assert sorted(recs) == list(range(6))
    r0 = recs[0]
    assert (r0["system"], r0["score"], r0["unparsed"], r0["error"]) == ("Phi-2", 1, False, None)
    assert r0["judge_model"] == "judge-m" and r0["response_model"] == "judge-m-0613"
    assert r0["rubric_hash"] == rubric.hash and r0["reason"] == "graded 11 words."
    assert r0["key"] == json.dumps(["0", "Phi-2"])


def test_unparsed_answer_is_asked_again_once_then_counted_never_scored(server, tmp_path):
    gens, refs, ctxs = data(4)
    server.script_for("of item 1:", ["say:I'd give it four out of five.", "say:Four."])
    server.script_for("of item 2:", ["say:**Score:** 2"])  # the second answer parses
    res = evaluate(gens, refs, ["llm_judge"], system="s", contexts=ctxs, **opts(server, tmp_path))
    scores = res.items["llm_judge"].to_numpy()
    assert math.isnan(scores[1])  # not 0
    np.testing.assert_allclose(scores[[0, 2, 3]], expected(4)[[0, 2, 3]], atol=1e-6)
    assert res.corpus.loc["llm_judge", "n"] == 3
    assert res.corpus.loc["llm_judge", "score"] == pytest.approx(expected(4)[[0, 2, 3]].mean())
    info = res.meta["llm_judge"]
    assert (info["scored"], info["unparsed"], info["requests"]) == (3, 1, 6)
    asked = Counter(re.search(r"of item (\d)", r["messages"][1]["content"]).group(1)
                    for r in server.requests)  # fmt: skip
    assert asked == Counter({"0": 1, "1": 2, "2": 2, "3": 1})  # retried once, not more
    retry = [r for r in server.requests if "of item 1:" in r["messages"][1]["content"]][1]
    assert retry["messages"][-2:] == [
        {"role": "assistant", "content": "I'd give it four out of five."},
        {"role": "user", "content": FOLLOW_UP},
    ]
    rec = {r["item"]: r for r in records(tmp_path / "judge.jsonl")}[1]
    assert rec["unparsed"] and rec["score"] is None and rec["error"] is None
    assert rec["answers"] == ["I'd give it four out of five.", "Four."]
    # an unparsed item is final: the next run asks nothing
    n = len(server.requests)
    again = evaluate(gens, refs, ["llm_judge"], system="s", contexts=ctxs, **opts(server, tmp_path))
    assert len(server.requests) == n and again.meta["llm_judge"]["unparsed"] == 1


def test_token_budget_stops_cleanly_and_the_next_run_does_the_rest(server, tmp_path):
    # each request costs ~170 tokens here: the budget is spent after a few of the 12
    res = judged(server, tmp_path, n=12, judge_max_total_tokens=500, judge_concurrency=2)
    info = res.meta["llm_judge"]
    assert info["stopped"].startswith("max total tokens (500) reached")
    assert 3 <= info["scored"] < 12 and info["scored"] + info["pending"] == 12
    assert info["failed"] == 0 and np.isnan(res.items["llm_judge"]).sum() == info["pending"]
    first = {r["item"] for r in records(tmp_path / "judge.jsonl")}
    assert len(first) == info["scored"]  # every answer paid for is kept
    n = len(server.requests)
    res2 = judged(server, tmp_path, n=12)
    asked = [int(re.search(r"of item (\d+)", r["messages"][1]["content"]).group(1))
             for r in server.requests[n:]]  # fmt: skip
    assert sorted(asked) == sorted(set(range(12)) - first)  # only the rest, each once
    np.testing.assert_allclose(res2.items["llm_judge"].to_numpy(), expected(12), atol=1e-6)
    assert res2.meta["llm_judge"]["judged_before"] == len(first)
    assert Counter(r["item"] for r in records(tmp_path / "judge.jsonl")) == Counter(range(12))


def test_server_errors_are_retried_or_recorded_with_the_servers_words(server, tmp_path):
    server.script_for("of item 0:", ["500", "429:0.05"])  # retried, then scored
    server.script_for("of item 3:", ["503", "503", "503"])  # fails its 3 attempts
    res = judged(server, tmp_path, n=5)
    info = res.meta["llm_judge"]
    assert (info["scored"], info["failed"]) == (4, 1) and math.isnan(res.items["llm_judge"][3])
    msg = next(iter(info["errors"]))
    assert "HTTP 503" in msg and "The server had an error while processing your request" in msg
    rec = {r["item"]: r for r in records(tmp_path / "judge.jsonl")}
    assert rec[3]["error"]["status"] == 503 and rec[0]["score"] == 1
    res2 = judged(server, tmp_path, n=5)  # the failed item is asked again, the others not
    assert res2.meta["llm_judge"]["judged_before"] == 4
    np.testing.assert_allclose(res2.items["llm_judge"].to_numpy(), expected(5), atol=1e-6)


def test_a_judge_that_cannot_go_on_stops_with_the_servers_words_and_no_key(
    server, tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    server.script(["detail"] * 20)  # transformers serve's answer to a model it does not serve
    with pytest.raises(TeacherError) as err:
        judged(server, tmp_path, n=8, judge_api_key_env="JUDGE_KEY")
    text = str(err.value)
    assert (
        text.startswith("llm_judge: ") and "Server is pinned to 'tiny'; requested 'judge-m'" in text
    )
    assert server.requests[0]["authorization"] == f"Bearer {SECRET}"  # the key was really sent
    assert SECRET not in text and "[REDACTED]" in text  # the echoed key is scrubbed
    assert len(server.requests) == 3  # the first three alike, then the run stops
    path = tmp_path / "judge.jsonl"
    assert not path.exists() or path.read_text() == ""  # nothing recorded for the items
    assert SECRET not in caplog.text


def test_the_key_never_reaches_records_or_logs(server, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("JUDGE_KEY", SECRET)
    server.script_for("of item 2:", ["400"])  # one item's 400 echoes the Authorization header
    res = judged(server, tmp_path, n=5, judge_api_key_env="JUDGE_KEY")
    assert res.meta["llm_judge"]["failed"] == 1
    blob = (tmp_path / "judge.jsonl").read_text() + json.dumps(res.meta) + caplog.text
    assert "Bad request from Bearer [REDACTED]" in blob
    assert SECRET not in blob and SECRET[9:20] not in blob


def test_requests_run_concurrently(tmp_path):
    with FakeOpenAI(delay=0.4, answer=grade) as srv:
        judged(srv, tmp_path, n=12, judge_concurrency=4)
        times = sorted(r["time"] for r in srv.requests)
    assert len(times) == 12
    # the first request goes alone (in case the run is broken), then the pool widens to four
    # requests in flight at once (each answer takes 0.4 s here)
    assert times[1] - times[0] > 0.3
    assert any(times[i + 3] - times[i] < 0.25 for i in range(1, len(times) - 3)), times
    assert times[-1] - times[0] < 12 * 0.4 * 0.75


def test_a_records_file_belongs_to_one_judge_and_one_set_of_texts(server, tmp_path):
    judged(server, tmp_path, n=3)
    with pytest.raises(ValueError, match=r"judge\.jsonl holds judgements by another judge "
                                         r"\(judge_model 'judge-m' \(this run: 'other'\)"):  # fmt: skip
        judged(server, tmp_path, n=3, judge_model="other")
    with pytest.raises(ValueError, match="rubric_hash"):
        rubric = tmp_path / "r.txt"
        rubric.write_text("{reference} {generated}")
        judged(server, tmp_path, n=3, judge_rubric=rubric)
    gens, refs, ctxs = data(3)
    gens[1] = "A new generation."
    with pytest.raises(ValueError, match="judgement of item 1 of system 'sys' on other texts"):
        evaluate(gens, refs, ["llm_judge"], system="sys", contexts=ctxs, **opts(server, tmp_path))
    # another system is other keys in the same file
    n = len(server.requests)
    res = evaluate(gens, refs, ["llm_judge"], system="B", contexts=ctxs, **opts(server, tmp_path))
    assert len(server.requests) == n + 3 and res.meta["llm_judge"]["scored"] == 3
    with pytest.raises(ValueError, match="appears twice"):
        evaluate(gens, refs, ["llm_judge"], ids=["a", "b", "a"], **opts(server, tmp_path))


def test_other_metrics_ignore_contexts_and_check_their_length(server, tmp_path):
    gens, refs, ctxs = data(3)
    plain = evaluate(gens, refs, ["rouge1"])
    with_ctx = evaluate(gens, refs, ["rouge1"], contexts=ctxs)
    np.testing.assert_allclose(plain.items["rouge1"], with_ctx.items["rouge1"], atol=1e-12)
    with pytest.raises(ValueError, match="generated has 3 items but contexts has 2"):
        evaluate(gens, refs, ["rouge1"], contexts=ctxs[:2])
    with pytest.raises(TypeError, match=r"contexts\[1\] must be a dict or None"):
        evaluate(gens, refs, ["rouge1"], contexts=[None, "claim", None])


# ----------------------------------------------------------------------------- the CLI


def _pairs(tmp_path, n):
    gens, refs, _ = data(n)
    insts = [
        Instance(f"cf:{i}", "climate-fever", f"Claim {i}: seas rise.",
                 (Evidence(f"Ice {i} melts.", "SUPPORTS"),), "SUPPORTS")
        for i in range(n)
    ]  # fmt: skip
    inst_path = write_instances(insts, tmp_path / "instances.jsonl")
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"id": f"cf:{i}", "generated": gens[i], "references": refs[i]}) + "\n"
                             for i in range(n)))  # fmt: skip
    return pairs, inst_path


def _cli(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "cec_distill.cli", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def test_cli_evaluate_survives_sigkill_then_compare_and_report(tmp_path, capsys):
    from cec_distill.cli import main

    n = 16
    pairs, inst_path = _pairs(tmp_path, n)
    out = tmp_path / "r.json"
    recs = tmp_path / "r.judge.jsonl"  # the default beside --out
    with FakeOpenAI(delay=0.15, answer=grade) as srv:
        args = ["evaluate", str(pairs), "--metrics", "rouge1,llm_judge", "--system", "S",
                "--judge-model", "judge-m", "--judge-base-url", srv.base_url,
                "--judge-concurrency", "2", "--instances", str(inst_path), "--out", str(out)]  # fmt: skip
        proc = _cli(*args)
        try:
            deadline = time.monotonic() + 60
            while not (recs.exists() and recs.read_text().count("\n") >= 4):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "no records appeared"
                time.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        first = {r["item"] for r in records(recs)}
        assert 4 <= len(first) < n and not out.exists()
        time.sleep(0.2)
        n_before = len(srv.requests)
        srv.delay = 0.0
        assert main(args) == 0
        err = capsys.readouterr().err
        asked = [re.search(r"of item (\d+)", r["messages"][1]["content"]).group(1)
                 for r in srv.requests[n_before:] if r["messages"]]  # fmt: skip
    assert not {f"cf:{i}" for i in asked} & first  # nothing judged was asked again
    assert Counter(r["item"] for r in records(recs)) == Counter(f"cf:{i}" for i in range(n))
    assert (
        "[Claim]: Claim 0: seas rise." in srv.requests[0]["messages"][1]["content"]
    )  # --instances
    assert (
        f"llm_judge: {n} scored, 0 unparsed" in err and f"{len(first)} judged by an earlier" in err
    )
    res = json.loads(out.read_text())
    assert res["meta"]["llm_judge"]["scored"] == n and "llm_judge" in res["signatures"]
    got = [row["llm_judge"] for row in res["items"]]
    np.testing.assert_allclose(got, expected(n), atol=1e-6)

    # compare: the judge's column against another, an unparsed item left out and counted
    res["items"][3]["llm_judge"] = None
    out.write_text(json.dumps(res))
    assert (
        main(["compare", str(out), "--metric-a", "llm_judge", "--metric-b", "rouge1", "-k", "0"])
        == 0
    )
    said = capsys.readouterr().out
    assert "on k = 15 items" in said and "1 sampled item(s) left out" in said
    assert main(["report", str(out), "--out-dir", str(tmp_path / "rep"), "--no-plots"]) == 0
    assert "| LLM judge |" in (tmp_path / "rep" / "table1.md").read_text()


def test_cli_compare_scores_a_pairs_file_with_the_judge(tmp_path, capsys):
    from cec_distill.cli import main

    pairs, inst_path = _pairs(tmp_path, 8)
    with FakeOpenAI(answer=grade) as srv:
        code = main(["compare", str(pairs), "--metric-a", "llm_judge", "--metric-b", "rouge1",
                     "-k", "5", "--judge-model", "judge-m", "--judge-base-url", srv.base_url,
                     "--instances", str(inst_path)])  # fmt: skip
        assert code == 0, capsys.readouterr().err
        assert len(srv.requests) == 5  # only the sampled items are judged
    assert "llm_judge (M = " in capsys.readouterr().out
    assert len(records(tmp_path / "pairs.judge.jsonl")) == 5


def test_cli_a_fatal_judge_error_is_exit_2_with_the_servers_words(tmp_path, capsys):
    from cec_distill.cli import main

    pairs, _ = _pairs(tmp_path, 4)
    with FakeOpenAI() as srv:
        srv.script(["401"] * 5)
        code = main(["evaluate", str(pairs), "--metrics", "llm_judge", "--judge-model", "m",
                     "--judge-base-url", srv.base_url, "--out", str(tmp_path / "r.json")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    line = [x for x in err.splitlines() if x.startswith("cec-distill: error:")]
    assert len(line) == 1 and "Incorrect API key provided" in line[0], err
    assert not (tmp_path / "r.json").exists()


def test_cli_judge_options_without_the_judge_are_refused_not_ignored(tmp_path, capsys):
    from cec_distill.cli import main

    pairs, _ = _pairs(tmp_path, 4)
    out = tmp_path / "r.json"
    code = main(["evaluate", str(pairs), "--metrics", "rouge1", "--judge-model", "m",
                 "--judge-temperature", "0.7", "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert "--judge-model, --judge-temperature: only used by the llm_judge metric" in err, err
    code = main(["compare", str(pairs), "--metric-a", "rouge1", "--metric-b", "bleu",
                 "--judge-records", str(tmp_path / "j.jsonl")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--judge-records: only used by the llm_judge metric" in err, err
    # the same commands without them run
    assert main(["evaluate", str(pairs), "--metrics", "rouge1", "--out", str(out)]) == 0


# ----------------------------------------------------------------------------- transformers serve


# hf_serve: tests/conftest.py (one server per session, shared with test_teacher)


def test_transformers_serve_runs_counts_unparsed_and_resumes(hf_serve, tmp_path):
    """A tiny random model rambles: every answer is unparsed after its one retry; the run goes
    through, the count says so, the mean is NaN (not 0), and a re-run asks nothing again."""
    gens, refs, ctxs = data(4)
    kw = dict(judge_model=hf_serve.model, judge_base_url=hf_serve.base_url, judge_max_tokens=8,
              judge_records=tmp_path / "j.jsonl", judge_concurrency=2)  # fmt: skip
    before = served(hf_serve, 200)
    part = evaluate(
        gens,
        refs,
        ["llm_judge"],
        system="s",
        contexts=ctxs,
        judge_max_requests=4,
        **{**kw, "judge_concurrency": 1},
    )  # items 0 and 1, two requests each
    info = part.meta["llm_judge"]
    assert info["stopped"] == "max requests (4) reached" and info["requests"] == 4
    assert info["unparsed"] == 2 and info["pending"] == 2 and info["scored"] == 0
    res = evaluate(gens, refs, ["llm_judge"], system="s", contexts=ctxs, **kw)
    info = res.meta["llm_judge"]
    assert (info["unparsed"], info["pending"], info["failed"], info["judged_before"]) == (
        4,
        0,
        0,
        2,
    )
    assert info["requests"] == 4  # only the two left, twice each
    assert res.items["llm_judge"].isna().all() and math.isnan(res.corpus.loc["llm_judge", "score"])
    recs = records(tmp_path / "j.jsonl")
    assert Counter(r["item"] for r in recs) == Counter(range(4))
    assert all(r["unparsed"] and r["score"] is None and len(r["answers"]) == 2 for r in recs)
    assert (
        recs[0]["response_model"]
        and f"served:{recs[0]['response_model']}" in res.signatures["llm_judge"]
    )
    again = evaluate(gens, refs, ["llm_judge"], system="s", contexts=ctxs, **kw)
    assert again.meta["llm_judge"]["requests"] == 0
    time.sleep(0.2)
    assert served(hf_serve, 200) - before == 8  # two requests per item, no more
