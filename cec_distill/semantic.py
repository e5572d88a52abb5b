"""Post-Semantic-Thinking's rationale loss: Eq. 1 with D a distance in sentence-embedding space.

The student's last hidden states over its rationale tokens (teacher forcing) are mean-pooled,
mapped by a small trained :class:`ProjectionHead` into the sentence-embedding space and
compared with the frozen sentence embedding of the teacher's rationale: the loss is the mean
cosine distance ``1 - cos``. Target embeddings come from CEC's encoder (the same one that scores
the explanations) and are computed once and cached on disk (:func:`target_embeddings`).

Example:
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

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

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
    encode: Callable[[list[str]], torch.Tensor],
    cache_file: str | os.PathLike | None = None,
    encoder_key: str = "",
) -> torch.Tensor:
    """Frozen sentence embeddings ``[n, d]`` of the teacher rationales, cached on disk.

    Each text is embedded whole (one vector per rationale). The cache maps
    ``sha256(encoder_key, text)`` to its vector, so it is shared across runs that use the same
    encoder and grows as new texts appear.

    Args:
        texts: The rationales.
        encode: ``list[str] -> [n, d]`` (e.g. ``cec.CEC().encode``).
        cache_file: A safetensors file (created when absent).
        encoder_key: Identifies the encoder (e.g. ``CEC().encoder.key``) so caches never mix.
    """
    from safetensors.torch import load_file, save_file

    keys = [hashlib.sha256(f"{encoder_key}\x00{t}".encode()).hexdigest()[:32] for t in texts]
    cache: dict[str, torch.Tensor] = {}
    if cache_file is not None and Path(cache_file).is_file():
        cache = load_file(str(cache_file))
    todo = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items())
    if todo:
        emb = torch.as_tensor(encode([t for _, t in todo])).detach().to("cpu", torch.float32)
        for (k, _), e in zip(todo, emb, strict=True):
            cache[k] = e.contiguous()
        if cache_file is not None:
            p = Path(cache_file)
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_suffix(".tmp")
            save_file(cache, str(tmp))
            os.replace(tmp, p)
    return torch.stack([cache[k] for k in keys]) if keys else torch.zeros(0, 0)
