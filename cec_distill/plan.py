"""``cec-distill plan``: will a training config fit a GPU, and what will the study cost? Offline.

From the student's config (a local folder with ``config.json``, a hub id in the local Hugging Face
cache, or the dimensions recorded here for the presets' models) it estimates, without loading
any weights:

* the GPU memory of training: 4-bit NF4 weights (with double-quantization constants; embeddings,
  ``lm_head``, norms and biases in fp32, as ``peft.prepare_model_for_kbit_training`` leaves
  them), the LoRA weights with their gradients and AdamW moments, the activations under
  gradient checkpointing at ``max_length`` x ``batch_size`` (one saved hidden state per layer,
  one layer recomputed at a time, eager attention's T x T scores where the architecture has no
  SDPA kernel), the logits tensor (vocabulary x tokens, fp32, with its copies in the loss), the
  semantic-loss encoder where the config uses it, and a CUDA context and allocator term;
* the GPU memory of generation (weights in the compute dtype, as ``cec-distill generate`` loads
  them, and the KV cache at batch x (prompt + ``max_new_tokens``));
* the training set's token count (tokenized exactly as training does when the tokenizer is
  available locally, else estimated from characters), the optimizer steps, and with a price the
  teacher-labelling cost of the instances' prompts.

:func:`training_memory` is the estimate itself; ``benchmarks/gpu_check.py`` compares it with
measured peaks (``docs/planning.md`` says how close it is).

Examples:
    >>> dims = ModelDims.from_config(KNOWN_CONFIGS["TinyLlama/TinyLlama-1.1B-Chat-v1.0"])
    >>> dims.layers, dims.hidden, dims.kv_heads, round(dims.n_params / 1e9, 2)
    (22, 2048, 4, 1.1)
    >>> est = training_memory(dims, batch_size=8, seq_len=2048, lora_r=16,
    ...                       targets=LORA_TARGETS["llama"])
    >>> 10 < est.total / GiB < 24
    True
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from cec_distill.config import LORA_TARGETS, ConfigError, TrainConfig, load_train_config
from cec_distill.config.loading import resolve_model_path

__all__ = [
    "GiB",
    "KNOWN_CONFIGS",
    "ModelDims",
    "MemoryEstimate",
    "find_model_config",
    "training_memory",
    "generation_memory",
    "fits",
    "make_plan",
    "format_plan",
    "plan_command",
    "CUDA_CONTEXT",
    "ALLOCATOR_SLACK",
]

GiB = 1024**3

#: Memory the CUDA context, cuBLAS workspaces and kernels take outside torch's allocator.
CUDA_CONTEXT = int(0.75 * GiB)
#: Fraction added to the allocated peak for the caching allocator's fragmentation.
ALLOCATOR_SLACK = 0.10

#: Characters per token when no tokenizer is at hand (English text, BPE vocabularies).
CHARS_PER_TOKEN = 4.0
#: Tokens a chat request adds per message (role markers) and per request (the reply's primer).
CHAT_TOKENS_PER_MESSAGE, CHAT_TOKENS_PER_REQUEST = 4, 3

#: The ``config.json`` keys the estimate reads, recorded for the presets' models (from their hub
#: configs) so that ``plan`` works before anything is downloaded.
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    "TinyLlama/TinyLlama-1.1B-Chat-v1.0": {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 5632,
        "num_hidden_layers": 22,
        "num_attention_heads": 32,
        "num_key_value_heads": 4,
        "vocab_size": 32000,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
        "rms_norm_eps": 1e-05,
    },
    "microsoft/phi-2": {
        "model_type": "phi",
        "hidden_size": 2560,
        "intermediate_size": 10240,
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 51200,
        "max_position_embeddings": 2048,
        "tie_word_embeddings": False,
        "hidden_act": "gelu_new",
        "partial_rotary_factor": 0.4,
        "resid_pdrop": 0.1,
        "layer_norm_eps": 1e-05,
    },
    "google/gemma-2b": {
        "model_type": "gemma",
        "hidden_size": 2048,
        "intermediate_size": 16384,
        "num_hidden_layers": 18,
        "num_attention_heads": 8,
        "num_key_value_heads": 1,
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
        "hidden_act": "gelu_pytorch_tanh",
        "rms_norm_eps": 1e-06,
    },
    "google/gemma-2-2b": {
        "model_type": "gemma2",
        "hidden_size": 2304,
        "intermediate_size": 9216,
        "num_hidden_layers": 26,
        "num_attention_heads": 8,
        "num_key_value_heads": 4,
        "head_dim": 256,
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
        "tie_word_embeddings": True,
        "hidden_activation": "gelu_pytorch_tanh",
        "sliding_window": 4096,
        "final_logit_softcapping": 30.0,
        "attn_logit_softcapping": 50.0,
        "query_pre_attn_scalar": 256,
        "rms_norm_eps": 1e-06,
    },
}
KNOWN_CONFIGS["google/gemma-2b-it"] = KNOWN_CONFIGS["google/gemma-2b"]
KNOWN_CONFIGS["google/gemma-2-2b-it"] = KNOWN_CONFIGS["google/gemma-2-2b"]

_LLAMA_LIKE = ("llama", "mistral", "qwen2", "gemma", "gemma2")
#: Architectures without an SDPA kernel in transformers (softcapped attention): eager attention
#: materialises the T x T scores of every head.
_EAGER = ("gemma2",)
#: The default semantic encoder (all-MiniLM-L6-v2): parameters and embedding width.
_ENCODER_PARAMS, _ENCODER_DIM = 22_713_216, 384
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


# --------------------------------------------------------------------------------------------
# the model's shape
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelDims:
    """The shape of a decoder, as far as memory is concerned.

    Attributes:
        model_type: ``config.model_type`` (``llama``, ``mistral``, ``qwen2``, ``gemma``,
            ``gemma2``, ``phi``).
        hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, max_positions: From the
            config.
        tied: Input and output embeddings share one matrix.
        source: Where the config came from (a path, ``HF cache``, ``recorded``).
        resid_dropout: Phi's residual dropout (its masks are kept for the backward pass).
        sliding_window: Gemma 2's local-attention window (its KV cache stops growing there).
        softcap: Final logit soft-capping (extra vocabulary-sized tensors in the loss).
    """

    model_type: str
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_positions: int
    tied: bool
    source: str = "config"
    resid_dropout: float = 0.0
    sliding_window: int | None = None
    softcap: bool = False

    @classmethod
    def from_config(cls, cfg: dict[str, Any], source: str = "config") -> ModelDims:
        """Read the dimensions from a ``config.json`` mapping; ``ConfigError`` when incomplete."""
        mt = cfg.get("model_type")
        if mt not in (*_LLAMA_LIKE, "phi"):
            raise ConfigError(
                f"model config ({source}): plan knows the llama, mistral, qwen2, gemma, gemma2 "
                f"and phi architectures, not model_type {mt!r}"
            )
        need = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")
        missing = [k for k in (*need, "vocab_size") if not cfg.get(k)]
        if missing:
            raise ConfigError(f"model config ({source}): missing {', '.join(missing)}")
        heads = int(cfg["num_attention_heads"])
        hidden = int(cfg["hidden_size"])
        tied_default = mt in ("gemma", "gemma2")
        return cls(
            model_type=mt,
            hidden=hidden,
            intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]),
            heads=heads,
            kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads),
            vocab=int(cfg["vocab_size"]),
            max_positions=int(cfg.get("max_position_embeddings") or 2048),
            tied=bool(cfg.get("tie_word_embeddings", tied_default)),
            source=source,
            resid_dropout=float(cfg.get("resid_pdrop") or 0.0) if mt == "phi" else 0.0,
            sliding_window=cfg.get("sliding_window") if mt == "gemma2" else None,
            softcap=bool(cfg.get("final_logit_softcapping")),
        )

    def linears(self) -> dict[str, tuple[int, int]]:
        """Each linear layer of one decoder layer: name -> (in features, out features)."""
        h, i = self.hidden, self.intermediate
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.model_type == "phi":
            return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "dense": (q, h),
                    "fc1": (h, i), "fc2": (i, h)}  # fmt: skip
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}  # fmt: skip

    @property
    def norms_per_layer(self) -> int:
        return {"gemma2": 4, "phi": 1}.get(self.model_type, 2)

    @property
    def biases(self) -> bool:
        return self.model_type == "phi"

    @property
    def linear_params(self) -> int:
        """Parameters of the decoder layers' linear weights (what 4-bit quantizes)."""
        return self.layers * sum(a * b for a, b in self.linears().values())

    @property
    def other_params(self) -> int:
        """Embeddings, ``lm_head`` (unless tied), norms and biases: kept unquantized."""
        h, v = self.hidden, self.vocab
        norm = h * (2 if self.model_type == "phi" else 1)  # LayerNorm has a bias
        n = v * h + (0 if self.tied else v * h + (v if self.biases else 0))
        n += self.layers * self.norms_per_layer * norm + norm
        if self.biases:
            n += self.layers * sum(o for _, o in self.linears().values())
        return n

    @property
    def n_params(self) -> int:
        return self.linear_params + self.other_params

    def lora_params(self, r: int, targets: list[str]) -> int:
        """Parameters of a rank-``r`` adapter on ``targets`` (every name must be a linear)."""
        lin = self.linears()
        unknown = [t for t in targets if t not in lin]
        if unknown:
            raise ConfigError(
                f"lora.target_modules: {', '.join(map(repr, unknown))} match no linear layer of "
                f"a {self.model_type} model (its linear layers: {', '.join(lin)})"
            )
        return self.layers * sum(r * (lin[t][0] + lin[t][1]) for t in targets)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"model config {path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"model config {path}: expected a JSON object")
    if "text_config" in data and "hidden_size" not in data:
        data = data["text_config"]
    return data


