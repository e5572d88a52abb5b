"""Post-Semantic-Thinking's rationale loss: Eq. 1 with D a distance in sentence-embedding space.

The student's last hidden states over its rationale tokens (teacher forcing) are mean-pooled,
mapped by a small trained :class:`ProjectionHead` into the sentence-embedding space and
compared with the frozen sentence embedding of the teacher's rationale: the loss is the mean
cosine distance ``1 - cos``. Target embeddings come from CEC's encoder (the same one that scores
the explanations) and are read from CEC's embedding cache (:mod:`cec.cache`), shared across runs
and keyed by the encoder's identity (:func:`target_embeddings`).

Examples:
    >>> import torch
    >>> head = ProjectionHead(8, 4)
    >>> h = torch.randn(2, 5, 8); mask = torch.tensor([[0, 1, 1, 0, 0], [1, 1, 1, 1, 0]])
    >>> pred = head(h, mask)
    >>> tuple(pred.shape), bool(torch.allclose(pred.norm(dim=-1), torch.ones(2)))
    ((2, 4), True)
    >>> abs(round(semantic_loss(pred, pred).item(), 6))
    0.0
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from cec.cache import EmbeddingCache, encode_cached, resolve_cache
from cec.encode import Encoder
from cec.scorer import CEC

__all__ = ["ProjectionHead", "semantic_loss", "target_embeddings", "HEAD_FILE"]

HEAD_FILE = "projection_head.safetensors"


class ProjectionHead(nn.Module):
    """Masked mean pooling, then a linear map (or a one-hidden-layer MLP), then unit norm.

    Args:
        in_dim: The student's hidden size.
        out_dim: The sentence-embedding size.
        hidden: Width of a hidden layer (0: a single linear map).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 0):
        super().__init__()
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, hidden
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim)
            )
        else:
            self.net = nn.Linear(in_dim, out_dim)

    def forward(self, hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[b, t, h]`` states and ``[b, t]`` 0/1 mask -> ``[b, out_dim]`` unit vectors."""
        m = mask.to(torch.float32).unsqueeze(-1)
        h = hidden_states.to(torch.float32)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
        return nn.functional.normalize(self.net(pooled), dim=-1)

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the weights and shape to ``directory/projection_head.safetensors``."""
        from safetensors.torch import save_file

        p = Path(directory) / HEAD_FILE
        meta = {
            "in_dim": str(self.in_dim),
            "out_dim": str(self.out_dim),
            "hidden": str(self.hidden),
        }
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}, str(p), meta
        )
        return p

    @classmethod
    def load(cls, directory: str | os.PathLike) -> ProjectionHead:
        """Inverse of :meth:`save`."""
        from safetensors import safe_open
        from safetensors.torch import load_file

        p = Path(directory) / HEAD_FILE
        with safe_open(str(p), "pt") as fh:
            meta = fh.metadata()
        head = cls(int(meta["in_dim"]), int(meta["out_dim"]), int(meta["hidden"]))
        head.load_state_dict(load_file(str(p)))
        return head


def semantic_loss(
    pred: torch.Tensor,
    target: torch.Tensor,
    valid: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Cosine distance ``1 - cos(pred, target)`` over rows (rows with ``valid == 0`` skipped).

    Args:
        pred: ``[b, d]`` predictions.
        target: ``[b, d]`` targets.
        valid: ``[b]`` 0/1 (or bool) rows to count; ``None``: every row.
        reduction: ``mean`` over the valid rows, or ``sum`` (for averaging over several
            processes' rows: divide by their total count).
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    cos = nn.functional.cosine_similarity(pred.float(), target.float().to(pred.device), dim=-1)
    dist = 1.0 - cos
    v = torch.ones_like(dist) if valid is None else valid.to(dist.dtype)
    total = (dist * v).sum()
    return total if reduction == "sum" else total / v.sum().clamp(min=1.0)


def target_embeddings(
    texts: Sequence[str],
    encoder: Encoder | CEC,
    cache: str | os.PathLike[str] | EmbeddingCache | None = None,
) -> torch.Tensor:
    """Frozen sentence embeddings ``[n, d]`` (float32, CPU) of the teacher rationales.

    Each text is embedded whole (one vector per rationale; a text repeated is encoded once)
    through CEC's one embedding cache (:func:`cec.cache.encode_cached`): vectors are keyed by the
    encoder's full identity (:attr:`cec.encode.Encoder.key`, ``name@identity|precision``), so a
    cache shared by runs, by the scorer and by several models never hands one model's vectors to
    another, and a text any earlier run embedded with the same encoder is read back, not
    encoded again.

    Args:
        texts: The rationales.
        encoder: A :class:`cec.CEC` (its encoder is used) or a :class:`cec.encode.Encoder`.
        cache: ``None`` (encode every text), ``"memory"``, a file path (an SQLite cache, kept
            across runs and safe to share between processes) or a
            :class:`~cec.cache.EmbeddingCache` (e.g. the scorer's own ``cache``).

    Raises:
        TypeError: ``texts`` is not a sequence of strings or ``encoder`` not an encoder.
        ValueError: A persistent cache with an anonymous encoder (a callable without a name:
            two different functions would share vectors).
    """
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of strings")
    enc = encoder.encoder if isinstance(encoder, CEC) else encoder
    if not isinstance(enc, Encoder):
        raise TypeError(
            f"encoder must be a cec.CEC or a cec.encode.Encoder, got {type(encoder).__name__}"
        )
    persistent = (
        cache.persistent
        if isinstance(cache, EmbeddingCache)
        else isinstance(cache, (str, os.PathLike)) and cache != "memory"
    )
    if persistent and enc.anonymous:  # refused before a cache file is made
        raise ValueError(
            f"cache: a persistent cache needs an encoder that says what it computes, but "
            f"{enc.name!r} is anonymous; name it (cec.CallableEncoder(fn, name=..., "
            "version=...)) or use cache='memory'"
        )
    unique = list(dict.fromkeys(texts))
    if not unique:
        return torch.zeros(0, 0)
    found = encode_cached(enc, unique, resolve_cache(cache))  # numpy on the CPU, else a tensor
    vectors = torch.as_tensor(found).detach().to("cpu", torch.float32)
    row = {t: i for i, t in enumerate(unique)}
    return vectors[[row[t] for t in texts]]
