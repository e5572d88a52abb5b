"""Sentence segmentation: the default on the hand-made case set, every splitter's contract."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cec.segment import (
    _MARKER,
    DEFAULT_SPLITTER,
    Splitter,
    available_splitters,
    get_splitter,
    refine,
    to_blocks,
    with_rules,
)

CASES_PATH = Path(__file__).parent / "data" / "segment_cases.jsonl"
CASES = [json.loads(line) for line in CASES_PATH.read_text(encoding="utf-8").splitlines() if line]
MUST = [c for c in CASES if c["must"]]
# The categories issue 2 names; every one must have must-pass cases in the set.
ISSUE_CATEGORIES = {
    "abbreviations",
    "decimals_units",
    "p_values",
    "quotes_parens",
    "ellipses",
    "bullets",
    "numbered",
    "no_final_period",
    "whitespace",
    "hard_wrap",
    "climate_fever",
    "esnli",
    "question_exclamation",
    "initials",
    "times",
    "urls_emails",
    "number_start",
}
ENGINES = ["cec", "nupunkt", "punkt", "pysbd", "newline", "none", "pysbd+rules", "punkt+rules"]
_WS = re.compile(r"\s+")


def norm(sentences: list[str]) -> list[str]:
    return [_WS.sub(" ", s).strip() for s in sentences]


def test_case_set_is_large_and_covers_the_issue_categories():
    assert len(CASES) >= 80
    assert len({c["id"] for c in CASES}) == len(CASES)
    covered = {c["category"] for c in MUST}
    assert covered >= ISSUE_CATEGORIES, ISSUE_CATEGORIES - covered
    for case in CASES:
        assert isinstance(case["text"], str)
        assert case["expected"] and all(isinstance(s, str) and s for s in case["expected"])


@pytest.mark.parametrize("case", MUST, ids=[c["id"] for c in MUST])
def test_default_passes_must_cases(case):
    assert norm(get_splitter()(case["text"])) == norm(case["expected"])


def test_default_is_cec_on_nupunkt():
    split = get_splitter()
    assert DEFAULT_SPLITTER == "cec"
    assert split is get_splitter("default") is get_splitter("cec")
    assert split.name == "cec"
    assert split.label.startswith("cec-1+nupunkt-")


def test_rules_fix_cases_the_bare_engine_misses():
    """The reason the default is nupunkt + rules: these fail with bare nupunkt."""
    bare, default = get_splitter("nupunkt"), get_splitter()
    texts = {
        "The sea rose 2 m. Coastal towns were abandoned.": 2,
        "The storm hit at 5 p.m. Power failed soon after.": 2,
        "The main driver is human. Volcanoes matter less.": 2,
        "a dog is an animal ; a cat is an animal ; both are pets": 3,
    }
    for text, n in texts.items():
        assert len(bare(text)) < n
        assert len(default(text)) == n


@pytest.mark.parametrize("name", ENGINES)
def test_every_named_splitter_returns_stripped_nonempty_strings(name):
    split = get_splitter(name)
    assert isinstance(split, Splitter)
    text = "  Dr. Smith arrived at 5 p.m. today.  He was late!\n\n- Ice melts\n- seas rise  \n"
    out = split(text)
    assert isinstance(out, list) and out
    assert all(isinstance(s, str) and s and s == s.strip() for s in out)
    assert split("") == []
    assert split(" \n\t \n ") == []


@pytest.mark.parametrize("name", ["cec", "nupunkt", "punkt", "pysbd", "pysbd+rules"])
def test_sentence_engines_split_sentences_and_lists(name):
    split = get_splitter(name)
    assert split("Dr. Smith arrived. He was late.") == ["Dr. Smith arrived.", "He was late."]
    assert split("1. Heat rises\n2. Ice melts") == ["Heat rises", "Ice melts"]


def test_none_keeps_the_whole_text():
    text = "  One. Two.\n- three\n\nFour  "
    assert get_splitter("none")(text) == [text.strip()]


def test_newline_splits_only_at_line_blocks():
    split = get_splitter("newline")
    assert split("One. Two! Three?\nFour. Five") == ["One. Two! Three?", "Four. Five"]
    assert split("- a. b\n- c") == ["a. b", "c"]
    assert split("wrapped line of the\nsame sentence. Next.") == [
        "wrapped line of the same sentence. Next."
    ]


def test_callable_splitter_runs_on_each_block():
    def on_pipes(block: str) -> list[str]:
        return block.split("|")

    split = get_splitter(on_pipes)
    assert split.name == "custom:test_callable_splitter_runs_on_each_block.<locals>.on_pipes"
    assert split.version == ""
    assert split("a | b|\n- c|  d ") == ["a", "b", "c", "d"]


def test_callable_returning_non_str_raises_type_error():
    split = get_splitter(lambda block: [block, 3])
    with pytest.raises(TypeError, match="returned int, expected str"):
        split("Some text.")


def test_unknown_name_raises_value_error_naming_splitter():
    with pytest.raises(ValueError, match=r"^splitter: unknown splitter 'spacy'.*nupunkt"):
        get_splitter("spacy")
    with pytest.raises(ValueError, match="splitter"):
        get_splitter("cec+rules")
    with pytest.raises(ValueError, match="splitter"):
        get_splitter("nosuch+rules")


@pytest.mark.parametrize("bad", [3, 2.5, b"nupunkt", ["nupunkt"]])
def test_non_callable_raises_type_error_naming_splitter(bad):
    with pytest.raises(TypeError, match="^splitter must be a name or a callable"):
        get_splitter(bad)


def test_available_splitters_lists_the_registry():
    assert available_splitters() == ["cec", "newline", "none", "nupunkt", "punkt", "pysbd"]


def test_with_rules_names_and_versions_the_wrapped_engine():
    split = with_rules(get_splitter("punkt"))
    assert split.name == "punkt+rules"
    assert split.version.startswith("1+punkt-")
    assert with_rules(get_splitter("punkt"), name="mine").name == "mine"
    assert get_splitter("punkt+rules").label == split.label


def test_to_blocks_markers_initials_and_hard_wraps():
    blocks = to_blocks("- a\n* b\n• c\n1. d\n2) e\n(f) g\nh) i\nj. k\niv. l")
    assert blocks == ["a", "b", "c", "d", "e", "g", "i", "k", "l"]
    assert to_blocks("J. R. R. Tolkien wrote.\nG. S. Callendar too.") == [
        "J. R. R. Tolkien wrote.",
        "G. S. Callendar too.",
    ]
    assert to_blocks("written by the\nIPCC in 2021.") == ["written by the IPCC in 2021."]
    assert to_blocks("carbon dioxide,\nMethane and others.") == [
        "carbon dioxide, Methane and others."
    ]
    assert to_blocks("Summary\nIt is long.") == ["Summary", "It is long."]
    assert to_blocks("Causes:\nemissions") == ["Causes:", "emissions"]
    assert to_blocks("1.5°C is the limit.\n2020 was hot.") == [
        "1.5°C is the limit.",
        "2020 was hot.",
    ]


def test_refine_protects_abbreviations_and_keeps_every_character():
    kept = [
        "Smith et al. Found it.",
        "Costs rose approx. Twenty percent.",
        "See p. 12 and Fig. 3 vs. Table No. 4.",
        "Gases, e.g. CO2, i.e. Methane too.",
        "It was 5 p.m. EST then.",
        "Meet at 5 p.m. Monday.",
        "Ice melts; seas rise.",
    ]
    for sentence in kept:
        assert refine([sentence]) == [sentence]
    assert refine(["Cats eat fish. Dogs eat meat.  "]) == ["Cats eat fish.", "Dogs eat meat."]
    assert refine(['He said "warm." Then left.']) == ['He said "warm."', "Then left."]
    assert refine(["Rose 3\u00a0km. Then fell."]) == ["Rose 3\u00a0km.", "Then fell."]
    assert refine(["", "  "]) == []


def _nonws(text: str) -> str:
    return _WS.sub("", text)


def _without_markers(text: str) -> str:
    """Non-whitespace characters of ``text`` minus the list marker at the start of each line."""
    parts = []
    for raw in text.splitlines():
        line = raw.strip()
        marker = _MARKER.match(line)
        parts.append(_nonws(line[marker.end() :] if marker else line))
    return "".join(parts)


_TOKENS = [
    *"aAbBeEgIiJmMpSsTxz0159 .,;!?:\"'()[]-*•…%°$",
    " ",
    ". ",
    " ; ",
    "\n",
    "\n- ",
    "\n1. ",
    "\t",
    "\u00a0",
    "e.g.",
    "U.S.",
    "p.m.",
    "2 m. ",
    "word",
    "the",
]
_TEXT = st.lists(st.sampled_from(_TOKENS), max_size=60).map("".join)


@pytest.mark.parametrize("name", ["cec", "nupunkt", "punkt", "newline", "pysbd+rules"])
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=_TEXT)
def test_property_only_whitespace_and_list_markers_are_removed(name, text):
    """Joining the sentences gives back every non-whitespace character, in order, except the
    list markers stripped at line starts."""
    out = get_splitter(name)(text)
    assert all(s and s == s.strip() for s in out)
    assert _nonws("".join(out)) == _without_markers(text)


@settings(max_examples=50, deadline=None)
@given(text=_TEXT)
def test_property_none_keeps_everything(text):
    out = get_splitter("none")(text)
    assert out == ([text.strip()] if text.strip() else [])