def find_model_config(model: Any, override: str | os.PathLike | None = None) -> ModelDims:
    """The dimensions of ``model`` (a :class:`~cec_distill.config.ModelConfig`), offline.

    Looks, in order, at ``override`` (a ``config.json`` or a folder holding one), the local
    folder ``model.package`` or ``model.name_or_path`` names, the hub id's ``config.json`` in the
    local Hugging Face cache, and the dimensions recorded in :data:`KNOWN_CONFIGS`.
    """
    if override is not None:
        p = Path(override)
        p = p / "config.json" if p.is_dir() else p
        if not p.is_file():
            raise ConfigError(f"--model-config: no such file {p}")
        return ModelDims.from_config(_read_json(p), str(p))
    path = resolve_model_path(model)
    local = Path(path) / "config.json"
    if local.is_file():
        return ModelDims.from_config(_read_json(local), str(local.parent))
    if not Path(path).exists() and not model.gguf_file:
        try:
            from huggingface_hub import try_to_load_from_cache

            hit = try_to_load_from_cache(path, "config.json", revision=model.revision)
        except Exception:  # not a valid repo id, no cache
            hit = None
        if isinstance(hit, str) and Path(hit).is_file():
            return ModelDims.from_config(_read_json(Path(hit)), f"{path} (HF cache)")
        if path in KNOWN_CONFIGS:
            return ModelDims.from_config(KNOWN_CONFIGS[path], f"{path} (recorded dimensions)")
    raise ConfigError(
        f"model {path}: no config.json found locally (folder, Hugging Face cache) and no "
        f"recorded dimensions (known: {', '.join(sorted(KNOWN_CONFIGS))}); pass "
        f"--model-config PATH"
    )


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------
@dataclass
class MemoryEstimate:
    """Bytes of each term of a peak; ``total`` is their sum (what torch's allocator holds)."""

    terms: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(sum(self.terms.values()))

    def on_gpu(self) -> int:
        """What the GPU must have: the total plus allocator slack plus the CUDA context."""
        return int(self.total * (1 + ALLOCATOR_SLACK)) + CUDA_CONTEXT


