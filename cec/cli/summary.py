"""The corpus summary of ``cec score``, from running sums only (bounded memory)."""

from __future__ import annotations

import math
from typing import Any

from cec.signature import nrefs_label

__all__ = ["Summary"]


class Summary:
    """Corpus summary from running sums (bounded memory); NaN scores are left out of the means.

    Examples:
        >>> s = Summary()
        >>> s.add(1.0, 0.5, 0.75, False, 1); s.add(0.0, 0.0, 0.0, True, 1)
        >>> round(s.mean, 3), s.n, s.n_empty
        (0.375, 2, 1)
    """

    def __init__(self) -> None:
        self.n = self.n_empty = self.n_scored = 0
        self.sum_fwd = self.sum_bwd = self.sum_sym = 0.0
        self.nrefs: set[int] = set()

    def add(self, forward: float, backward: float, sym: float, empty: bool, nrefs: int) -> None:
        self.n += 1
        self.n_empty += bool(empty)
        self.nrefs.add(nrefs)
        if not math.isnan(sym):
            self.n_scored += 1
            self.sum_fwd += forward
            self.sum_bwd += backward
            self.sum_sym += sym

    def _avg(self, total: float) -> float:
        return total / self.n_scored if self.n_scored else math.nan

    @property
    def mean(self) -> float:
        return self._avg(self.sum_sym)

    @property
    def nrefs_label(self) -> str:
        return nrefs_label(self.nrefs)

    def to_dict(self, signature: str) -> dict[str, Any]:
        from cec.result import json_safe  # numpy: loaded here, not at CLI start-up

        return {
            "cec": json_safe(self.mean),
            "forward": json_safe(self._avg(self.sum_fwd)),
            "backward": json_safe(self._avg(self.sum_bwd)),
            "n": self.n,
            "n_empty": self.n_empty,
            "signature": signature,
        }

    def format(self, signature: str, width: int = 4) -> str:
        d = self.to_dict(signature)

        def f(x: float | None) -> str:
            return "nan" if x is None else f"{x:.{width}f}"

        return (
            f"CEC = {f(d['cec'])} (forward {f(d['forward'])}, backward {f(d['backward'])}; "
            f"n={self.n}, empty={self.n_empty})\nsignature: {signature}"
        )
