"""Checks shared by every module: integer options (sizes, counts, budgets) and text that is not
valid Unicode (a lone surrogate)."""

from __future__ import annotations

import re
from typing import Any

__all__ = ["check_positive_int", "check_unicode"]

_SURROGATE = re.compile("[\ud800-\udfff]")


def check_positive_int(
    value: Any,
    name: str,
    *,
    minimum: int = 1,
    none_ok: bool = False,
    what: str | None = None,
    error: type[ValueError] = ValueError,
) -> Any:
    """``value`` if it is an int >= ``minimum`` (bools refused; ``None`` when ``none_ok``).

    Args:
        value: The value to check.
        name: The argument's name, for the message.
        minimum: The smallest value allowed (0: non-negative).
        none_ok: Accept ``None``.
        what: What the value must be, in words (default: from ``minimum`` and ``none_ok``).
        error: The ``ValueError`` subclass to raise (e.g. a configuration error).

    Raises:
        ValueError: Naming ``name`` and what was given (``error``, a subclass, when given).

    Examples:
        >>> check_positive_int(8, "batch_size")
        8
        >>> check_positive_int(True, "batch_size")
        Traceback (most recent call last):
        ...
        ValueError: batch_size must be a positive integer, got True
    """
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        if what is None:
            what = {1: "a positive integer", 0: "a non-negative integer"}.get(
                minimum, f"an integer >= {minimum}"
            )
            if none_ok:
                what += " or None"
        raise error(f"{name} must be {what}, got {value!r}")
    return value


def check_unicode(text: str, where: str) -> str:
    """``text`` if it holds no lone surrogate (a code point U+D800-U+DFFF on its own).

    Such a string is a valid Python ``str`` (and ``"\\udfff"`` is valid JSON) but not valid
    Unicode text: it cannot be written as UTF-8, and a tokenizer refuses it deep inside with an
    error that names no argument. The check is one regex scan (skipped for ASCII text).

    Args:
        text: The text.
        where: The argument (and item) it came from, for the message.

    Raises:
        ValueError: Naming ``where``, the character and its offset.

    Examples:
        >>> check_unicode("ok text", "generated[0]")
        'ok text'
        >>> check_unicode("ok \\udfff text", "generated[0]")
        Traceback (most recent call last):
        ...
        ValueError: generated[0] holds a lone surrogate '\\udfff' at character 3 (not valid Unicode text); fix or remove it
    """
    if text.isascii():
        return text
    bad = _SURROGATE.search(text)
    if bad is not None:
        raise ValueError(
            f"{where} holds a lone surrogate {bad.group()!r} at character {bad.start()} (not "
            "valid Unicode text); fix or remove it"
        )
    return text