def _quant_bytes_per_param(double_quant: bool) -> float:
    """NF4: 4 bits per weight plus one absmax per block of 64 (fp32, or 8-bit with one fp32
    second-level constant per 256 blocks when double-quantized)."""
    return 0.5 + (1 / 64 + 4 / (64 * 256) if double_quant else 4 / 64)


def _layer_bytes(d: ModelDims, targets: set[str], r: int, dropout: float, rb: int, cb: int):
    """Per token: (bytes one decoder layer keeps for its backward, its backward's transients).

    ``rb`` is the residual stream's bytes per value (fp32 after kbit preparation, as the norms
    and embeddings are upcast), ``cb`` the compute dtype's.
    """
    h, i = d.hidden, d.intermediate
    q, kv = d.heads * d.head_dim, d.kv_heads * d.head_dim

    def linear(name: str, din: int, dout: int, xb: int) -> int:
        b = cb * din if xb != cb else 0  # the input cast to the compute dtype, kept by the matmul
        if name in targets:
            if dropout:
                b += 4 * din + din  # the adapter's fp32 dropout output and its mask
            elif xb != 4:
                b += 4 * din  # the adapter's fp32 copy of the input
            b += 4 * r
        return b + cb * dout  # the output

    def norm(xb: int) -> int:  # RMSNorm in fp32: a copy if needed, the normalised, the output
        return (4 * h if xb != 4 else 0) + 4 * h + rb * h + (cb * h if xb != rb else 0)

    lin = d.linears()
    if d.model_type == "phi":
        b = rb * h  # LayerNorm output
        b += sum(linear(n, *lin[n], rb) for n in ("q_proj", "k_proj", "v_proj"))
        b += cb * (q + kv) * 1.4 + 2 * cb * q  # partial rotary, attention output and its copy
        b += linear("dense", *lin["dense"], cb)
        b += linear("fc1", *lin["fc1"], rb) + 6 * cb * i  # gelu_new: six elementwise tensors
        b += linear("fc2", *lin["fc2"], cb)
        if d.resid_dropout:
            b += 2 * (cb * h + h)  # both residual dropouts: outputs and masks
        b += 2 * rb * h  # the residual sums
    else:
        n_norms = d.norms_per_layer
        b = norm(rb) * 2 + (norm(cb) * 2 if n_norms == 4 else 0)
        b += sum(linear(n, *lin[n], rb) for n in ("q_proj", "k_proj", "v_proj"))
        b += cb * (q + kv)  # rotary q, k
        if d.kv_heads < d.heads and d.model_type in _EAGER:
            b += 2 * cb * q  # eager attention repeats k, v to every head (SDPA does not)
        b += 2 * cb * q + 4 * d.heads  # attention output, its contiguous copy, log-sum-exp
        b += linear("o_proj", *lin["o_proj"], cb)
        b += linear("gate_proj", *lin["gate_proj"], rb) + linear("up_proj", *lin["up_proj"], rb)
        b += 2 * cb * i  # the activation and the product
        b += linear("down_proj", *lin["down_proj"], cb)
        b += 2 * rb * h  # the residual sums
    transient = 2 * cb * i + 2 * 4 * h  # the gradients of the widest activations
    return int(b), int(transient)


