"""Sentence alignment behind a CEC score: which causal steps were matched, which were missed.

CEC is one number per pair; :func:`align` (and :meth:`cec.CEC.align`) returns the data under it:
the sentences on both sides (split exactly as :meth:`cec.CEC.score` splits them), their cosine
similarity matrix, each sentence's best match and score, and, under a threshold, the reference
sentences left *uncovered* and the generated sentences left *unsupported*. By construction
``forward`` is the mean of the generated sentences' best scores and ``backward`` the mean of the
reference sentences' best scores, so the detail always adds up to the score.

Examples:
    >>> import cec
    >>> a = cec.CEC().align("CO2 traps heat. Ice cream is tasty.",
    ...                     "CO2 traps heat. The planet warms.", threshold=0.5)
    >>> a.generated
    ('CO2 traps heat.', 'Ice cream is tasty.')
    >>> a.unsupported, a.uncovered
    ([1], [1])
    >>> bool(abs(a.forward - a.generated_score.mean()) < 1e-6)
    True
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cec.inputs import EmptyTextWarning, validate_pairs
from cec.readable import UnreadableTextWarning, unreadable
from cec.result import json_safe
from cec.signature import Signature, nrefs_label
from cec.similarity import exact_cosines

if TYPE_CHECKING:  # pragma: no cover
    from cec.scorer import CEC

__all__ = [
    "Alignment",
    "align",
    "DEFAULT_THRESHOLD",
    "Section",
    "render",
    "save_heatmap",
    "heatmap_title",
    "HEATMAP_SUFFIXES",
]

DEFAULT_THRESHOLD = 0.5
HEATMAP_SUFFIXES = (".png", ".svg", ".pdf")


@dataclass(frozen=True, eq=False)
class Alignment:
    """Sentence-level detail of one (generated, reference) pair.

    Attributes:
        generated: The generated explanation's sentences.
        reference: The (best) reference's sentences.
        similarity: Cosine similarities ``[len(generated), len(reference)]`` (float64).
        threshold: Best-match score under which a sentence counts as unsupported/uncovered.
        forward: Mean over generated sentences of their best score (the pair's CEC forward).
        backward: Mean over reference sentences of their best score (CEC backward).
        sym: ``(forward + backward) / 2``, the pair's CEC.
        empty: Whether a side had no sentences (scores then follow the empty policy).
        best_ref: Index of the reference aligned here when several were given.
        signature: The scorer's signature.
        extras: Further per-pair data added by other analyses (e.g. causal-direction links),
            shown by :func:`render` through the ``sections`` passed to it.
    """

    generated: tuple[str, ...]
    reference: tuple[str, ...]
    similarity: np.ndarray
    threshold: float
    forward: float
    backward: float
    sym: float
    empty: bool
    best_ref: int
    signature: Signature
    extras: dict[str, Any] = field(default_factory=dict)

    # -- best matches --------------------------------------------------------------------------
    @property
    def generated_match(self) -> np.ndarray:
        """Per generated sentence, index of its best reference sentence (-1 when none)."""
        if self.similarity.shape[1] == 0:
            return np.full(len(self.generated), -1, dtype=np.int64)
        return self.similarity.argmax(axis=1)

    @property
    def generated_score(self) -> np.ndarray:
        """Per generated sentence, its best cosine with a reference sentence (NaN when none)."""
        if self.similarity.shape[1] == 0:
            return np.full(len(self.generated), math.nan)
        return self.similarity.max(axis=1)

    @property
    def reference_match(self) -> np.ndarray:
        """Per reference sentence, index of its best generated sentence (-1 when none)."""
        if self.similarity.shape[0] == 0:
            return np.full(len(self.reference), -1, dtype=np.int64)
        return self.similarity.argmax(axis=0)

    @property
    def reference_score(self) -> np.ndarray:
        """Per reference sentence, its best cosine with a generated sentence (NaN when none)."""
        if self.similarity.shape[0] == 0:
            return np.full(len(self.reference), math.nan)
        return self.similarity.max(axis=0)

    @property
    def unsupported(self) -> list[int]:
        """Generated sentences whose best reference match is under the threshold (or absent)."""
        s = self.generated_score
        return [i for i in range(len(s)) if not s[i] >= self.threshold]

    @property
    def uncovered(self) -> list[int]:
        """Reference sentences whose best generated match is under the threshold (or absent)."""
        s = self.reference_score
        return [j for j in range(len(s)) if not s[j] >= self.threshold]

    # -- output --------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain Python types (JSON-serialisable; NaN becomes None)."""
        return {
            "cec": json_safe(self.sym),
            "forward": json_safe(self.forward),
            "backward": json_safe(self.backward),
            "empty": self.empty,
            "best_ref": self.best_ref,
            "threshold": self.threshold,
            "generated": [
                {"text": t, "best_match": int(m), "score": json_safe(float(s))}
                for t, m, s in zip(
                    self.generated, self.generated_match, self.generated_score, strict=True
                )
            ],
            "reference": [
                {"text": t, "best_match": int(m), "score": json_safe(float(s))}
                for t, m, s in zip(
                    self.reference, self.reference_match, self.reference_score, strict=True
                )
            ],
            "similarity": self.similarity.round(6).tolist(),
            "unsupported": self.unsupported,
            "uncovered": self.uncovered,
            "signature": str(self.signature),
            "extras": {k: v for k, v in self.extras.items() if _jsonable(v)},
        }

    def format(self, width: int = 72, sections: Sequence[tuple[str, Section]] = ()) -> str:
        """Readable multi-line text (see :func:`render`)."""
        return render(self, width=width, sections=sections)

    def __str__(self) -> str:
        return self.format()

    def heatmap(self, path: str | os.PathLike[str], **kwargs: Any) -> Path:
        """Write the similarity matrix as a heatmap image (see :func:`save_heatmap`)."""
        return save_heatmap(self, path, **kwargs)


def _jsonable(value: Any) -> bool:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


# ---------------------------------------------------------------------------------------------
# computation
# ---------------------------------------------------------------------------------------------
def align(
    scorer: CEC, generated: Any, reference: Any, *, threshold: float = DEFAULT_THRESHOLD
) -> Alignment | list[Alignment]:
    """Align the sentences of generated explanations with their references.

    Segmentation, embeddings and the empty policy are the scorer's, so each alignment's
    ``forward``/``backward``/``sym`` equal :meth:`cec.CEC.score` on the same pair (to float
    noise). With several references for an item, the one with the best ``sym`` is aligned (the
    first on ties), as in scoring. For a direction-aware scorer (``directional=True``) the
    alignment still shows the plain Eq. 2 matrix and scores, and its signature has no
    ``dir:yes``; the direction adjustment is reported separately (see :mod:`cec.directional`).

    Args:
        scorer: The :class:`cec.CEC` whose options to use.
        generated: A text, or a sequence of texts.
        reference: A text or a list of references for one text, or one entry per generated text.
        threshold: Best-match cosine under which a sentence counts as unsupported (generated)
            or uncovered (reference).

    Returns:
        One :class:`Alignment` for a single pair, else a list in input order.

    Raises:
        TypeError, ValueError: Bad input (as :meth:`cec.CEC.score`), a threshold that is not a
            number, or an empty side under ``empty="error"``.
    """

    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)):
        raise TypeError(f"threshold must be a number, got {type(threshold).__name__}")
    if math.isnan(threshold):
        raise ValueError("threshold must not be NaN")
    gens, refs, single = validate_pairs(generated, reference)
    gen_sents = [tuple(scorer.segment(g)) for g in gens]
    ref_sents = [[tuple(scorer.segment(r)) for r in rs] for rs in refs]
    unique: dict[str, int] = {}
    for sents in [*gen_sents, *(s for rs in ref_sents for s in rs)]:
        for s in sents:
            unique.setdefault(s, len(unique))
    if unique and getattr(scorer, "unreadable", "skip") == "skip":  # as the scorer does
        unknown = unreadable(scorer.encoder, list(unique))
        if unknown.any():
            drop = {s for s, u in zip(unique, unknown.tolist(), strict=True) if u}
            gen_sents = [tuple(s for s in g if s not in drop) for g in gen_sents]
            ref_sents = [[tuple(s for s in r if s not in drop) for r in rs] for rs in ref_sents]
            unique = {s: k for k, s in enumerate(s for s in unique if s not in drop)}
            warnings.warn(
                f"{len(drop)} sentence(s) have no token the model knows (all unknown tokens, "
                "e.g. emoji only) and were left out as no evidence",
                UnreadableTextWarning,
                stacklevel=3,
            )
    emb = scorer.encode(list(unique)).double().cpu().numpy() if unique else np.zeros((0, 1))
    signature = scorer.signature_for(gens, refs).with_(nrefs=nrefs_label(len(r) for r in refs))
    # the matrix and scores here are plain Eq. 2: drop the direction-aware marker, if any
    signature = signature.with_(extra=tuple(kv for kv in signature.extra if kv[0] != "dir"))

    out: list[Alignment] = []
    n_empty = 0
    for i, (g, rs) in enumerate(zip(gen_sents, ref_sents, strict=True)):
        options = []
        for k, r in enumerate(rs):
            gi, ri = [unique[s] for s in g], [unique[s] for s in r]
            sim = exact_cosines((emb[gi] @ emb[ri].T).reshape(len(g), len(r)), gi, ri)
            if len(g) and len(r):
                fwd, bwd = float(sim.max(axis=1).mean()), float(sim.max(axis=0).mean())
                options.append(((fwd + bwd) / 2, -k, fwd, bwd, sim, r))
        if options:
            sym, neg_k, fwd, bwd, sim, r = max(options, key=lambda o: (o[0], o[1]))
            out.append(
                Alignment(g, r, sim, float(threshold), fwd, bwd, sym, False, -neg_k, signature)
            )
            continue
        # empty: no reference with sentences on both sides
        n_empty += 1
        if scorer.empty == "error":
            side = "generated" if not g else "reference"
            raise ValueError(f"{side}[{i}] has no sentences after segmentation and empty='error'")
        fill = 0.0 if scorer.empty == "zero" else math.nan
        r = rs[0]
        sim = np.zeros((len(g), len(r)))
        out.append(Alignment(g, r, sim, float(threshold), fill, fill, fill, True, 0, signature))
    if n_empty and scorer.empty == "zero":
        warnings.warn(
            f"{n_empty} of {len(gens)} pair(s) have no sentences on a side and score 0 "
            "(empty='zero')",
            EmptyTextWarning,
            stacklevel=3,
        )
    return out[0] if single else out


