"""Plain sentence-transformers folders, loaded with transformers alone.

Most sentence-embedding models on disk (the default all-MiniLM-L6-v2 among them) are a
transformer, a pooling step and an optional L2 normalisation, described by ``modules.json``,
``sentence_bert_config.json`` and ``1_Pooling/config.json``. For such a folder cec builds the
same function from ``transformers.AutoModel`` and ``AutoTokenizer`` plus the pooling below,
without importing sentence-transformers: its import graph pulls in scikit-learn, pandas and,
where they are installed, peft and bitsandbytes (which print to stderr on some CPUs), none of
which a metric call needs. The vectors are those of sentence-transformers (the tests compare
them); any folder with another layout or options this loader does not know is loaded by
sentence-transformers as before (:func:`cec.layout.plain_layout` returns ``None`` for it).
"""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from cec.layout import PlainLayout, lowercase_first, plain_layout, transformer_config

__all__ = ["PlainLayout", "PooledTransformer", "plain_layout", "transformer_config"]

_lowercase_first = lowercase_first  # its name before it moved to cec.layout


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
                lowercase_first(self.tokenizer)
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
