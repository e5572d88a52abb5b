"""Loading students: tokenizer, base model (4-bit NF4 where the platform can), GGUF, merging.

* :func:`load_tokenizer` / :func:`load_base_model` read a hub id, a local directory, an installed
  weights package (``model.package``) or a GGUF file, offline unless the environment allows.
* 4-bit: ``quantization.load_in_4bit: auto`` quantizes with bitsandbytes NF4 (double
  quantization, compute dtype by device) on CUDA, and on CPU when the installed bitsandbytes
  can (probed once with a real 4-bit matmul; for training, also a gradient check of a 4-bit
  layer against its dequantised fp32 weights); otherwise it logs one line and loads full
  precision (LoRA without quantization).
* 4-bit training on CPU: on CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit layer's weights
  for a fused inference kernel the first time the layer runs in eval mode without gradients (an
  evaluation pass during training), and that kernel has no backward: the input gradient is
  silently dropped ("gemv_4bit: an autograd kernel was not registered"). A model loaded for
  training keeps its weights in the trainable layout (:func:`keep_4bit_trainable`).
* :func:`materialize` writes a GGUF (or any) base once as a plain safetensors directory, so later
  stages load fast and can quantize it.
* :func:`merge_adapter` merges a LoRA adapter into a full-precision copy of the base, never into
  a 4-bit one.
"""

from __future__ import annotations

import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from cec_distill.config import ConfigError, ModelConfig, QuantConfig, resolve_model_path

__all__ = [
    "resolve_device",
    "resolve_dtype",
    "four_bit_support",
    "keep_4bit_trainable",
    "load_tokenizer",
    "load_base_model",
    "materialize",
    "merge_adapter",
]

