"""Alignment detail (cec.align / CEC.align): it adds up to the score and names the right sentences."""

from __future__ import annotations

import json
import math
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from cec.align import Alignment, render

ROOT = Path(__file__).resolve().parents[1]

GEN = (
    "Burning fossil fuels releases carbon dioxide. The extra CO2 traps heat in the atmosphere. "
    "My cat enjoys sleeping on the sofa."
)
REF = (
    "Fossil fuel combustion emits carbon dioxide. Carbon dioxide traps heat in the atmosphere. "
    "Volcanic eruptions can cool the climate for a few years."
)


def _example_pairs() -> tuple[list[str], list[str]]:
    rows = [
        json.loads(line) for line in (ROOT / "examples" / "pairs.jsonl").read_text().splitlines()
    ]
    return [r["prediction"] for r in rows], [r["reference"] for r in rows]


def test_alignment_adds_up_to_the_scores(scorer):
    gens, refs = _example_pairs()
    gens, refs = [*gens, GEN], [*refs, REF]
    result = scorer.score(gens, refs)
    alignments = scorer.align(gens, refs)
    assert len(alignments) == len(gens)
    for a, ps, g in zip(alignments, result, gens, strict=True):
        assert isinstance(a, Alignment)
        # the sentences are the scorer's own segmentation
        assert list(a.generated) == scorer.segment(g)
        assert a.similarity.shape == (len(a.generated), len(a.reference))
        # mean of best matches == forward / backward, and both equal the scorer's numbers
        assert abs(a.generated_score.mean() - a.forward) < 1e-12
        assert abs(a.reference_score.mean() - a.backward) < 1e-12
        assert abs(a.forward - ps.forward) < 1e-6
        assert abs(a.backward - ps.backward) < 1e-6
        assert abs(a.sym - ps.sym) < 1e-6
        # best matches are the argmax of the matrix rows / columns
        assert np.array_equal(a.generated_match, a.similarity.argmax(axis=1))
        assert np.array_equal(a.reference_match, a.similarity.argmax(axis=0))


def test_uncovered_and_unsupported_are_the_off_topic_sentences(scorer):
    a = scorer.align(GEN, REF, threshold=0.5)
    assert a.generated == (
        "Burning fossil fuels releases carbon dioxide.",
        "The extra CO2 traps heat in the atmosphere.",
        "My cat enjoys sleeping on the sofa.",
    )
    assert a.unsupported == [2]  # the cat is in no reference sentence
    assert a.uncovered == [2]  # the volcano is in no generated sentence
    assert a.generated_match[:2].tolist() == [0, 1]  # each causal step finds its counterpart
    assert a.reference_match[:2].tolist() == [0, 1]
    # the threshold moves the sets: at -1 nothing is missing, above 1 everything is
    assert scorer.align(GEN, REF, threshold=-1.0).uncovered == []
    assert scorer.align(GEN, REF, threshold=1.01).unsupported == [0, 1, 2]


def test_several_references_align_the_best_one(scorer):
    refs = ["Volcanic eruptions can cool the climate.", REF]
    a = scorer.align(GEN, refs)
    best = scorer.score([GEN], [refs])
    assert a.best_ref == int(best.best_ref[0]) == 1
    assert a.reference == tuple(scorer.segment(REF))
    assert abs(a.sym - float(best.sym[0])) < 1e-6
    assert "nrefs:2" in str(a.signature)


def test_empty_side_follows_the_policy(scorer):
    with pytest.warns(UserWarning, match="no sentences"):
        a = scorer.align("", REF)
    assert a.empty and a.sym == 0.0
    assert a.generated == () and a.uncovered == [0, 1, 2] and a.unsupported == []
    assert a.generated_match.tolist() == [] and a.reference_match.tolist() == [-1, -1, -1]
    json.dumps(a.to_dict())  # still serialisable
    from cec import CEC

    strict = CEC(model=scorer.encoder, empty="error")
    with pytest.raises(ValueError, match=r"generated\[0\]"):
        strict.align("   ", REF)
    with pytest.raises(TypeError, match="threshold"):
        scorer.align(GEN, REF, threshold="high")


def test_to_dict_and_render(scorer):
    a = scorer.align(GEN, REF)
    d = json.loads(json.dumps(a.to_dict()))
    assert d["unsupported"] == [2] and d["uncovered"] == [2]
    assert [g["best_match"] for g in d["generated"]] == a.generated_match.tolist()
    assert math.isclose(d["forward"], a.forward)
    text = render(a)
    assert "G3" in text and "UNSUPPORTED" in text and "UNCOVERED" in text
    assert "Unsupported generated sentences: G3" in text
    assert "Uncovered reference sentences:   R3" in text
    assert str(a.signature) in text
    # extra sections (e.g. causal-direction links) plug into the same rendering
    section = ("Causal links", lambda al: [f"  {len(al.generated)} steps checked"])
    assert "Causal links:\n  3 steps checked" in render(a, sections=[section])
    assert "Causal links:\n  3 steps checked" in a.format(sections=[section])
    assert "Causal links" not in render(a)  # nothing is registered globally


def test_heatmap_png_and_svg(scorer, tmp_path):
    import matplotlib.image as mpimg

    a = scorer.align(GEN, REF)
    png = a.heatmap(tmp_path / "sim.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    svg = a.heatmap(tmp_path / "sub" / "sim.svg")
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    assert "0.91" in svg.read_text()  # the cell values are drawn
    with pytest.raises(ValueError, match="must end in"):
        a.heatmap(tmp_path / "sim.gif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        empty = scorer.align("", REF)
    assert empty.heatmap(tmp_path / "empty.png").stat().st_size > 0
