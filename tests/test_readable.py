"""Text the model cannot read: lone surrogates (bad input), sentences of unknown tokens only
(no evidence), texts mostly in a script the model was not trained on (a warning).

Every test here uses the real default model and tokenizer (issue 24, items 9-11).
"""

from __future__ import annotations

import json
import math
import warnings

import pytest

import cec

SURROGATE = "ok \udfff text."


# --------------------------------------------------------------------------------------------
# lone surrogates: refused as bad input, naming the argument and item, before the model loads
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "where"),
    [
        (lambda s: s.score(SURROGATE, "x"), "generated"),
        (lambda s: s.score("x", SURROGATE), "reference"),
        (lambda s: s.score(["a.", "b.", SURROGATE], ["x.", "y.", "z."]), r"generated\[2\]"),
        (lambda s: s.score(["a.", "b."], ["x.", ["y.", SURROGATE]]), r"reference\[1\]\[1\]"),
        (lambda s: s.score_segmented([["a", SURROGATE]], [["x"]]), r"generated\[0\]\[1\]"),
        (lambda s: s.score_segmented([["a"]], [[["x"], ["\ud800"]]]), r"reference\[0\]\[1\]\[0\]"),
        (lambda s: s.align(SURROGATE, "x"), "generated"),
    ],
)
def test_lone_surrogate_is_bad_input_naming_the_item_before_the_model_loads(call, where):
    scorer = cec.CEC(device="cpu")
    with pytest.raises(ValueError, match=where + " holds a lone surrogate") as info:
        call(scorer)
    assert "'\\udfff'" in str(info.value) or "'\\ud800'" in str(info.value)
    assert scorer.encoder._model is None and not scorer.encoder._fast  # nothing loaded


def test_lone_surrogate_in_the_functional_api_and_in_a_segmented_text():
    with pytest.raises(ValueError, match=r"generated\[0\]\[1\] holds a lone surrogate"):
        cec.score_segmented([["fine", "bad \udc80"]], [["fine"]])
    with pytest.raises(ValueError, match=r"sentences\[0\] holds a lone surrogate"):
        cec.Segmented(["\udfff"])
    # a surrogate pair written as two escapes in JSON is one valid character: accepted
    assert json.loads('"\\ud83d\\ude00"') == "😀"