def training_memory(
    dims: ModelDims,
    *,
    batch_size: int,
    seq_len: int,
    lora_r: int,
    targets: list[str],
    lora_dropout: float = 0.05,
    four_bit: bool = True,
    double_quant: bool = True,
    compute_dtype: str = "bfloat16",
    gradient_checkpointing: bool = True,
    semantic: bool = False,
    scorer: bool = False,
) -> MemoryEstimate:
    """The peak GPU memory of one training step (forward, backward, AdamW step), by term.

    Args:
        dims: The model's shape.
        batch_size, seq_len: One micro-batch (batches are padded to their longest example;
            ``seq_len = max_length`` is the worst case).
        lora_r, targets, lora_dropout: The adapter.
        four_bit: NF4 weights (``False``: the base in ``compute_dtype``, as without bitsandbytes).
        double_quant: Double quantization of the NF4 constants.
        compute_dtype: ``bfloat16`` (CUDA default), ``float16`` or ``float32`` (CPU).
        gradient_checkpointing: Keep one hidden state per layer and recompute the layer.
        semantic: The PST semantic loss (projection head; all hidden states returned).
        scorer: A CEC scorer is resident (semantic loss, or CEC during validation).
    """
    if compute_dtype not in _BYTES:
        raise ConfigError(
            f"compute dtype must be one of {', '.join(_BYTES)}, got {compute_dtype!r}"
        )
    cb = _BYTES[compute_dtype]
    rb = 4 if four_bit else cb  # kbit preparation upcasts embeddings and norms to fp32
    tokens = batch_size * seq_len
    h = dims.hidden
    t: dict[str, int] = {}
    if four_bit:
        t["weights (4-bit NF4)"] = int(dims.linear_params * _quant_bytes_per_param(double_quant))
        t["embeddings, lm_head, norms (fp32)"] = dims.other_params * 4
    else:
        t[f"weights ({compute_dtype})"] = dims.n_params * cb
    n_lora = dims.lora_params(lora_r, targets)
    t["LoRA weights + grads + AdamW"] = n_lora * 16
    per_layer, transient = _layer_bytes(dims, set(targets), lora_r, lora_dropout, rb, cb)
    if gradient_checkpointing:
        t["checkpointed hidden states"] = dims.layers * tokens * h * rb + tokens * h * (4 + rb)
        layer = tokens * (per_layer + transient)
    else:
        t["hidden states"] = tokens * h * (4 + rb)
        layer = tokens * (per_layer * dims.layers + transient)
    if dims.model_type in _EAGER:  # scores, soft-capping, fp32 softmax, and their gradients
        layer += batch_size * dims.heads * seq_len * seq_len * (4 + 2 * cb)
    # the logits (fp32 from the fp32 lm_head after kbit preparation), the loss's fp32 copy and
    # log-softmax, and the gradient; soft-capping adds its tanh and the capped copy
    logit_b = 4 if four_bit else cb
    logits = tokens * dims.vocab * (logit_b + 10 + (6 if dims.softcap else 0))
    # the logits and the loss's copies are freed before the last layer is recomputed
    t["logits and loss (vocab x tokens)"] = logits
    t["one layer recomputed (beyond the logits)"] = max(0, layer - logits)
    if semantic:
        t["projection head + hidden states"] = (h * _ENCODER_DIM) * 16 + tokens * h * rb
    if scorer or semantic:
        t["CEC encoder (all-MiniLM-L6-v2)"] = _ENCODER_PARAMS * 4
    return MemoryEstimate(t)


def generation_memory(
    dims: ModelDims,
    *,
    batch_size: int,
    prompt_len: int,
    max_new_tokens: int,
    lora_params: int = 0,
    dtype: str = "bfloat16",
    four_bit: bool = False,
    double_quant: bool = True,
) -> MemoryEstimate:
    """The peak GPU memory of ``generate``: weights, adapter, KV cache and the prefill."""
    cb = _BYTES[dtype]
    t: dict[str, int] = {}
    if four_bit:
        t["weights (4-bit NF4)"] = int(dims.linear_params * _quant_bytes_per_param(double_quant))
        t[f"embeddings, norms ({dtype})"] = dims.other_params * cb
    else:
        t[f"weights ({dtype})"] = dims.n_params * cb
    if lora_params:
        t["LoRA adapter (fp32)"] = lora_params * 4
    total = prompt_len + max_new_tokens
    per_tok = 2 * dims.kv_heads * dims.head_dim * cb
    if dims.sliding_window:  # half of Gemma 2's layers are local: their cache stops at the window
        local = dims.layers // 2
        kv = (
            per_tok
            * batch_size
            * ((dims.layers - local) * total + local * min(total, dims.sliding_window))
        )
    else:
        kv = per_tok * batch_size * dims.layers * total
    t["KV cache"] = int(kv)
    pre = batch_size * prompt_len * (2 * dims.intermediate + 6 * dims.hidden) * cb
    if dims.model_type in _EAGER:
        pre += batch_size * dims.heads * prompt_len * prompt_len * (4 + 2 * cb)
    t["prefill activations + last logits"] = int(pre + batch_size * dims.vocab * 8)
    return MemoryEstimate(t)


def fits(est: MemoryEstimate, gpu_bytes: int) -> bool:
    """Whether ``est`` (plus allocator slack and the CUDA context) fits ``gpu_bytes``."""
    return est.on_gpu() <= gpu_bytes


