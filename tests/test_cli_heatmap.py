"""Heatmaps (issue 13.15): every sentence shown in full (wrapped, not cut), reversed links
marked, sizes from 1 x 1 to 20 x 20. Alignments are built from given matrices: the plot is the
unit under test here (the model's numbers are tested in test_align.py)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")

from cec.align import Alignment  # noqa: E402
from cec.signature import Signature  # noqa: E402

SIG = Signature(version="0", model="m", weights="", splitter="s", empty="zero")
LONG = (
    "This is a deliberately long generated sentence that keeps going well past forty characters "
    "so that any cut at a fixed width would lose its final word, which is zebra."
)


def _alignment(n: int, m: int, *, extras: dict | None = None, first: str = LONG) -> Alignment:
    rng = np.random.default_rng(n * 100 + m)
    sim = rng.uniform(0.0, 1.0, size=(n, m))
    gen = tuple([first] + [f"Generated sentence {i} about topic {i % 3}." for i in range(1, n)])
    ref = tuple(f"Reference sentence {j} ends with the word omega{j}." for j in range(m))
    fwd, bwd = float(sim.max(1).mean()), float(sim.max(0).mean())
    return Alignment(gen, ref, sim, 0.5, fwd, bwd, (fwd + bwd) / 2, False, 0, SIG, extras or {})


def _svg_text(path) -> str:
    root = ET.parse(path).getroot()
    return " ".join("".join(el.itertext()) for el in root.iter() if el.tag.endswith("text"))


def test_every_sentence_in_full_and_reversed_cells_marked(tmp_path):
    links = {"penalized": [[0, 1], [2, 0]], "matches": []}
    a = _alignment(3, 2, extras={"causal_links": links})
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text as <text>, searchable
        a.heatmap(tmp_path / "h.svg")
        _alignment(3, 2).heatmap(tmp_path / "plain.svg")
    text = " ".join(_svg_text(tmp_path / "h.svg").split())
    # every word of every sentence is there: wrapped, never cut at a fixed width
    for sentence in (*a.generated, *a.reference):
        for word in sentence.split():
            assert word in text, word
    assert "zebra." in text and "omega1." in text
    # two reversed cells: two "rev" marks and the legend line; none without the report
    assert text.count("rev") - text.count("reversed") >= 2
    assert "other way round" in text and "cosine similarity" in text
    plain = _svg_text(tmp_path / "plain.svg")
    assert "rev" not in plain.split() and "other way round" not in plain
    svg = (tmp_path / "h.svg").read_text()
    assert len(re.findall(r"stroke: ?#ff0000", svg)) >= 2  # the red outlines


@pytest.mark.parametrize("n,m", [(1, 1), (5, 3), (20, 20)])
def test_sizes_grow_with_the_matrix_and_keep_cells_readable(tmp_path, n, m):
    from PIL import Image

    path = _alignment(n, m).heatmap(tmp_path / f"h{n}x{m}.png")
    width, height = Image.open(path).size
    # at 120 dpi: at least ~0.4 inch per cell, plus room for the key under the matrix
    assert width >= 120 * 0.4 * m and height >= 120 * 0.4 * n
    assert width <= 120 * 30 and height <= 120 * 40
