"""Direction-aware CEC (``directional=True``): a reversed cause -> effect link lowers the score.

Eq. 2 compares whole sentences, and a sentence and its causal reversal ("more CO2 leads to
rising temperatures" / "rising temperatures lead to more CO2") embed almost identically. The
directional score keeps Eq. 2 and changes one thing, the similarity of sentence pairs that state
the same link in opposite directions:

1. Links are found in each explanation with :mod:`cec.causal` (explicit connectives and
   causative verbs: "Aerosols reflect sunlight").
   Negated links ("does not cause") are reported but not used.
2. Each link's cause and effect spans are embedded with the scorer's own encoder. For a
   generated link ``(c, e)`` and a reference link ``(c', e')``::

       straight = min(cos(c, c'), cos(e, e'))     # same direction: cause~cause, effect~effect
       crossed  = min(cos(c, e'), cos(e, c'))     # opposite: cause~effect, effect~cause

   A pair of links *matches* when ``max(straight, crossed) >= MATCH_THRESHOLD`` and each is the
   other's best match (mutual best, ties to the first). A match is *reversed* when
   ``crossed >= straight + REVERSAL_MARGIN``, else *agreeing*.
3. For every reversed match, every (generated sentence, reference sentence) pair the two links
   span has its cosine ``s`` replaced by ``PENALTY * s`` when ``s > 0`` (unchanged otherwise).
   Eq. 2 (best match per sentence, mean both ways, average) then runs on that matrix.

So a pair with no reversed match keeps its Eq. 2 score exactly (the kernel's own number), every
sentence outside a reversed link keeps its Eq. 2 row and column, the score stays in [-1, 1], and
swapping generated and reference transposes everything, which leaves the score unchanged.

Examples:
    >>> import cec
    >>> scorer = cec.CEC(directional=True)
    >>> ref = "More CO2 leads to rising temperatures."
    >>> res = scorer.score(["Rising temperatures lead to more CO2."], [ref])
    >>> print(res.details[0].format())  # doctest: +ELLIPSIS
    generated links (gN; in sentence GN):
      g1 [Rising temperatures] --lead to--> [more CO2]  (G1)
    reference links (rN; in sentence RN):
      r1 [More CO2] --leads to--> [rising temperatures]  (R1)
    matches:
      g1 ~ r1  REVERSED  (straight 0.31, crossed 1.00)
    score: Eq. 2 0.986 -> directional 0.493 (1 reversed, 0 agreeing)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from cec.similarity import exact_cosines, to_numpy

if TYPE_CHECKING:  # cec.causal compiles its patterns on import: loaded when links are needed
    from cec.causal import CausalLink

__all__ = [
    "MATCH_THRESHOLD",
    "REVERSAL_MARGIN",
    "PENALTY",
    "LinkMatch",
    "PairLinks",
    "match_links",
    "directional_matrix",
    "apply_directional",
]

#: Least cosine both parts of a link must reach with the other link's parts (in one of the two
#: alignments) for the links to count as the same link.
MATCH_THRESHOLD = 0.5
#: How much better the crossed alignment must be than the straight one to call a match reversed.
REVERSAL_MARGIN = 0.1
#: Factor applied to the (positive) cosine of sentence pairs that hold a reversed match.
PENALTY = 0.5


@dataclass(frozen=True)
class LinkMatch:
    """A generated link and a reference link that state the same relation.

    Attributes:
        generated: Index into :attr:`PairLinks.generated`.
        reference: Index into :attr:`PairLinks.reference`.
        verdict: ``"agree"`` or ``"reversed"``.
        straight: ``min(cos(cause, cause'), cos(effect, effect'))``.
        crossed: ``min(cos(cause, effect'), cos(effect, cause'))``.
    """

    generated: int
    reference: int
    verdict: str
    straight: float
    crossed: float

    @property
    def reversed(self) -> bool:
        return self.verdict == "reversed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated": self.generated,
            "reference": self.reference,
            "verdict": self.verdict,
            "straight": round(self.straight, 6),
            "crossed": round(self.crossed, 6),
        }


@dataclass(frozen=True)
class PairLinks:
    """Why a pair's directional score differs from Eq. 2 (or does not).

    Attributes:
        generated: Links found in the generated explanation.
        reference: Links found in the reference explanation.
        matches: Matched link pairs with their verdicts.
        penalized: ``(generated sentence, reference sentence)`` index pairs whose cosine was
            scaled by :data:`PENALTY`.
        eq2: The pair's Eq. 2 score (``sym``) before the adjustment.
        sym: The pair's directional score.
    """

    generated: tuple[CausalLink, ...]
    reference: tuple[CausalLink, ...]
    matches: tuple[LinkMatch, ...] = ()
    penalized: tuple[tuple[int, int], ...] = ()
    eq2: float = float("nan")
    sym: float = float("nan")

    @property
    def reversed(self) -> list[LinkMatch]:
        """Matches whose links point opposite ways."""
        return [m for m in self.matches if m.reversed]

    @property
    def agreeing(self) -> list[LinkMatch]:
        """Matches whose links point the same way."""
        return [m for m in self.matches if not m.reversed]

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types (JSON-serialisable)."""
        return {
            "generated": [link.to_dict() for link in self.generated],
            "reference": [link.to_dict() for link in self.reference],
            "matches": [m.to_dict() for m in self.matches],
            "penalized": [list(p) for p in self.penalized],
            "eq2": None if np.isnan(self.eq2) else float(self.eq2),
            "sym": None if np.isnan(self.sym) else float(self.sym),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PairLinks:
        """Rebuild a report from :meth:`to_dict` output."""

        from cec.causal import CausalLink

        def link(d: dict[str, Any]) -> CausalLink:
            return CausalLink(
                d["cause"],
                d["effect"],
                d["connective"],
                tuple(d["sentences"]),
                d["negated"],
                d.get("kind", "connective"),
            )

        def num(x: float | None) -> float:
            return float("nan") if x is None else float(x)

        return cls(
            tuple(link(d) for d in data["generated"]),
            tuple(link(d) for d in data["reference"]),
            tuple(LinkMatch(**m) for m in data["matches"]),
            tuple(tuple(p) for p in data["penalized"]),  # type: ignore[misc]
            num(data["eq2"]),
            num(data["sym"]),
        )

    def format(self) -> str:
        """Readable lines: links on each side, matches with verdicts, the score change."""

        def where(link: CausalLink, side: str) -> str:
            return "-".join(f"{side}{i + 1}" for i in link.sentences)

        lines = ["generated links (gN; in sentence GN):"]
        lines += [
            f"  g{k + 1} {link}  ({where(link, 'G')})" for k, link in enumerate(self.generated)
        ] or ["  (none)"]
        lines.append("reference links (rN; in sentence RN):")
        lines += [
            f"  r{k + 1} {link}  ({where(link, 'R')})" for k, link in enumerate(self.reference)
        ] or ["  (none)"]
        lines.append("matches:")
        lines += [
            f"  g{m.generated + 1} ~ r{m.reference + 1}  {m.verdict.upper()}  "
            f"(straight {m.straight:.2f}, crossed {m.crossed:.2f})"
            for m in self.matches
        ] or ["  (none)"]
        lines.append(
            f"score: Eq. 2 {self.eq2:.3f} -> directional {self.sym:.3f} "
            f"({len(self.reversed)} reversed, {len(self.agreeing)} agreeing)"
        )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


# --------------------------------------------------------------------------------------------
# the pieces
# --------------------------------------------------------------------------------------------
def match_links(
    generated: Sequence[CausalLink],
    reference: Sequence[CausalLink],
    vectors: dict[str, np.ndarray],
) -> list[LinkMatch]:
    """Match links across the two sides by the similarity of their parts (mutual best).

    Args:
        generated: Links of the generated explanation.
        reference: Links of the reference explanation.
        vectors: Unit embedding of every cause and effect span.

    Returns:
        Matches in order of the generated link; negated links never match.

    Examples:
        >>> from cec.causal import CausalLink
        >>> v = {"a": np.array([1.0, 0.0]), "b": np.array([0.0, 1.0])}
        >>> g, r = [CausalLink("a", "b", "causes", (0,))], [CausalLink("b", "a", "causes", (0,))]
        >>> match_links(g, r, v)[0].verdict
        'reversed'
    """
    gi = [k for k, link in enumerate(generated) if not link.negated]
    ri = [k for k, link in enumerate(reference) if not link.negated]
    if not gi or not ri:
        return []

    def stack(links: Sequence[CausalLink], idx: list[int], part: str) -> np.ndarray:
        return np.stack([vectors[getattr(links[k], part)] for k in idx])

    gc, ge = stack(generated, gi, "cause"), stack(generated, gi, "effect")
    rc, re_ = stack(reference, ri, "cause"), stack(reference, ri, "effect")
    straight = np.minimum(gc @ rc.T, ge @ re_.T)
    crossed = np.minimum(gc @ re_.T, ge @ rc.T)
    score = np.maximum(straight, crossed)
    best_r, best_g = score.argmax(axis=1), score.argmax(axis=0)
    out = []
    for a in range(len(gi)):
        b = int(best_r[a])
        if best_g[b] == a and score[a, b] >= MATCH_THRESHOLD:
            s, c = float(straight[a, b]), float(crossed[a, b])
            verdict = "reversed" if c >= s + REVERSAL_MARGIN else "agree"
            out.append(LinkMatch(gi[a], ri[b], verdict, s, c))
    return out


def directional_matrix(
    similarity: np.ndarray,
    generated: Sequence[CausalLink],
    reference: Sequence[CausalLink],
    matches: Sequence[LinkMatch],
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The sentence similarity matrix with reversed matches penalised.

    Returns:
        The adjusted ``[n, m]`` matrix and the penalised ``(i, j)`` sentence pairs.
    """
    mask = np.zeros(similarity.shape, dtype=bool)
    for m in matches:
        if m.reversed:
            rows = list(generated[m.generated].sentences)
            cols = list(reference[m.reference].sentences)
            mask[np.ix_(rows, cols)] = True
    mask &= similarity > 0
    adjusted = np.where(mask, PENALTY * similarity, similarity)
    return adjusted, [(int(i), int(j)) for i, j in zip(*np.nonzero(mask), strict=True)]


def apply_directional(
    encode: Callable[[list[str]], Any],
    emb: Any,
    sentences: Sequence[str],
    sets_flat: np.ndarray,
    sets_len: np.ndarray,
    gen_set: np.ndarray,
    ref_set: np.ndarray,
    forward: np.ndarray,
    backward: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[PairLinks]]:
    """Directional forward/backward for pairs already scored by the Eq. 2 kernel.

    Arguments are those of :func:`cec.similarity.pair_scores` plus the distinct ``sentences``
    (row order of ``emb``), the scorer's ``encode`` (for the cause and effect spans) and the
    Eq. 2 ``forward``/``backward`` of each pair. Pairs without a reversed match keep their
    numbers untouched.

    Returns:
        New ``forward`` and ``backward`` arrays and one :class:`PairLinks` per pair.
    """
    forward, backward = forward.copy(), backward.copy()
    starts = np.cumsum(sets_len) - sets_len

    def ids(s: int) -> np.ndarray:
        return sets_flat[starts[s] : starts[s] + sets_len[s]]

    from cec.causal import find_links

    links: dict[int, tuple[CausalLink, ...]] = {}
    for s in {*gen_set.tolist(), *ref_set.tolist()}:
        links[s] = tuple(find_links([sentences[k] for k in ids(s)]))

    def usable(s: int) -> bool:
        return any(not link.negated for link in links[s])

    both = [p for p in range(len(gen_set)) if usable(gen_set[p]) and usable(ref_set[p])]
    spans = {
        part
        for p in both
        for s in (gen_set[p], ref_set[p])
        for link in links[s]
        for part in (link.cause, link.effect)
    }
    vectors: dict[str, np.ndarray] = {}
    if spans:
        span_list = sorted(spans)
        span_emb = to_numpy(encode(span_list)).astype(np.float64)
        vectors = dict(zip(span_list, span_emb, strict=True))

    reports: list[PairLinks] = []
    both_set = set(both)
    host: np.ndarray | None = None
    for p in range(len(gen_set)):
        g, r = links[int(gen_set[p])], links[int(ref_set[p])]
        eq2 = float((forward[p] + backward[p]) / 2)
        matches = match_links(g, r, vectors) if p in both_set else []
        penalized: list[tuple[int, int]] = []
        if any(m.reversed for m in matches):
            gi, ri = ids(int(gen_set[p])), ids(int(ref_set[p]))
            if host is None:  # the embeddings on the host, copied once (fp32 as the kernel)
                host = to_numpy(emb)
            g_e, r_e = host[gi], host[ri]
            sim = exact_cosines((g_e @ r_e.T).astype(np.float64), gi, ri)
            adjusted, penalized = directional_matrix(sim, g, r, matches)
            forward[p] = adjusted.max(axis=1).mean()
            backward[p] = adjusted.max(axis=0).mean()
        sym = float((forward[p] + backward[p]) / 2)
        reports.append(PairLinks(g, r, tuple(matches), tuple(penalized), eq2, sym))
    return forward, backward, reports
