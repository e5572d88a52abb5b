"""4-bit NF4 + LoRA on CPU: gradients equal those of the same model dequantised to fp32.

bitsandbytes runs 4-bit NF4 on CPU, but on CPUs with AVX512-BF16 it repacks a 4-bit layer's
weights for a fused inference kernel the first time the layer runs in eval mode without
gradients (an evaluation pass during training), and that kernel has no backward ("gemv_4bit: an
autograd kernel was not registered ... silently incorrect behavior"). The checks below run an
evaluation pass first, as training does, on this CPU as it is and with bitsandbytes told the CPU
has AVX512-BF16 (its own feature test answered yes), so the repacking path runs on any CPU.
"""

from __future__ import annotations

import pytest
import torch
from tiny_models import build_tiny_llama, tiny_instances

from cec_distill.config import ConfigError, FormatConfig, ModelConfig, QuantConfig
from cec_distill.formatting import collate, encode_example
from cec_distill.modeling import (
    _probe_layer,
    four_bit_gradient_error,
    four_bit_support,
    keep_4bit_trainable,
    load_base_model,
    load_tokenizer,
)

CPU = torch.device("cpu")
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_llama(tmp_path_factory.mktemp("tiny4") / "model")


def _need_cpu_kernel():
    ok, why = four_bit_support("cpu")
    if not ok:
        pytest.skip(f"bitsandbytes has no 4-bit CPU kernel here: {why}")


@pytest.fixture
def as_avx512bf16(request, monkeypatch):
    """``True``: bitsandbytes believes this CPU has AVX512-BF16 (the repacking path runs)."""
    if request.param:
        import bitsandbytes.nn.modules as bnb_modules

        monkeypatch.setattr(bnb_modules, "has_avx512bf16", lambda: True)
    four_bit_support.cache_clear()
    yield request.param
    four_bit_support.cache_clear()


def test_the_probe_passes_the_trainable_layout_and_catches_the_inference_one():
    _need_cpu_kernel()
    kept = keep_4bit_trainable(_probe_layer("cpu"))
    err, note = four_bit_gradient_error(kept)
    assert err < 1e-5, note
    packed = _probe_layer("cpu")
    packed.support_avx512bf16_for_cpu = True  # what bitsandbytes sets on an AVX512-BF16 CPU
    bad, _ = four_bit_gradient_error(packed)
    assert bad > 1e-2  # the repacked layer's backward drops the input gradient


def _dequantised_copy(m4, model_dir):
    """The same model in fp32 with every 4-bit weight replaced by its dequantised value."""
    import bitsandbytes as bnb
    import bitsandbytes.functional as F

    m32, used = load_base_model(ModelConfig(name_or_path=str(model_dir)), QuantConfig(load_in_4bit=False), CPU)  # fmt: skip
    assert not used
    sd32 = m32.state_dict()
    n_quant = 0
    with torch.no_grad():
        for name, mod in m4.named_modules():
            if isinstance(mod, bnb.nn.Linear4bit):
                sd32[f"{name}.weight"].copy_(
                    F.dequantize_4bit(mod.weight.data, mod.weight.quant_state).float()
                )
                n_quant += 1
    assert n_quant == 14  # 7 projections x 2 layers
    return m32


@pytest.mark.parametrize("as_avx512bf16", [False, True], indirect=True, ids=["this-cpu", "avx512bf16"])  # fmt: skip
def test_4bit_lora_gradients_match_the_dequantised_fp32_model(tiny_model, as_avx512bf16):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    _need_cpu_kernel()
    mcfg = ModelConfig(name_or_path=str(tiny_model))
    ok, why = four_bit_support("cpu", training=True)
    if not ok:  # then 4-bit training must be refused, and auto must fall back
        with pytest.raises(ConfigError, match="4-bit training is unavailable on cpu"):
            load_base_model(mcfg, QuantConfig(load_in_4bit=True), CPU, training=True)
        _, used = load_base_model(mcfg, QuantConfig(load_in_4bit="auto"), CPU, training=True)
        assert not used
        return
    m4, used = load_base_model(mcfg, QuantConfig(load_in_4bit=True), CPU, training=True)
    assert used
    m32 = _dequantised_copy(m4, tiny_model)
    m4 = prepare_model_for_kbit_training(
        m4, use_gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}
    )
    lora = {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": TARGETS}
    a = get_peft_model(m4, LoraConfig(task_type="CAUSAL_LM", **lora))
    b = get_peft_model(m32, LoraConfig(task_type="CAUSAL_LM", **lora))
    g = torch.Generator().manual_seed(1)
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    trainable = [n for n, p in pa.items() if p.requires_grad]
    assert len(trainable) == 2 * 14 and trainable == [n for n, p in pb.items() if p.requires_grad]
    with torch.no_grad():  # lora_B starts at zero: give every adapter weight a value
        for n in trainable:
            v = torch.randn(pa[n].shape, generator=g) * 0.1
            pa[n].copy_(v)
            pb[n].copy_(v)

    tok = load_tokenizer(mcfg)
    exs = [encode_example(x, x.explanations[0], tok, FormatConfig(), chat=True) for x in tiny_instances(4)]  # fmt: skip
    batch = collate(exs, tok.pad_token_id)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    losses = []
    for m in (a, b):
        m.eval()  # an evaluation pass first, as training runs one (validation, generation)
        with torch.no_grad():
            m(**inputs)
        m.train()
        out = m(**inputs, labels=batch["labels"])
        out.loss.backward()
        losses.append(out.loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for n in trainable:
        ga, gb = pa[n].grad, pb[n].grad
        assert ga is not None and gb is not None and gb.norm() > 0, n
        rel = float((ga - gb).norm() / gb.norm())
        assert rel < 1e-4, f"{n}: gradient off by {rel:.3g}"
