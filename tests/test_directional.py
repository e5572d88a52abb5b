"""Direction-aware CEC (directional=True) with the real default model.

Explanations are written for these tests: for each connective form a reference, a faithful
paraphrase and the reference's causal reversal (same words, cause and effect swapped).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import cec
from cec.causal import CausalLink
from cec.directional import PENALTY, PairLinks, directional_matrix, match_links
from cec.signature import Signature

# (form, reference, faithful paraphrase, reversal)
TRIPLES = [
    (
        "causes",
        "Burning fossil fuels causes global warming.",
        "Global warming is caused by the burning of fossil fuels.",
        "Global warming causes the burning of fossil fuels.",
    ),
    (
        "leads to",
        "More CO2 in the atmosphere leads to rising temperatures.",
        "Increased atmospheric carbon dioxide makes temperatures go up.",
        "Rising temperatures lead to more CO2 in the atmosphere.",
    ),
    (
        "results in",
        "Deforestation results in soil erosion.",
        "Cutting down forests causes the soil to erode.",
        "Soil erosion results in deforestation.",
    ),
    (
        "so",
        "The ice sheets are melting, so sea levels are rising.",
        "Sea levels are going up because the ice sheets melt.",
        "Sea levels are rising, so the ice sheets are melting.",
    ),
    (
        "therefore",
        "The evidence contradicts the claim; therefore the claim is false.",
        "The claim is false because the evidence contradicts it.",
        "The claim is false; therefore the evidence contradicts the claim.",
    ),
    (
        "as a result, across sentences",
        "Greenhouse gases trap heat. As a result, the oceans warm.",
        "The oceans warm because greenhouse gases trap heat.",
        "The oceans warm. As a result, greenhouse gases trap heat.",
    ),
    (
        "because",
        "Sea levels are rising because the oceans are warming.",
        "Ocean warming makes sea levels rise.",
        "The oceans are warming because sea levels are rising.",
    ),
    (
        "due to",
        "Coral bleaching is due to higher water temperatures.",
        "Warmer water causes corals to bleach.",
        "Higher water temperatures are due to coral bleaching.",
    ),
    (
        "is driven by (passive)",
        "The rapid warming is driven by greenhouse gas emissions.",
        "Emissions of greenhouse gases cause the fast warming.",
        "Greenhouse gas emissions are driven by the rapid warming.",
    ),
    (
        "is a consequence of",
        "Ocean acidification is a consequence of rising CO2 levels.",
        "Rising CO2 levels make the oceans more acidic.",
        "Rising CO2 levels are a consequence of ocean acidification.",
    ),
    (
        "fronted because",
        "Because the air holds more water vapour, rainfall becomes heavier.",
        "Rain gets heavier since the air contains more water vapour.",
        "Because rainfall becomes heavier, the air holds more water vapour.",
    ),
    (
        "fronted due to",
        "Due to rising temperatures, glaciers are retreating.",
        "Glaciers are shrinking because temperatures are going up.",
        "Due to retreating glaciers, temperatures are rising.",
    ),
]
MARGIN = 0.15

NO_LINKS = [
    (
        "Carbon dioxide is a greenhouse gas. The Arctic warms fastest.",
        "The Arctic is warming faster than anywhere. CO2 is a greenhouse gas.",
    ),
    ("Sea ice has declined since the late 1970s.", "Arctic sea ice has shrunk for decades."),
    ("The summer was so hot that records fell.", "Many heat records were broken."),
    ("A man is playing a guitar.", "A person plays music on stage."),
]


@pytest.fixture(scope="module")
def directional(scorer):
    """A directional scorer sharing the session scorer's loaded model and splitter."""
    return cec.CEC(scorer.encoder, splitter=scorer.splitter, directional=True)


MIXED_GEN = (
    "The Arctic is warming quickly. Rising temperatures lead to more CO2. "
    "Polar bears are losing habitat."
)
MIXED_REF = (
    "The Arctic is warming quickly. More CO2 leads to rising temperatures. "
    "Polar bears are losing habitat."
)
ONE_SIDED = [
    ("CO2 traps heat, so the planet warms.", "The planet is warming."),  # links on one side
    ("The planet warms because CO2 traps heat.", "CO2 traps heat, so the planet warms."),
]
NEGATED = ("Warming does not cause more CO2.", "More CO2 causes warming.")