# --------------------------------------------------------------------------------------------
# the data: tokens, steps, teacher cost
# --------------------------------------------------------------------------------------------
def _local_tokenizer(model: Any) -> Any:
    """The student's tokenizer from local files only, or None."""
    try:
        from transformers import AutoTokenizer

        kw: dict[str, Any] = {"trust_remote_code": model.trust_remote_code}
        if model.revision:
            kw["revision"] = model.revision
        if model.gguf_file:
            kw["gguf_file"] = model.gguf_file
        tok = AutoTokenizer.from_pretrained(resolve_model_path(model), local_files_only=True, **kw)
    except Exception:  # not cached, not a folder, no tokenizer files
        return None
    if tok.pad_token_id is None and tok.eos_token_id is not None:
        tok.pad_token = tok.eos_token
    return tok


def _data_stats(cfg: TrainConfig, max_length: int, target_tokens: int = 128) -> dict[str, Any]:
    """Token counts of the training set, exact when the tokenizer is local."""
    from cec_distill.data import load_instances
    from cec_distill.formatting import prompt_text, target_pieces, use_chat_template
    from cec_distill.train.examples import build_examples, targets_for

    out: dict[str, Any] = {"train_file": cfg.train_file}
    if not Path(cfg.train_file).exists():
        out["note"] = f"train_file {cfg.train_file} does not exist yet: no token counts or steps"
        return out
    inst = load_instances(cfg.train_file)
    labels = cfg.labels_file if cfg.labels_file and Path(cfg.labels_file).exists() else None
    quiet = logging.getLogger("cec_distill.train")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the plan says itself what has no target
    try:
        targets = targets_for(inst, labels, cfg.reference_index, cfg.truncated_labels)
    finally:
        quiet.setLevel(level)
    if cfg.labels_file and labels is None:
        out["targets"] = (
            f"labels_file {cfg.labels_file} not written yet: the human explanation number "
            f"{cfg.reference_index}, where there is one, stands in for each target's length"
        )
    out["instances"] = len(inst)
    out["with_target"] = len(targets)
    missing = [x for x in inst if x.id not in targets]
    if missing:  # no label yet (Climate-FEVER has no human explanations): a stand-in length
        for x in missing:
            targets[x.id] = " ".join(["effect"] * target_tokens)
        out["stand_in"] = (
            f"{len(missing)} instances have no target yet: a {target_tokens}-word stand-in "
            f"(--target-tokens) takes its place"
        )
    tok = _local_tokenizer(cfg.model)
    if tok is not None:
        chat = use_chat_template(tok, cfg.model.chat_template)
        ex, _, dropped, truncated = build_examples(inst, targets, tok, cfg, chat, max_length)
        lengths = [len(e.input_ids) for e in ex]
        out.update(
            exact=True,
            examples=len(ex),
            dropped=dropped,
            truncated=truncated,
            tokens=sum(lengths),
            target_tokens=sum(len(e.input_ids) - e.n_prompt for e in ex),
            longest=max(lengths, default=0),
            longest_prompt=max((e.n_prompt for e in ex), default=0),
        )
    else:
        lens, plens = [], []
        for x in inst:
            if x.id not in targets:
                continue
            p = len(prompt_text(x, None, cfg.format, False))
            t = sum(len(s) for s, _ in target_pieces(x, targets[x.id], cfg.format))
            plens.append(math.ceil(p / CHARS_PER_TOKEN))
            lens.append(min(max_length, math.ceil((p + t) / CHARS_PER_TOKEN) + 1))
        out.update(
            exact=False,
            examples=len(lens),
            tokens=sum(lens),
            longest=max(lens, default=0),
            longest_prompt=max(plens, default=0),
            note=f"tokenizer of {resolve_model_path(cfg.model)} not available locally: token "
            f"counts are estimates from characters ({CHARS_PER_TOKEN:g} per token)",
        )
    n = out["examples"]
    micro = math.ceil(n / cfg.batch_size)
    per_epoch = math.ceil(micro / cfg.grad_accum)
    out["steps_per_epoch"] = per_epoch
    out["steps"] = cfg.max_steps or per_epoch * cfg.epochs
    out["tokens_trained"] = out["tokens"] * cfg.epochs if not cfg.max_steps else None
    return out


def _teacher_cost(
    cfg: TrainConfig,
    price: tuple[float, float],
    max_tokens: int,
    template: str | None,
    target_tokens: int = 128,
) -> dict[str, Any]:
    """Input and output tokens of labelling the training (and validation) instances, and USD."""
    from cec_distill.data import load_instances
    from cec_distill.prompts import load_template

    files = [f for f in (cfg.train_file, cfg.validation_file) if f and Path(f).exists()]
    if not files:
        return {"note": "no instances to price (train_file does not exist yet)"}
    inst = [x for f in files for x in load_instances(f)]
    enc, how = None, f"estimated from characters ({CHARS_PER_TOKEN:g} per token)"
    try:  # GPT-4's tokenizer, where tiktoken has it cached (it is never downloaded here)
        import tiktoken

        enc = tiktoken.get_encoding("cl100k_base") if _tiktoken_cached() else None
        if enc is not None:
            how = "cl100k_base (tiktoken)"
    except Exception:
        enc = None

    def count(text: str) -> int:
        return len(enc.encode(text)) if enc is not None else math.ceil(len(text) / CHARS_PER_TOKEN)

    tmpl = load_template(template) if template else None
    n_in = n_out = 0
    for x in inst:
        msgs = (tmpl or load_template(None, x.dataset)).render(x)
        n_in += sum(count(m["content"]) + CHAT_TOKENS_PER_MESSAGE for m in msgs)
        n_in += CHAT_TOKENS_PER_REQUEST
        ref = x.explanations[0] if x.explanations else ""
        n_out += min(max_tokens, count(ref) if ref else target_tokens)
    p_in, p_out = price
    return {
        "instances": len(inst),
        "files": files,
        "tokenizer": how,
        "input_tokens": n_in,
        "output_tokens_expected": n_out,
        "output_tokens_max": len(inst) * max_tokens,
        "usd_expected": (n_in * p_in + n_out * p_out) / 1e6,
        "usd_max": (n_in * p_in + len(inst) * max_tokens * p_out) / 1e6,
        "price_per_1m": {"input": p_in, "output": p_out},
        "note": "output length expected from the human explanations, or "
        f"--target-tokens {target_tokens} where there are none (each capped at --max-tokens "
        f"{max_tokens}); at most: every answer reaches the cap",
    }


