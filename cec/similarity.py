"""The batched CEC kernel: ragged sentence sets -> padded blocks -> masked cosine max -> means.

Input is one matrix of unit-norm sentence embeddings ``E [U, d]`` and, for each pair, the row
indices of its generated and its reference sentences (flat arrays plus lengths). Pairs are
sorted by size and cut into chunks whose padded blocks fit a memory budget; each chunk is one
batched matrix product ``[P, n, d] x [P, d, m]``, a masked max along both axes and a mean over
the real rows and columns. Python only loops over chunks, never over pairs or sentences.

One implementation serves every device: it is written against the array API standard, so it
runs on numpy arrays (the CPU: the encoder hands the scorer numpy there, and the fast start
never imports torch) and on torch tensors where they live (CUDA), through
``array-api-compat``.

Cosines are exact at the ends of their range: a sentence compared with itself (the same row of
``E``) scores exactly 1.0, and every cosine is clamped to [-1, 1], so float32 rounding can never
push a score past 1 (:func:`exact_cosines` applies the same rule to a single matrix).

Examples:
    >>> import numpy as np
    >>> emb = np.eye(3, dtype=np.float32)      # three orthogonal unit "sentences"
    >>> sets_flat, sets_len = np.array([0, 1, 0, 2]), np.array([2, 2])  # sets {0,1} and {0,2}
    >>> fwd, bwd = pair_scores(emb, sets_flat, sets_len, np.array([0]), np.array([1]))
    >>> fwd.tolist(), bwd.tolist()
    ([0.5], [0.5])
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from cec._numerics import full_fp32

__all__ = ["pad_indices", "pair_scores", "exact_cosines", "to_numpy", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 256 * 2**20


def _namespace(x: Any) -> Any:
    """The array API namespace of ``x``: numpy itself for a numpy >= 2.1 array, else the
    ``array-api-compat`` wrapper (torch, older numpy)."""
    if isinstance(x, np.ndarray) and hasattr(np, "astype") and hasattr(x, "__array_namespace__"):
        return np
    from array_api_compat import array_namespace

    return array_namespace(x)


def _device(x: Any) -> Any:
    """The device of an array (numpy: ``"cpu"``)."""
    from_array = getattr(x, "device", None)
    return "cpu" if from_array is None else from_array


def to_numpy(x: Any) -> np.ndarray:
    """An array of any namespace as a numpy array (copied to the host where needed)."""
    if isinstance(x, np.ndarray):
        return x
    from array_api_compat import to_device

    return np.asarray(to_device(x, "cpu"))


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


def _exact(xp: Any, sim: Any, rows: Any, cols: Any) -> Any:
    """``sim`` clamped to [-1, 1], with 1 where ``rows[..., i] == cols[..., j]`` (a new array)."""
    one = xp.asarray(1.0, dtype=sim.dtype, device=_device(sim))
    return xp.where(rows[..., :, None] == cols[..., None, :], one, xp.clip(sim, -1.0, 1.0))


def exact_cosines(sim: Any, rows: Any, cols: Any) -> Any:
    """Clamp a cosine matrix to [-1, 1] and set the cosine of a sentence with itself to 1.

    ``sim[i, j]`` is the cosine of embedding rows ``rows[i]`` and ``cols[j]`` (unit vectors);
    where both index the same row the true value is 1, which float rounding turns into
    1 +- 1e-7. Works on numpy arrays and torch tensors (any array API namespace), in place, and
    returns ``sim``.

    Examples:
        >>> sim = np.array([[1.0000001, 0.3], [0.2, 0.9999999]])
        >>> exact_cosines(sim, np.array([4, 5]), np.array([4, 5])).tolist()
        [[1.0, 0.3], [0.2, 1.0]]
    """
    xp = _namespace(sim)
    dev = _device(sim)
    r, c = xp.asarray(rows, device=dev), xp.asarray(cols, device=dev)
    sim[...] = _exact(xp, sim, r, c)
    return sim


def _chunks(
    gen_len: np.ndarray, ref_len: np.ndarray, dim: int, max_bytes: int, itemsize: int = 4
) -> list[np.ndarray]:
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
        return (stop - start) * (3 * pn * pm + (pn + pm) * dim) * itemsize

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
    emb: Any,
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
        emb: Unit-norm embeddings ``[U, d]``, a numpy array or a torch tensor (any array API
            array); the kernel runs where it lives.
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
    xp = _namespace(emb)
    # torch: IEEE fp32 products even if the process allowed TF32 (cec._numerics); numpy's
    # float32 products are IEEE anyway
    pinned = contextlib.nullcontext() if xp is np else full_fp32()
    with pinned:
        _kernel(
            xp, emb, sets_flat, sets_start, gen_set, ref_set, gen_len, ref_len,
            max_bytes, forward, backward,
        )  # fmt: skip
    return forward, backward


def _kernel(
    xp: Any,
    emb: Any,
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
    dev = _device(emb)
    dim = emb.shape[1]
    if xp is np:  # float64 products on the CPU: a pair's cosines do not depend on the padded
        emb = emb.astype(np.float64)  # shape of its chunk (BLAS kernels sum in shape-dependent
        # order), so a resumed or re-chunked run prints the same digits
    neg = xp.asarray(xp.finfo(emb.dtype).min, dtype=emb.dtype, device=dev)
    itemsize = 8 if emb.dtype == xp.float64 else 4
    for chunk in _chunks(gen_len, ref_len, dim, max_bytes, itemsize):
        gl, rl = gen_len[chunk], ref_len[chunk]
        g_idx, g_mask = pad_indices(sets_flat[_gather(sets_start[gen_set[chunk]], gl)], gl)
        r_idx, r_mask = pad_indices(sets_flat[_gather(sets_start[ref_set[chunk]], rl)], rl)
        g_idx_x, r_idx_x = (xp.asarray(a, device=dev) for a in (g_idx, r_idx))
        g_mask_x, r_mask_x = (xp.asarray(a, device=dev) for a in (g_mask, r_mask))
        g_emb = xp.reshape(xp.take(emb, xp.reshape(g_idx_x, (-1,)), axis=0), (*g_idx.shape, dim))
        r_emb = xp.reshape(xp.take(emb, xp.reshape(r_idx_x, (-1,)), axis=0), (*r_idx.shape, dim))
        sim = xp.matmul(g_emb, xp.matrix_transpose(r_emb))  # [P, n, m] cosine
        sim = _exact(xp, sim, g_idx_x, r_idx_x)  # [-1, 1]; a sentence with itself is 1
        best_fwd = xp.max(xp.where(r_mask_x[:, None, :], sim, neg), axis=2)  # [P, n]
        best_bwd = xp.max(xp.where(g_mask_x[:, :, None], sim, neg), axis=1)  # [P, m]
        f64 = xp.float64
        fwd = xp.sum(xp.astype(best_fwd, f64) * xp.astype(g_mask_x, f64), axis=1)
        bwd = xp.sum(xp.astype(best_bwd, f64) * xp.astype(r_mask_x, f64), axis=1)
        forward[chunk] = to_numpy(fwd) / gl
        backward[chunk] = to_numpy(bwd) / rl


def _gather(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Flat positions ``start_k + arange(len_k)`` for each k, vectorised."""
    return np.repeat(starts, lengths) + _ragged_arange(lengths)


def _ragged_arange(lengths: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(l)`` for each l, vectorised."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total) - np.repeat(starts, lengths)
