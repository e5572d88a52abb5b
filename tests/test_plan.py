"""``cec-distill plan``: recorded dimensions, the estimate's arithmetic, exit 2 with computed fixes.

Nothing here loads a model: the plan is offline by design. How close the estimate is to a
measured peak is checked by tests/test_gpu_check.py (tiny 4-bit CPU runs of each architecture).
"""

from __future__ import annotations

import json
import math

import pytest
import yaml

from cec_distill.cli import main
from cec_distill.config import LORA_TARGETS
from cec_distill.data import write_instances
from cec_distill.plan import (
    CUDA_CONTEXT,
    KNOWN_CONFIGS,
    GiB,
    ModelDims,
    generation_memory,
    training_memory,
)
from tests.tiny_models import build_tiny_llama, tiny_instances

# (hidden, layers, heads, kv heads, intermediate, vocab, max positions, tied, parameters in B)
RECORDED = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": (2048, 22, 32, 4, 5632, 32000, 2048, False, 1.100),
    "microsoft/phi-2": (2560, 32, 32, 32, 10240, 51200, 2048, False, 2.780),
    "google/gemma-2b": (2048, 18, 8, 1, 16384, 256000, 8192, True, 2.506),
    "google/gemma-2-2b": (2304, 26, 8, 4, 9216, 256000, 8192, True, 2.614),
}


@pytest.mark.parametrize("model_id", list(RECORDED))
def test_recorded_dimensions_are_the_hub_configs(model_id):
    d = ModelDims.from_config(KNOWN_CONFIGS[model_id])
    got = (d.hidden, d.layers, d.heads, d.kv_heads, d.intermediate, d.vocab, d.max_positions,
           d.tied)  # fmt: skip
    assert got == RECORDED[model_id][:8]
    # the published parameter counts (1.1B, 2.7B, 2.5B, 2.6B), to 0.1%
    assert d.n_params / 1e9 == pytest.approx(RECORDED[model_id][8], rel=1e-3)