def _tiktoken_cached() -> bool:
    """Whether tiktoken's cl100k_base file is in its cache (so nothing would be downloaded)."""
    import hashlib
    import tempfile

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    key = hashlib.sha1(url.encode()).hexdigest()
    dirs = [os.environ.get("TIKTOKEN_CACHE_DIR"), os.environ.get("DATA_GYM_CACHE_DIR"),
            os.path.join(tempfile.gettempdir(), "data-gym-cache")]  # fmt: skip
    return any(d and Path(d, key).is_file() for d in dirs)


# --------------------------------------------------------------------------------------------
# the plan
# --------------------------------------------------------------------------------------------
def _train_estimate(cfg: TrainConfig, dims: ModelDims, batch: int, seq: int, dtype: str):
    targets = cfg.lora.target_modules or LORA_TARGETS.get(dims.model_type) or []
    return training_memory(
        dims,
        batch_size=batch,
        seq_len=seq,
        lora_r=cfg.lora.r,
        targets=targets,
        lora_dropout=cfg.lora.dropout,
        four_bit=cfg.quantization.load_in_4bit is not False,
        double_quant=cfg.quantization.double_quant,
        compute_dtype=dtype,
        gradient_checkpointing=cfg.gradient_checkpointing,
        semantic=cfg.rationale_loss != "token",
        scorer=bool(cfg.validation_file and cfg.eval_generate_n),
    )