# ---------------------------------------------------------------------------------------------
# text rendering, with room for extra sections
# ---------------------------------------------------------------------------------------------
#: An extra part of :func:`render`: ``(title, fn)``, ``fn(alignment)`` -> lines or ``None``.
Section = Callable[[Alignment], list[str] | None]


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def _num(x: float) -> str:
    return "  -  " if math.isnan(x) else f"{x:.3f}"


def render(
    alignment: Alignment,
    width: int = 72,
    matrix_limit: int = 12,
    sections: Sequence[tuple[str, Section]] = (),
) -> str:
    """Readable text: the scores, each sentence with its best match, what is uncovered or
    unsupported, the similarity matrix (when small), then the ``sections`` given: each a
    ``(title, fn)`` whose ``fn(alignment)`` returns the section's lines, or ``None`` to skip it.
    """
    a = alignment
    t = a.threshold
    lines = [
        f"CEC = {_num(a.sym)}  (forward {_num(a.forward)}, backward {_num(a.backward)})"
        + ("  [empty pair]" if a.empty else "")
        + (f"  [best of the references: #{a.best_ref}]" if a.best_ref else ""),
        f"signature: {a.signature}",
        "",
        f"Generated sentences, best reference match (forward; below {t:g} = unsupported):",
    ]
    for i, (text, m, s) in enumerate(
        zip(a.generated, a.generated_match, a.generated_score, strict=True), start=1
    ):
        mark = "  UNSUPPORTED" if i - 1 in a.unsupported else ""
        target = f"R{m + 1}" if m >= 0 else "--"
        lines.append(f"  G{i:<3} {_num(float(s))}  best {target:<4} {_clip(text, width)}{mark}")
    if not a.generated:
        lines.append("  (no sentences)")
    lines += ["", f"Reference sentences, best generated match (backward; below {t:g} = uncovered):"]
    for j, (text, m, s) in enumerate(
        zip(a.reference, a.reference_match, a.reference_score, strict=True), start=1
    ):
        mark = "  UNCOVERED" if j - 1 in a.uncovered else ""
        target = f"G{m + 1}" if m >= 0 else "--"
        lines.append(f"  R{j:<3} {_num(float(s))}  best {target:<4} {_clip(text, width)}{mark}")
    if not a.reference:
        lines.append("  (no sentences)")
    lines += [
        "",
        "Unsupported generated sentences: "
        + (", ".join(f"G{i + 1}" for i in a.unsupported) or "none"),
        "Uncovered reference sentences:   "
        + (", ".join(f"R{j + 1}" for j in a.uncovered) or "none"),
    ]
    n, m = a.similarity.shape
    if n and m and max(n, m) <= matrix_limit:
        lines += ["", "Similarity (rows G, columns R):"]
        lines.append("        " + "".join(f"{'R' + str(j + 1):>7}" for j in range(m)))
        for i in range(n):
            row = "".join(f"{a.similarity[i, j]:>7.3f}" for j in range(m))
            lines.append(f"  {'G' + str(i + 1):<5} {row}")
    for title, fn in sections:  # e.g. causal-direction links (cec.links_view)
        extra = fn(a)
        if extra is not None:
            lines += ["", f"{title}:", *extra]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# heatmap
