"""Student fine-tuning and generation settings: dataclasses loaded from YAML, presets merged.

A training config is a YAML mapping. ``preset: NAME`` (``tinyllama-1.1b``, ``phi-2``,
``gemma-2b``, ``gemma-2-2b``: :data:`PRESETS`; or the path of a preset file) loads
``cec_distill/presets/NAME.yaml`` first and the config is merged over it key by key, so every
preset value can be overridden. Unknown keys, wrong types and impossible values raise
:class:`ConfigError` naming the key, before any model loads.

Examples:
    >>> cfg = load_train_config({"preset": "tinyllama-1.1b", "train_file": "train.jsonl",
    ...                          "output_dir": "out", "learning_rate": 2e-4})
    >>> cfg.model.name_or_path, cfg.epochs, cfg.batch_size, cfg.learning_rate
    ('TinyLlama/TinyLlama-1.1B-Chat-v1.0', 10, 8, 0.0002)
    >>> cfg.lora.target_modules[:2]
    ['q_proj', 'k_proj']
"""

from __future__ import annotations

from cec_distill.config.loading import (
    PRESET_DIR,
    PRESETS,
    load_generate_config,
    load_preset,
    load_train_config,
    resolve_model_path,
)
from cec_distill.config.mapping import ConfigError, from_dict, load_yaml, merge, to_dict
from cec_distill.config.schema import (
    DEFAULT_INSTRUCTION,
    LORA_TARGETS,
    ORDERS,
    RATIONALE_LOSSES,
    SCHEDULERS,
    FormatConfig,
    GenerateConfig,
    LoraSettings,
    ModelConfig,
    QuantConfig,
    TrainConfig,
)

__all__ = [
    "ConfigError",
    "ModelConfig",
    "QuantConfig",
    "LoraSettings",
    "FormatConfig",
    "TrainConfig",
    "GenerateConfig",
    "PRESETS",
    "LORA_TARGETS",
    "PRESET_DIR",
    "ORDERS",
    "RATIONALE_LOSSES",
    "SCHEDULERS",
    "DEFAULT_INSTRUCTION",
    "load_yaml",
    "load_preset",
    "merge",
    "from_dict",
    "to_dict",
    "load_train_config",
    "load_generate_config",
    "resolve_model_path",
]