def _suggestions(
    cfg: TrainConfig, dims: ModelDims, seq: int, dtype: str, gpu: int, longest: int | None
) -> list[str]:
    """Computed changes that make training fit: a smaller micro-batch with gradient
    accumulation keeping the effective batch, or a shorter max_length."""
    out = []
    b = cfg.batch_size
    for nb in sorted({d for d in range(1, b) if b % d == 0}, reverse=True):
        if fits(_train_estimate(cfg, dims, nb, seq, dtype), gpu):
            acc = cfg.grad_accum * (b // nb)
            out.append(
                f"batch_size {b} -> {nb} with grad_accum {cfg.grad_accum} -> {acc} (the same "
                f"{b * cfg.grad_accum} examples per optimizer step)"
            )
            break
    if longest and longest < seq and fits(_train_estimate(cfg, dims, b, longest, dtype), gpu):
        out.append(f"max_length {seq} -> {longest} (the longest training example: nothing is cut)")
    else:
        lo, hi = 0, seq // 64  # the largest multiple of 64 below seq that fits (k * 64)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(_train_estimate(cfg, dims, b, mid * 64, dtype), gpu):
                lo = mid
            else:
                hi = mid - 1
        if lo and lo * 64 < seq:
            cut = f"; {longest} is the longest training example" if longest else ""
            out.append(f"max_length {seq} -> {lo * 64}{cut}")
    if not out and b > 1:  # both together: one example per forward pass, and shorter
        m = seq // 2
        while m >= 64 and not fits(_train_estimate(cfg, dims, 1, m, dtype), gpu):
            m //= 2
        if m >= 64:
            out.append(
                f"batch_size {b} -> 1 with grad_accum {cfg.grad_accum} -> "
                f"{cfg.grad_accum * b}, and max_length {seq} -> {m}"
            )
    return out


def make_plan(
    config: str | os.PathLike | dict,
    gpu_memory_gib: float,
    *,
    price: tuple[float, float] | None = None,
    compute_dtype: str = "bfloat16",
    gen_batch_size: int = 8,
    max_new_tokens: int = 128,
    teacher_max_tokens: int = 512,
    template: str | None = None,
    model_config: str | os.PathLike | None = None,
    overrides: dict | None = None,
    target_tokens: int = 128,
) -> dict[str, Any]:
    """Everything ``cec-distill plan`` prints, as a mapping (see the module docstring)."""
    if not (isinstance(gpu_memory_gib, (int, float)) and gpu_memory_gib > 0):
        raise ConfigError(f"--gpu-memory must be a number of GiB > 0, got {gpu_memory_gib!r}")
    cfg = load_train_config(config, overrides)
    dims = find_model_config(cfg.model, model_config)
    seq = cfg.max_length or dims.max_positions
    gpu = int(gpu_memory_gib * GiB)
    targets = cfg.lora.target_modules or LORA_TARGETS.get(dims.model_type) or []
    data = _data_stats(cfg, seq, target_tokens)
    train_est = _train_estimate(cfg, dims, cfg.batch_size, seq, compute_dtype)
    prompt = data.get("longest_prompt") or max(1, seq - max_new_tokens)
    gen_est = generation_memory(
        dims,
        batch_size=gen_batch_size,
        prompt_len=min(prompt, dims.max_positions),
        max_new_tokens=max_new_tokens,
        lora_params=dims.lora_params(cfg.lora.r, targets),
        dtype=compute_dtype,
    )
    longest = data.get("longest") if data.get("exact") else None
    result: dict[str, Any] = {
        "config": str(config) if not isinstance(config, dict) else "<mapping>",
        "model": resolve_model_path(cfg.model),
        "dims": asdict(dims),
        "params": dims.n_params,
        "lora_params": dims.lora_params(cfg.lora.r, targets),
        "gpu_memory_gib": gpu_memory_gib,
        "compute_dtype": compute_dtype,
        "settings": {
            "batch_size": cfg.batch_size,
            "grad_accum": cfg.grad_accum,
            "max_length": seq,
            "epochs": cfg.epochs,
            "four_bit": cfg.quantization.load_in_4bit is not False,
            "gradient_checkpointing": cfg.gradient_checkpointing,
            "rationale_loss": cfg.rationale_loss,
        },
        "training": {**train_est.terms, "total": train_est.total, "on_gpu": train_est.on_gpu()},
        "generation": {
            **gen_est.terms,
            "total": gen_est.total,
            "on_gpu": gen_est.on_gpu(),
            "batch_size": gen_batch_size,
            "prompt_tokens": prompt,
            "prompt_source": "the longest training prompt"
            if data.get("longest_prompt")
            else "max_length - max_new_tokens (no training data to measure)",
            "max_new_tokens": max_new_tokens,
        },
        "data": data,
        "fits_training": fits(train_est, gpu),
        "fits_generation": fits(gen_est, gpu),
    }
    if longest and longest < seq:
        at = _train_estimate(cfg, dims, cfg.batch_size, longest, compute_dtype)
        result["training_at_longest"] = {"seq_len": longest, "on_gpu": at.on_gpu()}
    result["suggestions"] = (
        _suggestions(cfg, dims, seq, compute_dtype, gpu, longest)
        if not result["fits_training"]
        else []
    )
    if not result["fits_generation"]:
        for nb in range(gen_batch_size - 1, 0, -1):
            e = generation_memory(
                dims, batch_size=nb, prompt_len=prompt, max_new_tokens=max_new_tokens,
                lora_params=result["lora_params"], dtype=compute_dtype,
            )  # fmt: skip
            if fits(e, gpu):
                result["suggestions"].append(f"generate batch_size {gen_batch_size} -> {nb}")
                break
    if price is not None:
        result["teacher"] = _teacher_cost(cfg, price, teacher_max_tokens, template, target_tokens)
    return result


def _gib(n: float) -> str:
    return f"{n / GiB:,.2f} GiB"


def format_plan(p: dict[str, Any]) -> str:
    """The plan as plain-text tables."""
    d, s = p["dims"], p["settings"]
    lines = [
        f"plan: {p['model']} ({d['model_type']}, {p['params'] / 1e9:.2f}B parameters; "
        f"dimensions from {d['source']})",
        f"  hidden {d['hidden']}, layers {d['layers']}, heads {d['heads']}/{d['kv_heads']} kv, "
        f"intermediate {d['intermediate']}, vocab {d['vocab']}, max positions "
        f"{d['max_positions']}, tied embeddings {'yes' if d['tied'] else 'no'}",
        f"  settings: batch_size {s['batch_size']} x grad_accum {s['grad_accum']}, max_length "
        f"{s['max_length']}, {'4-bit NF4' if s['four_bit'] else 'full precision'}, compute "
        f"{p['compute_dtype']}, gradient checkpointing {'on' if s['gradient_checkpointing'] else 'off'}, "
        f"LoRA {p['lora_params'] / 1e6:.1f}M parameters",
        "",
        f"training memory at batch {s['batch_size']} x {s['max_length']} tokens:",
    ]
    width = 40
    for k, v in p["training"].items():
        if k not in ("total", "on_gpu"):
            lines.append(f"  {k:<{width}} {_gib(v):>14}")
    gpu = p["gpu_memory_gib"]
    tr = p["training"]
    lines.append(f"  {'allocated peak':<{width}} {_gib(tr['total']):>14}")
    lines.append(
        f"  {'+ CUDA context, allocator slack':<{width}} {_gib(tr['on_gpu']):>14}   "
        f"{'fits' if p['fits_training'] else 'does NOT fit'} {gpu:g} GiB"
    )
    if "training_at_longest" in p:
        a = p["training_at_longest"]
        lines.append(
            f"  (at the longest training example, {a['seq_len']} tokens: {_gib(a['on_gpu'])})"
        )
    g = p["generation"]
    lines += [
        "",
        f"generation memory at batch {g['batch_size']} x ({g['prompt_tokens']} prompt + "
        f"{g['max_new_tokens']} new) tokens; prompt: {g['prompt_source']}:",
    ]
    for k, v in g.items():
        if k not in (
            "total",
            "on_gpu",
            "batch_size",
            "prompt_tokens",
            "max_new_tokens",
            "prompt_source",
        ):
            lines.append(f"  {k:<{width}} {_gib(v):>14}")
    lines.append(
        f"  {'+ CUDA context, allocator slack':<{width}} {_gib(g['on_gpu']):>14}   "
        f"{'fits' if p['fits_generation'] else 'does NOT fit'} {gpu:g} GiB"
    )
    data = p["data"]
    lines += ["", "training set:"]
    if "examples" in data:
        how = "exact (the model's tokenizer)" if data.get("exact") else "estimated"
        lines.append(
            f"  {data['examples']} examples, {data['tokens']:,} tokens ({how}), longest "
            f"{data['longest']}; {data['steps_per_epoch']} optimizer steps/epoch, "
            f"{data['steps']} steps in all"
        )
        if data.get("dropped") or data.get("truncated"):
            lines.append(
                f"  {data.get('dropped', 0)} too long (dropped), {data.get('truncated', 0)} cut"
            )
    for key in ("targets", "stand_in", "note"):
        if key in data:
            lines.append(f"  {data[key]}")
    if "teacher" in p:
        t = p["teacher"]
        lines += ["", "teacher labelling:"]
        if "input_tokens" in t:
            pr = t["price_per_1m"]
            lines.append(
                f"  {t['instances']} prompts, {t['input_tokens']:,} input tokens "
                f"({t['tokenizer']}), about {t['output_tokens_expected']:,} output tokens "
                f"(at most {t['output_tokens_max']:,})"
            )
            lines.append(
                f"  at ${pr['input']:g} / ${pr['output']:g} per 1M tokens: about "
                f"${t['usd_expected']:,.2f} (at most ${t['usd_max']:,.2f})"
            )
        lines.append(f"  {t['note']}")
    if p["suggestions"]:
        lines += ["", f"to fit {gpu:g} GiB, change one of:"]
        lines += [f"  {x}" for x in p["suggestions"]]
    return "\n".join(lines)


def _parse_price(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        vals = [float(x) for x in parts]
    except ValueError:
        vals = []
    if len(vals) not in (1, 2) or any(not (v >= 0 and math.isfinite(v)) for v in vals):
        raise ConfigError(
            f"--price must be IN,OUT (USD per 1M input and output tokens, e.g. 30,60) or one "
            f"number for both, got {text!r}"
        )
    return (vals[0], vals[-1])


def plan_command(
    config: Annotated[Path, typer.Argument(help="Training YAML (the one `train` reads).")],
    gpu_memory: Annotated[
        float, typer.Option("--gpu-memory", help="GPU memory in GiB (e.g. 24, 40, 80).")
    ],
    price: Annotated[
        str | None,
        typer.Option(
            "--price",
            help="Teacher price IN,OUT in USD per 1M input/output tokens (e.g. 30,60); one "
            "number sets both.",
        ),
    ] = None,
    max_tokens: Annotated[
        int, typer.Option("--max-tokens", min=1, help="The teacher's completion-token limit.")
    ] = 512,
    template: Annotated[
        str | None, typer.Option("--template", help="The teacher's prompt template.")
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="Compute dtype: bfloat16, float16 or float32.")
    ] = "bfloat16",
    gen_batch_size: Annotated[
        int, typer.Option("--gen-batch-size", min=1, help="Prompts per generate call.")
    ] = 8,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Longest generation.")
    ] = 128,
    model_config: Annotated[
        Path | None,
        typer.Option("--model-config", help="The model's config.json (or its folder)."),
    ] = None,
    target_tokens: Annotated[
        int,
        typer.Option(
            "--target-tokens", min=1, help="Stand-in target length of instances without one yet."
        ),
    ] = 128,
    as_json: Annotated[bool, typer.Option("--json", help="Print the plan as JSON.")] = False,
) -> None:
    """Estimate GPU memory, tokens, steps and teacher cost of a training config; offline.

    Exit status 2 (with the settings to change) when training or generation will not fit.
    """
    if dtype not in _BYTES:
        raise ConfigError(f"--dtype must be one of {', '.join(_BYTES)}, got {dtype!r}")
    p = make_plan(
        config,
        gpu_memory,
        price=_parse_price(price),
        compute_dtype=dtype,
        gen_batch_size=gen_batch_size,
        max_new_tokens=max_new_tokens,
        teacher_max_tokens=max_tokens,
        template=template,
        model_config=model_config,
        target_tokens=target_tokens,
    )
    typer.echo(json.dumps(p, indent=2) if as_json else format_plan(p))
    if not (p["fits_training"] and p["fits_generation"]):
        what = "training" if not p["fits_training"] else "generation"
        fix = "; ".join(p["suggestions"]) or "a larger GPU"
        typer.echo(
            f"cec-distill: error: {what} will not fit {gpu_memory:g} GiB "
            f"(needs {_gib(p[what]['on_gpu'])}); change: {fix}",
            err=True,
        )
        raise typer.Exit(2)
