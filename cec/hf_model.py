"""Plain sentence-transformers folders, loaded with transformers alone.

Most sentence-embedding models on disk (the default all-MiniLM-L6-v2 among them) are a
transformer, a pooling step and an optional L2 normalisation, described by ``modules.json``,
``sentence_bert_config.json`` and ``1_Pooling/config.json``. For such a folder cec builds the
same function from ``transformers.AutoModel`` and ``AutoTokenizer`` plus the pooling below,
without importing sentence-transformers: its import graph pulls in scikit-learn, pandas and,
where they are installed, peft and bitsandbytes (which print to stderr on some CPUs), none of
which a metric call needs. The vectors are those of sentence-transformers (the tests compare
them); any folder with another layout or options this loader does not know is loaded by
sentence-transformers as before (:func:`plain_layout` returns ``None`` for it).
"""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

__all__ = ["PlainLayout", "PooledTransformer", "plain_layout", "transformer_config"]

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


def _lowercase_first(tokenizer: Any) -> None:
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
    """The Hugging Face config of a :class:`PooledTransformer` or a SentenceTransformer."""
    inner = getattr(model, "auto_model", None)
    if inner is None:
        inner = model[0].auto_model
    return inner.config


class PooledTransformer(torch.nn.Module):
    """A plain sentence-embedding model: ``AutoModel`` -> pooling -> (normalise).

    Called like a sentence-transformers model: ``model(features)["sentence_embedding"]``,
    with ``features`` holding ``input_ids``, ``attention_mask`` (and ``token_type_ids``).

    Args:
        folder: The model folder.
        layout: Its :class:`PlainLayout` (from :func:`plain_layout`).
        device: Where the model runs.
    """

    def __init__(self, folder: str | Path, layout: PlainLayout, device: torch.device):
        super().__init__()
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(str(folder))
        self.auto_model = AutoModel.from_pretrained(str(folder), config=config)
        self.tokenizer = AutoTokenizer.from_pretrained(str(folder))
        limit = layout.max_seq_length
        positions = getattr(config, "max_position_embeddings", -1)
        if limit is None:  # as sentence-transformers: the tokenizer's, capped by the model's
            limit = int(self.tokenizer.model_max_length)
            if positions not in (None, -1):
                limit = min(limit, int(positions))
        self.max_seq_length = int(limit)
        self.do_lower_case = layout.do_lower_case
        self.pooling = layout.pooling
        self.normalize = layout.normalize
        if self.do_lower_case:  # as sentence-transformers does, for fast and slow tokenizers
            if getattr(self.tokenizer, "is_fast", False):
                _lowercase_first(self.tokenizer)
            else:
                try:
                    self.tokenizer.do_lower_case = True
                except AttributeError:
                    self.tokenizer.basic_tokenizer.do_lower_case = True
        self._forward_args = set(inspect.signature(self.auto_model.forward).parameters)
        self.to(device)
        self.eval()

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        args = {k: v for k, v in features.items() if k in self._forward_args}
        tokens = self.auto_model(**args, return_dict=True)[0]
        mask = features["attention_mask"]
        if self.pooling == "cls":
            pooled = tokens[:, 0]
        elif self.pooling == "max":
            m = mask.unsqueeze(-1).expand_as(tokens).to(tokens.dtype)
            pooled = tokens.masked_fill(m == 0, float("-inf")).max(dim=1).values
        else:  # mean and mean_sqrt_len_tokens, summed as sentence-transformers does
            acc = torch.float32 if tokens.dtype in (torch.float16, torch.bfloat16) else tokens.dtype
            m = mask.unsqueeze(-1).to(tokens.dtype)
            total = (tokens * m).sum(dim=1, dtype=acc)
            count = torch.clamp(m.sum(dim=1, dtype=acc), min=1e-9)
            pooled = total / (count if self.pooling == "mean" else torch.sqrt(count))
            pooled = pooled.to(tokens.dtype)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return {"sentence_embedding": pooled}