# ---------------------------------------------------------------------------------------------
def heatmap_title(alignment: Alignment) -> str:
    """The heatmap's title: the score that was asked for, and Eq. 2 beside it where it differs.

    A plain alignment gives ``CEC 0.984 (fwd 0.984, bwd 0.984)``. With a direction report
    (``cec explain --directional`` puts it in ``alignment.extras["causal_links"]``) the
    directional score leads, since that is the score the user asked for, e.g.
    ``directional CEC 0.492 (Eq. 2 CEC 0.984: fwd 0.984, bwd 0.984)``; when the adjustment
    changed nothing the title says so (``directional CEC 0.901 = Eq. 2 (fwd ..., bwd ...)``).
    The matrix itself is always the Eq. 2 cosine matrix.
    """
    a = alignment
    parts = f"fwd {_num(a.forward)}, bwd {_num(a.backward)}"
    links = a.extras.get("causal_links") if isinstance(a.extras, dict) else None
    directional = (links or {}).get("sym")
    if directional is None:
        return f"CEC {_num(a.sym)} ({parts})"
    if _num(float(directional)) == _num(a.sym):
        return f"directional CEC {_num(float(directional))} = Eq. 2 ({parts})"
    return f"directional CEC {_num(float(directional))} (Eq. 2 CEC {_num(a.sym)}: {parts})"


