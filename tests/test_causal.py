"""cec.causal: explicit cause -> effect links, checked against hand-annotated sentences."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cec.causal import CausalLink, extract_links, find_links

DATA = Path(__file__).parent / "data" / "causal_links.jsonl"
# rows of split "real" point into ../shared/data instead (benchmarks/bench_causal_links.py)
ALL_ROWS = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
ROWS = [r for r in ALL_ROWS if "text" in r]


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _f1(pred: str, gold: str) -> float:
    p, g = _tokens(pred), _tokens(gold)
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    return 0.0 if not common else 2 * common / (len(p) + len(g))


def _same(link: CausalLink, gold: dict) -> bool:
    return _f1(link.cause, gold["cause"]) >= 0.5 and _f1(link.effect, gold["effect"]) >= 0.5


def _stated(text: str) -> list[CausalLink]:
    """Connective links (the set in causal_links.jsonl annotates those only)."""
    return [link for link in extract_links(text) if not link.negated and link.kind == "connective"]


def test_annotated_set_is_large_and_varied():
    assert len(ROWS) >= 60
    assert sum(not r["links"] for r in ROWS) >= 20  # texts with no causal link
    forms = " ".join(r["form"] for r in ROWS)
    for word in ("so", "since", "as", "because", "due to", "xs", "fronted", "caused by"):
        assert word in forms


@pytest.mark.parametrize("row", [r for r in ROWS if r["split"] == "dev"], ids=lambda r: r["id"])
def test_dev_sentences_give_exactly_the_annotated_links(row):
    pred = _stated(row["text"])
    assert len(pred) == len(row["links"]), [str(p) for p in pred]
    for gold in row["links"]:
        assert any(_same(p, gold) for p in pred), (gold, [str(p) for p in pred])


def test_precision_and_recall_on_the_whole_set():
    n_pred = n_gold = ok_pred = ok_gold = reversed_ = 0
    for row in ROWS:
        pred, gold = _stated(row["text"]), row["links"]
        n_pred, n_gold = n_pred + len(pred), n_gold + len(gold)
        ok_pred += sum(any(_same(p, g) for g in gold) for p in pred)
        ok_gold += sum(any(_same(p, g) for p in pred) for g in gold)
        swapped = [{"cause": g["effect"], "effect": g["cause"]} for g in gold]
        reversed_ += sum(any(_same(p, g) for g in swapped) for p in pred)
    precision, recall = ok_pred / n_pred, ok_gold / n_gold
    assert precision >= 0.95, precision
    assert recall >= 0.9, recall
    assert reversed_ == 0  # never the wrong way round


@pytest.mark.parametrize(
    "text",
    [
        "Sea ice has declined since the late 1970s.",
        "Global temperatures have risen since the industrial revolution.",
        "Since then, emissions have continued to increase.",
        "The dog has been barking since the morning.",
        "The summer was so hot that many records were broken.",
        "Scientists have so far found no evidence for the claim.",
        "The so-called hiatus was a statistical artefact.",
        "Panels are installed so that households can generate power.",
        "A woman is riding a bike, so is her friend.",
        "Even so, the trend remains positive.",
        "There are many possible causes of the decline.",
        "Methane is around eighty times as potent as CO2.",
        "Thus far the data are incomplete.",
    ],
)
def test_tricky_non_causal_uses_give_no_link(text):
    assert _stated(text) == []


@pytest.mark.parametrize(
    ("text", "cause", "effect"),
    [
        (
            "The reef died, since the water had become too warm.",
            "the water had become too warm",
            "The reef died",
        ),
        (
            "Since the evidence refutes the claim, it is false.",
            "the evidence refutes the claim",
            "it is false",
        ),
        ("The children are outside since it is sunny.", "it is sunny", "The children are outside"),
        ("The ice melted so the sea rose.", "The ice melted", "the sea rose"),
    ],
)
def test_causal_since_and_so_are_found(text, cause, effect):
    (link,) = _stated(text)
    assert (link.cause, link.effect) == (cause, effect)


def test_cross_sentence_link_takes_previous_sentence_as_cause():
    links = find_links(
        ["Forests absorb CO2.", "This leads to lower concentrations.", "Therefore, warming slows."],
        verbs=False,
    )
    assert [(lk.cause, lk.effect, lk.sentences) for lk in links] == [
        ("Forests absorb CO2", "lower concentrations", (0, 1)),
        ("This leads to lower concentrations", "warming slows", (1, 2)),
    ]


def test_linking_adverb_with_no_previous_sentence_gives_no_link():
    assert find_links(["Therefore, the claim is false."]) == []
    assert find_links(["The claim is therefore false."]) == []
    assert [lk.sentences for lk in find_links(["CO2 rose.", "The claim is therefore true."])] == [
        (0, 1)
    ]


def test_chains_and_passive_voice():
    (a, b) = find_links(["Rising seas lead to flooding, which results in displacement."])
    assert (a.cause, a.effect, b.cause, b.effect) == (
        "Rising seas",
        "flooding",
        "flooding",
        "displacement",
    )
    (p,) = find_links(["Most of the warming was largely caused by human activity."])
    assert (p.cause, p.effect, p.connective) == (
        "human activity",
        "Most of the warming",
        "was largely caused by",
    )


def test_negation_is_flagged_not_dropped():
    (link,) = find_links(["Cosmic rays do not cause the recent warming."])
    assert link.negated and link.cause == "Cosmic rays"
    (link,) = find_links(["The flooding is not due to rainfall."])
    assert link.negated
    (link,) = find_links(["The flooding is due to rainfall."])
    assert not link.negated


@pytest.mark.parametrize(
    ("text", "negated"),
    [
        ("The claim is not supported because the data show no trend.", False),
        ("Sitting is n't always done because a person is tired.", True),
        ("Not all women wear sunglasses because they look good.", True),
        ("Just because a man is jumping does n't mean he is happy because he won.", True),
        ("Warming is not necessarily caused by the sun.", True),
        ("It does not necessarily mean that a fast current caused the issue.", True),
    ],
)
def test_negation_of_the_link_versus_a_negative_clause(text, negated):
    (link,) = find_links([text])
    assert link.negated is negated


def test_step_markers_and_unpunctuated_therefore():
    links = find_links(["Step 1 - The boy is barefoot.", "Step 2 - Therefore, he is at the beach."])
    assert [(lk.cause, lk.effect) for lk in links] == [
        ("The boy is barefoot", "he is at the beach")
    ]
    (link,) = find_links(["the man is inside therefore the man is not in the rain ."])
    assert (link.cause, link.effect, link.sentences) == (
        "the man is inside",
        "the man is not in the rain",
        (0,),
    )


def test_link_reports_are_plain_and_readable():
    (link,) = find_links(["Warming is driven by emissions."])
    assert link.to_dict() == {
        "cause": "emissions",
        "effect": "Warming",
        "connective": "is driven by",
        "sentences": [0],
        "negated": False,
        "kind": "connective",
    }
    assert str(link) == "[emissions] --is driven by--> [Warming]"


def test_long_text_with_many_connectives_is_handled():
    sentence = "CO2 rises, so heat is trapped because gases absorb infrared, " * 200 + "end."
    assert len(find_links([sentence], verbs=False)) == 400  # linear scan, no backtracking
    links = find_links([sentence])
    assert sum(lk.kind == "verb" for lk in links) == 200  # "gases absorb infrared" each time


def test_bad_input_is_named():
    with pytest.raises(TypeError, match="sentences"):
        find_links("one string")
    with pytest.raises(TypeError, match=r"sentences\[1\]"):
        find_links(["ok", 3])
    with pytest.raises(TypeError, match="text"):
        extract_links(None)


# --------------------------------------------------------------------------------------------
# verb-carried links (tests/data/verb_links.jsonl; its test half is for the benchmark only)
# --------------------------------------------------------------------------------------------
VERB_ROWS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "verb_links.jsonl").read_text().splitlines()
    if line.strip()
]


def _pairs(text: str, **kw) -> list[tuple[str, str, str]]:
    return [(lk.cause, lk.effect, lk.kind) for lk in extract_links(text, **kw) if not lk.negated]


@pytest.mark.parametrize(
    ("text", "cause", "effect"),
    [
        ("Aerosols reflect sunlight.", "Aerosols", "sunlight"),
        ("Insulin lowers blood sugar.", "Insulin", "blood sugar"),
        ("The ozone layer is thinned by CFCs.", "CFCs", "The ozone layer"),
        ("Beaches have been eroded by storm surges.", "storm surges", "Beaches"),
        ("Deep-sea vents can release hydrogen sulfide.", "Deep-sea vents", "hydrogen sulfide"),
        ("Earthquakes set off tsunamis.", "Earthquakes", "tsunamis"),
        ("Storms killed at least 290 people.", "Storms", "at least 290 people"),
        ("In 2010, the heat wave destroyed crops.", "the heat wave", "crops"),
        ("Studies show that soot darkens the snow.", "soot", "the snow"),
    ],
)
def test_verb_links_active_and_passive(text, cause, effect):
    assert _pairs(text) == [(cause, effect, "verb")]


def test_verb_links_relative_and_coordinated_subjects():
    assert _pairs("Volcanoes emit sulfur dioxide, which cools the planet.") == [
        ("Volcanoes", "sulfur dioxide", "verb"),
        ("sulfur dioxide", "the planet", "verb"),
    ]
    assert _pairs("Subsidies increase emissions and worsen climate change.") == [
        ("Subsidies", "emissions", "verb"),
        ("Subsidies", "climate change", "verb"),
    ]


@pytest.mark.parametrize(
    "text",
    [
        "Temperatures increased sharply in the 1990s.",  # intransitive
        "Global emissions increased 40 percent between 1990 and 2015.",  # a quantity
        "The land surface warmed by 0.9 °C.",  # "by" + quantity is not an agent
        "The increase in carbon dioxide is well documented.",  # noun
        "The reduced ice cover was visible from space.",  # adjective
        "The report was released in April.",  # passive without an agent
        "Heat waves are becoming more frequent.",  # "heat" is a noun here
        "Lower temperatures were recorded at higher altitudes.",
        "Governments adopted policies to reduce emissions.",  # a purpose, not a claim
        "Reducing emissions is hard.",  # a gerund: no stated cause
        "Fossil fuel subsidies are large.",  # "fuel" is a noun here
    ],
)
def test_no_verb_link_where_none_is_stated(text):
    assert [p for p in _pairs(text) if p[2] == "verb"] == []


@pytest.mark.parametrize(
    "text",
    [
        "Water vapor strengthens the effects of the other greenhouse gases.",
        "According to the WWF, the drying effect of dead trees fuels forest fires.",
    ],
)
def test_noun_phrase_the_effect_of_is_not_a_connective(text):
    """The noun phrase "the effects of X" is no link; "Y is the effect of X" is one."""
    assert [p for p in _pairs(text) if p[2] == "connective"] == []
    assert _pairs("Warming is a consequence of emissions.") == [
        ("emissions", "Warming", "connective")
    ]


def test_negated_verb_link_is_marked():
    (link,) = extract_links("Vaccines do not damage the immune system.")
    assert link.negated and link.kind == "verb"


def test_verbs_false_gives_the_connective_links_only():
    text = "Deforestation increases erosion because roots hold the soil."
    assert {k for _, _, k in _pairs(text)} == {"verb", "connective"}
    assert _pairs(text, verbs=False) == [
        ("roots hold the soil", "Deforestation increases erosion", "connective")
    ]
    with pytest.raises(TypeError, match="verbs"):
        find_links(["x"], verbs="yes")  # type: ignore[arg-type]


def test_verb_set_is_large_split_and_annotated_inside_its_text():
    with_links = [r for r in VERB_ROWS if r["links"]]
    assert len(with_links) >= 150
    assert {r["split"] for r in VERB_ROWS} == {"dev", "test"}
    assert {r["source"] for r in with_links} >= {"climate-fever", "esnli", "written"}
    for r in with_links:
        for g in r["links"]:
            assert g["cause"] in r["text"] and g["effect"] in r["text"], r["id"]
        assert r["reversal"] != r["text"] and r["voice"] and r["reworded"]


def test_verb_links_on_the_dev_half():
    """Precision and recall of verb-carried links on the dev half (the test half is scored by
    benchmarks/bench_causal_links.py --verbs test)."""
    rows = [r for r in VERB_ROWS if r["split"] == "dev"]
    n_pred = n_gold = ok_pred = ok_gold = reversed_ = 0
    for row in rows:
        gold = row["links"]
        pred = [lk for lk in extract_links(row["text"]) if not lk.negated]
        pred = [p for p in pred if p.kind == "verb" or any(_same(p, g) for g in gold)]
        n_pred, n_gold = n_pred + len(pred), n_gold + len(gold)
        ok_pred += sum(any(_same(p, g) for g in gold) for p in pred)
        ok_gold += sum(any(_same(p, g) for p in pred) for g in gold)
        swapped = [{"cause": g["effect"], "effect": g["cause"]} for g in gold]
        reversed_ += sum(any(_same(p, g) for g in swapped) for p in pred)
    assert ok_pred / n_pred >= 0.95 and ok_gold / n_gold >= 0.95
    assert reversed_ == 0
