"""The score object: per-pair arrays, the corpus mean, empty counts and the signature."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cec.signature import Signature

__all__ = ["CECResult", "PairScore", "json_safe"]


@dataclass(frozen=True)
class PairScore:
    """Scores of one pair (what :meth:`cec.CEC.score_iter` yields).

    Attributes:
        forward: Mean over generated sentences of the best cosine with a reference sentence.
        backward: Mean over reference sentences of the best cosine with a generated sentence.
        sym: ``(forward + backward) / 2``, Eq. 2.
        empty: Whether the pair had no sentences on a side (its scores follow the empty policy).
        best_ref: Index of the reference that gave the best ``sym`` (0 with one reference).
    """

    forward: float
    backward: float
    sym: float
    empty: bool = False
    best_ref: int = 0


@dataclass(frozen=True, eq=False)
class CECResult:
    """CEC scores of a corpus of (generated, reference) pairs.

    Attributes:
        forward: Per pair, how much of the generated explanation the reference supports.
        backward: Per pair, how much of the reference the generated explanation covers.
        sym: Per pair, Eq. 2: the mean of ``forward`` and ``backward``.
        empty: Per pair, True where a side had no sentences (scored by the empty policy).
        best_ref: Per pair, index of the reference that scored best (all 0 with one reference).
        signature: What the scores depend on; print it beside any number you report.
        details: Optional per-pair extras (alignments, causal links) when asked for.
        unreadable: Per pair, True where a text of the pair had sentences with no token the
            model knows, left out as no evidence (see :mod:`cec.readable`); ``None`` (all
            False) for results made without the check.

    Examples:
        >>> import numpy as np
        >>> from cec.signature import Signature
        >>> sig = Signature("0.1.0", "m", "", "none", "zero")
        >>> r = CECResult(np.array([1.0, 0.5]), np.array([0.8, 0.5]), np.array([0.9, 0.5]),
        ...               np.array([False, False]), np.array([0, 0]), sig)
        >>> round(r.mean, 3), len(r), r.n_empty
        (0.7, 2, 0)
    """

    forward: np.ndarray
    backward: np.ndarray
    sym: np.ndarray
    empty: np.ndarray
    best_ref: np.ndarray
    signature: Signature
    details: list[Any] | None = field(default=None)
    unreadable: np.ndarray | None = field(default=None)

    def __len__(self) -> int:
        return len(self.sym)

    def __getitem__(self, i: int) -> PairScore:
        return PairScore(
            float(self.forward[i]),
            float(self.backward[i]),
            float(self.sym[i]),
            bool(self.empty[i]),
            int(self.best_ref[i]),
        )

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    @property
    def n_empty(self) -> int:
        """Number of pairs with no sentences on at least one side."""
        return int(np.count_nonzero(self.empty))

    @property
    def n_unreadable(self) -> int:
        """Number of pairs where sentences the model cannot read were left out (a pair left
        with no sentences on a side is counted in :attr:`n_empty` too)."""
        return 0 if self.unreadable is None else int(np.count_nonzero(self.unreadable))

    @staticmethod
    def _mean(x: np.ndarray) -> float:
        finite = x[~np.isnan(x)]
        return float(finite.mean()) if len(finite) else math.nan

    @property
    def mean(self) -> float:
        """Corpus CEC: mean of ``sym`` over pairs (NaN pairs, from ``empty='nan'``, left out)."""
        return self._mean(self.sym)

    score = mean

    @property
    def mean_forward(self) -> float:
        return self._mean(self.forward)

    @property
    def mean_backward(self) -> float:
        return self._mean(self.backward)

    def confidence_interval(
        self, level: float = 0.95, n_resamples: int = 2000, seed: int | None = 0
    ) -> tuple[float, float]:
        """Bootstrap (BCa) confidence interval of the corpus mean, via ``scipy.stats.bootstrap``.

        Args:
            level: Confidence level in (0, 1).
            n_resamples: Bootstrap resamples.
            seed: Seed for a reproducible interval.

        Returns:
            ``(low, high)``; ``(nan, nan)`` with fewer than two scored pairs.
        """
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        x = self.sym[~np.isnan(self.sym)]
        if len(x) < 2:
            return (math.nan, math.nan)
        if np.ptp(x) == 0:
            return (float(x[0]), float(x[0]))
        from scipy.stats import bootstrap

        res = bootstrap(
            (x,), np.mean, confidence_level=level, n_resamples=n_resamples,
            method="BCa", rng=np.random.default_rng(seed),
        )
        return (float(res.confidence_interval.low), float(res.confidence_interval.high))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types: corpus summary and per-pair lists (JSON-serialisable)."""
        return {
            "cec": json_safe(self.mean),
            "forward": json_safe(self.mean_forward),
            "backward": json_safe(self.mean_backward),
            "n": len(self),
            "n_empty": self.n_empty,
            "n_unreadable": self.n_unreadable,
            "signature": str(self.signature),
            "per_item": {
                "sym": [json_safe(v) for v in self.sym.tolist()],
                "forward": [json_safe(v) for v in self.forward.tolist()],
                "backward": [json_safe(v) for v in self.backward.tolist()],
                "empty": self.empty.tolist(),
                "best_ref": self.best_ref.tolist(),
            },
        }

    def format(self, width: int = 3) -> str:
        """One line, sacrebleu style: ``CEC = 0.873 (fwd 0.880, bwd 0.866; n=100, empty=0)``."""
        return (
            f"CEC = {self.mean:.{width}f} (fwd {self.mean_forward:.{width}f}, "
            f"bwd {self.mean_backward:.{width}f}; n={len(self)}, empty={self.n_empty})"
        )

    def __str__(self) -> str:
        return f"{self.format()} | {self.signature}"

    def __repr__(self) -> str:
        return f"CECResult(mean={self.mean:.4f}, n={len(self)}, n_empty={self.n_empty}, signature='{self.signature}')"


def json_safe(value: Any) -> Any:
    """``value`` as a plain Python value that ``json.dumps(..., allow_nan=False)`` accepts.

    A float NaN (Python or numpy) becomes ``None``, other floats ``float``, numpy integers
    ``int`` and numpy booleans ``bool``; anything else is returned as it is. Every result that
    leaves as JSON (:meth:`CECResult.to_dict`, :func:`cec.metric.compute`, ``cec score``,
    ``cec_distill`` results files) goes through it.

    Examples:
        >>> [json_safe(v) for v in (float("nan"), np.float32(0.5), np.int64(3), "a")]
        [None, 0.5, 3, 'a']
    """
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
