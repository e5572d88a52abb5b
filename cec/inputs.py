"""Input checks and the warning of the empty-text policy: what every entry point validates first.

A leaf module: the scorer, alignments, the stateful metric, the integrations and the CLI all
check their input here, before any model loads, and name the argument and the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from cec._checks import check_positive_int, check_unicode
from cec.segment import Segmented, _check_sentences

__all__ = [
    "EMPTY_POLICIES",
    "EmptyPolicy",
    "EmptyTextWarning",
    "References",
    "Text",
    "check_positive_int",
    "validate_pairs",
    "validate_segmented",
]


EMPTY_POLICIES = ("zero", "nan", "error")
EmptyPolicy = Literal["zero", "nan", "error"]
Text = str | Segmented
References = Text | Sequence[Text]


class EmptyTextWarning(UserWarning):
    """A pair had no sentences on one side and was scored by the empty policy."""


# --------------------------------------------------------------------------------------------
# input validation (runs before anything loads)
# --------------------------------------------------------------------------------------------
def _as_list(value: Any, name: str) -> list[Any]:
    if value is None:
        raise TypeError(f"{name} must be a string or a sequence of strings, got None")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a sequence here, got a single {type(value).__name__}")
    if isinstance(value, np.ndarray):
        return value.tolist()
    try:
        return list(value)
    except TypeError:
        raise TypeError(
            f"{name} must be a string or a sequence of strings, got {type(value).__name__}"
        ) from None


def _check_text(value: Any, where: str) -> Text:
    if isinstance(value, str):
        return check_unicode(value, where)
    if not isinstance(value, Segmented):
        raise TypeError(
            f"{where} must be a str (or cec.Segmented), got {type(value).__name__}: {value!r:.60}"
        )
    return value


def _check_refs(value: Any, where: str) -> list[Text]:
    if isinstance(value, (str, Segmented)):
        return [_check_text(value, where)]
    refs = _as_list(value, where)
    if not refs:
        raise ValueError(f"{where} is an empty list of references; give at least one")
    return [_check_text(r, f"{where}[{k}]") for k, r in enumerate(refs)]


def validate_pairs(generated: Any, reference: Any) -> tuple[list[Text], list[list[Text]], bool]:
    """Check the two inputs; return generated texts, references per item, and whether single.

    A single pair is ``(str, str)`` or ``(str, list[str])`` (several references for one text).
    Otherwise both are sequences of the same length, each reference item a string or a list of
    strings. Wherever a text goes, a :class:`~cec.segment.Segmented` (a text given as its
    sentences) may go instead.

    Raises:
        TypeError: None, a non-string text, or a string paired with a sequence of texts.
        ValueError: Different lengths, an empty list of references for an item, or a text that
            is not valid Unicode (a lone surrogate such as ``"\\udfff"``), named as
            ``generated[i]`` / ``reference[i][k]``.
    """
    if isinstance(generated, (str, Segmented)):
        if reference is None:
            raise TypeError("reference must be a string or a list of strings, got None")
        gen = _check_text(generated, "generated")
        return [gen], [_check_refs(reference, "reference")], True
    gens = _as_list(generated, "generated")
    if isinstance(reference, (str, Segmented)):
        raise TypeError(
            "reference is a single string but generated is a sequence; pass one reference per "
            "generated text (a list of the same length)"
        )
    refs = _as_list(reference, "reference")
    if len(gens) != len(refs):
        raise ValueError(
            f"generated has {len(gens)} items but reference has {len(refs)}; they must match"
        )
    gens = [_check_text(g, f"generated[{i}]") for i, g in enumerate(gens)]
    return gens, [_check_refs(r, f"reference[{i}]") for i, r in enumerate(refs)], False


def validate_segmented(
    generated: Any, reference: Any
) -> tuple[list[Segmented], list[list[Segmented]]]:
    """Check pre-split input: one list of sentences per generated text; per item, one list of
    sentences (one reference) or a list of such lists (several references).

    Raises:
        TypeError: None, a string where a list of sentences belongs, a non-string sentence, or
            a reference item that mixes sentences and lists.
        ValueError: Different lengths, or an empty list of references for an item.
    """
    if isinstance(generated, (str, Segmented)) or isinstance(reference, (str, Segmented)):
        raise TypeError(
            "score_segmented takes one list of sentences per item for both generated and "
            "reference, e.g. score_segmented([gen_sentences], [ref_sentences]); for one pair of "
            "Segmented texts use cec.score"
        )
    gens = _as_list(generated, "generated")
    refs = _as_list(reference, "reference")
    if len(gens) != len(refs):
        raise ValueError(
            f"generated has {len(gens)} items but reference has {len(refs)}; they must match"
        )
    out_g = [Segmented(g, where=f"generated[{i}]") for i, g in enumerate(gens)]
    out_r: list[list[Segmented]] = []
    for i, item in enumerate(refs):
        where = f"reference[{i}]"
        if isinstance(item, Segmented):
            out_r.append([item])
            continue
        if isinstance(item, (str, bytes)) or item is None:
            _check_sentences(item, where)  # raises the TypeError
        parts = _as_list(item, where)
        nested = [not isinstance(p, str) for p in parts]
        if not any(nested):  # a list of sentences (an empty list: one reference, no sentences)
            out_r.append([Segmented(parts, where=where)])
        elif all(nested):  # several references, each a list of sentences
            out_r.append([Segmented(p, where=f"{where}[{k}]") for k, p in enumerate(parts)])
        else:
            raise TypeError(
                f"{where} mixes sentences (str) and lists; give one list of sentences (one "
                "reference) or a list of lists of sentences (several references)"
            )
    return out_g, out_r
