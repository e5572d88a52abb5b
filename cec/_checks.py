"""The one check of integer options (sizes, counts, budgets), shared by every module."""

from __future__ import annotations

from typing import Any

__all__ = ["check_positive_int"]


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