def save_heatmap(
    alignment: Alignment,
    path: str | os.PathLike[str],
    *,
    label_width: int = 40,
    title: str | None = None,
) -> Path:
    """Write the sentence similarity matrix as an image; the format follows the suffix.

    Rows are the generated sentences (G1, G2, ...), columns the reference sentences (R1, ...);
    each cell shows its cosine. Under the matrix, a key lists every sentence in full, wrapped
    (never cut). The figure grows with the matrix, so 1 x 1 to 20 x 20 stay readable, and
    nothing (title, colour-bar label, key) is clipped. When the alignment carries a
    direction report (``cec explain --directional``), the cells of a cause -> effect link
    stated the other way round are outlined in red and marked "rev".

    Args:
        alignment: The pair's alignment.
        path: Output file ending in ``.png``, ``.svg`` or ``.pdf``.
        label_width: Shortest wrap width, in characters, of the sentences in the key.
        title: Figure title (default: the pair's scores, see :func:`heatmap_title`).

    Returns:
        The path written.

    Raises:
        ValueError: Unsupported suffix.
        ImportError: matplotlib is missing (``pip install ".[plot]"`` from a checkout).
    """
    import textwrap

    path = Path(path)
    if path.suffix.lower() not in HEATMAP_SUFFIXES:
        raise ValueError(
            f"heatmap path must end in one of {', '.join(HEATMAP_SUFFIXES)}, got {path.name!r}"
        )
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure
        from matplotlib.patches import Rectangle
    except ImportError as exc:
        raise ImportError(
            'heatmaps need matplotlib: pip install ".[plot]" (from a checkout) or '
            "pip install matplotlib",
            name="matplotlib",
        ) from exc

    a = alignment
    n, m = a.similarity.shape
    links = a.extras.get("causal_links") if isinstance(a.extras, dict) else None
    reversed_cells = {tuple(p) for p in (links or {}).get("penalized", [])}

    # layout in inches: the matrix, a colour bar, then a key of the sentences under it
    cell = 0.55 if max(n, m) <= 12 else 0.42
    value_size = 8 if max(n, m) <= 12 else 6.5
    mat_w, mat_h = max(m * cell, 2.0), max(n * cell, 2.0)
    left, right, top, bottom = 0.7, 1.4, 1.0, 0.75
    width = max(left + mat_w + right, 7.5)
    col_chars = max(label_width, int((width / 2 - 0.4) / 0.068))

    def key(prefix: str, sentences: tuple[str, ...]) -> list[str]:
        lines: list[str] = []
        for k, sent in enumerate(sentences):
            wrapped = textwrap.wrap(" ".join(sent.split()), col_chars - 5) or [""]
            lines.append(f"{prefix}{k + 1:<3} {wrapped[0]}")
            lines += [f"     {w}" for w in wrapped[1:]]
        return lines or ["(none)"]

    gen_key, ref_key = key("G", a.generated), key("R", a.reference)
    key_lines = max(len(gen_key), len(ref_key)) + 1
    key_h = 0.35 + 0.165 * key_lines
    height = top + mat_h + bottom + key_h
    fig = Figure(figsize=(width, height))
    x0 = (width - (mat_w + right - left)) / 2 - 0.2  # centre matrix + colour bar
    ax = fig.add_axes((x0 / width, (key_h + bottom) / height, mat_w / width, mat_h / height))
    cax = fig.add_axes(
        ((x0 + mat_w + 0.2) / width, (key_h + bottom) / height, 0.2 / width, mat_h / height)
    )
    data = a.similarity if n and m else np.zeros((max(n, 1), max(m, 1)))
    image = ax.imshow(
        data, vmin=min(0.0, float(data.min())), vmax=1.0, cmap="viridis", aspect="auto"
    )
    fig.colorbar(image, cax=cax).set_label("cosine similarity")
    ax.set_yticks(range(n), [f"G{i + 1}" for i in range(n)])
    ax.set_xticks(range(m), [f"R{j + 1}" for j in range(m)])
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xlabel("reference sentences")
    ax.set_ylabel("generated sentences")
    for i in range(n):
        for j in range(m):
            v = a.similarity[i, j]
            mark = (i, j) in reversed_cells
            ax.text(
                j,
                i,
                f"{v:.2f}" + ("\nrev" if mark else ""),
                ha="center",
                va="center",
                fontsize=value_size,
                color="black" if v > 0.6 else "white",
                fontweight="bold" if mark else "normal",
            )
            if mark:
                ax.add_patch(
                    Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", lw=2.5)
                )
    heading = title or heatmap_title(a)
    if reversed_cells:
        heading += "\nred outline, rev: a cause -> effect link stated the other way round"
    fig.suptitle(heading, fontsize=10, y=1 - 0.12 / height, va="top")
    key_top = (key_h - 0.1) / height
    fig.text(0.03, key_top, "\n".join(["Generated", *gen_key]), va="top", ha="left",
             fontsize=8, family="monospace")  # fmt: skip
    fig.text(0.52, key_top, "\n".join(["Reference", *ref_key]), va="top", ha="left",
             fontsize=8, family="monospace")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    # "tight" grows the canvas to every artist, so nothing is clipped whatever the labels
    fig.savefig(path, format=path.suffix.lower()[1:], dpi=120, bbox_inches="tight", pad_inches=0.15)
    return path