log = logging.getLogger("cec_distill.modeling")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> this process's CUDA device (LOCAL_RANK) when present, else CPU."""
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    return torch.device(device)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on CUDA with bf16 support, fp16 on other CUDA, fp32 on CPU."""
    if name != "auto":
        return _DTYPES[name]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


@functools.cache
def four_bit_support(device_type: str, training: bool = False) -> tuple[bool, str]:
    """Whether bitsandbytes 4-bit NF4 works on this device type, and why not if it does not.

    Args:
        device_type: ``cpu`` or ``cuda``.
        training: Also check, on CPU, that gradients flow through a 4-bit layer correctly after
            an evaluation pass (:func:`four_bit_gradient_error` against the dequantised fp32
            weights, within 1e-4), with the layer kept trainable as training keeps it.
    """
    try:
        import bitsandbytes as bnb
        import bitsandbytes.functional as F
    except Exception as exc:  # not installed, or a broken native library
        return False, f"bitsandbytes is not usable ({type(exc).__name__}: {exc})"
    if device_type == "cuda":
        return (True, "") if torch.cuda.is_available() else (False, "CUDA is not available")
    try:  # a real quantize + 4-bit matmul on this device, without touching the global RNG
        w = torch.linspace(-1, 1, 64 * 64, device=device_type).reshape(64, 64)
        q, state = F.quantize_4bit(w, quant_type="nf4", compress_statistics=True)
        x = torch.linspace(-1, 1, 2 * 64, device=device_type).reshape(2, 64)
        out = bnb.matmul_4bit(x, q.t(), quant_state=state)
        if out.shape != (2, 64) or not torch.isfinite(out).all():
            return False, "the 4-bit kernel returned a bad result"
    except Exception as exc:
        return (
            False,
            f"bitsandbytes {bnb.__version__} has no working 4-bit {device_type} kernel ({exc})",
        )
    if training:
        try:
            layer = _probe_layer(device_type)
            keep_4bit_trainable(layer)
            err, why = four_bit_gradient_error(layer)
        except Exception as exc:
            return False, f"bitsandbytes {bnb.__version__}: 4-bit backward failed here ({exc})"
        if err > 1e-4:
            return (
                False,
                f"bitsandbytes {bnb.__version__}: the {device_type} 4-bit backward is wrong here "
                f"(gradient off by {err:.3g} relative to the dequantised fp32 layer{why})",
            )
    return True, ""


def _probe_layer(device_type: str) -> Any:
    """A 4-bit NF4 ``Linear4bit(64 -> 64)`` with fixed weights, quantized on ``device_type``."""
    import bitsandbytes as bnb

    g = torch.Generator().manual_seed(0)
    w = torch.randn(64, 64, generator=g) * 0.1
    layer = bnb.nn.Linear4bit(
        64, 64, bias=False, compute_dtype=torch.float32, quant_type="nf4",
        compress_statistics=True,
    )  # fmt: skip
    layer.weight = bnb.nn.Params4bit(
        w, requires_grad=False, quant_type="nf4", compress_statistics=True
    )
    return layer.to(device_type)


def four_bit_gradient_error(layer: Any) -> tuple[float, str]:
    """Relative error of a 4-bit layer's output and input gradient after an evaluation pass.

    Runs what training does to a frozen 4-bit layer under a LoRA adapter: a forward in eval
    mode without gradients (validation, generation), then a training forward and a backward to
    the input. Both are compared with the same computation on the layer's weights dequantised
    to fp32. Returns ``(max relative error, note)``; the note names a warning bitsandbytes or
    torch gave (e.g. a kernel without autograd) or a missing gradient.
    """
    import warnings

    import bitsandbytes.functional as F

    dev = layer.weight.device
    ref = F.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 5, ref.shape[1], generator=g).to(dev)
    up = torch.randn(3, 5, ref.shape[0], generator=g).to(dev)
    was = layer.training
    note = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer.eval()
        with torch.no_grad():
            layer(x)
        layer.train()
        xg = x.clone().requires_grad_(True)
        y = layer(xg).float()
        (y * up).sum().backward()
    layer.train(was)
    autograd = [w for w in caught if "autograd" in str(w.message)]
    if autograd:
        note = f"; {str(autograd[0].message).splitlines()[0][:120]}"
    want_y = xg.detach() @ ref.t()
    want_grad = up @ ref

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm().clamp(min=1e-12))

    if xg.grad is None:
        return float("inf"), note or "; no gradient reached the input"
    return max(rel(y.detach(), want_y), rel(xg.grad, want_grad)), note


def keep_4bit_trainable(model: Any) -> Any:
    """Keep every bitsandbytes 4-bit layer of ``model`` in the layout gradients flow through.

    On CPUs with AVX512-BF16, bitsandbytes repacks a 4-bit layer's weights for a fused
    inference kernel the first time it runs in eval mode without gradients, and that kernel has
    no backward. A model that is trained after such a pass would get silently wrong gradients;
    this turns the repacking off (inference stays exact, only slower). Returns ``model``.
    """
    import bitsandbytes as bnb

    for m in model.modules() if hasattr(model, "modules") else ():
        if isinstance(m, bnb.nn.Linear4bit) and hasattr(m, "support_avx512bf16_for_cpu"):
            m.support_avx512bf16_for_cpu = False
    return model


def _pretrained_kwargs(model: ModelConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {"trust_remote_code": model.trust_remote_code}
    if model.revision:
        kw["revision"] = model.revision
    if model.gguf_file:
        kw["gguf_file"] = model.gguf_file
    return kw


def load_tokenizer(model: ModelConfig, padding_side: str = "right") -> Any:
    """The student's tokenizer; a missing pad token is set to the EOS token."""
    from transformers import AutoTokenizer

    path = resolve_model_path(model)
    tok = AutoTokenizer.from_pretrained(path, **_pretrained_kwargs(model))
    if tok.pad_token_id is None:
        if tok.eos_token_id is None:
            raise ConfigError(f"model {path}: the tokenizer has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    tok.padding_side = padding_side
    return tok


def load_base_model(
    model: ModelConfig,
    quant: QuantConfig,
    device: torch.device,
    *,
    full_precision: bool = False,
    training: bool = False,
) -> tuple[Any, bool]:
    """Load the base model; returns ``(model, loaded_in_4bit)``.

    Args:
        model: Where the weights are.
        quant: 4-bit settings (``full_precision=True`` ignores them).
        device: Target device.
        full_precision: Never quantize (used for merging and for fast CPU evaluation).
        training: The model will be trained (LoRA): 4-bit needs a correct backward here
            (:func:`four_bit_support` with ``training=True``), and 4-bit layers are kept in
            their trainable layout (:func:`keep_4bit_trainable`).

    Raises:
        ConfigError: ``load_in_4bit: true`` where 4-bit (training) is unavailable.
    """
    from transformers import AutoModelForCausalLM

    path = resolve_model_path(model)
    kw = _pretrained_kwargs(model)
    if model.attn_implementation:
        kw["attn_implementation"] = model.attn_implementation
    want = False if full_precision else quant.load_in_4bit
    use_4bit = False
    if want:
        ok, why = four_bit_support(device.type, training=training)
        if ok:
            use_4bit = True
        elif want is True:
            what = "4-bit training" if training else "4-bit"
            raise ConfigError(
                f"quantization.load_in_4bit is true but {what} is unavailable on {device.type}: "
                f"{why}; use load_in_4bit: auto (full-precision LoRA here) or false"
            )
        else:
            log.warning(
                "4-bit NF4 unavailable here (%s): loading full precision, LoRA without quantization",
                why,
            )
    if use_4bit:
        from transformers import BitsAndBytesConfig

        compute = resolve_dtype(quant.compute_dtype, device)
        bnb = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=quant.quant_type,
            bnb_4bit_use_double_quant=quant.double_quant,
            bnb_4bit_compute_dtype=compute,
        )
        dev_map = {"": device.index if device.type == "cuda" else device.type}
        m = AutoModelForCausalLM.from_pretrained(
            path, quantization_config=bnb, device_map=dev_map, dtype=compute, **kw
        )
        if training:
            keep_4bit_trainable(m)
        log.info(
            "loaded %s in 4-bit %s (double quant %s, compute %s) on %s",
            path,
            quant.quant_type,
            quant.double_quant,
            compute,
            device,
        )
    else:
        dtype = resolve_dtype(model.dtype, device)
        m = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **kw).to(device)
        log.info("loaded %s in full precision (%s) on %s", path, dtype, device)
    return m, use_4bit