def test_cli_names_file_and_line_of_a_lone_surrogate(tmp_path, capsys):
    from cec.cli import main

    path = tmp_path / "items.jsonl"
    path.write_text(
        '{"prediction": "Fine.", "reference": "Fine."}\n'
        '{"prediction": "Fine.", "reference": ["Fine.", "ok \\udfff text."]}\n',
        encoding="utf-8",
    )
    assert main(["score", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"{path}:2:" in err[0] and "'reference'[1]" in err[0]
    assert "lone surrogate" in err[0] and "TypeError" not in err[0]


# --------------------------------------------------------------------------------------------
# sentences with no token the model knows: no evidence
# --------------------------------------------------------------------------------------------
EMOJI_PAIRS = [("🔥", "🥶"), ("😀", "💀"), ("🔥🔥🔥", "🌍")]


def _caught(fn):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = fn()
    return out, seen


def _of(seen, category):
    return [w for w in seen if issubclass(w.category, category)]


def test_emoji_only_texts_are_no_evidence_not_a_perfect_match(scorer):
    from cec.readable import UnreadableTextWarning

    for gen, ref in EMOJI_PAIRS:  # each is [CLS] [UNK] [SEP] to the model: 1.0 before
        value, seen = _caught(lambda g=gen, r=ref: scorer.score(g, r))
        assert value == 0.0  # an empty pair under empty="zero"
        (warning,) = _of(seen, UnreadableTextWarning)
        assert "2 sentence(s) in 1 of 1 pair(s)" in str(warning.message)
    gens, refs = [g for g, _ in EMOJI_PAIRS], [r for _, r in EMOJI_PAIRS]
    res, seen = _caught(lambda: scorer.score([*gens, "Ice melts."], [*refs, "Ice melts."]))
    assert len(_of(seen, UnreadableTextWarning)) == 1  # once per call, with the count
    assert "6 sentence(s) in 3 of 4 pair(s)" in str(_of(seen, UnreadableTextWarning)[0].message)
    assert res.n_unreadable == 3 and res.unreadable.tolist() == [True, True, True, False]
    assert res.n_empty == 3 and res.to_dict()["n_unreadable"] == 3
    assert abs(res.sym[3] - 1.0) < 1e-6
    nan, _ = _caught(lambda: cec.score(gens, refs, empty="nan"))
    assert all(math.isnan(v) for v in nan.sym) and math.isnan(nan.mean)


def test_an_unreadable_sentence_is_left_out_of_a_readable_text(scorer):
    text = "CO2 traps heat. 🔥🔥"  # two sentences; the second is one [UNK]
    assert scorer.segment(text) == ["CO2 traps heat.", "🔥🔥"]
    value, _ = _caught(lambda: scorer.score(text, "CO2 traps heat."))
    assert abs(value - 1.0) < 1e-6  # as if "🔥🔥" were not there
    plain = scorer.score("CO2 traps heat.", "CO2 traps heat.")
    res, _ = _caught(lambda: scorer.score([text, "Sea ice 😀 declines."], ["CO2 traps heat."] * 2))
    assert abs(res.sym[0] - plain) < 1e-6 and res.unreadable.tolist() == [True, False]
    # an emoji inside a readable sentence stays: the sentence has known tokens
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scorer.score(["Sea ice 😀 declines."], ["Sea ice declines."])


def test_align_leaves_out_the_same_sentences_as_score(scorer):
    gen, ref = "CO2 traps heat. The planet warms. 🔥🔥", "The planet warms. 😀"
    value, _ = _caught(lambda: scorer.score(gen, ref))
    alignment, seen = _caught(lambda: scorer.align(gen, ref))
    assert abs(alignment.sym - value) < 1e-6
    assert alignment.generated == ("CO2 traps heat.", "The planet warms.")
    assert alignment.reference == ("The planet warms.",)
    assert any("no token the model knows" in str(w.message) for w in seen)
    empty, _ = _caught(lambda: scorer.align("🔥", "🥶"))
    assert empty.empty and empty.sym == 0.0


def test_keep_scores_unreadable_sentences_as_before_and_says_so_in_the_signature(scorer):
    keep = cec.CEC(device="cpu", unreadable="keep")
    keep.encoder = scorer.encoder  # the same loaded model
    assert abs(keep.score("🔥", "🥶") - 1.0) < 1e-6  # the unknown token's own embedding
    assert str(keep.signature).endswith("|unk:keep")
    assert "unk:" not in str(scorer.signature)  # the default rule is not shown
    assert cec.Signature.parse(str(keep.signature)) == keep.signature
    with pytest.raises(ValueError, match="unreadable must be one of"):
        cec.CEC(unreadable="drop")


def test_empty_error_names_the_unreadable_side(scorer):
    strict = cec.CEC(device="cpu", empty="error")
    strict.encoder = scorer.encoder
    with pytest.raises(ValueError, match=r"reference\[1\] has no sentence the model can read"):
        _caught(lambda: strict.score(["Ice melts.", "Ice melts."], ["Ice melts.", "💀 🔥"]))


def test_unreadable_uses_the_token_ids_of_both_tokenizers(scorer):
    """The torch path's transformers tokenizer and the fast path's `tokenizers` one agree."""
    from cec._fast import FastModel, FastTokenizer
    from cec.encode import resolve_encoder
    from cec.layout import plain_layout
    from cec.readable import unknown_token_id, unreadable

    sentences = ["🔥", "🔥🔥🔥", "🔥 🥶", "a🔥", "\u200b", "fire 🔥", "🌍.", "é", "東京", "x"]
    expected = [True, True, True, True, True, False, False, False, False, False]
    assert unreadable(scorer.encoder, sentences).tolist() == expected
    fast = resolve_encoder(None, "cpu")  # a fresh encoder whose tokenizer is the fast one
    folder = fast.local_dir()
    layout = plain_layout(folder)
    tok = FastTokenizer(folder, layout.do_lower_case, scorer.encoder._input_names(), 0)
    fast._fast = (FastModel(tok, int(layout.max_seq_length)), None)
    assert fast.tokenizer is tok and fast._model is None
    assert unknown_token_id(tok) == unknown_token_id(scorer.encoder.tokenizer) == 100
    assert unreadable(fast, sentences).tolist() == expected
    assert fast._model is None  # no torch model was loaded for it


@pytest.mark.slow
def test_emoji_pairs_on_the_real_fast_path(scorer, tmp_path, monkeypatch):
    """The ONNX Runtime fast start (prepared in a fresh cache folder) gives the same."""
    pytest.importorskip("onnxruntime")
    from cec import _fast

    monkeypatch.setenv("CEC_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CEC_FAST_START", "1")
    assert _fast.prepare(scorer.encoder)
    fast = cec.CEC(device="cpu")
    (value, seen), (mixed, _) = (
        _caught(lambda: fast.score("🔥", "🥶")),
        _caught(lambda: fast.score("CO2 traps heat. 🔥🔥", "CO2 traps heat.")),
    )
    assert fast.encoder._model is None and type(fast.encoder.tokenizer).__name__ == "FastTokenizer"
    assert value == 0.0 and any("no token the model knows" in str(w.message) for w in seen)
    assert abs(mixed - 1.0) < 1e-6


# --------------------------------------------------------------------------------------------
# texts mostly outside the model's language
# --------------------------------------------------------------------------------------------
FOREIGN = [
    ("東京は日本の首都です。明日は雨が降るでしょう。", "猫は魚が好きです。"),
    ("القطط تحب السمك.", "سوف تمطر غدا في المدينة."),
    ("Кошки любят рыбу.", "Завтра в городе будет дождь."),
]


def test_texts_in_another_script_warn_once_with_a_count(scorer):
    from cec.readable import ForeignScriptWarning

    gens = [g for g, _ in FOREIGN] + ["Cats like fish.", "Les chats aiment le poisson, déjà."]
    refs = [r for _, r in FOREIGN] + ["It will rain tomorrow.", "Il pleuvra demain à Zürich."]
    res, seen = _caught(lambda: scorer.score(gens, refs))
    (warning,) = _of(seen, ForeignScriptWarning)
    assert "3 of 5 pair(s)" in str(warning.message) and "all-MiniLM-L6-v2" in str(warning.message)
    assert min(res.sym[:3]) > 0.3 > res.sym[3]  # what the warning is about
    _, quiet = _caught(lambda: scorer.score(gens[3:], refs[3:]))  # English, French: Latin
    assert not _of(quiet, ForeignScriptWarning)
    # one foreign reference among several makes the item count
    _, one = _caught(lambda: scorer.score(["Cats like fish."], [["Cats like fish.", "猫。"]]))
    assert "1 of 1 pair(s)" in str(_of(one, ForeignScriptWarning)[0].message)


def test_no_script_warning_for_a_model_that_is_not_english_only():
    import numpy as np

    from cec.readable import ForeignScriptWarning, reads_latin_only

    enc = cec.CallableEncoder(lambda s: np.ones((len(s), 4)), name="ones", version="1")
    assert not reads_latin_only(enc)
    _, seen = _caught(lambda: cec.score(FOREIGN[0][0], FOREIGN[0][1], model=enc))
    assert not _of(seen, ForeignScriptWarning)


def test_foreign_share_counts_letters_by_script():
    from cec.readable import foreign_share

    assert foreign_share("Sea ice declines.") == 0.0
    assert foreign_share("Ærøskøbing, Łódź, São Paulo, Nguyễn, Straße.") == 0.0
    assert foreign_share("Кошки любят рыбу.") == 1.0
    assert foreign_share("CO2 (二酸化炭素) rises") == pytest.approx(5 / 12)  # 5 of 12 letters
    assert foreign_share("🔥🔥 123 !!") == 0.0  # no letters at all
