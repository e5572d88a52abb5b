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


def test_directional_heatmap_is_titled_with_the_score_asked_for(tmp_path, capsys):
    """Issue 25.9: `cec explain --directional --heatmap` titled the picture with Eq. 2 (0.984)
    while it outlined a reversal and the directional score was 0.492. The title leads with the
    directional score and gives Eq. 2 beside it (the real CLI, the real model, the saved SVG)."""
    import cec
    from cec.cli import main

    rev = "Rising temperatures lead to more CO2 in the atmosphere."
    ref = "More CO2 in the atmosphere leads to rising temperatures."
    eq2, directional = cec.score(rev, ref), cec.score(rev, ref, directional=True)
    assert directional < eq2 - 0.1  # the case of the issue: the two scores differ
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        assert (
            main(["explain", rev, ref, "--directional", "--heatmap", str(tmp_path / "d.svg")]) == 0
        )
        assert main(["explain", rev, ref, "--heatmap", str(tmp_path / "p.svg")]) == 0
    out = capsys.readouterr().out
    # the text output leads with the same score, then the Eq. 2 breakdown (was Eq. 2 first)
    head = re.match(r"directional CEC = (\d\.\d{3})  \(Eq\. 2 (\d\.\d{3}); 1 reversed link", out)
    assert head, out[:300]
    assert float(head.group(1)) == pytest.approx(directional, abs=6e-4)
    assert float(head.group(2)) == pytest.approx(eq2, abs=6e-4)
    assert out.splitlines()[1].endswith("|dir:yes")
    title = " ".join(_svg_text(tmp_path / "d.svg").split())
    lead = re.search(r"directional CEC (\d\.\d{3}) \(Eq\. 2 CEC (\d\.\d{3}):", title)
    assert lead, title
    assert float(lead.group(1)) == pytest.approx(directional, abs=6e-4)
    assert float(lead.group(2)) == pytest.approx(eq2, abs=6e-4)
    plain = " ".join(_svg_text(tmp_path / "p.svg").split())
    assert "directional" not in plain
    assert float(re.search(r"CEC (\d\.\d{3}) \(fwd", plain).group(1)) == pytest.approx(
        eq2, abs=6e-4
    )


def test_heatmap_title_with_an_unchanged_directional_score():
    from cec.align import heatmap_title

    a = _alignment(2, 2, extras={"causal_links": {"penalized": [], "sym": None}})
    assert heatmap_title(a).startswith("CEC ")  # no directional score: Eq. 2 alone
    a = _alignment(2, 2)
    a.extras["causal_links"] = {"penalized": [], "sym": a.sym}
    assert heatmap_title(a) == f"directional CEC {a.sym:.3f} = Eq. 2 " + (
        f"(fwd {a.forward:.3f}, bwd {a.backward:.3f})"
    )
