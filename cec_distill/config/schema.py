"""The study's training and generation settings: the dataclasses and their value checks.

Built from YAML by :mod:`cec_distill.config.loading`; every field is documented on its class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cec._checks import check_positive_int
from cec_distill.config.mapping import ConfigError

__all__ = [
    "ModelConfig",
    "QuantConfig",
    "LoraSettings",
    "FormatConfig",
    "TrainConfig",
    "GenerateConfig",
    "LORA_TARGETS",
    "ORDERS",
    "RATIONALE_LOSSES",
    "SCHEDULERS",
    "DEFAULT_INSTRUCTION",
]

#: LoRA target modules per model family (``config.model_type``): every attention and MLP
#: projection, the QLoRA paper's recommendation.
LORA_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
}

#: ``model.attn_implementation`` values (transformers' names).
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flash_attention_2", "flash_attention_3", "flex_attention")

ORDERS = ("rationale_first", "answer_first")
RATIONALE_LOSSES = ("token", "semantic", "both")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
DEFAULT_INSTRUCTION = (
    "Explain how the evidence supports or contradicts the claim, describing the cause-and-effect "
    "relationships that link them."
)


# --------------------------------------------------------------------------------------------
# the settings
# --------------------------------------------------------------------------------------------
@dataclass
class ModelConfig:
    """Where the student's base weights come from.

    Attributes:
        name_or_path: Hugging Face model id (cached locally, or downloaded where allowed) or a
            local directory.
        gguf_file: A GGUF file inside ``name_or_path`` (dequantized by transformers on load).
        package: Name of an installed Python package whose folder holds the weights (found with
            ``importlib.util.find_spec`` without importing it); replaces ``name_or_path``.
        dtype: Torch dtype of a full-precision load: ``auto`` (bf16 on CUDA where supported,
            fp16 on other CUDA, fp32 on CPU), ``float32``, ``bfloat16``, ``float16``.
        chat_template: ``auto`` uses the tokenizer's chat template when it has one; ``none``
            always uses the plain layout.
        trust_remote_code: Passed to ``from_pretrained``.
        revision: Hub revision.
        attn_implementation: The attention kernel (``eager``, ``sdpa``, ``flash_attention_2``,
            ...), passed to ``from_pretrained``; ``None`` lets transformers choose (sdpa where
            the architecture supports it, eager otherwise, e.g. Gemma 2, whose soft-capped
            attention sdpa cannot compute).
    """

    name_or_path: str = ""
    gguf_file: str | None = None
    package: str | None = None
    dtype: str = "auto"
    chat_template: str = "auto"
    trust_remote_code: bool = False
    revision: str | None = None
    attn_implementation: str | None = None


@dataclass
class QuantConfig:
    """4-bit QLoRA loading (bitsandbytes).

    Attributes:
        load_in_4bit: ``auto`` loads 4-bit where bitsandbytes can (CUDA; CPU with a
            CPU-capable bitsandbytes) and falls back to full precision with a log line where
            it cannot; ``true`` requires it; ``false`` never quantizes.
        quant_type: ``nf4`` (QLoRA) or ``fp4``.
        double_quant: Quantize the quantization constants too.
        compute_dtype: ``auto`` (bf16 on CUDA with bf16 support, fp16 on other CUDA, fp32 on
            CPU), or a dtype name.
    """

    load_in_4bit: bool | str = "auto"
    quant_type: str = "nf4"
    double_quant: bool = True
    compute_dtype: str = "auto"


@dataclass
class LoraSettings:
    """LoRA adapter settings (peft).

    Attributes:
        r: Rank.
        alpha: Scaling numerator (``lora_alpha``).
        dropout: Dropout on the adapter input.
        target_modules: Module names; ``None`` picks :data:`LORA_TARGETS` for the model family.
        bias: ``none``, ``all`` or ``lora_only``.
    """

    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None
    bias: str = "none"


@dataclass
class FormatConfig:
    """How an instance becomes a prompt and a target (see :mod:`cec_distill.formatting`).

    Attributes:
        order: ``rationale_first`` (the paper: the explanation, then the answer if the student
            has to give one) or ``answer_first`` (Post-Semantic-Thinking: ``Answer: LABEL``
            first, then ``Explanation: ...``).
        label_in_prompt: Give the gold label in the prompt (the paper's ``[Claim; Evidence;
            Label]``). ``None`` means yes for ``rationale_first`` and no for ``answer_first``
            (where the answer is the label the student predicts).
        instruction: The request after the instance.
        system: A system message for chat templates (``None``: the template's default).
    """

    order: str = "rationale_first"
    label_in_prompt: bool | None = None
    instruction: str = DEFAULT_INSTRUCTION
    system: str | None = None

    def __post_init__(self) -> None:
        if self.order not in ORDERS:
            raise ConfigError(f"order must be one of {ORDERS}, got {self.order!r}")
        if self.label_in_prompt is None:
            self.label_in_prompt = self.order == "rationale_first"
        if self.order == "answer_first" and self.label_in_prompt:
            raise ConfigError(
                "order='answer_first' needs label_in_prompt: false (the answer is the label; "
                "the student cannot both be given it and predict it)"
            )


@dataclass
class TrainConfig:
    """Supervised fine-tuning of a student on ``[claim; evidence; label] -> explanation``.

    Defaults are the paper's (10 epochs, lr 2e-5, batch 8, the model's maximum length).

    Attributes:
        train_file: Instances JSONL (``cec_distill.data.write_instances``) or any file
            :func:`cec_distill.data.load_instances` reads.
        output_dir: Checkpoints, the final adapter, logs.
        validation_file: Instances evaluated during training (loss, and CEC on generations).
        labels_file: Teacher labels JSONL (``id``, ``explanation``); when absent the target is
            the instance's human explanation number ``reference_index``.
        reference_index: Which of ``instance.explanations`` is the target without labels_file.
        truncated_labels: Teacher labels cut by the token limit (``finish_reason: "length"``):
            ``keep`` (with a warning), ``drop`` or ``error``.
        epochs: Passes over the training set.
        max_steps: Stop after this many optimizer steps (overrides epochs when set).
        learning_rate: Peak learning rate (paper 2e-5; LoRA practice is nearer 2e-4).
        batch_size: Examples per device per forward pass.
        grad_accum: Forward passes per optimizer step.
        max_length: Longest prompt + target in tokens; ``None`` is the model's maximum.
        warmup_ratio: Fraction of steps of linear warm-up.
        weight_decay: AdamW weight decay.
        lr_scheduler: ``linear``, ``cosine``, ``constant``, ``constant_with_warmup``.
        max_grad_norm: Gradient clipping (0 disables).
        seed: Seeds data order, dropout and initialisation of adapters and head.
        gradient_checkpointing: Trade compute for activation memory.
        save_steps: Checkpoint every N optimizer steps (0: only at epoch ends).
        save_total_limit: Keep this many newest checkpoints.
        eval_steps: Evaluate every N steps (0: at epoch ends only).
        eval_generate_n: Validation items generated and scored with CEC at each evaluation.
        eval_max_new_tokens: Generation length for those.
        logging_steps: Log the training loss every N steps.
        rationale_loss: ``token`` (cross-entropy on every target token), ``semantic`` (cosine
            distance in sentence-embedding space on the rationale, cross-entropy on the rest of
            the target; refused with the default format, where the rest is only the EOS token:
            use ``format.order: answer_first`` or ``both``), ``both`` (cross-entropy on all +
            weighted semantic).
        semantic_weight: Weight of the semantic loss.
        semantic_encoder: Sentence encoder of the targets (``None``: CEC's default encoder).
        projection_hidden: Hidden width of the projection head (0: one linear map).
        device: ``auto``, ``cpu``, ``cuda``...
        merge: After training, also save the adapter merged into a full-precision copy of the
            base (never into the 4-bit one).
    """

    train_file: str = ""
    output_dir: str = ""
    preset: str | None = None
    model: ModelConfig = field(default_factory=ModelConfig)
    quantization: QuantConfig = field(default_factory=QuantConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    format: FormatConfig = field(default_factory=FormatConfig)
    validation_file: str | None = None
    labels_file: str | None = None
    reference_index: int = 0
    truncated_labels: str = "keep"
    epochs: int = 10
    max_steps: int | None = None
    learning_rate: float = 2e-5
    batch_size: int = 8
    grad_accum: int = 1
    max_length: int | None = None
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    lr_scheduler: str = "linear"
    max_grad_norm: float = 1.0
    seed: int = 42
    gradient_checkpointing: bool = True
    save_steps: int = 100
    save_total_limit: int = 2
    eval_steps: int = 0
    eval_generate_n: int = 16
    eval_max_new_tokens: int = 128
    logging_steps: int = 10
    rationale_loss: str = "token"
    semantic_weight: float = 1.0
    semantic_encoder: str | None = None
    projection_hidden: int = 0
    device: str = "auto"
    merge: bool = False

    def __post_init__(self) -> None:
        _positive(self, "epochs", "batch_size", "grad_accum", "logging_steps")
        _nonneg(self, "save_steps", "eval_steps", "eval_generate_n", "projection_hidden")
        _positive(self, "save_total_limit", "eval_max_new_tokens")
        if self.max_steps is not None:
            _positive(self, "max_steps")
        if self.max_length is not None:
            _positive(self, "max_length")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.lr_scheduler not in SCHEDULERS:
            raise ConfigError(
                f"lr_scheduler must be one of {SCHEDULERS}, got {self.lr_scheduler!r}"
            )
        if self.rationale_loss not in RATIONALE_LOSSES:
            raise ConfigError(
                f"rationale_loss must be one of {RATIONALE_LOSSES}, got {self.rationale_loss!r}"
            )
        if (
            self.rationale_loss == "semantic"
            and self.format.order == "rationale_first"
            and self.format.label_in_prompt
        ):
            raise ConfigError(
                "rationale_loss: semantic with format.order: rationale_first and the label in the "
                "prompt (the default format) leaves only the end-of-sequence token in the "
                "cross-entropy, so the student is never taught to write explanations; use "
                "format.order: answer_first (Post-Semantic-Thinking: the answer is learned by "
                "cross-entropy, the rationale in embedding space), or rationale_loss: both "
                "(cross-entropy on every target token plus the semantic loss)"
            )
        if self.semantic_weight < 0:
            raise ConfigError(f"semantic_weight must be >= 0, got {self.semantic_weight!r}")
        _nonneg(self, "reference_index")
        if self.truncated_labels not in ("keep", "drop", "error"):
            raise ConfigError(
                f"truncated_labels must be keep, drop or error, got {self.truncated_labels!r}"
            )
        _check_model(self.model, self.quantization, self.lora)


@dataclass
class GenerateConfig:
    """Batched generation of student explanations.

    Attributes:
        input_file: Instances to explain.
        output_file: Append-only JSONL of generations (resumable).
        adapter: LoRA adapter directory (``None``: the base model alone).
        batch_size: Prompts per ``generate`` call.
        max_new_tokens: Longest generation.
        do_sample: Sample (``true``) or greedy (``false``).
        temperature, top_p, top_k: Sampling settings.
        seed: Seeds sampling; with the same seed, batches and settings the output repeats.
        stop_after_answer: With ``order: answer_first``, stop once the answer line is out.
        limit: Only the first N instances.
        max_prompt_length: Prompts longer than this many tokens keep only their last
            ``max_prompt_length`` tokens (``None``: never cut).
        device: ``auto``, ``cpu``, ``cuda``...
    """

    input_file: str = ""
    output_file: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    quantization: QuantConfig = field(default_factory=lambda: QuantConfig(load_in_4bit=False))
    format: FormatConfig | None = None
    adapter: str | None = None
    batch_size: int = 8
    max_new_tokens: int = 128
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    stop_after_answer: bool = False
    limit: int | None = None
    max_prompt_length: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        _positive(self, "batch_size", "max_new_tokens")
        if self.limit is not None:
            _nonneg(self, "limit")
        if self.do_sample and not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0 when sampling, got {self.temperature!r}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p!r}")
        _check_model(self.model, self.quantization, None)


def _positive(obj: Any, *names: str) -> None:
    for n in names:
        check_positive_int(getattr(obj, n), n, error=ConfigError)


def _nonneg(obj: Any, *names: str) -> None:
    for n in names:
        check_positive_int(getattr(obj, n), n, minimum=0, error=ConfigError)


def _check_model(m: ModelConfig, q: QuantConfig, lora: LoraSettings | None) -> None:
    if not m.name_or_path and not m.package:
        raise ConfigError("model.name_or_path (or model.package) is required")
    if m.chat_template not in ("auto", "none"):
        raise ConfigError(f"model.chat_template must be 'auto' or 'none', got {m.chat_template!r}")
    if m.attn_implementation is not None and m.attn_implementation not in ATTN_IMPLEMENTATIONS:
        raise ConfigError(
            f"model.attn_implementation must be one of {ATTN_IMPLEMENTATIONS} (or unset: "
            f"transformers chooses), got {m.attn_implementation!r}"
        )
    dtypes = ("auto", "float32", "bfloat16", "float16")
    if m.dtype not in dtypes:
        raise ConfigError(f"model.dtype must be one of {dtypes}, got {m.dtype!r}")
    if q.load_in_4bit not in (True, False, "auto"):
        raise ConfigError(
            f"quantization.load_in_4bit must be true, false or 'auto', got {q.load_in_4bit!r}"
        )
    if q.quant_type not in ("nf4", "fp4"):
        raise ConfigError(f"quantization.quant_type must be 'nf4' or 'fp4', got {q.quant_type!r}")
    if q.compute_dtype not in dtypes:
        raise ConfigError(
            f"quantization.compute_dtype must be one of {dtypes}, got {q.compute_dtype!r}"
        )
    if lora is not None:
        for name in ("r", "alpha"):
            check_positive_int(getattr(lora, name), f"lora.{name}", error=ConfigError)
        if not 0 <= lora.dropout < 1:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {lora.dropout!r}")
        if lora.bias not in ("none", "all", "lora_only"):
            raise ConfigError(f"lora.bias must be none, all or lora_only, got {lora.bias!r}")