def materialize(model: ModelConfig, out_dir: str | os.PathLike) -> ModelConfig:
    """Save the base model and tokenizer once as a plain safetensors directory.

    A GGUF file is dequantized on every load; materializing it once makes later loads fast and
    lets the base be quantized to 4-bit. Skipped when ``out_dir`` is already complete.

    Returns:
        A :class:`ModelConfig` pointing at ``out_dir``.
    """
    out = Path(out_dir)
    marker = out / "materialized.json"
    if not marker.is_file():
        tok = load_tokenizer(model)
        m, _ = load_base_model(
            model, QuantConfig(load_in_4bit=False), torch.device("cpu"), full_precision=True
        )
        out.mkdir(parents=True, exist_ok=True)
        if model.gguf_file or getattr(m, "hf_quantizer", None) is not None:
            m = _plain_copy(m)  # GGUF-loaded models refuse save_pretrained; weights are dequantized
        m.save_pretrained(str(out))
        tok.save_pretrained(str(out))
        source = {
            "name_or_path": resolve_model_path(model),
            "gguf_file": model.gguf_file,
            "package": model.package,
        }
        marker.write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        log.info("materialized %s into %s", source, out)
    return ModelConfig(
        name_or_path=str(out),
        dtype=model.dtype,
        chat_template=model.chat_template,
        trust_remote_code=model.trust_remote_code,
        attn_implementation=model.attn_implementation,
    )


def _plain_copy(m: Any) -> Any:
    """The same weights in a fresh, unquantized model of the same class (config without quantization)."""
    cfg = m.config.__class__.from_dict(
        {k: v for k, v in m.config.to_dict().items() if k != "quantization_config"}
    )
    fresh = m.__class__(cfg).to(next(m.parameters()).dtype)
    missing, unexpected = fresh.load_state_dict(m.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(
            f"materialize: weights do not match (missing {missing}, unexpected {unexpected})"
        )
    if missing:
        fresh.tie_weights()
    return fresh


def merge_adapter(
    model: ModelConfig,
    adapter_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    dtype: str = "auto",
) -> Path:
    """Merge a LoRA adapter into a full-precision copy of the base and save it with the tokenizer.

    The base is always loaded unquantized (fp32 on CPU, bf16/fp16 on CUDA, or ``dtype``):
    merging into 4-bit weights would round the adapter away.
    """
    from peft import PeftModel

    device = resolve_device("auto")
    base_cfg = ModelConfig(**{**model.__dict__, "dtype": dtype})
    base, _ = load_base_model(
        base_cfg, QuantConfig(load_in_4bit=False), device, full_precision=True
    )
    merged = PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(str(out))
    load_tokenizer(model).save_pretrained(str(out))
    log.info("merged adapter %s into a full-precision base -> %s", adapter_dir, out)
    return out
