"""cec.signature: the reproducibility string, its parsing and what results carry."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cec
from cec.signature import Signature

SIG = Signature(
    version="0.1.0",
    model="all-MiniLM-L6-v2",
    weights="53aa5117",
    splitter="nupunkt-0.8.0",
    empty="zero",
    nrefs="1",
)


def test_string_form_is_sacrebleu_like():
    assert str(SIG) == (
        "cec:0.1.0|model:all-MiniLM-L6-v2@53aa5117|seg:nupunkt-0.8.0|empty:zero|nrefs:1|prec:fp32"
    )


def test_no_weights_hash_means_no_at_sign():
    sig = SIG.with_(model="custom:my_fn", weights="")
    assert "model:custom:my_fn|" in str(sig)
    assert Signature.parse(str(sig)) == sig


def test_extra_fields_keep_order_and_replace_by_key():
    sig = SIG.with_extra("dir", "yes").with_extra("cache", "on").with_extra("dir", "no")
    assert str(sig).endswith("|prec:fp32|cache:on|dir:no")
    assert sig.extra == (("cache", "on"), ("dir", "no"))
    assert Signature.parse(str(sig)) == sig
    assert sig.to_dict()["extra"] == {"cache": "on", "dir": "no"}


def test_with_changes_one_field_only():
    sig = SIG.with_(nrefs="var", empty="nan")
    assert (sig.nrefs, sig.empty, sig.model) == ("var", "nan", SIG.model)
    assert SIG.nrefs == "1"  # frozen: the original is unchanged


@pytest.mark.parametrize("bad", ["", "hello", "model:x", "cec:0.1.0|nocolon", "seg:a|empty:b"])
def test_parse_refuses_what_is_not_a_signature(bad):
    with pytest.raises(ValueError, match="signature"):
        Signature.parse(bad)


def test_parse_tolerates_surrounding_whitespace():
    assert Signature.parse(f"  {SIG}\n") == SIG


token = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="-_.+/"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=200, deadline=None)
@given(
    token,
    token,
    st.one_of(st.just(""), st.text(alphabet="0123456789abcdef", min_size=8, max_size=8)),
    token,
    st.sampled_from(["zero", "nan", "error"]),
    st.sampled_from(["1", "2", "var"]),
    st.sampled_from(["fp32", "fp16", "bf16", "int8"]),
    st.lists(
        st.tuples(token.map(lambda t: "x" + t), token), max_size=3, unique_by=lambda kv: kv[0]
    ),
)
def test_parse_inverts_str(version, model, weights, splitter, empty, nrefs, prec, extra):
    sig = Signature(version, model, weights, splitter, empty, nrefs, prec, tuple(extra))
    assert Signature.parse(str(sig)) == sig


def any_text(n: int) -> st.SearchStrategy[str]:
    """Any text, delimiters included; no whitespace at the ends (parse strips the string)."""
    return st.text(max_size=n).map(str.strip)


@settings(max_examples=300, deadline=None)
@given(
    any_text(15),
    any_text(15),
    any_text(10),
    any_text(10),
    st.lists(
        st.tuples(any_text(6).map(lambda t: "x" + t), any_text(8)),
        max_size=3,
        unique_by=lambda kv: kv[0],
    ),
)
def test_parse_inverts_str_for_any_text(model, weights, splitter, prec, extra):
    """Names and values with the delimiters themselves ('|', '@', ':', '%') read back exactly."""
    sig = Signature("0.1.0", model, weights, splitter, "zero", "1", prec, tuple(extra))
    text = str(sig)
    assert text.count("|") == 5 + len(extra)
    assert Signature.parse(text) == sig


def test_delimiters_in_names_are_escaped():
    sig = Signature("0.1.0", "team@org/model|v2", "53aa5117", "cec-1", "zero")
    assert str(sig).startswith("cec:0.1.0|model:team%40org/model%7Cv2@53aa5117|seg:cec-1|")
    assert Signature.parse(str(sig)).model == "team@org/model|v2"


def test_result_signature_follows_options(scorer):
    nan_scorer = cec.CEC(model=scorer.encoder, empty="nan", splitter="newline")
    result = nan_scorer.score(["CO2 traps heat."], [["Heat is trapped.", "Ice melts."]])
    sig = Signature.parse(str(result.signature))
    assert sig.model == "all-MiniLM-L6-v2" and sig.weights == scorer.encoder.identity
    assert sig.truncation == "256"
    assert sig.empty == "nan" and sig.nrefs == "2" and sig.splitter == "newline"
    assert sig.version == cec.__version__
    assert result.to_dict()["signature"] == str(result.signature)
    assert scorer.signature.weights == scorer.encoder.identity
