"""The layout of a plain sentence-transformers folder, read from its JSON files (no torch).

A plain folder is Transformer -> Pooling [-> Normalize] with options this package reproduces
exactly (:func:`plain_layout`); :mod:`cec.hf_model` loads such a folder with transformers alone
and :mod:`cec._fast` runs its checked ONNX copy. :func:`lowercase_first` gives a
``tokenizers`` tokenizer the ``do_lower_case`` step of ``sentence_bert_config.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PlainLayout", "lowercase_first", "plain_layout", "transformer_config"]

_TRANSFORMER = "Transformer"
_POOLING = "Pooling"
_NORMALIZE = "Normalize"
# pooling keys this loader implements; a True value of any other pooling key means "not plain"
_POOL_MODES = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
}
_SBERT_KEYS = {"max_seq_length", "do_lower_case"}


@dataclass(frozen=True)
class PlainLayout:
    """What a plain folder says: token window, lower-casing, pooling mode, normalisation."""

    max_seq_length: int | None
    do_lower_case: bool
    pooling: str
    normalize: bool


def _module_kind(entry: Any) -> str | None:
    kind = entry.get("type", "") if isinstance(entry, dict) else ""
    if not kind.startswith("sentence_transformers."):
        return None
    return kind.rsplit(".", 1)[-1]


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def plain_layout(folder: str | Path) -> PlainLayout | None:
    """The layout of ``folder`` if it is Transformer -> Pooling [-> Normalize], else ``None``.

    ``None`` also for anything this loader would not reproduce exactly: extra model, tokenizer
    or config arguments, prompts, pooling modes other than one of cls/mean/max/mean-sqrt-len,
    pooling that excludes the prompt, or a transformer stored in a sub-folder.
    """
    root = Path(folder)
    try:
        modules = _read_json(root / "modules.json")
        kinds = [_module_kind(m) for m in modules]
        if kinds not in ([_TRANSFORMER, _POOLING], [_TRANSFORMER, _POOLING, _NORMALIZE]):
            return None
        if modules[0].get("path", "") not in ("", "."):
            return None
        sbert = {}
        if (root / "sentence_bert_config.json").is_file():
            sbert = _read_json(root / "sentence_bert_config.json")
        if not isinstance(sbert, dict) or set(sbert) - _SBERT_KEYS:
            return None
        st_cfg = root / "config_sentence_transformers.json"
        if st_cfg.is_file():
            extra = _read_json(st_cfg)
            if (
                not isinstance(extra, dict)
                or extra.get("prompts")
                or extra.get("default_prompt_name")
            ):
                return None
        pool = _read_json(root / modules[1]["path"] / "config.json")
        if not isinstance(pool, dict) or pool.get("include_prompt", True) is not True:
            return None
        on = [k for k, v in pool.items() if k.startswith("pooling_mode") and v is True]
        if len(on) != 1 or on[0] not in _POOL_MODES:
            return None
        max_len = sbert.get("max_seq_length")
        if max_len is not None and (isinstance(max_len, bool) or not isinstance(max_len, int)):
            return None
        return PlainLayout(
            max_seq_length=max_len,
            do_lower_case=bool(sbert.get("do_lower_case", False)),
            pooling=_POOL_MODES[on[0]],
            normalize=len(kinds) == 3,
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None


def lowercase_first(tokenizer: Any) -> None:
    """Make a fast tokenizer lower-case its input first (``do_lower_case``), as ST does."""
    from tokenizers.normalizers import Lowercase
    from tokenizers.normalizers import Sequence as NormalizerSequence

    backend = tokenizer.backend_tokenizer
    current = backend.normalizer
    if current is not None and "Lowercase" in repr(current):
        return
    steps = [Lowercase()]
    if isinstance(current, NormalizerSequence):
        steps += list(current)
    elif current is not None:
        steps.append(current)
    backend.normalizer = NormalizerSequence(steps)


def transformer_config(model: Any) -> Any:
    """The Hugging Face config of a loaded :class:`~cec.hf_model.PooledTransformer` or
    ``SentenceTransformer`` (attribute access only: no import)."""
    inner = getattr(model, "auto_model", None)
    if inner is None:
        inner = model[0].auto_model
    return inner.config
