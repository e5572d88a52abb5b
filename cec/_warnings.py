"""Warning categories of the encoding stage (a leaf module: anything may import it)."""

from __future__ import annotations

__all__ = ["TruncationWarning", "PrecisionWarning"]


class TruncationWarning(UserWarning):
    """A sentence was longer than the model's window and was truncated."""


class PrecisionWarning(UserWarning):
    """The chosen numeric path is not accelerated here, or fell back to a slower form."""
