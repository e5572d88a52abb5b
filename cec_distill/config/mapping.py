"""YAML mappings to checked dataclasses: the generic half of :mod:`cec_distill.config`.

Reading a YAML mapping, merging mappings key by key, and building a dataclass from a mapping with
every key and type checked (:class:`ConfigError` names the key). Nothing here knows the study's
settings; :mod:`cec_distill.config.schema` defines them.

Examples:
    >>> merge({"lora": {"r": 16, "alpha": 32}}, {"lora": {"r": 8}})
    {'lora': {'r': 8, 'alpha': 32}}
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "load_yaml", "merge", "from_dict", "to_dict"]


class ConfigError(ValueError):
    """A configuration value is missing, unknown, of the wrong type or out of range."""


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping; a clear error for a missing file or a non-mapping."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"config: no such file: {p}")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config {p}: expected a mapping at the top, got {type(data).__name__}")
    return data


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge: values of ``override`` win; nested mappings merge key by key."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_type(value, a, where)
            except ConfigError as exc:
                errors.append(exc)
        raise (
            errors[0]
            if len(errors) == 1
            else ConfigError(f"{where}: {value!r} is not a valid value ({_tpname(tp)})")
        )
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    return value


def _tpname(tp: Any) -> str:
    return str(tp).replace("typing.", "")


def from_dict(cls: type, data: dict, where: str = "config") -> Any:
    """Build dataclass ``cls`` from a mapping: unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(names))}"
        )
    kwargs = {}
    for k, v in data.items():
        key = k if where == "config" else f"{where}.{k}"
        kwargs[k] = _check_type(v, hints[k], key)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        if where != "config" and not str(exc).startswith(where):
            raise ConfigError(f"{where}: {exc}") from None
        raise


def to_dict(obj: Any) -> dict:
    """Plain-data form of a config dataclass (for writing next to the results)."""
    return dataclasses.asdict(obj)
