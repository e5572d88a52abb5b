"""cec.CEC / cec.score held to Algorithm 1 of the paper and to DESIGN.md's input rules.

The reference implementation here (:func:`algorithm1`) is written from the paper: segment with
the scorer's own splitter, embed one pair's sentences at a time with the model itself, then
Python loops over cosine similarities. It shares no code with :mod:`cec.similarity`.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from encoders import hash_model, sentence_transformer_of

import cec
from cec.encode import (
    DEFAULT_MODEL,
    DEFAULT_SHA256,
    SentenceTransformerEncoder,
    TruncationWarning,
    default_model_dir,
    file_sha256,
)
from cec.result import CECResult, PairScore
from cec.scorer import EmptyTextWarning, get_scorer
from cec.signature import Signature

TOL = 1e-5

# Self-written texts, so that the core checks run without ../shared/data.
OWN_PAIRS = [
    (
        "Greenhouse gases such as CO2 trap outgoing heat. The trapped heat raises global "
        "temperatures. Warmer oceans expand and ice sheets melt, so sea levels rise.",
        "Sea levels rise because ice melts and warm water expands. CO2 and other greenhouse "
        "gases keep heat from escaping to space.",
    ),
    (
        "Dr. Hansen told the U.S. Senate in 1988 that warming had begun. The evidence "
        "supports the claim.",
        "The claim is supported: warming was already detectable in the 1980s.",
    ),
    (
        "Global temperatures have risen by about 1.1°C since 1850. Most of this is due to "
        "human emissions. Natural cycles cannot explain the trend. Therefore the claim is "
        "refuted.",
        "The claim is refuted. The observed warming of roughly 1.1°C is driven by human "
        "activity rather than natural variability.",
    ),
    (
        "- Arctic sea ice is shrinking\n- Polar bears hunt on sea ice\n- Less ice means less "
        "food for the bears",
        "Polar bears depend on sea ice for hunting, and that ice is disappearing as the "
        "Arctic warms.",
    ),
    ("The evidence is not enough to decide.", "There is not enough information."),
    (
        "Volcanoes emit far less CO2 than humans do. So they cannot be the main cause.",
        "Human emissions of carbon dioxide exceed volcanic emissions by about a hundred times. "
        "Volcanoes are therefore not what drives the current warming. The claim is false.",
    ),
]


# --------------------------------------------------------------------------------------------
# the literal Algorithm 1 (paper, section 3) and a cheap deterministic callable model
# --------------------------------------------------------------------------------------------
def _cos(u, v) -> float:
    return float(np.dot(u, v)) / (math.sqrt(float(np.dot(u, u))) * math.sqrt(float(np.dot(v, v))))


def algorithm1(scorer: cec.CEC, generated: str, reference: str, embed=None):
    """Algorithm 1 for one pair: returns (forward, backward, sym).

    ``embed`` maps a list of sentences to vectors; by default the sentence-transformers model
    itself (through :func:`model_embed`, which remembers vectors it has already computed).
    """
    gen_sents = scorer.segment(generated)
    ref_sents = scorer.segment(reference)
    vecs = [
        np.asarray(v, dtype=np.float64)
        for v in (embed or model_embed(scorer))(gen_sents + ref_sents)
    ]
    g, a = vecs[: len(gen_sents)], vecs[len(gen_sents) :]
    s_forward, s_backward = [], []
    for g_i in g:
        sim_i = [_cos(g_i, a_j) for a_j in a]
        s_forward.append(max(sim_i))
    for a_j in a:
        sim_j = [_cos(a_j, g_i) for g_i in g]
        s_backward.append(max(sim_j))
    forward = sum(s_forward) / len(g)
    backward = sum(s_backward) / len(a)
    return forward, backward, (forward + backward) / 2


_VECTORS: dict[tuple[int, str], np.ndarray] = {}


def model_embed(scorer: cec.CEC):
    """Sentences -> float64 vectors from sentence-transformers' own ``encode`` of the scorer's
    model folder (not cec's loading or encoding path)."""
    model = sentence_transformer_of(scorer.encoder)

    def embed(sentences: list[str]) -> list[np.ndarray]:
        missing = sorted({s for s in sentences if (id(model), s) not in _VECTORS})
        if missing:
            out = model.encode(missing, convert_to_numpy=True, show_progress_bar=False)
            for s, v in zip(missing, out, strict=True):
                _VECTORS[(id(model), s)] = np.asarray(v, dtype=np.float64)
        return [_VECTORS[(id(model), s)] for s in sentences]

    return embed


def prime(scorer: cec.CEC, texts) -> None:
    """Embed every sentence of ``texts`` with the model in one call (speed only)."""
    model_embed(scorer)([s for t in texts for s in scorer.segment(t)])


def assert_matches_algorithm1(scorer, pairs, result, embed=None):
    if embed is None:
        prime(scorer, [t for pair in pairs for t in pair])
    for k, (g, r) in enumerate(pairs):
        f, b, s = algorithm1(scorer, g, r, embed)
        assert result.forward[k] == pytest.approx(f, abs=TOL), (k, g, r)
        assert result.backward[k] == pytest.approx(b, abs=TOL), (k, g, r)
        assert result.sym[k] == pytest.approx(s, abs=TOL), (k, g, r)


# --------------------------------------------------------------------------------------------
# real texts from ../shared/data
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def climate_pairs(shared_data: Path) -> list[tuple[str, str]]:
    """Explanation-shaped paragraphs (1-6 evidence sentences) about the same claim."""
    rng = random.Random(0)
    records = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for line in fh:
            records.append(json.loads(line))
            if len(records) == 300:
                break
    pairs = []
    for rec in rng.sample(records, 20):
        ev = [e["evidence"] for e in rec["evidences"]]
        extra = [e["evidence"] for e in rng.choice(records)["evidences"]]
        gen = rng.sample(ev, rng.randint(1, 5))
        ref = rng.sample(ev + extra[:1], rng.randint(1, 6))
        pairs.append((" ".join(gen), " ".join(ref)))
    return pairs


@pytest.fixture(scope="module")
def esnli_items(shared_data: Path) -> list[list[str]]:
    """Three human explanations per e-SNLI dev item."""
    items = []
    with open(shared_data / "esnli" / "esnli_dev_3expl.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if len(rec["explanations"]) == 3 and all(e.strip() for e in rec["explanations"]):
                items.append(rec["explanations"])
            if len(items) == 16:
                break
    return items


# --------------------------------------------------------------------------------------------
# the score equals Algorithm 1
# --------------------------------------------------------------------------------------------
def test_own_texts_match_algorithm1(scorer):
    gens, refs = zip(*OWN_PAIRS, strict=True)
    result = scorer.score(list(gens), list(refs))
    assert all(len(scorer.segment(g)) >= 1 for g in gens)
    assert max(len(scorer.segment(g)) for g in gens) >= 3  # really multi-sentence
    assert_matches_algorithm1(scorer, OWN_PAIRS, result)


@pytest.fixture(scope="module")
def climate_result(scorer, climate_pairs) -> CECResult:
    return scorer.score([g for g, _ in climate_pairs], [r for _, r in climate_pairs])


def test_climate_fever_paragraphs_match_algorithm1(scorer, climate_pairs, climate_result):
    result = climate_result
    assert max(len(scorer.segment(r)) for _, r in climate_pairs) >= 4
    assert_matches_algorithm1(scorer, climate_pairs, result)
    assert result.n_empty == 0 and 0.2 < result.mean < 1.0


def test_esnli_explanations_match_algorithm1(scorer, esnli_items):
    pairs = [(e[0], e[1]) for e in esnli_items] + [(e[2], e[0]) for e in esnli_items]
    result = scorer.score([g for g, _ in pairs], [r for _, r in pairs])
    assert_matches_algorithm1(scorer, pairs, result)


def test_single_pair_is_a_float_equal_to_algorithm1(scorer):
    g, r = OWN_PAIRS[0]
    value = scorer.score(g, r)
    assert type(value) is float
    assert value == pytest.approx(algorithm1(scorer, g, r)[2], abs=TOL)


def test_identical_real_texts_score_one(scorer, climate_pairs):
    texts = [g for g, _ in climate_pairs[:6]] + [g for g, _ in OWN_PAIRS]
    result = scorer.score(texts, texts)
    np.testing.assert_allclose(result.sym, 1.0, atol=TOL)
    np.testing.assert_allclose(result.forward, 1.0, atol=TOL)


def test_swapping_sides_swaps_forward_and_backward(scorer):
    gens, refs = map(list, zip(*OWN_PAIRS, strict=True))
    ab = scorer.score(gens, refs)
    ba = scorer.score(refs, gens)
    np.testing.assert_allclose(ab.forward, ba.backward, atol=1e-6)
    np.testing.assert_allclose(ab.sym, ba.sym, atol=1e-6)


# --------------------------------------------------------------------------------------------
# input types and result types
# --------------------------------------------------------------------------------------------
def test_sequences_give_a_result_with_pair_scores(scorer):
    gens, refs = zip(*OWN_PAIRS[:3], strict=True)
    for g_in, r_in in [
        (list(gens), list(refs)),
        (tuple(gens), tuple(refs)),
        (np.array(gens), np.array(refs)),
        (iter(gens), iter(refs)),
    ]:
        result = scorer.score(g_in, r_in)
        assert isinstance(result, CECResult) and len(result) == 3
        pairs = list(result)
        assert all(isinstance(p, PairScore) for p in pairs)
        assert [p.sym for p in pairs] == pytest.approx(result.sym.tolist())
    assert result.mean == pytest.approx(float(np.mean(result.sym)))


def test_score_iter_equals_score_in_order(scorer):
    gens, refs = map(list, zip(*OWN_PAIRS, strict=True))
    whole = scorer.score(gens, refs)
    streamed = list(scorer.score_iter(zip(gens, refs, strict=True), chunk_size=4))
    assert len(streamed) == len(gens)
    np.testing.assert_allclose([p.sym for p in streamed], whole.sym, atol=1e-6)


def test_score_iter_names_the_bad_item(scorer):
    pairs = [("a b.", "a b.")] * 5 + ["not a pair"]
    with pytest.raises(TypeError, match="item 5"):
        list(scorer.score_iter(pairs, chunk_size=2))
    with pytest.raises(ValueError, match="chunk_size"):
        list(scorer.score_iter(pairs, chunk_size=0))


def test_zero_pairs_give_an_empty_result(scorer):
    result = scorer.score([], [])
    assert len(result) == 0 and result.n_empty == 0 and math.isnan(result.mean)


# --------------------------------------------------------------------------------------------
# bad input: TypeError / ValueError naming the argument, before the model loads
# --------------------------------------------------------------------------------------------
BAD_PAIRS = [
    (None, "text", TypeError, r"generated"),
    ("text", None, TypeError, r"reference"),
    (3, "text", TypeError, r"generated"),
    ("text", 3.5, TypeError, r"reference"),
    (b"bytes", "text", TypeError, r"generated"),
    (["a.", 7], ["a.", "b."], TypeError, r"generated\[1\]"),
    (["a."], [["b.", None]], TypeError, r"reference\[0\]\[1\]"),
    (["a.", "b."], ["a."], ValueError, r"generated has 2 items but reference has 1"),
    (["a."], "b.", TypeError, r"reference is a single string"),
    (["a."], [[]], ValueError, r"reference\[0\] is an empty list"),
    ("a.", [], ValueError, r"reference is an empty list"),
]


@pytest.mark.parametrize(("gen", "ref", "exc", "pattern"), BAD_PAIRS)
def test_bad_pairs_raise_before_the_model_loads(gen, ref, exc, pattern):
    fresh = cec.CEC(device="cpu")
    with pytest.raises(exc, match=pattern):
        fresh.score(gen, ref)
    with pytest.raises(exc, match=pattern):
        cec.score(gen, ref, model=fresh.encoder)
    assert fresh.encoder._model is None  # nothing was loaded


BAD_OPTIONS = [
    ({"model": "no-such-model-xyz-123"}, ValueError, r"model"),
    ({"model": "/no/such/dir"}, ValueError, r"model"),
    ({"model": 3.5}, TypeError, r"model"),
    ({"splitter": "no-such-splitter"}, ValueError, r"splitter"),
    ({"splitter": 5}, TypeError, r"splitter"),
    ({"empty": "maybe"}, ValueError, r"empty"),
    ({"max_memory": 10}, ValueError, r"max_memory"),
    ({"batch_size": 0}, ValueError, r"batch_size"),
    ({"device": "no-such-device"}, ValueError, r"device"),
]


@pytest.mark.parametrize(("options", "exc", "pattern"), BAD_OPTIONS)
def test_bad_options_raise_naming_the_option(options, exc, pattern):
    with pytest.raises(exc, match=pattern):
        cec.CEC(**options)
    with pytest.raises(exc, match=pattern):
        cec.score("a.", "a.", **options)


def test_segment_refuses_non_text(scorer):
    with pytest.raises(TypeError, match="text"):
        scorer.segment(None)


# --------------------------------------------------------------------------------------------
# empty texts and the empty policy
# --------------------------------------------------------------------------------------------
EMPTY_TEXTS = ["", "   ", "\n\t \n"]


@pytest.mark.parametrize("blank", EMPTY_TEXTS)
def test_empty_single_pair_scores_zero_with_a_warning(scorer, blank):
    with pytest.warns(EmptyTextWarning, match="1 of 1"):
        assert scorer.score(blank, "Heat is trapped.") == 0.0
    with pytest.warns(EmptyTextWarning):
        assert scorer.score("Heat is trapped.", blank) == 0.0


def test_empty_zero_policy_counts_and_keeps_others(scorer):
    gens = ["CO2 traps heat.", "", "Ice melts.", "  "]
    refs = ["Heat is trapped by CO2.", "Oceans warm.", "\n", "Seas rise."]
    with pytest.warns(EmptyTextWarning, match="3 of 4"):
        result = scorer.score(gens, refs)
    assert result.n_empty == 3 and result.empty.tolist() == [False, True, True, True]
    assert result.sym[1:].tolist() == [0.0, 0.0, 0.0]
    assert result.forward[1] == 0.0 and result.backward[3] == 0.0
    assert result.sym[0] == pytest.approx(algorithm1(scorer, gens[0], refs[0])[2], abs=TOL)
    assert result.mean == pytest.approx(result.sym[0] / 4)


def test_empty_nan_policy_leaves_pairs_out_of_the_mean(scorer):
    nan_scorer = cec.CEC(model=scorer.encoder, empty="nan")
    gens = ["CO2 traps heat.", "", "Ice melts. Seas rise."]
    refs = ["Heat is trapped by CO2.", "Oceans warm.", "Seas rise as ice melts."]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning under "nan"
        result = nan_scorer.score(gens, refs)
    assert result.n_empty == 1 and math.isnan(result.sym[1]) and math.isnan(result.forward[1])
    assert result.mean == pytest.approx((result.sym[0] + result.sym[2]) / 2)
    assert math.isnan(nan_scorer.score("", "Oceans warm."))
    assert result.to_dict()["per_item"]["sym"][1] is None
    assert str(result.signature).count("empty:nan") == 1


def test_empty_error_policy_names_side_and_index(scorer):
    strict = cec.CEC(model=scorer.encoder, empty="error")
    with pytest.raises(ValueError, match=r"generated\[1\]"):
        strict.score(["CO2 traps heat.", " "], ["Heat is trapped.", "Oceans warm."])
    with pytest.raises(ValueError, match=r"reference\[2\]"):
        strict.score(["a b.", "c d.", "e f."], ["a b.", "c d.", ""])
    with pytest.raises(ValueError, match="empty='error'"):
        strict.score("", "x y.")


def test_all_pairs_empty_needs_no_model():
    fresh = cec.CEC(device="cpu")
    with pytest.warns(EmptyTextWarning):
        result = fresh.score(["", " "], ["a.", ""])
    assert result.sym.tolist() == [0.0, 0.0] and result.n_empty == 2
    assert fresh.encoder._model is None


def test_an_empty_reference_among_several_is_skipped(scorer):
    with warnings.catch_warnings():
        warnings.simplefilter("error", EmptyTextWarning)
        result = scorer.score(["CO2 traps heat."], [["", "CO2 traps heat."]])
    assert result.n_empty == 0 and result.best_ref.tolist() == [1]
    assert result.sym[0] == pytest.approx(1.0, abs=TOL)


# --------------------------------------------------------------------------------------------
# texts longer than the model's window
# --------------------------------------------------------------------------------------------
def test_overlong_sentence_is_truncated_with_one_warning():
    encoder = SentenceTransformerEncoder(
        str(default_model_dir()),
        torch.device("cpu"),
        name=DEFAULT_MODEL,
        expected_sha256=DEFAULT_SHA256,
    )
    long_scorer = cec.CEC(model=encoder)
    # a long text of short sentences is not truncated: each sentence is encoded on its own
    long_text = " ".join(g for g, _ in OWN_PAIRS if "\n" not in g) * 4
    assert len(encoder.model.tokenizer(long_text)["input_ids"]) > 256
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        many = long_scorer.score([long_text], [OWN_PAIRS[0][1]])
    assert_matches_algorithm1(long_scorer, [(long_text, OWN_PAIRS[0][1])], many)
    words = [
        "carbon",
        "dioxide",
        "emissions",
        "from",
        "burning",
        "coal",
        "oil",
        "and",
        "gas",
        "keep",
        "warming",
        "the",
        "oceans",
        "and",
        "the",
        "air",
        "while",
        "ice",
        "sheets",
        "melt",
        "and",
        "seas",
        "rise",
    ]
    overlong = " ".join(words[k % len(words)] for k in range(600)) + "."
    assert len(long_scorer.segment(overlong)) == 1
    with pytest.warns(TruncationWarning, match=r"1 sentence\(s\).*window of 256"):
        first = long_scorer.score(
            [overlong, "Seas rise."], ["Oceans warm as CO2 rises.", "Seas rise."]
        )
    assert np.isfinite(first.sym).all() and first.n_empty == 0
    assert -1.0 <= first.sym[0] <= 1.0
    # the truncated sentence embeds as its first 256 tokens: Algorithm 1 agrees
    assert first.sym[0] == pytest.approx(
        algorithm1(long_scorer, overlong, "Oceans warm as CO2 rises.")[2], abs=TOL
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)  # warned once per scorer
        again = long_scorer.score(overlong, "Oceans warm as CO2 rises.")
    assert again == pytest.approx(first.sym[0], abs=1e-6)


# --------------------------------------------------------------------------------------------
# several references
# --------------------------------------------------------------------------------------------
def _check_best_ref(scorer, gens, refs, result):
    prime(scorer, [*gens, *(r for rs in refs for r in rs)])
    for k, (g, rs) in enumerate(zip(gens, refs, strict=True)):
        each = [algorithm1(scorer, g, r) for r in rs]
        best = max(range(len(rs)), key=lambda j: each[j][2])
        assert result.sym[k] == pytest.approx(each[best][2], abs=TOL)
        chosen = int(result.best_ref[k])
        # the reported reference is a best one, and forward/backward come from it
        assert each[chosen][2] == pytest.approx(each[best][2], abs=TOL)
        assert result.forward[k] == pytest.approx(each[chosen][0], abs=TOL)
        assert result.backward[k] == pytest.approx(each[chosen][1], abs=TOL)


def test_several_references_keep_the_best(scorer):
    gens = [OWN_PAIRS[0][0], OWN_PAIRS[2][0]]
    refs = [[OWN_PAIRS[4][1], OWN_PAIRS[0][1], OWN_PAIRS[1][1]], [OWN_PAIRS[2][1], "Ice melts."]]
    result = scorer.score(gens, refs)
    assert result.best_ref.tolist() == [1, 0]
    _check_best_ref(scorer, gens, refs, result)
    assert result.signature.nrefs == "var"
    single = scorer.score(gens[0], refs[0])
    assert single == pytest.approx(result.sym[0], abs=1e-6)


def test_esnli_three_references(scorer, esnli_items):
    gens = [items[0] for items in esnli_items]
    result = scorer.score(gens, esnli_items)  # each item against its own three explanations
    assert result.signature.nrefs == "3"
    # a generated text that is one of the references scores 1 against it
    np.testing.assert_allclose(result.sym, 1.0, atol=TOL)
    assert (result.best_ref == 0).all()
    others = [[items[1], items[2]] for items in esnli_items]
    result2 = scorer.score(gens, others)
    _check_best_ref(scorer, gens, others, result2)
    assert result2.signature.nrefs == "2"


# --------------------------------------------------------------------------------------------
# model identity: signature, weights hash, corrupted weights, callables
# --------------------------------------------------------------------------------------------
def test_result_signature_names_the_default_model(scorer):
    result = scorer.score([OWN_PAIRS[0][0]], [OWN_PAIRS[0][1]])
    sig = Signature.parse(str(result.signature))
    assert sig == result.signature
    assert sig.model == DEFAULT_MODEL and sig.weights == scorer.encoder.identity
    assert sig.truncation == "256" and "|trunc:256" in str(result.signature)
    assert sig.splitter == scorer.splitter.label and "nupunkt" in sig.splitter
    assert sig.empty == "zero" and sig.nrefs == "1"
    assert sig.version == cec.__version__ and sig.precision == "fp32"
    assert str(result).endswith(str(result.signature))


def test_default_weights_match_the_published_sha256(scorer):
    weights = default_model_dir() / "model.safetensors"
    assert file_sha256(weights) == DEFAULT_SHA256
    assert scorer.encoder.weights_hash == DEFAULT_SHA256[:8]


def test_corrupted_weights_are_refused(tmp_path):
    src = default_model_dir()
    copy = tmp_path / "model"
    shutil.copytree(src, copy)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as fh:  # flip one byte in the middle of the tensors
        fh.seek(weights.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    encoder = SentenceTransformerEncoder(
        str(copy), torch.device("cpu"), expected_sha256=DEFAULT_SHA256
    )
    bad = cec.CEC(model=encoder)
    with pytest.raises((RuntimeError, ValueError), match=r"model.*sha256"):
        bad.score("CO2 traps heat.", "Heat is trapped.")
    assert encoder._model is None  # the corrupted weights were never loaded


def test_callable_model_matches_algorithm1():
    hashed = cec.CEC(model=hash_model, device="cpu")
    gens, refs = map(list, zip(*OWN_PAIRS, strict=True))
    result = hashed.score(gens, refs)
    assert_matches_algorithm1(hashed, OWN_PAIRS, result, embed=hash_model)
    assert result.signature.model.startswith("custom:") and result.signature.weights == ""


def test_callable_returning_torch_or_lists_works():
    as_torch = cec.CEC(model=lambda s: torch.from_numpy(hash_model(s)), device="cpu")
    as_lists = cec.CEC(model=lambda s: hash_model(s).tolist(), device="cpu")
    g, r = OWN_PAIRS[0]
    assert as_torch.score(g, r) == pytest.approx(as_lists.score(g, r), abs=1e-6)


@pytest.mark.parametrize(
    "bad_fn",
    [
        lambda s: hash_model(s)[:-1],  # one row short
        lambda s: hash_model(s).ravel(),  # 1-D
        lambda s: hash_model(s)[None],  # 3-D
    ],
)
def test_callable_with_wrong_shape_raises_naming_model(bad_fn):
    with pytest.raises(ValueError, match="model"):
        cec.CEC(model=bad_fn, device="cpu").score("CO2 traps heat. Seas rise.", "Ice melts.")


# --------------------------------------------------------------------------------------------
# chunking and the cached scorer
# --------------------------------------------------------------------------------------------
def test_tiny_memory_budget_gives_the_same_scores(scorer, climate_pairs, climate_result):
    tiny = cec.CEC(model=scorer.encoder, max_memory=1024)  # one pair per chunk
    result = tiny.score([g for g, _ in climate_pairs], [r for _, r in climate_pairs])
    np.testing.assert_allclose(result.forward, climate_result.forward, atol=1e-6)
    np.testing.assert_allclose(result.backward, climate_result.backward, atol=1e-6)
    np.testing.assert_allclose(result.sym, climate_result.sym, atol=1e-6)


def test_tiny_memory_budget_own_texts(scorer):
    gens, refs = map(list, zip(*OWN_PAIRS, strict=True))
    tiny = cec.CEC(model=scorer.encoder, max_memory=1024)
    np.testing.assert_allclose(tiny.score(gens, refs).sym, scorer.score(gens, refs).sym, atol=1e-6)


def test_score_reuses_the_cached_scorer():
    options = {"model": hash_model, "splitter": "newline", "device": "cpu"}
    first = cec.score("CO2 traps heat.\nSeas rise.", "Seas rise.", **options)
    cached = get_scorer(**options)
    assert cached is get_scorer(**dict(reversed(list(options.items()))))
    second = cec.score("CO2 traps heat.\nSeas rise.", "Seas rise.", **options)
    assert get_scorer(**options) is cached and first == second
    assert cached.encoder.fn is hash_model and cached.splitter.name == "newline"
    assert get_scorer(**{**options, "empty": "nan"}) is not cached


def test_score_with_default_model_uses_the_cached_scorer():
    cached = get_scorer(device="cpu")
    value = cec.score(OWN_PAIRS[1][0], OWN_PAIRS[1][1], device="cpu")
    assert get_scorer(device="cpu") is cached
    assert cached.encoder._model is not None  # the score came from this object
    assert value == pytest.approx(cached.score(OWN_PAIRS[1][0], OWN_PAIRS[1][1]), abs=1e-6)


def test_functional_scorers_hold_their_callables_and_stay_bounded():
    import gc
    import weakref

    from cec import scorer as scorer_module

    def make(k):
        return lambda sentences: hash_model([f"{s} {k}" for s in sentences])

    first = make(0)
    kept = weakref.ref(first)
    get_scorer(model=first)
    del first
    gc.collect()
    # the cache key holds the callable: its id() cannot be reused by another function while
    # the scorer is cached, so a new callable never gets an old one's scorer (or vectors)
    assert kept() is not None
    models = [make(k) for k in range(1, 9)]
    scorers = [get_scorer(model=m) for m in models]
    assert get_scorer(model=models[0]) is scorers[0]  # found again, now most recently used
    assert len(scorer_module._SCORERS) <= scorer_module._MAX_SCORERS
    gc.collect()
    assert kept() is None  # the least recently used scorer went out, and its callable with it
    assert get_scorer(model=models[0]) is scorers[0]