def _write(tmp_path, name, data):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def _plan(capsys, *argv):
    code = main(["plan", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_estimate_adds_up_and_grows_with_the_micro_batch():
    d = ModelDims.from_config(KNOWN_CONFIGS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"])
    kw = dict(seq_len=2048, lora_r=16, targets=LORA_TARGETS["llama"])
    e8, e2 = training_memory(d, batch_size=8, **kw), training_memory(d, batch_size=2, **kw)
    assert e8.total == sum(e8.terms.values())
    # NF4: 0.5 byte per weight + 8-bit absmax per 64 + fp32 per 64 x 256 (double quantization)
    assert e8.terms["weights (4-bit NF4)"] == int(d.linear_params * (0.5 + 1 / 64 + 1 / 4096))
    # LoRA r=16 on all seven projections: 16 x (in + out) per layer, 16 bytes each with AdamW
    lora = 22 * 16 * (2 * 2048 + 2 * (2048 + 256) + 2048 * 2 + 3 * (2048 + 5632))
    assert e8.terms["LoRA weights + grads + AdamW"] == lora * 16
    # the logits: vocab x tokens x 14 bytes (fp32 logits, the loss's copies, the gradient)
    assert e8.terms["logits and loss (vocab x tokens)"] == 8 * 2048 * 32000 * 14
    assert e8.terms["weights (4-bit NF4)"] == e2.terms["weights (4-bit NF4)"]
    assert e8.total - e2.total > 3 * GiB
    assert e8.on_gpu() == int(e8.total * 1.1) + CUDA_CONTEXT


def test_kv_cache_of_generation():
    d = ModelDims.from_config(KNOWN_CONFIGS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"])
    g = generation_memory(d, batch_size=8, prompt_len=400, max_new_tokens=128)
    # K and V, 22 layers, 4 kv heads x 64, bf16, 8 x 528 positions
    assert g.terms["KV cache"] == 2 * 22 * 4 * 64 * 2 * 8 * 528
    g2 = ModelDims.from_config(KNOWN_CONFIGS["google/gemma-2-2b"])
    long = generation_memory(g2, batch_size=1, prompt_len=8000, max_new_tokens=192)
    # half of Gemma 2's layers are local: their cache stops at the 4096-token window
    assert long.terms["KV cache"] == 2 * 4 * 256 * 2 * (13 * 8192 + 13 * 4096)


def test_a_preset_that_fits_prints_its_table(tmp_path, capsys):
    cfg = _write(tmp_path, "run.yaml", {"preset": "tinyllama-1.1b",
                                         "train_file": str(tmp_path / "none.jsonl"),
                                         "output_dir": str(tmp_path / "out")})  # fmt: skip
    code, out, err = _plan(capsys, cfg, "--gpu-memory", 24)
    assert code == 0, err
    assert "recorded dimensions" in out and "fits 24 GiB" in out
    assert "does not exist yet" in out  # no data: memory only, said so


def test_too_big_exits_2_with_computed_changes_that_do_fit(tmp_path, capsys):
    base = {"preset": "gemma-2b", "train_file": str(tmp_path / "none.jsonl"),
            "output_dir": str(tmp_path / "out")}  # fmt: skip
    cfg = _write(tmp_path, "run.yaml", base)
    code, out, err = _plan(capsys, cfg, "--gpu-memory", 80, "--json")
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("cec-distill: error: training will not fit 80 GiB")
    plan = json.loads(out)
    assert not plan["fits_training"]
    sugg = plan["suggestions"]
    assert any(s.startswith("batch_size 8 -> ") and "grad_accum 1 -> " for s in sugg)
    assert any(s.startswith("max_length 8192 -> ") for s in sugg)
    for s in sugg:  # each suggestion, applied, fits
        over = dict(base)
        if s.startswith("batch_size"):
            nb = int(s.split("-> ")[1].split()[0])
            over.update(batch_size=nb, grad_accum=int(s.split("grad_accum 1 -> ")[1].split()[0]))
            assert nb * over["grad_accum"] == 8
        else:
            over["max_length"] = int(s.split("-> ")[1].split()[0].rstrip(";"))
        code2, _, err2 = _plan(capsys, _write(tmp_path, "fix.yaml", over), "--gpu-memory", 80)
        assert code2 == 0, (s, err2)


def test_gemma_2_2b_by_model_id_and_a_local_folder_with_exact_tokens(tmp_path, capsys):
    gem = _write(tmp_path, "g.yaml", {
        "model": {"name_or_path": "google/gemma-2-2b"}, "train_file": "x.jsonl",
        "output_dir": "o", "max_length": 1024,
        "lora": {"target_modules": LORA_TARGETS["gemma2"]}})  # fmt: skip
    code, out, _ = _plan(capsys, gem, "--gpu-memory", 80, "--json")
    p = json.loads(out)
    assert p["dims"]["model_type"] == "gemma2" and "recorded" in p["dims"]["source"]
    assert code == 0 and p["fits_training"]
    # 8 x 1024 tokens x 256,000 x 20 bytes of logits (soft-capped): more than 40 GiB
    assert p["training"]["logits and loss (vocab x tokens)"] == 8 * 1024 * 256000 * 20
    assert _plan(capsys, gem, "--gpu-memory", 40)[0] == 2

    model = build_tiny_llama(tmp_path / "tiny")
    data = tmp_path / "train.jsonl"
    write_instances(tiny_instances(10), data)
    cfg = _write(tmp_path, "run.yaml", {
        "model": {"name_or_path": str(model)}, "train_file": str(data),
        "output_dir": str(tmp_path / "out"), "batch_size": 3, "grad_accum": 2, "epochs": 4,
        "max_length": 200})  # fmt: skip
    code, out, err = _plan(capsys, cfg, "--gpu-memory", 1, "--price", "30,60", "--json")
    assert code == 0, err
    p = json.loads(out)
    assert p["dims"]["source"] == str(model)
    d = p["data"]
    assert d["exact"] and d["examples"] == 10 and d["tokens"] > 10 * 20
    assert d["steps_per_epoch"] == math.ceil(math.ceil(10 / 3) / 2) == 2
    assert d["steps"] == 8
    t = p["teacher"]
    assert t["instances"] == 10 and t["input_tokens"] > 10 * 30
    assert t["usd_expected"] == pytest.approx(
        (t["input_tokens"] * 30 + t["output_tokens_expected"] * 60) / 1e6, rel=1e-9
    )
    assert t["usd_max"] >= t["usd_expected"]
    code, out, _ = _plan(capsys, cfg, "--gpu-memory", 1, "--price", "30,60")
    assert "teacher labelling:" in out and "exact (the model's tokenizer)" in out


@pytest.mark.parametrize(
    "extra, argv, message",
    [
        ({}, ["--price", "cheap"], "--price must be IN,OUT"),
        ({"lora": {"target_modules": ["q_proj", "c_attn"]}}, [],
         "lora.target_modules: 'c_attn' match no linear layer of a llama model"),
        ({"model": {"name_or_path": "someone/unknown-model"}}, [], "pass --model-config PATH"),
        ({}, ["--gpu-memory", "0"], "--gpu-memory must be a number of GiB > 0"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_naming_the_argument(tmp_path, capsys, extra, argv, message):
    data = {"preset": "tinyllama-1.1b", "train_file": "x.jsonl", "output_dir": "o", **extra}
    cfg = _write(tmp_path, "run.yaml", data)
    args = argv if "--gpu-memory" in argv else ["--gpu-memory", "24", *argv]
    code, _, err = _plan(capsys, cfg, *args)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("cec-distill: error: ")
    assert message in err
