"""The causal-links section of ``cec explain --directional`` (presentation, used by the CLI).

It scores the shown pair with a direction-aware scorer, puts the link report into the
alignment's ``extras`` (so ``--json`` carries it) and returns the section that
:func:`cec.align.render` shows, passed explicitly: nothing is registered globally.
"""

from __future__ import annotations

from cec.align import Alignment, Section
from cec.directional import PairLinks
from cec.scorer import CEC

__all__ = ["SECTION_TITLE", "link_report", "add_link_section"]

SECTION_TITLE = "Causal links (directional CEC)"


def link_report(scorer: CEC, generated: str, reference: str) -> tuple[PairLinks | None, str]:
    """Links, matches and directional score of one pair, with the scorer's model and splitter.

    Args:
        scorer: A :class:`cec.CEC` (directional or not; its encoder is reused).
        generated: The generated explanation.
        reference: One reference explanation.

    Returns:
        The pair's :class:`~cec.directional.PairLinks` (``None`` when a side has no sentences)
        and the directional signature.
    """
    if not scorer.directional:
        scorer = CEC(scorer.encoder, splitter=scorer.splitter, empty=scorer.empty, directional=True)
    result = scorer.score([generated], [reference])
    return result.details[0], str(result.signature)


def _render(alignment: Alignment) -> list[str] | None:
    data = alignment.extras.get("causal_links")
    if data is None:
        return None
    if data.get("empty"):
        return ["  (a side has no sentences)"]
    lines = PairLinks.from_dict(data).format().splitlines()
    return [f"  {line}" for line in lines] + [f"  signature: {data['signature']}"]


def add_link_section(
    scorer: CEC, alignment: Alignment, generated: str, reference: str
) -> tuple[str, Section]:
    """Attach the pair's link report to ``alignment.extras["causal_links"]`` and return the
    ``(title, lines)`` section to pass to :meth:`cec.align.Alignment.format` (``sections=``)."""
    report, signature = link_report(scorer, generated, reference)
    data = {"empty": True} if report is None else report.to_dict()
    alignment.extras["causal_links"] = {**data, "signature": signature}
    return (SECTION_TITLE, _render)
