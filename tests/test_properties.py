"""Property tests (hypothesis) for Eq. 2: symmetry, order invariance, identity, range.

Most examples use a cheap deterministic callable model (hashed bag of words) so that hypothesis
can try many texts; a few examples run on the real default model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from encoders import hash_model
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import cec

WORDS = [
    "carbon",
    "heat",
    "ocean",
    "warming",
    "ice",
    "melt",
    "sea",
    "level",
    "rise",
    "storm",
    "drought",
    "forest",
    "fire",
    "coal",
    "emission",
    "climate",
    "model",
    "evidence",
    "claim",
    "supports",
    "refutes",
    "temperature",
    "arctic",
    "glacier",
    "methane",
    "record",
    "decade",
    "trend",
    "human",
    "natural",
    "cycle",
    "solar",
    "volcano",
    "rain",
    "flood",
    "crop",
]


HASHED = cec.CEC(model=hash_model, splitter="newline", device="cpu")

sentence = st.lists(st.sampled_from(WORDS), min_size=1, max_size=7).map(
    lambda ws: " ".join(ws).capitalize() + "."
)
sentences = st.lists(sentence, min_size=1, max_size=6)
pair = st.tuples(sentences, sentences)
FAST = settings(max_examples=50, deadline=None)


def text(sents: list[str]) -> str:
    return "\n".join(sents)


def _cos(u: np.ndarray, v: np.ndarray) -> float:
    return float(np.dot(u, v)) / (math.sqrt(float(np.dot(u, u))) * math.sqrt(float(np.dot(v, v))))


def literal(gen: list[str], ref: list[str]) -> tuple[float, float]:
    """Algorithm 1 with the hash model: loops over cosine similarities."""
    g = hash_model(gen).astype(np.float64)
    a = hash_model(ref).astype(np.float64)
    fwd = sum(max(_cos(gi, aj) for aj in a) for gi in g) / len(g)
    bwd = sum(max(_cos(aj, gi) for gi in g) for aj in a) / len(a)
    return fwd, bwd


# --------------------------------------------------------------------------------------------
# many examples, hashed model
# --------------------------------------------------------------------------------------------
@FAST
@given(st.lists(pair, min_size=1, max_size=6))
def test_hashed_scores_equal_algorithm1(pairs):
    result = HASHED.score([text(g) for g, _ in pairs], [text(r) for _, r in pairs])
    for k, (g, r) in enumerate(pairs):
        assert HASHED.segment(text(g)) == g
        fwd, bwd = literal(g, r)
        assert result.forward[k] == pytest.approx(fwd, abs=1e-5)
        assert result.backward[k] == pytest.approx(bwd, abs=1e-5)
        assert result.sym[k] == pytest.approx((fwd + bwd) / 2, abs=1e-5)


@FAST
@given(st.lists(pair, min_size=1, max_size=6))
def test_sym_is_symmetric_and_directions_swap(pairs):
    gens = [text(g) for g, _ in pairs]
    refs = [text(r) for _, r in pairs]
    ab, ba = HASHED.score(gens, refs), HASHED.score(refs, gens)
    np.testing.assert_allclose(ab.sym, ba.sym, atol=1e-6)
    np.testing.assert_allclose(ab.forward, ba.backward, atol=1e-6)
    np.testing.assert_allclose(ab.backward, ba.forward, atol=1e-6)


@FAST
@given(pair, st.randoms(use_true_random=False))
def test_sentence_order_does_not_matter(p, rnd):
    g, r = p
    g2, r2 = g[:], r[:]
    rnd.shuffle(g2)
    rnd.shuffle(r2)
    a = HASHED.score([text(g)], [text(r)])
    b = HASHED.score([text(g2)], [text(r2)])
    np.testing.assert_allclose([a.forward, a.backward], [b.forward, b.backward], atol=1e-6)


@FAST
@given(st.lists(pair, min_size=2, max_size=8), st.randoms(use_true_random=False))
def test_pair_order_does_not_matter(pairs, rnd):
    order = list(range(len(pairs)))
    rnd.shuffle(order)
    gens = [text(g) for g, _ in pairs]
    refs = [text(r) for _, r in pairs]
    a = HASHED.score(gens, refs)
    b = HASHED.score([gens[i] for i in order], [refs[i] for i in order])
    np.testing.assert_allclose(a.sym[order], b.sym, atol=1e-6)
    np.testing.assert_allclose(a.forward[order], b.forward, atol=1e-6)
    assert a.mean == pytest.approx(b.mean, abs=1e-6)


@FAST
@given(sentences)
def test_identical_texts_score_one(sents):
    t = text(sents)
    result = HASHED.score([t], [t])
    assert result.sym[0] == pytest.approx(1.0, abs=1e-6)
    assert result.forward[0] == pytest.approx(1.0, abs=1e-6)


@FAST
@given(st.lists(pair, min_size=1, max_size=6))
def test_range_and_eq2(pairs):
    result = HASHED.score([text(g) for g, _ in pairs], [text(r) for _, r in pairs])
    for arr in (result.forward, result.backward, result.sym):
        assert np.all(arr >= -1 - 1e-6) and np.all(arr <= 1 + 1e-6)
    np.testing.assert_allclose(result.sym, (result.forward + result.backward) / 2, atol=1e-12)
    assert result.n_empty == 0


@FAST
@given(sentences, st.lists(sentences, min_size=1, max_size=4))
def test_several_references_take_the_max(gen, refs):
    multi = HASHED.score([text(gen)], [[text(r) for r in refs]])
    each = [HASHED.score(text(gen), text(r)) for r in refs]
    assert multi.sym[0] == pytest.approx(max(each), abs=1e-6)
    assert each[int(multi.best_ref[0])] == pytest.approx(max(each), abs=1e-6)


# --------------------------------------------------------------------------------------------
# a few examples on the real default model and the default splitter
# --------------------------------------------------------------------------------------------
POOL = [
    "Carbon dioxide traps heat in the atmosphere.",
    "The oceans have absorbed most of the extra heat.",
    "Arctic sea ice has shrunk by about 13% per decade since 1979.",
    "Dr. Mann's reconstruction shows a sharp rise after 1900.",
    "Sea levels rise as glaciers melt and warm water expands.",
    "Volcanoes emit far less CO2 than human activity does.",
    "The claim is supported by the evidence.",
    "There is not enough information to decide.",
    "Solar output has been flat while temperatures climbed.",
    "Droughts and wildfires became more frequent in the U.S. since 1980.",
    "Warming of 1.1°C has already been observed.",
    "The evidence contradicts the claim.",
]
pool_sentences = st.lists(st.sampled_from(POOL), min_size=1, max_size=4, unique=True)
# no shrinking on the real model: each example costs model calls
REAL = settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])


def test_pool_sentences_split_as_written(scorer):
    assert scorer.segment(" ".join(POOL)) == POOL


@REAL
@given(
    st.lists(st.tuples(pool_sentences, pool_sentences), min_size=2, max_size=3),
    st.randoms(use_true_random=False),
)
def test_real_model_symmetry_order_and_range(scorer, pairs, rnd):
    gens = [" ".join(g) for g, _ in pairs]
    refs = [" ".join(r) for _, r in pairs]
    base = scorer.score(gens, refs)
    # range
    assert np.all(base.sym >= -1) and np.all(base.sym <= 1 + 1e-6)
    # symmetry under swapping generated and reference
    swapped = scorer.score(refs, gens)
    np.testing.assert_allclose(base.sym, swapped.sym, atol=1e-6)
    np.testing.assert_allclose(base.forward, swapped.backward, atol=1e-6)
    # sentence order inside each text, and pair order
    order = list(range(len(pairs)))
    rnd.shuffle(order)
    shuffled_gens, shuffled_refs = [], []
    for i in order:
        g, r = pairs[i][0][:], pairs[i][1][:]
        rnd.shuffle(g)
        rnd.shuffle(r)
        shuffled_gens.append(" ".join(g))
        shuffled_refs.append(" ".join(r))
    moved = scorer.score(shuffled_gens, shuffled_refs)
    np.testing.assert_allclose(base.sym[order], moved.sym, atol=1e-6)
    np.testing.assert_allclose(base.backward[order], moved.backward, atol=1e-6)


@REAL
@given(pool_sentences)
def test_real_model_identical_texts_score_one(scorer, sents):
    t = " ".join(sents)
    assert scorer.score(t, t) == pytest.approx(1.0, abs=1e-5)


def test_a_pairs_score_does_not_depend_on_its_batch_companions(scorer, shared_data):
    """The promise is 1e-6, not bits (docs/reporting.md): a sentence's vector can differ in its
    last bits with the sentences batched beside it (padding length, kernel blocking; seen on
    AVX-512 CPUs), so one pair alone and the same pair among 1, 7 and 200 others of other
    lengths agree within 1e-6, on the real model."""
    import json

    rows = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for line, _ in zip(fh, range(201), strict=False):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            rows.append((rec["claim"] + " " + ev[0], " ".join(ev[1:4])))
    pair = ("CO2 traps heat. The planet warms.", "The planet warms because CO2 traps heat.")
    alone = scorer.score([pair[0]], [pair[1]])
    for k in (1, 7, 200):
        gens = [g for g, _ in rows[:k]]
        refs = [r for _, r in rows[:k]]
        mid = k // 2
        res = scorer.score(gens[:mid] + [pair[0]] + gens[mid:], refs[:mid] + [pair[1]] + refs[mid:])
        for field in ("forward", "backward", "sym"):
            got, want = getattr(res, field)[mid], getattr(alone, field)[0]
            assert abs(got - want) <= 1e-6, (k, field, got, want)
