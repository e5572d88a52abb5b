"""No silent wrong score: embedding identity, exact range, pinned fp32, no deadlock, quiet stderr.

Each test here failed on the code before the fix it guards (issue #12, items 1-5).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from encoders import hash_model, model_copy

import cec
from cec._numerics import matmul_precision_state
from cec._onnx import optimise
from cec.cache import MemoryCache, SQLiteCache
from cec.encode import (
    CallableEncoder,
    PrecisionWarning,
    SentenceTransformerEncoder,
    check_precision,
)

ROOT = Path(__file__).resolve().parents[1]
LONG = (
    "Greenhouse gases such as carbon dioxide, methane and nitrous oxide absorb the infrared "
    "radiation that the surface of the Earth emits, and re-emit part of it back downwards, "
    "which warms the lower atmosphere and the oceans over decades."
)
REF = "Carbon dioxide traps heat, so the planet warms."


# --------------------------------------------------------------------------------------------
# 1. embedding identity
# --------------------------------------------------------------------------------------------
def test_model_copies_that_truncate_differently_never_share_vectors(tmp_path):
    full = model_copy(tmp_path / "a")
    short = model_copy(tmp_path / "b", sbert={"max_seq_length": 16})
    db = tmp_path / "shared.sqlite"
    first = cec.CEC(model=full, device="cpu", cache=db).score([LONG], [REF])
    second = cec.CEC(model=short, device="cpu", cache=db).score([LONG], [REF])
    alone = cec.CEC(model=short, device="cpu").score([LONG], [REF])
    assert second.sym[0] == pytest.approx(alone.sym[0], abs=1e-6)  # its own vectors
    assert abs(second.sym[0] - first.sym[0]) > 1e-3  # truncation does change the vectors
    assert first.signature.weights != second.signature.weights
    assert first.signature.truncation == "256" and "|trunc:16" in str(second.signature)


def test_pooling_config_is_part_of_the_identity(tmp_path):
    cpu = torch.device("cpu")
    mean = SentenceTransformerEncoder(str(model_copy(tmp_path / "a")), cpu, name="copy")
    cls = SentenceTransformerEncoder(
        str(
            model_copy(
                tmp_path / "b",
                pooling={"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True},
            )
        ),
        cpu,
        name="copy",
    )
    assert mean.name == cls.name and mean.weights_hash == cls.weights_hash
    assert mean.key != cls.key and mean.identity != cls.identity
    assert mean._model is None and cls._model is None  # identity read from files, no loading
    a, b = mean.encode(["Ice melts.", REF]), cls.encode(["Ice melts.", REF])
    assert not torch.allclose(a, b, atol=1e-3)


def test_changing_the_window_at_run_time_changes_the_identity(tmp_path):
    encoder = SentenceTransformerEncoder(str(model_copy(tmp_path / "a")), torch.device("cpu"))
    before = encoder.key
    encoder.model.max_seq_length = 32
    assert encoder.key != before and encoder.truncation == 32


def test_anonymous_callables_are_refused_by_a_persistent_cache(tmp_path):
    with pytest.raises(ValueError, match=r"^cache: .*anonymous callable.*CallableEncoder"):
        cec.CEC(model=lambda s: hash_model(s), cache=tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()  # refused before anything is created
    with pytest.raises(ValueError, match="cache"):
        cec.CEC(model=CallableEncoder(hash_model), cache=SQLiteCache(tmp_path / "d.sqlite"))


def test_two_callables_sharing_a_cache_keep_their_own_vectors(tmp_path):
    def flipped(sentences):  # another embedding function: a shared word in every sentence
        return hash_model([f"{x} salt pepper" for x in sentences])

    gens, refs = ["CO2 traps heat. Ice melts."], ["Ice melts because CO2 traps heat."]
    expected = [cec.CEC(model=fn).score(gens, refs).sym[0] for fn in (hash_model, flipped)]
    assert abs(expected[0] - expected[1]) > 1e-3
    memory = MemoryCache()  # one cache object for two anonymous callables
    got = [
        cec.CEC(model=lambda s: hash_model(s), cache=memory).score(gens, refs).sym[0],
        cec.CEC(model=lambda s: flipped(s), cache=memory).score(gens, refs).sym[0],
    ]
    assert got == pytest.approx(expected, abs=1e-9)
    db = tmp_path / "named.sqlite"  # named callables share a persistent cache by name@version
    named = [
        cec.CEC(model=CallableEncoder(fn, name=name, version="1"), cache=db)
        for fn, name in ((hash_model, "hash"), (flipped, "flipped"))
    ]
    assert [s.score(gens, refs).sym[0] for s in named] == pytest.approx(expected, abs=1e-6)
    assert len(SQLiteCache(db)) == 2 * 3  # three distinct sentences, two encoders
    assert str(named[1].signature).split("|")[1] == "model:flipped@1"


def test_callable_encoder_arguments_are_checked():
    with pytest.raises(TypeError, match="fn must be callable"):
        CallableEncoder("not a function")
    with pytest.raises(ValueError, match="version: give a name too"):
        CallableEncoder(hash_model, version="2")
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        CallableEncoder(hash_model, name=" ")


# --------------------------------------------------------------------------------------------
# 2. range
# --------------------------------------------------------------------------------------------
def test_a_text_scored_against_itself_is_exactly_one(scorer, shared_data):
    with open(ROOT / "examples" / "pairs.jsonl") as fh:
        texts = [json.loads(line)["prediction"] for line in fh if line.strip()]
    with open(shared_data / "climate-fever" / "climate-fever.jsonl") as fh:
        for line, _ in zip(fh, range(40), strict=False):
            record = json.loads(line)  # a claim and its five evidence sentences as one text
            texts.append(" ".join([record["claim"], *(e["evidence"] for e in record["evidences"])]))
    result = scorer.score(texts, texts)
    assert result.sym.tolist() == [1.0] * len(texts)
    assert result.forward.tolist() == result.backward.tolist() == [1.0] * len(texts)
    assert scorer.score(texts[0], texts[0]) == 1.0
    alignment = scorer.align(texts[0], texts[0])
    assert alignment.sym == 1.0 and alignment.similarity.max() == 1.0


def test_no_score_leaves_the_unit_interval_under_rounding():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 384)).astype(np.float32)

    def near(sentences):  # distinct sentences, nearly parallel vectors: cosines round past 1
        noise = rng.normal(size=(len(sentences), 384)).astype(np.float32) * 1e-4
        sign = np.array([-1.0 if s.startswith("not") else 1.0 for s in sentences], np.float32)
        return (base + noise) * sign[:, None]

    gens = [" ".join(f"s{i}{j}." for j in range(3)) for i in range(30)]
    refs = [" ".join(f"t{i}{j}." for j in range(4)) for i in range(30)]
    anti = [" ".join(f"not {i}{j}." for j in range(2)) for i in range(30)]
    scorer = cec.CEC(model=near)
    for other in (refs, anti):
        res = scorer.score(gens, other)
        for values in (res.forward, res.backward, res.sym):
            assert values.min() >= -1.0 and values.max() <= 1.0
    assert scorer.score(gens, anti).sym.min() == -1.0


# --------------------------------------------------------------------------------------------
# 3. fp32 means fp32, whatever the process set
# --------------------------------------------------------------------------------------------
def test_fp32_path_pins_full_precision_matmuls(scorer):
    seen: list[tuple[str, ...]] = []
    hook = scorer.encoder.model.register_forward_hook(
        lambda *_: seen.append(matmul_precision_state())
    )
    torch.set_float32_matmul_precision("high")  # the host process allows TF32 / bf16 products
    try:
        state = matmul_precision_state()
        scorer.encode(["A sentence nobody encoded before in this test session, 1234."])
        assert seen and set(seen[0]) <= {"ieee", "highest", "False"}, seen
        assert matmul_precision_state() == state  # the host's setting is given back
    finally:
        hook.remove()
        torch.set_float32_matmul_precision("highest")


# --------------------------------------------------------------------------------------------
# 4. several threads on one cold scorer
# --------------------------------------------------------------------------------------------
def test_threads_sharing_a_cold_scorer_get_the_serial_scores(scorer):
    gens = ["CO2 traps heat. The planet warms.", "Ice melts. Seas rise.", "Oceans warm."]
    refs = ["The planet warms because CO2 traps heat.", "Seas rise as ice melts.", "Heat."]
    serial = scorer.score(gens, refs).sym
    cold = cec.CEC(device="cpu")
    assert cold.encoder._model is None and cold.encoder._runner is None
    results: dict[int, object] = {}

    def forward_first() -> None:  # straight to the encoder's forward path
        results[0] = cold.encoder.runner is not None and cold.encode(["Ice melts."]).shape

    def score(k: int) -> None:
        results[k] = cold.score(gens, refs).sym

    threads = [threading.Thread(target=forward_first, daemon=True)]
    threads += [threading.Thread(target=score, args=(k,), daemon=True) for k in (1, 2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hangs on the model's load lock"
    assert results[0] == (1, 384)
    for k in (1, 2, 3):
        assert np.allclose(results[k], serial, atol=1e-6)


# --------------------------------------------------------------------------------------------
# 5. a scoring call imports no training library and prints nothing to stderr
# --------------------------------------------------------------------------------------------
def test_scoring_imports_no_training_library_and_keeps_stderr_clean():
    code = (
        "import sys, cec\n"
        "print(cec.score('CO2 traps heat. The planet warms.', 'The planet warms.'))\n"
        "heavy = ('sentence_transformers', 'peft', 'bitsandbytes', 'sklearn', 'pandas')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "default"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    score, imported = out.stdout.splitlines()
    assert 0.5 < float(score) <= 1.0
    assert imported == "[]"
    assert out.stderr == ""


# --------------------------------------------------------------------------------------------
# 11. ONNX: no silent fall-back
# --------------------------------------------------------------------------------------------
def test_onnx_on_cuda_without_the_cuda_provider_is_an_error():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this ONNX Runtime has the CUDA provider")
    with pytest.raises(ValueError, match=r"^precision: 'onnx' on a CUDA device needs .*CUDA"):
        check_precision("onnx", torch.device("cuda"))


def test_onnx_optimiser_failure_warns_once_and_keeps_the_plain_export(tmp_path):
    pytest.importorskip("onnxruntime")
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"this is not an ONNX graph")
    with pytest.warns(PrecisionWarning, match="optimiser failed on model.onnx"):
        assert optimise(bad, tmp_path / "model-opt.onnx", 12, 384) == bad
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # no temp file left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert optimise(bad, tmp_path / "model-opt.onnx", 12, 384) == bad  # warned once