# every pair scored in one call per scorer (and once swapped): the model runs three times
N = len(TRIPLES)
PAIRS = (
    [(t[2], t[1]) for t in TRIPLES]  # paraphrases: 0 .. N-1
    + [(t[3], t[1]) for t in TRIPLES]  # reversals: N .. 2N-1
    + NO_LINKS
    + ONE_SIDED  # 2N .. 2N+5
    + [(MIXED_GEN, MIXED_REF), NEGATED]  # 2N+6, 2N+7
)
PARA, REV = slice(0, N), slice(N, 2 * N)
PLAIN = slice(2 * N, 2 * N + len(NO_LINKS) + len(ONE_SIDED))
MIXED, NEG = 2 * N + 6, 2 * N + 7


@pytest.fixture(scope="module")
def runs(scorer, directional):
    gens, refs = [g for g, _ in PAIRS], [r for _, r in PAIRS]
    return scorer.score(gens, refs), directional.score(gens, refs), directional.score(refs, gens)


@pytest.mark.parametrize("k", range(N), ids=[t[0] for t in TRIPLES])
def test_reversal_scores_clearly_below_a_faithful_paraphrase(runs, k):
    eq2, dirs, _ = runs
    eq2_para, eq2_rev = eq2.sym[PARA], eq2.sym[REV]
    dir_para, dir_rev = dirs.sym[PARA], dirs.sym[REV]
    # the problem: Eq. 2 ranks the reversal above the honest paraphrase
    assert eq2_rev[k] > eq2_para[k]
    # the fix
    assert dir_rev[k] < dir_para[k] - MARGIN
    # a faithful paraphrase keeps its Eq. 2 score; the reversal is reported as such
    assert dir_para[k] == eq2_para[k]
    report = dirs.details[N + k]
    assert len(report.reversed) == 1 and report.penalized
    assert not dirs.details[k].reversed


def test_text_without_links_scores_exactly_as_eq2(runs):
    eq2, dirs, _ = runs
    # no links; links on one side only; agreeing links: nothing changes, bit for bit
    assert np.array_equal(eq2.forward[PLAIN], dirs.forward[PLAIN])
    assert np.array_equal(eq2.backward[PLAIN], dirs.backward[PLAIN])
    assert np.array_equal(eq2.sym[PLAIN], dirs.sym[PLAIN])
    assert all(not d.reversed for d in dirs.details[PLAIN])
    assert dirs.details[PLAIN][-1].agreeing  # the agreeing link was matched, and did no harm


def test_swapping_generated_and_reference_keeps_the_score(runs):
    _, a, b = runs
    np.testing.assert_allclose(a.sym, b.sym, atol=1e-6)
    np.testing.assert_allclose(a.forward, b.backward, atol=1e-6)
    for x, y in zip(a.details, b.details, strict=True):
        assert len(x.reversed) == len(y.reversed)
        assert sorted(x.penalized) == sorted((j, i) for i, j in y.penalized)


def test_only_the_reversed_sentence_loses_its_contribution(scorer, runs):
    eq2, dirs, _ = runs
    report = dirs.details[MIXED]
    assert report.penalized == ((1, 1),)
    emb_g = scorer.encode(scorer.segment(MIXED_GEN))
    emb_r = scorer.encode(scorer.segment(MIXED_REF))
    expected = (emb_g @ emb_r.T).double().numpy()
    expected[1, 1] *= PENALTY
    assert dirs.forward[MIXED] == pytest.approx(expected.max(axis=1).mean(), abs=1e-6)
    assert dirs.backward[MIXED] == pytest.approx(expected.max(axis=0).mean(), abs=1e-6)
    # the two unlinked sentences still match themselves perfectly
    assert expected.max(axis=1)[[0, 2]] == pytest.approx([1.0, 1.0], abs=1e-5)
    assert report.eq2 == pytest.approx(eq2.sym[MIXED], abs=1e-9)
    assert eq2.sym[MIXED] - dirs.sym[MIXED] > 0.1


def test_scores_stay_in_range_and_are_never_raised(runs):
    eq2, dirs, _ = runs
    assert np.all(dirs.sym <= eq2.sym + 1e-12)
    assert np.all((dirs.sym >= -1) & (dirs.sym <= 1))


def test_negated_links_do_not_count_as_reversed(runs):
    eq2, dirs, _ = runs
    assert dirs.details[NEG].generated[0].negated
    assert dirs.details[NEG].matches == ()
    assert dirs.sym[NEG] == eq2.sym[NEG]


def test_best_reference_prefers_the_one_that_agrees(directional):
    gen = "More CO2 leads to rising temperatures."
    refs = ["Rising temperatures lead to more CO2.", "Higher CO2 causes warming."]
    res = directional.score([gen], [refs])
    assert res.best_ref[0] == 1
    assert not res.details[0].reversed


