"""Loading the study's settings: presets merged under a YAML file or mapping, then checked.

Examples:
    >>> cfg = load_generate_config({"input_file": "test.jsonl", "output_file": "gen.jsonl",
    ...                             "model": {"name_or_path": "gpt2"}, "batch_size": 4})
    >>> cfg.batch_size, cfg.model.name_or_path
    (4, 'gpt2')
"""

from __future__ import annotations

import copy
import importlib.util
import os
from pathlib import Path

from cec_distill.config.mapping import ConfigError, from_dict, load_yaml, merge
from cec_distill.config.schema import GenerateConfig, ModelConfig, TrainConfig

__all__ = [
    "PRESETS",
    "load_preset",
    "load_train_config",
    "load_generate_config",
    "resolve_model_path",
]

PRESET_DIR = Path(__file__).resolve().parents[1] / "presets"
PRESETS = ("tinyllama-1.1b", "phi-2", "gemma-2b", "gemma-2-2b")


def load_preset(name: str) -> dict:
    """The preset mapping for a built-in name or a preset file path."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"preset must be a name or a path, got {name!r}")
    builtin = PRESET_DIR / f"{name}.yaml"
    if name in PRESETS or builtin.is_file():
        return load_yaml(builtin)
    if Path(name).is_file():
        return load_yaml(name)
    raise ConfigError(f"unknown preset {name!r}; built-in presets: {', '.join(PRESETS)}")


def _as_mapping(config: str | os.PathLike | dict) -> tuple[dict, Path | None]:
    if isinstance(config, dict):
        return copy.deepcopy(config), None
    if isinstance(config, (str, os.PathLike)):
        return load_yaml(config), Path(config).resolve().parent
    raise TypeError(f"config must be a path or a mapping, got {type(config).__name__}")


def load_train_config(
    config: str | os.PathLike | dict, overrides: dict | None = None
) -> TrainConfig:
    """Load a :class:`TrainConfig` from a YAML path or mapping, preset merged underneath.

    Args:
        config: YAML file or mapping. ``preset`` names the preset to start from.
        overrides: A mapping merged over the config (e.g. from the command line).

    Raises:
        ConfigError: unknown keys, wrong types, impossible values, missing required keys.
    """
    data, _ = _as_mapping(config)
    if overrides:
        data = merge(data, overrides)
    preset = data.get("preset")
    if preset is not None:
        data = merge(load_preset(preset), data)
    for req in ("train_file", "output_dir"):
        if not data.get(req):
            raise ConfigError(f"{req} is required")
    return from_dict(TrainConfig, data)


def load_generate_config(
    config: str | os.PathLike | dict, overrides: dict | None = None
) -> GenerateConfig:
    """Load a :class:`GenerateConfig` (same rules as :func:`load_train_config`)."""
    data, _ = _as_mapping(config)
    if overrides:
        data = merge(data, overrides)
    for req in ("input_file", "output_file"):
        if not data.get(req):
            raise ConfigError(f"{req} is required")
    return from_dict(GenerateConfig, data)


def resolve_model_path(model: ModelConfig) -> str:
    """The directory or hub id to load: ``package`` resolves to its installed folder."""
    if model.package:
        spec = importlib.util.find_spec(model.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"model.package: package {model.package!r} is not installed "
                f"(pip install {model.package.replace('_', '-')})"
            )
        return str(next(iter(spec.submodule_search_locations)))
    return model.name_or_path
