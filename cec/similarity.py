"""The batched CEC kernel: ragged sentence sets -> padded blocks -> masked cosine max -> means.

Input is one matrix of unit-norm sentence embeddings ``E [U, d]`` and, for each pair, the row
indices of its generated and its reference sentences (flat arrays plus lengths). Pairs are
sorted by size and cut into chunks whose padded blocks fit a memory budget; each chunk is one
batched matrix product ``[P, n, d] x [P, d, m]``, a masked max along both axes and a mean over
the real rows and columns. Python only loops over chunks, never over pairs or sentences.

Cosines are exact at the ends of their range: a sentence compared with itself (the same row of
``E``) scores exactly 1.0, and every cosine is clamped to [-1, 1], so float32 rounding can never
push a score past 1 (:func:`exact_cosines` applies the same rule to a single matrix).

Examples:
    >>> import numpy as np, torch
    >>> emb = torch.eye(3)                     # three orthogonal unit "sentences"
    >>> sets_flat, sets_len = np.array([0, 1, 0, 2]), np.array([2, 2])  # sets {0,1} and {0,2}
    >>> fwd, bwd = pair_scores(emb, sets_flat, sets_len, np.array([0]), np.array([1]))
    >>> fwd.tolist(), bwd.tolist()
    ([0.5], [0.5])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cec._numerics import full_fp32

__all__ = ["pad_indices", "pair_scores", "exact_cosines", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 256 * 2**20


def pad_indices(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ragged index lists (flat + lengths) -> padded ``[P, L]`` indices and a validity mask.

    Examples:
        >>> idx, mask = pad_indices(np.array([4, 5, 6]), np.array([2, 1]))
        >>> idx.tolist(), mask.tolist()
        ([[4, 5], [6, 0]], [[True, True], [True, False]])
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    n_rows = len(lengths)
    width = int(lengths.max()) if n_rows else 0
    idx = np.zeros((n_rows, width), dtype=np.int64)
    mask = np.zeros((n_rows, width), dtype=bool)
    if n_rows and width:
        rows = np.repeat(np.arange(n_rows), lengths)
        starts = np.cumsum(lengths) - lengths
        cols = np.arange(len(flat)) - np.repeat(starts, lengths)
        idx[rows, cols] = flat
        mask[rows, cols] = True
    return idx, mask


def exact_cosines(sim: Any, rows: Any, cols: Any) -> Any:
    """Clamp a cosine matrix to [-1, 1] and set the cosine of a sentence with itself to 1.

    ``sim[i, j]`` is the cosine of embedding rows ``rows[i]`` and ``cols[j]`` (unit vectors);
    where both index the same row the true value is 1, which float rounding turns into
    1 +- 1e-7. Works on numpy arrays and torch tensors, in place, and returns ``sim``.

    Examples:
        >>> sim = np.array([[1.0000001, 0.3], [0.2, 0.9999999]])
        >>> exact_cosines(sim, np.array([4, 5]), np.array([4, 5])).tolist()
        [[1.0, 0.3], [0.2, 1.0]]
    """
    if isinstance(sim, torch.Tensor):
        r = torch.as_tensor(rows, device=sim.device)
        c = torch.as_tensor(cols, device=sim.device)
        sim.clamp_(-1.0, 1.0)
        sim.masked_fill_(r[..., :, None] == c[..., None, :], 1.0)
        return sim
    np.clip(sim, -1.0, 1.0, out=sim)
    sim[np.asarray(rows)[..., :, None] == np.asarray(cols)[..., None, :]] = 1.0
    return sim


def _chunks(gen_len: np.ndarray, ref_len: np.ndarray, dim: int, max_bytes: int) -> list[np.ndarray]:
    """Pair indices sorted by size, cut where the padded block of a chunk would pass the budget."""
    order = np.lexsort((ref_len, gen_len))  # by gen length, then ref length
    g = gen_len[order]
    r = ref_len[order]
    # bytes per pair at a given padded size: similarity block (x3 for masks/temps) + gathered rows
    chunks: list[np.ndarray] = []
    start, n = 0, len(order)

    def cost(start: int, stop: int) -> int:
        """Bytes of the padded blocks of pairs order[start:stop]."""
        pn = int(g[stop - 1])
        pm = int(r[start:stop].max())
        return (stop - start) * (3 * pn * pm + (pn + pm) * dim) * 4

    while start < n:
        # padded sizes grow with stop: find the largest stop under budget by doubling + bisection
        lo, hi = start + 1, start + 1
        while hi < n and cost(start, min(n, hi * 2 - start)) <= max_bytes:
            lo = hi = min(n, hi * 2 - start)
        if hi < n:
            hi = min(n, hi * 2 - start)
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if cost(start, mid) <= max_bytes:
                    lo = mid
                else:
                    hi = mid
        chunks.append(order[start:lo])
        start = lo
    return chunks


def pair_scores(
    emb: torch.Tensor,
    sets_flat: np.ndarray,
    sets_len: np.ndarray,
    gen_set: np.ndarray,
    ref_set: np.ndarray,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> tuple[np.ndarray, np.ndarray]:
    """Forward and backward CEC for every pair (Eq. 2's two terms), raw cosine.

    Sentence sets are ragged lists of embedding rows, stored flat: set ``k`` is
    ``sets_flat[start_k : start_k + sets_len[k]]``. A pair is two set indices.

    Args:
        emb: Unit-norm embeddings ``[U, d]``; the kernel runs on ``emb.device``.
        sets_flat: Row indices into ``emb`` of every set's sentences, concatenated.
        sets_len: Number of sentences in each set.
        gen_set: Per pair, the index of its generated sentence set (non-empty).
        ref_set: Per pair, the index of its reference sentence set (non-empty).
        max_bytes: Memory budget for one chunk's padded blocks.

    Returns:
        ``(forward, backward)`` float64 arrays of length ``len(gen_set)``: the mean over generated
        sentences of their best cosine with a reference sentence, and the mean over reference
        sentences of their best cosine with a generated sentence.
    """
    sets_len = np.asarray(sets_len, dtype=np.int64)
    gen_set = np.asarray(gen_set, dtype=np.int64)
    ref_set = np.asarray(ref_set, dtype=np.int64)
    n_pairs = len(gen_set)
    if len(ref_set) != n_pairs:
        raise ValueError("gen_set and ref_set must have the same length")
    forward = np.empty(n_pairs, dtype=np.float64)
    backward = np.empty(n_pairs, dtype=np.float64)
    if n_pairs == 0:
        return forward, backward
    gen_len, ref_len = sets_len[gen_set], sets_len[ref_set]
    if gen_len.min() < 1 or ref_len.min() < 1:
        raise ValueError("every pair needs at least one sentence on each side")

    sets_start = np.cumsum(sets_len) - sets_len
    with full_fp32():  # IEEE fp32 products even if the process allowed TF32 (cec._numerics)
        _kernel(emb, sets_flat, sets_start, gen_set, ref_set, gen_len, ref_len,
                max_bytes, forward, backward)
    return forward, backward


def _kernel(
    emb: torch.Tensor,
    sets_flat: np.ndarray,
    sets_start: np.ndarray,
    gen_set: np.ndarray,
    ref_set: np.ndarray,
    gen_len: np.ndarray,
    ref_len: np.ndarray,
    max_bytes: int,
    forward: np.ndarray,
    backward: np.ndarray,
) -> None:
    """The chunk loop of :func:`pair_scores`; writes into ``forward`` and ``backward``."""
    device = emb.device
    for chunk in _chunks(gen_len, ref_len, emb.shape[1], max_bytes):
        gl, rl = gen_len[chunk], ref_len[chunk]
        g_idx, g_mask = pad_indices(sets_flat[_gather(sets_start[gen_set[chunk]], gl)], gl)
        r_idx, r_mask = pad_indices(sets_flat[_gather(sets_start[ref_set[chunk]], rl)], rl)
        g_mask_t = torch.from_numpy(g_mask).to(device)
        r_mask_t = torch.from_numpy(r_mask).to(device)
        g_idx_t = torch.from_numpy(g_idx).to(device)
        r_idx_t = torch.from_numpy(r_idx).to(device)
        sim = torch.bmm(emb[g_idx_t], emb[r_idx_t].transpose(1, 2))  # [P, n, m] cosine
        exact_cosines(sim, g_idx_t, r_idx_t)  # [-1, 1]; a sentence with itself is 1
        neg = torch.finfo(sim.dtype).min
        best_fwd = sim.masked_fill(~r_mask_t[:, None, :], neg).amax(dim=2)  # [P, n]
        best_bwd = sim.masked_fill(~g_mask_t[:, :, None], neg).amax(dim=1)  # [P, m]
        fwd = (best_fwd.double() * g_mask_t).sum(dim=1) / torch.from_numpy(gl).to(device)
        bwd = (best_bwd.double() * r_mask_t).sum(dim=1) / torch.from_numpy(rl).to(device)
        forward[chunk] = fwd.cpu().numpy()
        backward[chunk] = bwd.cpu().numpy()


def _gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions ``start_k + arange(len_k)`` for each k, vectorised."""
    return np.repeat(starts, lengths) + _ragged_arange(lengths)


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(l)`` for each l, vectorised."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total) - np.repeat(starts, lengths)
