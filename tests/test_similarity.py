"""The batched kernel (cec.similarity) against plain loops over cosine similarities."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cec.similarity import _chunks, pad_indices, pair_scores


def _loops(emb: np.ndarray, gen: list[int], ref: list[int]) -> tuple[float, float]:
    """Algorithm 1 on rows of ``emb``: Python loops, cosine computed from scratch."""

    def cos(u: np.ndarray, v: np.ndarray) -> float:
        return float(np.dot(u, v) / (math.sqrt(np.dot(u, u)) * math.sqrt(np.dot(v, v))))

    fwd = [max(cos(emb[i], emb[j]) for j in ref) for i in gen]
    bwd = [max(cos(emb[j], emb[i]) for i in gen) for j in ref]
    return sum(fwd) / len(fwd), sum(bwd) / len(bwd)


def _random_problem(rng: np.random.Generator, n_sent: int, n_sets: int, n_pairs: int, dim: int):
    emb = rng.standard_normal((n_sent, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    lens = rng.integers(1, 9, size=n_sets)
    sets = [rng.integers(0, n_sent, size=k).tolist() for k in lens]
    gen = rng.integers(0, n_sets, size=n_pairs)
    ref = rng.integers(0, n_sets, size=n_pairs)
    flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sets])
    return emb, sets, flat, lens, gen, ref


def test_pad_indices_places_rows_and_mask():
    idx, mask = pad_indices(np.array([7, 8, 9, 3]), np.array([1, 3]))
    assert idx.tolist() == [[7, 0, 0], [8, 9, 3]]
    assert mask.tolist() == [[True, False, False], [True, True, True]]


def test_pad_indices_of_nothing():
    idx, mask = pad_indices(np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    assert idx.shape == (0, 0) and mask.shape == (0, 0)


@pytest.mark.parametrize("max_bytes", [1, 4096, 256 * 2**20])
def test_kernel_equals_loops_on_random_sets(max_bytes):
    rng = np.random.default_rng(0)
    emb, sets, flat, lens, gen, ref = _random_problem(rng, 60, 40, 300, 16)
    fwd, bwd = pair_scores(torch.from_numpy(emb).float(), flat, lens, gen, ref, max_bytes=max_bytes)
    for p in range(len(gen)):
        f, b = _loops(emb, sets[gen[p]], sets[ref[p]])
        assert fwd[p] == pytest.approx(f, abs=1e-5)
        assert bwd[p] == pytest.approx(b, abs=1e-5)


def test_tiny_budget_gives_one_pair_chunks_and_same_scores():
    rng = np.random.default_rng(1)
    emb, _, flat, lens, gen, ref = _random_problem(rng, 30, 20, 50, 8)
    chunks = _chunks(lens[gen], lens[ref], 8, 1)
    assert len(chunks) == 50 and all(len(c) == 1 for c in chunks)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(50))
    t = torch.from_numpy(emb).float()
    small = pair_scores(t, flat, lens, gen, ref, max_bytes=1)
    big = pair_scores(t, flat, lens, gen, ref)
    np.testing.assert_allclose(small[0], big[0], atol=1e-6)
    np.testing.assert_allclose(small[1], big[1], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 12), min_size=1, max_size=40),
    st.lists(st.integers(1, 12), min_size=1, max_size=40),
    st.integers(8, 100_000),
    st.integers(1, 64),
)
def test_chunks_partition_pairs_within_budget(gen_len, ref_len, max_bytes, dim):
    n = min(len(gen_len), len(ref_len))
    g, r = np.array(gen_len[:n]), np.array(ref_len[:n])
    chunks = _chunks(g, r, dim, max_bytes)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(n))
    for c in chunks:
        if len(c) > 1:  # a single pair is always allowed, even over budget
            cost = len(c) * (3 * g[c].max() * r[c].max() + (g[c].max() + r[c].max()) * dim) * 4
            assert cost <= max_bytes


def test_no_pairs_gives_empty_arrays():
    emb = torch.eye(3)
    fwd, bwd = pair_scores(emb, np.array([0]), np.array([1]), np.array([]), np.array([]))
    assert fwd.shape == (0,) and bwd.shape == (0,)


def test_empty_set_in_a_pair_is_refused():
    emb = torch.eye(3)
    with pytest.raises(ValueError, match="at least one sentence"):
        pair_scores(emb, np.array([0]), np.array([1, 0]), np.array([0]), np.array([1]))


def test_mismatched_pair_arrays_are_refused():
    emb = torch.eye(3)
    with pytest.raises(ValueError, match="same length"):
        pair_scores(emb, np.array([0]), np.array([1]), np.array([0, 0]), np.array([0]))


def test_negative_cosines_are_kept_raw():
    # two opposite unit vectors: Eq. 2 with raw cosine gives -1, no clipping to [0, 1]
    emb = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    fwd, bwd = pair_scores(emb, np.array([0, 1]), np.array([1, 1]), np.array([0]), np.array([1]))
    assert fwd[0] == pytest.approx(-1.0) and bwd[0] == pytest.approx(-1.0)


# one kernel over the array API: numpy (the CPU) and torch (where tensors live) give the same
def _both(emb: np.ndarray) -> list:
    return [emb.astype(np.float32), torch.from_numpy(emb).float()]


@pytest.mark.parametrize("max_bytes", [1, 4096, 256 * 2**20])
def test_numpy_and_torch_arrays_give_the_same_scores(max_bytes):
    rng = np.random.default_rng(2)
    emb, sets, flat, lens, gen, ref = _random_problem(rng, 80, 50, 400, 32)
    (f_np, b_np), (f_t, b_t) = (
        pair_scores(e, flat, lens, gen, ref, max_bytes=max_bytes) for e in _both(emb)
    )
    assert f_np.dtype == np.float64 and f_t.dtype == np.float64
    np.testing.assert_allclose(f_np, f_t, rtol=0, atol=1e-6)
    np.testing.assert_allclose(b_np, b_t, rtol=0, atol=1e-6)
    for p in range(0, len(gen), 7):
        f, b = _loops(emb, sets[gen[p]], sets[ref[p]])
        assert f_np[p] == pytest.approx(f, abs=1e-5) and b_np[p] == pytest.approx(b, abs=1e-5)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_set_with_itself_is_exactly_one_and_cosines_stay_in_range(kind):
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((40, 24))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    emb *= 1.0000003  # rounding past unit norm: raw cosines of a row with itself exceed 1
    arr = _both(emb)[kind == "torch"]
    lens = np.array([5, 8, 3])
    flat = rng.permutation(40)[: lens.sum()]
    gen, ref = np.array([0, 1, 2, 0]), np.array([0, 1, 2, 1])
    fwd, bwd = pair_scores(arr, flat, lens, gen, ref)
    assert fwd[:3].tolist() == [1.0, 1.0, 1.0] and bwd[:3].tolist() == [1.0, 1.0, 1.0]
    assert np.all(np.abs(fwd) <= 1.0) and np.all(np.abs(bwd) <= 1.0)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_exact_cosines_works_in_place_on_both_array_kinds(kind):
    from cec.similarity import exact_cosines

    sim = np.array([[1.0000001, 0.3, -1.0000002], [0.2, 0.9999999, 0.5]], dtype=np.float32)
    arr = sim.copy() if kind == "numpy" else torch.from_numpy(sim.copy())
    out = exact_cosines(arr, np.array([4, 5]), np.array([4, 5, 6]))
    assert out is arr
    got = np.asarray(out)
    np.testing.assert_array_equal(got, np.array([[1.0, 0.3, -1.0], [0.2, 1.0, 0.5]], np.float32))


def test_the_cpu_kernel_does_not_import_torch():
    """numpy arrays in, numpy out: scoring on the CPU needs no torch (the fast start)."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from cec.similarity import pair_scores\n"
        "e = np.eye(4, dtype=np.float32)\n"
        "f, b = pair_scores(e, np.array([0, 1, 0, 2]), np.array([2, 2]), np.array([0]), "
        "np.array([1]))\n"
        "print(f.tolist(), b.tolist(), 'torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[0.5]", "[0.5]", "False"] and out.stderr == ""
