"""Student training on a tiny random Llama: QLoRA step, exact resume after SIGKILL, PST variants."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tiny_models import build_tiny_llama, tiny_instances

from cec.cache import SQLiteCache
from cec_distill.config import (
    ConfigError,
    FormatConfig,
    ModelConfig,
    QuantConfig,
    load_train_config,
)
from cec_distill.data import write_instances
from cec_distill.formatting import collate, encode_example
from cec_distill.modeling import four_bit_support, load_base_model, load_tokenizer, merge_adapter
from cec_distill.train import _loss, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    model = build_tiny_llama(d / "model")
    write_instances(tiny_instances(12), d / "train.jsonl")
    write_instances(tiny_instances(3), d / "val.jsonl")
    return d, model


def _cfg(tiny, out: Path, **kw) -> dict:
    d, model = tiny
    cfg = {
        "train_file": str(d / "train.jsonl"),
        "output_dir": str(out),
        "model": {"name_or_path": str(model)},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.1},
        "epochs": 2,
        "batch_size": 4,
        "learning_rate": 5e-3,
        "save_steps": 2,
        "save_total_limit": 3,
        "logging_steps": 1,
        "eval_generate_n": 0,
        "seed": 3,
    }
    cfg.update(kw)
    return cfg


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "name", "max_length"),
    [
        ("tinyllama-1.1b", "TinyLlama/TinyLlama-1.1B-Chat-v1.0", 2048),
        ("phi-2", "microsoft/phi-2", 2048),
        ("gemma-2b", "google/gemma-2b", 8192),
        ("gemma-2-2b", "google/gemma-2-2b", 8192),
    ],
)
def test_presets_carry_the_paper_hyperparameters(preset, name, max_length):
    cfg = load_train_config({"preset": preset, "train_file": "t", "output_dir": "o"})
    assert cfg.model.name_or_path == name
    assert (cfg.epochs, cfg.learning_rate, cfg.batch_size, cfg.max_length) == (
        10,
        2e-5,
        8,
        max_length,
    )
    assert cfg.quantization.quant_type == "nf4" and cfg.quantization.double_quant
    over = load_train_config(
        {
            "preset": preset,
            "train_file": "t",
            "output_dir": "o",
            "learning_rate": 2e-4,
            "lora": {"r": 8},
        }
    )
    assert over.learning_rate == 2e-4 and over.lora.r == 8 and over.lora.alpha == cfg.lora.alpha


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"epochz": 3}, "unknown key.*epochz"),
        ({"epochs": "ten"}, "epochs must be an integer"),
        ({"lora": {"rank": 4}}, r"lora: unknown key.*rank"),
        ({"rationale_loss": "vibes"}, "rationale_loss"),
        ({"semantic_weight": -1.0}, "semantic_weight"),
        ({"lora": {"r": 0}}, "lora.r must be a positive integer, got 0"),
        ({"lora": {"alpha": -8}}, "lora.alpha must be a positive integer, got -8"),
        ({"reference_index": -1}, "reference_index must be a non-negative integer, got -1"),
        ({"save_steps": -1}, "save_steps must be a non-negative integer, got -1"),
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"quantization": {"load_in_4bit": "maybe"}}, "load_in_4bit"),
        ({"format": {"order": "answer_first", "label_in_prompt": True}}, "answer_first"),
        ({"preset": "gpt-5"}, "unknown preset"),
        ({"model": {"attn_implementation": "fast"}}, "model.attn_implementation must be one of"),
        # semantic-only with the label in the prompt: only EOS would be left in the cross-entropy
        (
            {"rationale_loss": "semantic"},
            "only the end-of-sequence token.*format.order: answer_first",
        ),
        (
            {"rationale_loss": "semantic", "format": {"label_in_prompt": True}},
            "rationale_loss: semantic.*answer_first",
        ),
    ],
)
def test_bad_config_raises_naming_the_key(bad, match):
    with pytest.raises(ConfigError, match=match):
        load_train_config({"preset": "tinyllama-1.1b", "train_file": "t", "output_dir": "o", **bad})


@pytest.mark.parametrize("field", ["epochs", "reference_index", "max_steps"])
def test_bools_are_not_counts_even_when_the_dataclass_is_built_directly(field):
    from cec_distill.config import TrainConfig

    with pytest.raises(ConfigError, match=rf"^{field} must be a (positive|non-negative) integer"):
        TrainConfig(
            train_file="t", output_dir="o", model=ModelConfig(name_or_path="m"), **{field: True}
        )


def test_semantic_loss_is_accepted_where_cross_entropy_still_has_tokens():
    base = {"preset": "tinyllama-1.1b", "train_file": "t", "output_dir": "o"}
    pst = load_train_config(
        {**base, "rationale_loss": "semantic", "format": {"order": "answer_first"}}
    )
    assert pst.rationale_loss == "semantic" and pst.format.order == "answer_first"
    # rationale first without the label: the answer line after the rationale is learned by CE
    late = load_train_config(
        {**base, "rationale_loss": "semantic", "format": {"label_in_prompt": False}}
    )
    assert late.format.label_in_prompt is False
    both = load_train_config({**base, "rationale_loss": "both"})
    assert both.format.label_in_prompt is True


def test_required_keys():
    with pytest.raises(ConfigError, match="train_file"):
        load_train_config({"preset": "phi-2", "output_dir": "o"})


# --------------------------------------------------------------------------------------------
# one QLoRA step
# --------------------------------------------------------------------------------------------
def test_one_qlora_step_lowers_the_loss_on_a_repeated_batch(tiny):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    ok, why = four_bit_support("cpu")
    if not ok:
        pytest.skip(f"4-bit NF4 unavailable on this CPU: {why}")
    _, model_dir = tiny
    mcfg = ModelConfig(name_or_path=str(model_dir))
    tok = load_tokenizer(mcfg)
    model, used_4bit = load_base_model(mcfg, QuantConfig(load_in_4bit=True), torch.device("cpu"))
    assert used_4bit
    import bitsandbytes as bnb

    assert isinstance(model.model.layers[0].self_attn.q_proj, bnb.nn.Linear4bit)
    assert model.model.layers[0].self_attn.q_proj.weight.quant_state.quant_type == "nf4"
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(
        model,
        LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=["q_proj", "v_proj", "down_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    cfg = load_train_config(_cfg(tiny, Path("unused")))
    fmt = FormatConfig()
    exs = [encode_example(x, x.explanations[0], tok, fmt, chat=True) for x in tiny_instances(4)]
    batch = collate(exs, tok.pad_token_id)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    torch.manual_seed(0)
    loss0, _ = _loss(model, None, batch, None, cfg)
    loss0.backward()
    opt.step()
    model.eval()  # no dropout: compare like with like
    with torch.no_grad():
        before = loss0.item()
        after, _ = _loss(model, None, batch, None, cfg)
    assert after.item() < before - 1e-3


# --------------------------------------------------------------------------------------------
# checkpoint / resume
# --------------------------------------------------------------------------------------------
def test_checkpoint_files_are_fsynced_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    """Spies on the real os.fsync / os.replace (they still run) to see the order of events."""
    from cec_distill import train as train_mod

    events: list[tuple] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst, *a, **kw):
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        return real_replace(src, dst, *a, **kw)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc/self/fd to name the fsync'd descriptors")
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    monkeypatch.setattr(os, "fsync", fsync)  # the os module every writer uses
    monkeypatch.setattr(os, "replace", replace)
    final = train_mod._save_checkpoint(tmp_path, 7, model, None, opt, sched, {"step": 7}, 2)
    monkeypatch.undo()
    (rename,) = [i for i, e in enumerate(events) if e[0] == "replace"]
    tmp, dst = events[rename][1:]
    assert dst == os.path.realpath(final) and Path(tmp).name.startswith(".tmp-")
    synced_before = {e[1] for e in events[:rename]}
    names = sorted(p.name for p in final.iterdir())
    assert names == [
        "optimizer.pt",
        "rng.pt",
        "scheduler.pt",
        "state.json",
        "trainable.safetensors",
    ]
    assert {os.path.join(tmp, n) for n in names} | {tmp} <= synced_before
    assert ("fsync", os.path.realpath(tmp_path / "checkpoints")) in events[rename + 1 :]
    assert train_mod._load_checkpoint(final, model, None, opt, sched) == {"step": 7}


def test_killed_run_resumes_to_the_same_state(tiny, tmp_path):
    full = train(load_train_config(_cfg(tiny, tmp_path / "full")))
    assert full.steps == 6 and full.resumed_from == 0

    killed = tmp_path / "killed"
    cfg_path = tmp_path / "killed.yaml"
    cfg_path.write_text(yaml.safe_dump(_cfg(tiny, killed)))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "cec_distill.cli", "train", "--config", str(cfg_path), "--kill-after-step", "4"],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr[-2000:]  # really killed
    assert (killed / "checkpoints" / "checkpoint-0000004" / "state.json").is_file()
    assert not (killed / "adapter").exists()

    resumed = train(load_train_config(str(cfg_path)))
    assert resumed.resumed_from == 4 and resumed.steps == 6
    a = load_file(str(tmp_path / "full" / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(killed / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    # the adapter moved away from its initialisation (lora_B starts at zero)
    assert any(k.endswith("lora_B.weight") and a[k].abs().max() > 0 for k in a)
    # same losses step by step, before and after the kill
    la = [
        h["train_loss"]
        for h in map(json.loads, (tmp_path / "full" / "log.jsonl").open())
        if "train_loss" in h
    ]
    lb = [
        h["train_loss"] for h in map(json.loads, (killed / "log.jsonl").open()) if "train_loss" in h
    ]
    assert len(la) == len(lb) == 6
    assert la == pytest.approx(lb, rel=1e-5)


# --------------------------------------------------------------------------------------------
# PST variants
# --------------------------------------------------------------------------------------------
def test_answer_first_with_semantic_loss_trains_and_generates(tiny, tmp_path, scorer):
    from cec_distill.config import GenerateConfig
    from cec_distill.generate import generate
    from cec_distill.semantic import HEAD_FILE, ProjectionHead

    d, model = tiny
    cfg = load_train_config(
        _cfg(
            tiny, tmp_path / "pst", format={"order": "answer_first"}, rationale_loss="semantic",
            semantic_weight=2.0, validation_file=str(d / "val.jsonl"), eval_generate_n=2,
            eval_max_new_tokens=6, epochs=2, learning_rate=2e-2,
        )
    )  # fmt: skip
    res = train(cfg, scorer=scorer)
    log = [json.loads(x) for x in (tmp_path / "pst" / "log.jsonl").open()]
    sem = [h["train_semantic"] for h in log if "train_semantic" in h]
    assert len(sem) == res.steps == 6
    assert sem[-1] < sem[0]  # the projected rationale moves toward the frozen target embedding
    evals = [h for h in log if "val_cec" in h]
    assert (
        evals
        and all(-1 <= h["val_cec"] <= 1 for h in evals)
        and "cec:" in evals[0]["cec_signature"]
    )
    head = ProjectionHead.load(tmp_path / "pst" / "adapter")
    assert (head.in_dim, head.out_dim) == (64, scorer.encode(["x"]).shape[1])
    assert (tmp_path / "pst" / "adapter" / HEAD_FILE).is_file()
    cache = SQLiteCache(tmp_path / "pst" / "semantic_targets.sqlite")  # cec's embedding cache
    assert len(cache) == 3  # three distinct rationales among 12 items, each embedded once
    texts = {x.explanations[0] for x in tiny_instances(12)}
    assert cache.get(scorer.encoder.key, sorted(texts))[0].all()
    fmt = json.loads((tmp_path / "pst" / "adapter" / "cec_format.json").read_text())
    assert fmt["order"] == "answer_first" and fmt["label_in_prompt"] is False

    out = tmp_path / "gen.jsonl"
    generate(
        GenerateConfig(
            input_file=str(d / "val.jsonl"), output_file=str(out), model=ModelConfig(name_or_path=str(model)),
            adapter=res.adapter_dir, max_new_tokens=8, stop_after_answer=True,
        )
    )  # fmt: skip
    recs = [json.loads(x) for x in out.open()]
    assert [r["id"] for r in recs] == [x.id for x in tiny_instances(3)]
    assert all(
        r["order"] == "answer_first" and r["finish"] in ("eos", "length", "answer") for r in recs
    )


def test_semantic_only_loss_leaves_rationale_tokens_out_of_cross_entropy(tiny):
    _, model_dir = tiny
    mcfg = ModelConfig(name_or_path=str(model_dir))
    tok = load_tokenizer(mcfg)
    model, _ = load_base_model(mcfg, QuantConfig(load_in_4bit=False), torch.device("cpu"))
    fmt = FormatConfig(order="answer_first")
    exs = [encode_example(x, x.explanations[0], tok, fmt, chat=True) for x in tiny_instances(2)]
    batch = collate(exs, tok.pad_token_id)
    target = torch.nn.functional.normalize(torch.randn(2, 16), dim=-1)
    from cec_distill.semantic import ProjectionHead

    head = ProjectionHead(64, 16)
    base = load_train_config(_cfg(tiny, Path("x")))
    model.eval()
    with torch.no_grad():
        _, tok_parts = _loss(model, None, batch, None, base)
        base.rationale_loss = "semantic"
        _, sem_parts = _loss(model, head, batch, target, base)
        # cross-entropy over the answer tokens + EOS only, computed by hand
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        lab = batch["labels"].masked_fill(batch["rationale_mask"].bool(), -100)
        flat = logits[:, :-1].reshape(-1, logits.size(-1))
        ce = torch.nn.functional.cross_entropy(flat, lab[:, 1:].reshape(-1))
        ce_all = torch.nn.functional.cross_entropy(flat, batch["labels"][:, 1:].reshape(-1))
    assert sem_parts["ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert tok_parts["ce"] == pytest.approx(ce_all.item(), rel=1e-5)
    assert (lab != -100).sum() < (batch["labels"] != -100).sum()
    assert 0 <= sem_parts["semantic"] <= 2
    assert sem_parts["loss"] == pytest.approx(sem_parts["ce"] + sem_parts["semantic"], rel=1e-5)


def test_merge_goes_into_a_full_precision_base(tiny, tmp_path):
    from peft import PeftModel

    res = train(load_train_config(_cfg(tiny, tmp_path / "m", epochs=1, merge=True)))
    _, model_dir = tiny
    mcfg = ModelConfig(name_or_path=str(model_dir))
    merged, used_4bit = load_base_model(ModelConfig(name_or_path=res.merged_dir), QuantConfig(load_in_4bit=False),
                                        torch.device("cpu"))  # fmt: skip
    assert not used_4bit and merged.dtype == torch.float32
    assert not any("lora" in n for n, _ in merged.named_parameters())
    base, _ = load_base_model(mcfg, QuantConfig(load_in_4bit=False), torch.device("cpu"))
    peft_model = PeftModel.from_pretrained(base, res.adapter_dir).eval()
    x = torch.tensor([[1, 20, 30, 40, 50]])
    with torch.no_grad():
        torch.testing.assert_close(
            merged(input_ids=x).logits, peft_model(input_ids=x).logits, atol=1e-4, rtol=1e-4
        )
    # merging again by hand gives the same weights
    again = merge_adapter(mcfg, res.adapter_dir, tmp_path / "again")
    w1 = load_file(str(Path(res.merged_dir) / "model.safetensors"))
    w2 = load_file(str(again / "model.safetensors"))
    for k in w1:
        torch.testing.assert_close(w1[k], w2[k])