@pytest.mark.filterwarnings("ignore::cec.EmptyTextWarning")
def test_signature_records_the_option(scorer, directional):
    assert "dir:yes" in str(directional.signature)
    assert "dir" not in str(scorer.signature)
    res = directional.score(["", "a b."], ["", "a b."])  # also: empty pairs get no report
    assert res.details[0] is None and res.sym[0] == 0.0 and isinstance(res.details[1], PairLinks)
    assert "|dir:yes" in str(res.signature)
    assert Signature.parse(str(res.signature)) == res.signature


def test_default_path_has_no_details(scorer):
    res = scorer.score([TRIPLES[0][3]], [TRIPLES[0][1]])
    assert res.details is None


def test_functional_score_takes_the_option(scorer, directional):
    ref, rev = TRIPLES[1][1], TRIPLES[1][3]
    one = cec.score(rev, ref, model=scorer.encoder, splitter=scorer.splitter, directional=True)
    assert isinstance(one, float)
    assert one == pytest.approx(directional.score(rev, ref), abs=1e-9)
    assert one < scorer.score(rev, ref) - 0.3


def test_report_is_json_and_readable(runs):
    _, dirs, _ = runs
    report = dirs.details[N + 6]  # "because" reversed
    data = json.loads(json.dumps(report.to_dict()))
    assert data["matches"][0]["verdict"] == "reversed"
    assert data["generated"][0]["cause"] == "sea levels are rising"
    assert math.isclose(data["sym"], dirs.sym[N + 6], abs_tol=1e-9)
    text = report.format()
    assert "REVERSED" in text and "Eq. 2" in text


def test_bad_option_is_rejected_before_loading():
    with pytest.raises(TypeError, match="directional"):
        cec.CEC(model=lambda s: np.ones((len(s), 2)), directional="yes")


def test_matching_rules_on_hand_made_vectors():
    v = {w: np.eye(4)[k] for k, w in enumerate("abcd")}
    g = [CausalLink("a", "b", "causes", (0,)), CausalLink("c", "d", "causes", (1,))]
    r = [CausalLink("d", "c", "because", (0,))]
    (m,) = match_links(g, r, v)  # only the second generated link matches, reversed
    assert (m.generated, m.reference, m.verdict) == (1, 0, "reversed")
    assert match_links(g, [CausalLink("a", "d", "so", (0,))], v) == []  # half a match: none
    sim = np.array([[0.9, 0.2], [0.8, -0.3]])
    adjusted, pen = directional_matrix(sim, g, r, [m])
    assert pen == [(1, 0)] and adjusted[1, 0] == pytest.approx(0.8 * PENALTY)
    assert adjusted[0, 0] == 0.9  # other sentence pairs untouched


def test_explain_section_shows_links_and_goes_into_json(scorer):
    from cec.links_view import SECTION_TITLE, add_link_section

    gen, ref = MIXED_GEN, MIXED_REF
    alignment = scorer.align(gen, ref)
    section = add_link_section(scorer, alignment, gen, ref)
    text = alignment.format(sections=[section])
    assert f"{SECTION_TITLE}:" in text
    assert SECTION_TITLE not in alignment.format()  # shown only where it is passed
    assert "g1 ~ r1  REVERSED" in text and "(G2)" in text and "dir:yes" in text
    data = json.loads(json.dumps(alignment.to_dict()))
    links = data["extras"]["causal_links"]
    assert links["matches"][0]["verdict"] == "reversed"
    assert links["sym"] < links["eq2"] - 0.1
    assert PairLinks.from_dict(links).format() in text.replace("\n  ", "\n")


def test_verb_carried_reversal_is_caught_and_passive_paraphrase_kept():
    """Issue 15: "X lowers Y" against "Y lowers X" was near 1.0; the passive paraphrase keeps
    its Eq. 2 score bit for bit (its link agrees)."""
    import cec

    ref = "Insulin lowers blood sugar."
    scorer = cec.CEC(directional=True)
    plain = cec.CEC(scorer.encoder, splitter=scorer.splitter)
    rev = scorer.score(["Blood sugar lowers insulin."], [ref])
    para = scorer.score(["Blood sugar is lowered by insulin."], [ref])
    assert [m.verdict for m in rev.details[0].matches] == ["reversed"]
    assert [m.verdict for m in para.details[0].matches] == ["agree"]
    assert para.sym[0] == plain.score(["Blood sugar is lowered by insulin."], [ref]).sym[0]
    assert para.sym[0] > rev.sym[0]
    assert "(verb)" in rev.details[0].format()
