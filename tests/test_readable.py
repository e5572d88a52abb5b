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
