"""The reproducibility signature: everything that changes a CEC score, as one short string.

Like sacrebleu's and bert_score's: report it next to every score.

Examples:
    >>> sig = Signature(version="0.1.0", model="all-MiniLM-L6-v2", weights="53aa5117",
    ...                 splitter="nupunkt-0.8.0", empty="zero", nrefs="1")
    >>> str(sig)
    'cec:0.1.0|model:all-MiniLM-L6-v2@53aa5117|seg:nupunkt-0.8.0|empty:zero|nrefs:1|prec:fp32'
    >>> Signature.parse(str(sig)) == sig
    True
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace

__all__ = ["Signature", "nrefs_label"]

# Characters that delimit the string are percent-escaped inside names and values, so any model
# name or option value reads back exactly; ordinary signatures contain none of them.
_ESCAPES = {"%": "%25", "|": "%7C", "@": "%40", ":": "%3A"}


def _esc(text: str, *, colon: bool = False) -> str:
    out = text
    for char, code in _ESCAPES.items():  # "%" first, so codes are never escaped twice
        if char != ":" or colon:
            out = out.replace(char, code)
    return out


_CODES = {code: char for char, code in _ESCAPES.items()}
_CODE_RE = re.compile("|".join(re.escape(code) for code in _CODES), re.IGNORECASE)


def _unesc(text: str) -> str:
    """Inverse of :func:`_esc`, in one pass (so ``%2525`` reads back as ``%25``)."""
    if "%" not in text:
        return text
    return _CODE_RE.sub(lambda m: _CODES[m.group(0).upper()], text)


@dataclass(frozen=True)
class Signature:
    """What a CEC number depends on.

    Attributes:
        version: cec's version.
        model: Embedding model name.
        weights: Short hash of everything that defines the embedding function (weights, config,
            tokenizer, pooling, truncation length); a named callable's version; "" for an
            anonymous callable.
        splitter: Sentence splitter and its version, e.g. ``nupunkt-0.8.0``;
            ``callable:<name>`` for a user's splitter, ``presplit`` for texts given as sentences.
        empty: Policy for texts with no sentences (``zero``, ``nan``, ``error``).
        nrefs: References per item (``1``, ``3``, or ``var`` when it varies).
        precision: Encoder numeric path (``fp32``, ``bf16``, ``int8``...).
        extra: Further ``key:value`` fields added by options (e.g. ``dir:yes``), in order.
        truncation: Tokens per sentence the model reads (``trunc:256``; "" when unknown).
    """

    version: str
    model: str
    weights: str
    splitter: str
    empty: str
    nrefs: str = "1"
    precision: str = "fp32"
    extra: tuple[tuple[str, str], ...] = field(default=())
    truncation: str = ""

    def __str__(self) -> str:
        model = _esc(self.model) + (f"@{_esc(self.weights)}" if self.weights else "")
        parts = [
            f"cec:{_esc(self.version)}",
            f"model:{model}",
            f"seg:{_esc(self.splitter)}",
            f"empty:{_esc(self.empty)}",
            f"nrefs:{_esc(self.nrefs)}",
            f"prec:{_esc(self.precision)}",
        ]
        if self.truncation:
            parts.append(f"trunc:{_esc(self.truncation)}")
        parts += [f"{_esc(k, colon=True)}:{_esc(v)}" for k, v in self.extra]
        return "|".join(parts)

    def with_(self, **changes: object) -> Signature:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def with_extra(self, key: str, value: str) -> Signature:
        """A copy with ``key:value`` set among the extra fields."""
        kept = tuple((k, v) for k, v in self.extra if k != key)
        return replace(self, extra=(*kept, (key, value)))

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["extra"] = dict(self.extra)
        return out

    @classmethod
    def parse(cls, text: str) -> Signature:
        """Read a signature string back.

        Raises:
            ValueError: The string is not a cec signature.
        """
        fields: dict[str, str] = {}
        extra: list[tuple[str, str]] = []
        known = {"cec", "model", "seg", "empty", "nrefs", "prec", "trunc"}
        for part in text.strip().split("|"):
            key, sep, value = part.partition(":")
            if not sep:
                raise ValueError(f"signature: field {part!r} has no ':'")
            if key in known:
                fields[key] = value
            else:
                extra.append((_unesc(key), _unesc(value)))
        if "cec" not in fields or "model" not in fields:
            raise ValueError(f"signature: {text!r} is not a cec signature")
        model, _, weights = fields["model"].partition("@")
        return cls(
            version=_unesc(fields["cec"]),
            model=_unesc(model),
            weights=_unesc(weights),
            splitter=_unesc(fields.get("seg", "")),
            empty=_unesc(fields.get("empty", "")),
            nrefs=_unesc(fields.get("nrefs", "1")),
            precision=_unesc(fields.get("prec", "fp32")),
            extra=tuple(extra),
            truncation=_unesc(fields.get("trunc", "")),
        )


def nrefs_label(counts: Iterable[int]) -> str:
    """The signature's ``nrefs`` field for items with these numbers of references.

    The one count when every item has the same number, ``var`` when they differ, ``1`` for no
    items. The scorer, the stateful metric, ``cec explain`` and ``cec score`` all label with it.

    Args:
        counts: References per item.

    Returns:
        ``"1"``, ``"3"``..., or ``"var"``.

    Examples:
        >>> nrefs_label([2, 2]), nrefs_label([1, 3, 1]), nrefs_label([])
        ('2', 'var', '1')
    """
    distinct = set(counts)
    if len(distinct) == 1:
        return str(distinct.pop())
    return "var" if distinct else "1"
