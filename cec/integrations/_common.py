"""What every harness integration shares: option checks, the per-process scorer, signatures."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["build_scorer", "cec_options", "check_options", "merge_signatures"]


def cec_options() -> tuple[str, ...]:
    """The keyword options of :class:`cec.CEC`, which every integration passes through.

    Examples:
        >>> {"model", "splitter", "empty", "precision", "directional"} <= set(cec_options())
        True
    """
    from cec.scorer import CEC

    params = inspect.signature(CEC.__init__).parameters
    return tuple(name for name in params if name != "self")


def check_options(options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The options as a dict, or a TypeError naming the first unknown one.

    Args:
        options: Keyword options meant for :class:`cec.CEC`.
        where: What received them (named in the error).

    Raises:
        TypeError: An option that :class:`cec.CEC` does not take.
    """
    valid = cec_options()
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise TypeError(
            f"{where}: unknown CEC option(s) {', '.join(map(repr, unknown))}; "
            f"valid options are {', '.join(valid)}"
        )
    return dict(options)


def build_scorer(options: Mapping[str, Any] | None = None, *, where: str = "cec") -> Any:
    """The process-wide :class:`cec.CEC` for these options, built now (so bad options fail now).

    The scorer is cached by :func:`cec.scorer.get_scorer`: every task, metric or scorer in one
    process that asks for the same options shares one model.

    Args:
        options: :class:`cec.CEC` keyword options (``model``, ``splitter``, ``empty``,
            ``precision``, ``directional``...).
        where: What asked (named in errors).

    Raises:
        TypeError, ValueError: An unknown option or a bad value, as :class:`cec.CEC` raises it.

    Examples:
        >>> build_scorer({"splitter": "cec"}) is build_scorer({"splitter": "cec"})
        True
        >>> build_scorer({"splitter": "cec", "colour": "red"}, where="demo")
        Traceback (most recent call last):
        ...
        TypeError: demo: unknown CEC option(s) 'colour'; valid options are model, ...
    """
    from cec.scorer import get_scorer

    return get_scorer(**check_options(options or {}, where))


def merge_signatures(signatures: Iterable[str]) -> str:
    """One signature for items scored one at a time: ``nrefs`` is the common count or ``var``.

    Raises:
        ValueError: No signatures, or signatures that differ in more than ``nrefs`` (the
            items were scored by different embedding functions or options).

    Examples:
        >>> a = "cec:0.1.0|model:m@ab|seg:s|empty:zero|nrefs:1|prec:fp32"
        >>> merge_signatures([a, a.replace("nrefs:1", "nrefs:3")])
        'cec:0.1.0|model:m@ab|seg:s|empty:zero|nrefs:var|prec:fp32'
    """
    from cec.signature import Signature

    parsed = [Signature.parse(s) for s in signatures]
    if not parsed:
        raise ValueError("signatures: no items were scored")
    bases = {str(p.with_(nrefs="*")) for p in parsed}
    if len(bases) > 1:
        raise ValueError(f"signatures: items were scored with different scorers: {sorted(bases)}")
    nrefs = {p.nrefs for p in parsed}
    return str(parsed[0].with_(nrefs=nrefs.pop() if len(nrefs) == 1 else "var"))
