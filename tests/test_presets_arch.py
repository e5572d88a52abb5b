"""Every preset on a tiny random model of its own architecture, through `cec-distill train` / `generate`.

For each built-in preset the base is a tiny model of the class the preset's checkpoint loads as
(``LlamaForCausalLM``, ``PhiForCausalLM``, ``GemmaForCausalLM``, ``Gemma2ForCausalLM``), built
from a config, with a tokenizer in that checkpoint's layout (tests/tiny_models.py). The preset is
loaded as a user's config loads it, with only the model path, the data, the run length and the
learning rate overridden. Checked: the preset's own LoRA targets (every name a module of the
class), the explanation-only loss with EOS, 4-bit NF4 (bitsandbytes' CPU kernels), a checkpoint
and an exact resume from it, and generation with the saved adapter.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tiny_models import ARCHITECTURES, build_tiny_student, tiny_config, tiny_instances

from cec_distill.config import PRESETS, ConfigError, QuantConfig, load_train_config
from cec_distill.data import write_instances
from cec_distill.formatting import IGNORE_INDEX, collate, prompt_ids, prompt_text
from cec_distill.modeling import four_bit_support, load_base_model, load_tokenizer
from cec_distill.train import _loss, build_examples, targets_for
from cec_distill.train.adapter import linear_layer_names, lora_targets

CPU = torch.device("cpu")

#: preset -> (architecture, tokenizer with a chat template, class name, generation prompt end).
#: gemma-2b trains the plain layout (Gemma's tokenizer prepends the BOS), gemma-2-2b the chat
#: template (which writes the BOS itself); both Gemma layouts are checked for both presets below.
CASES = {
    "tinyllama-1.1b": ("llama", True, "LlamaForCausalLM", "<|assistant|>\n"),
    "phi-2": ("phi", False, "PhiForCausalLM", "### Response:\n"),
    "gemma-2b": ("gemma", False, "GemmaForCausalLM", "### Response:\n"),
    "gemma-2-2b": ("gemma2", True, "Gemma2ForCausalLM", "<start_of_turn>model\n"),
}
GEMMA_PROMPT_END = {True: "<start_of_turn>model\n", False: "### Response:\n"}


def test_every_builtin_preset_has_a_case_here():
    assert set(PRESETS) == set(CASES)


def test_train_help_names_every_preset(capsys, monkeypatch):
    from cec_distill.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["train", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"preset: {', '.join(PRESETS)}." in out and "gemma-2-2b" in PRESETS


def _preset(preset: str, **over) -> object:
    return load_train_config({"preset": preset, "train_file": "t", "output_dir": "o", **over})


def _class_of(arch: str, tok):
    import transformers

    return getattr(transformers, ARCHITECTURES[arch][2])(tiny_config(arch, tok))


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """One tokenizer per layout (llama, phi, gemma), saved once."""
    from tiny_models import build_tokenizer

    root = tmp_path_factory.mktemp("toks")
    return {lay: build_tokenizer(root / lay, layout=lay) for lay in ("llama", "phi", "gemma")}


# --------------------------------------------------------------------------------------------
# LoRA targets: the preset's names against the architecture's modules
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", list(CASES))
def test_preset_lora_targets_are_modules_of_its_architecture(preset, tokenizers):
    arch, _, cls, _ = CASES[preset]
    model = _class_of(arch, tokenizers[ARCHITECTURES[arch][0]])
    assert type(model).__name__ == cls
    targets = _preset(preset).lora.target_modules
    linear = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}  # fmt: skip
    absent = [t for t in targets if t not in linear]
    assert not absent, f"{preset}: {absent} are not linear layers of {cls} ({sorted(linear)})"
    # every attention and MLP projection is adapted (all linear layers but the output head)
    assert set(targets) == linear - {"lm_head"}
    assert lora_targets(model, targets) == targets
    assert lora_targets(model, None) == targets  # the family default agrees with the preset


@pytest.mark.parametrize(
    ("preset", "foreign"),
    [("phi-2", "o_proj"), ("tinyllama-1.1b", "dense"), ("gemma-2-2b", "fc1"), ("gemma-2b", "qkv_proj")],
)  # fmt: skip
def test_a_target_the_architecture_lacks_is_refused_though_peft_would_train_without_it(
    preset, foreign, tokenizers
):
    from peft import LoraConfig, get_peft_model

    arch, _, cls, _ = CASES[preset]
    targets = [*_preset(preset).lora.target_modules, foreign]
    model = _class_of(arch, tokenizers[ARCHITECTURES[arch][0]])
    with pytest.raises(ConfigError, match=rf"lora.target_modules: '{foreign}' matches no module of {cls}"):  # fmt: skip
        lora_targets(model, targets)
    # what the check prevents: peft adapts the names that match and drops the other one silently
    wrapped = get_peft_model(model, LoraConfig(r=2, lora_alpha=4, target_modules=targets))
    adapted = {n.rsplit(".", 1)[-1] for n in wrapped.base_model.targeted_module_names}
    assert foreign not in adapted and adapted == set(targets) - {foreign}


def test_train_stops_on_a_foreign_target_before_training(tmp_path, capsys):
    from cec_distill.cli import main

    model_dir = build_tiny_student(tmp_path / "phi", "phi")
    write_instances(tiny_instances(2), tmp_path / "train.jsonl")
    cfg = {"preset": "phi-2", "model": {"name_or_path": str(model_dir)},
           "train_file": str(tmp_path / "train.jsonl"), "output_dir": str(tmp_path / "run"),
           "lora": {"target_modules": ["q_proj", "o_proj"]}, "quantization": {"load_in_4bit": False}}  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "--config", str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "cec-distill: error: lora.target_modules: 'o_proj' matches no module of PhiForCausalLM"
    )
    assert "dense, fc1, fc2" in err[-1]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_linear_layer_names_name_what_a_user_can_target(tokenizers):
    phi = _class_of("phi", tokenizers["phi"])
    assert linear_layer_names(phi) == ["dense", "fc1", "fc2", "k_proj", "lm_head", "q_proj", "v_proj"]  # fmt: skip


# --------------------------------------------------------------------------------------------
# the layout and the loss: the prompt masked, the explanation and the EOS learned
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("preset", "chat"),
    [("tinyllama-1.1b", True), ("phi-2", False), ("gemma-2b", False), ("gemma-2b", True),
     ("gemma-2-2b", True), ("gemma-2-2b", False)],
)  # fmt: skip
def test_preset_layout_learns_the_explanation_and_eos_only(preset, chat, tmp_path):
    arch, _, _, _ = CASES[preset]
    model_dir = build_tiny_student(tmp_path / "m", arch, chat=chat)
    cfg = _preset(preset, model={"name_or_path": str(model_dir)})
    tok = load_tokenizer(cfg.model)
    from cec_distill.formatting import use_chat_template

    assert use_chat_template(tok, cfg.model.chat_template) is chat  # what `auto` resolves to
    insts = tiny_instances(4)
    examples, texts, dropped, truncated = build_examples(
        insts, targets_for(insts, None), tok, cfg, chat, cfg.max_length
    )
    assert len(examples) == 4 and dropped == truncated == 0
    end = GEMMA_PROMPT_END[chat] if arch.startswith("gemma") else CASES[preset][3]
    for inst, ex, text in zip(insts, examples, texts, strict=True):
        assert prompt_text(inst, tok, cfg.format, chat).endswith(end)
        n = ex.n_prompt
        assert ex.input_ids[:n] == prompt_ids(inst, tok, cfg.format, chat)  # = generation's prompt
        assert ex.labels[:n] == [IGNORE_INDEX] * n and IGNORE_INDEX not in ex.labels[n:]
        assert ex.labels[n:] == ex.input_ids[n:] and ex.labels[-1] == tok.eos_token_id
        assert tok.decode(ex.labels[n:-1]) == text == inst.explanations[0]
        bos = [i for i, t in enumerate(ex.input_ids) if t == tok.bos_token_id]
        if arch == "phi":  # CodeGen's tokenizer prepends nothing; its BOS is its EOS
            assert tok.bos_token_id == tok.eos_token_id and bos == [len(ex.input_ids) - 1]
        else:  # one BOS, first: from the tokenizer (plain) or from the chat template
            assert bos == [0]
    # padding (Phi: the pad token is the EOS) is never learned; each row learns one EOS
    batch = collate(examples, tok.pad_token_id)
    assert tok.pad_token_id is not None
    labelled_eos = ((batch["labels"] == tok.eos_token_id).sum(1)).tolist()
    assert labelled_eos == [1, 1, 1, 1]
    # the training loss is the mean cross-entropy over exactly those tokens
    model, _ = load_base_model(cfg.model, QuantConfig(load_in_4bit=False), CPU)
    model.eval()
    with torch.no_grad():
        loss, parts = _loss(model, None, batch, None, cfg)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    want = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.size(-1)),
        batch["labels"][:, 1:].reshape(-1),
        ignore_index=IGNORE_INDEX,
    )
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    n_learned = int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())
    assert n_learned == sum(len(e.input_ids) - e.n_prompt for e in examples)


# --------------------------------------------------------------------------------------------
# 4-bit, checkpoint and resume, generation: the real commands
# --------------------------------------------------------------------------------------------
FOUR_BIT, FOUR_BIT_WHY = four_bit_support("cpu", training=True)


@pytest.fixture(scope="module", params=list(CASES))
def trained(request, tmp_path_factory):
    """A preset trained 4 steps through `cec-distill train` (2 checkpoints), on its architecture."""
    from cec_distill.cli import main

    preset = request.param
    arch, chat, _, _ = CASES[preset]
    d = tmp_path_factory.mktemp(preset)
    model_dir = build_tiny_student(d / "model", arch, chat=chat)
    write_instances(tiny_instances(6), d / "train.jsonl")
    write_instances(tiny_instances(2), d / "val.jsonl")
    user = {
        "preset": preset,
        "model": {"name_or_path": str(model_dir)},
        "quantization": {"load_in_4bit": FOUR_BIT},
        "train_file": str(d / "train.jsonl"),
        "validation_file": str(d / "val.jsonl"),
        "output_dir": str(d / "run"),
        "epochs": 2,
        "batch_size": 3,
        "learning_rate": 2.0e-2,
        "save_steps": 2,
        "save_total_limit": 5,
        "eval_generate_n": 0,
        "logging_steps": 1,
    }
    cfg_path = d / "run.yaml"
    cfg_path.write_text(yaml.safe_dump(user), encoding="utf-8")
    assert main(["train", "--config", str(cfg_path)]) == 0
    return preset, d, model_dir, cfg_path


def _summary(run: Path) -> dict:
    return json.loads((run / "train_summary.json").read_text())


def test_preset_trains_its_own_targets_in_4bit(trained):
    preset, d, model_dir, _ = trained
    run = d / "run"
    res = _summary(run)
    assert (res["steps"], res["resumed_from"], res["n_examples"]) == (4, 0, 6)
    assert res["loaded_in_4bit"] is FOUR_BIT
    resolved = yaml.safe_load((run / "train_config.yaml").read_text())
    assert resolved["max_length"] == _preset(preset).max_length  # the preset's, not overridden
    assert resolved["epochs"] == 2 and resolved["lora"]["r"] == 16
    targets = _preset(preset).lora.target_modules
    acfg = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert set(acfg["target_modules"]) == set(targets)
    weights = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    adapted = {k.split(".lora_")[0] for k in weights}
    per_target = {t: [k for k in adapted if k.endswith(f".{t}")] for t in targets}
    assert all(len(v) == 2 for v in per_target.values()), per_target  # each of the 2 layers
    assert all(w.abs().max() > 0 for k, w in weights.items() if ".lora_B." in k)  # B moved from 0
    log = [json.loads(x) for x in (run / "log.jsonl").open()]
    losses = [h["train_loss"] for h in log if "train_loss" in h]
    assert len(losses) == 4 and all(torch.isfinite(torch.tensor(losses)))
    assert [h["step"] for h in log if "val_loss" in h] == [2, 4]  # evaluated at each epoch end


def test_preset_4bit_quantizes_every_target_layer(trained):
    if not FOUR_BIT:
        pytest.skip(f"bitsandbytes cannot train 4-bit on this CPU: {FOUR_BIT_WHY}")
    import bitsandbytes as bnb

    preset, _, model_dir, _ = trained
    cfg = _preset(preset, model={"name_or_path": str(model_dir)})
    m, used = load_base_model(cfg.model, QuantConfig(load_in_4bit=True), CPU, training=True)
    assert used
    four = {n.rsplit(".", 1)[-1] for n, x in m.named_modules() if isinstance(x, bnb.nn.Linear4bit)}
    assert four == set(cfg.lora.target_modules)  # every projection; the head stays full precision
    for _, x in m.named_modules():
        if isinstance(x, bnb.nn.Linear4bit):
            assert x.weight.quant_state.quant_type == "nf4"
    if CASES[preset][0] == "gemma2":  # soft-capped attention: eager, as the preset asks
        assert cfg.model.attn_implementation == "eager"
        assert m.config._attn_implementation == "eager"


def test_preset_resumes_from_its_checkpoint_to_the_same_adapter(trained):
    from cec_distill.cli import main

    _, d, _, cfg_path = trained
    run, again = d / "run", d / "resumed"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["checkpoint-0000002", "checkpoint-0000004"]
    # the state of a run that died after its step-2 checkpoint: later files gone
    shutil.copytree(run, again)
    shutil.rmtree(again / "checkpoints" / "checkpoint-0000004")
    shutil.rmtree(again / "adapter")
    (again / "train_summary.json").unlink()
    assert main(["train", "--config", str(cfg_path), "--set", f"output_dir={again}"]) == 0
    res = _summary(again)
    assert (res["resumed_from"], res["steps"]) == (2, 4)
    a = load_file(str(run / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(again / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)

    def losses(p):
        return [h["train_loss"] for h in map(json.loads, (p / "log.jsonl").open()) if "train_loss" in h]  # fmt: skip

    assert losses(again) == pytest.approx(losses(run), rel=1e-5)


def test_preset_generates_with_its_saved_adapter(trained, tmp_path):
    from cec_distill.cli import main

    preset, d, model_dir, _ = trained
    cfg = _preset(preset, model={"name_or_path": str(model_dir)})
    common = {
        "input_file": str(d / "val.jsonl"),
        "model": {
            "name_or_path": str(model_dir),
            "attn_implementation": cfg.model.attn_implementation,
        },  # fmt: skip
        "quantization": {"load_in_4bit": FOUR_BIT},  # as the study generates: like training
        "max_new_tokens": 8,
        "batch_size": 2,
    }
    outs = {}
    for name, adapter in (("adapter", str(d / "run" / "adapter")), ("base", None)):
        g = tmp_path / f"{name}.yaml"
        g.write_text(yaml.safe_dump({**common, "adapter": adapter, "output_file": str(tmp_path / f"{name}.jsonl")}))  # fmt: skip
        assert main(["generate", "--config", str(g)]) == 0
        outs[name] = [json.loads(x) for x in (tmp_path / f"{name}.jsonl").open()]
    recs = outs["adapter"]
    assert [r["id"] for r in recs] == [x.id for x in tiny_instances(2)]
    assert all(r["adapter"] == str(d / "run" / "adapter") for r in recs)
    assert all(r["finish"] in ("eos", "length") and 0 <= r["n_new_tokens"] <= 8 for r in recs)
    # the adapter changes what the model writes (trained 4 steps at a high rate on 6 items)
    assert [r["raw"] for r in recs] != [r["raw"] for r in outs["base"]]
