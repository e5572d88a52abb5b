"""Statistics for comparing metrics and systems on the same items (section 4.3 of the paper).

The tests themselves are scipy's; this module fixes their conventions and returns small, plain
result objects (``.to_dict()`` gives JSON-ready dicts).

Public API:

- :func:`paired_ttest` ``(a, b) -> TestResult`` (``scipy.stats.ttest_rel``; ``statistic`` t,
  ``df`` = n - 1, two-sided ``pvalue``).
- :func:`wilcoxon` ``(a, b) -> TestResult`` (``scipy.stats.wilcoxon`` on a - b, two-sided;
  ``statistic`` W = the smaller of the signed-rank sums, zero differences dropped ("wilcox")).
- :func:`cohens_d_paired` ``(a, b) -> float``: mean(a - b) / sd(a - b) with ddof = 1 (often
  written d_z).
- :func:`bootstrap_ci` ``(x, ...) -> Interval``: bootstrap CI of a statistic (default the mean)
  via ``scipy.stats.bootstrap``; also for paired statistics of several arrays
  (``bootstrap_ci((x, y), statistic=spearman)``).
- :func:`bootstrap_paired_difference` ``(a, b, ...) -> Interval``: CI of mean(a - b).
- :func:`paired_bootstrap_test` ``(a, b, ...) -> TestResult``: paired bootstrap test of
  mean(a) vs mean(b) over items (Koehn 2004 resampling, the shifted-to-null form sacrebleu uses:
  p = (1 + #{|mean(d*) - mean(d)| >= |mean(d)|}) / (1 + n_resamples)).
- :func:`approximate_randomization` ``(a, b, ...) -> TestResult``: paired approximate
  randomisation (random sign swaps per item, ``scipy.stats.permutation_test`` with
  ``permutation_type="samples"``).
- :func:`compare_metrics` ``(scores_a, scores_b, k=100, seed=0, ...) -> Comparison``: the paper's
  4.3 procedure: sample ``k`` items with a seed, then t-test, Wilcoxon, Cohen's d, means and SDs.
  ``Comparison.format()`` prints it in APA style like the paper.

Every random procedure takes ``seed`` (an int) and gives the same answer for the same seed.

Examples:
    >>> import numpy as np
    >>> from cec_distill.stats import compare_metrics
    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(0.9, 0.02, 300); b = a - rng.normal(0.2, 0.05, 300)
    >>> c = compare_metrics(a, b, k=100, seed=1, names=("cec", "bertscore"))
    >>> c.k, c.ttest.df, c.d > 3
    (100, 99, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from cec._checks import check_positive_int

__all__ = [
    "TestResult",
    "Interval",
    "Comparison",
    "paired_ttest",
    "wilcoxon",
    "cohens_d_paired",
    "bootstrap_ci",
    "bootstrap_paired_difference",
    "paired_bootstrap_test",
    "approximate_randomization",
    "compare_metrics",
    "sample_indices",
]


@dataclass(frozen=True)
class TestResult:
    """A test: ``name``, ``statistic``, ``pvalue``, ``df`` (None where it has none), ``n``."""

    name: str
    statistic: float
    pvalue: float
    n: int
    df: int | None = None
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Interval:
    """A bootstrap confidence interval around an ``estimate``."""

    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.estimate:.4f} [{self.low:.4f}, {self.high:.4f}]"


def _pair(a: Any, b: Any, min_n: int = 2) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64).ravel()
    y = np.asarray(b, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a and b must have the same length, got {len(x)} and {len(y)}")
    if len(x) < min_n:
        raise ValueError(f"a and b need at least {min_n} paired values, got {len(x)}")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("a and b must not contain NaN; drop those items first")
    return x, y


def paired_ttest(a: Sequence[float], b: Sequence[float]) -> TestResult:
    """Two-sided paired t-test of a vs b (``scipy.stats.ttest_rel``); df = n - 1."""
    x, y = _pair(a, b)
    res = sps.ttest_rel(x, y)
    return TestResult("paired t-test", float(res.statistic), float(res.pvalue), len(x), len(x) - 1)


def wilcoxon(a: Sequence[float], b: Sequence[float], zero_method: str = "wilcox") -> TestResult:
    """Two-sided Wilcoxon signed-rank test of a - b (``scipy.stats.wilcoxon``)."""
    x, y = _pair(a, b)
    res = sps.wilcoxon(x, y, zero_method=zero_method, alternative="two-sided")
    return TestResult("Wilcoxon signed-rank", float(res.statistic), float(res.pvalue), len(x))


def cohens_d_paired(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d for paired samples: mean(a - b) / sd(a - b), sd with ddof = 1.

    Examples:
        >>> cohens_d_paired([3.0, 4.0, 5.0], [1.0, 1.0, 1.0])
        3.0
    """
    x, y = _pair(a, b)
    d = x - y
    sd = float(d.std(ddof=1))
    if sd == 0:
        return math.copysign(math.inf, float(d.mean())) if d.mean() != 0 else math.nan
    return float(d.mean() / sd)


def bootstrap_ci(
    data: Sequence[float] | tuple[Sequence[float], ...],
    statistic: Callable[..., float] | None = None,
    *,
    paired: bool | None = None,
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
) -> Interval:
    """Bootstrap CI of ``statistic`` (default: the mean) via ``scipy.stats.bootstrap``.

    Args:
        data: One array, or a tuple of equal-length arrays resampled together (``paired``).
        statistic: ``f(*arrays) -> float``; default ``np.mean`` of the one array.
        paired: Resample the arrays of a tuple by the same item indices (default: True for a
            tuple).
        n_resamples: Bootstrap resamples.
        confidence: Confidence level.
        method: ``"percentile"`` (default), ``"basic"`` or ``"BCa"``.
        seed: Seed of the resampling; the same seed gives the same interval.
    """
    arrays = (
        tuple(np.asarray(d, dtype=np.float64) for d in data)
        if isinstance(data, tuple)
        else (np.asarray(data, dtype=np.float64),)
    )
    if paired is None:
        paired = len(arrays) > 1
    if statistic is None:
        if len(arrays) != 1:
            raise ValueError("statistic is required for several arrays")
        statistic = np.mean
    check_positive_int(n_resamples, "n_resamples")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if len(arrays[0]) < 2:
        raise ValueError("bootstrap_ci needs at least 2 values")
    estimate = float(statistic(*arrays))

    def stat(*xs: np.ndarray, axis: int = -1) -> np.ndarray:
        if not paired and len(xs) == 1 and statistic is np.mean:
            return np.mean(xs[0], axis=axis)
        xs = [np.moveaxis(x, axis, -1) for x in xs]
        flat = [x.reshape(-1, x.shape[-1]) for x in xs]
        out = np.array([statistic(*cols) for cols in zip(*flat, strict=False)])
        return out.reshape(xs[0].shape[:-1])

    res = sps.bootstrap(
        arrays, stat, n_resamples=n_resamples, confidence_level=confidence, method=method,
        paired=paired, vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    ci = res.confidence_interval
    return Interval(estimate, float(ci.low), float(ci.high), confidence, n_resamples, method)


def bootstrap_paired_difference(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10_000,
    confidence: float = 0.95, method: str = "percentile", seed: int = 0,
) -> Interval:  # fmt: skip
    """Bootstrap CI of mean(a - b) over items (items resampled, pairs kept together)."""
    x, y = _pair(a, b)
    return bootstrap_ci(
        x - y, n_resamples=n_resamples, confidence=confidence, method=method, seed=seed
    )


def paired_bootstrap_test(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10_000, seed: int = 0
) -> TestResult:
    """Paired bootstrap test that systems a and b have the same mean score on these items.

    Items are resampled with replacement; the resampled mean differences are shifted to the null
    (mean zero) and the two-sided p-value is the share at least as far from zero as the observed
    difference, with the +1 correction.
    """
    check_positive_int(n_resamples, "n_resamples")
    x, y = _pair(a, b)
    d = x - y
    observed = float(d.mean())
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(n_resamples, len(d)))
    means = d[idx].mean(axis=1)
    hits = int(np.sum(np.abs(means - observed) >= abs(observed) - 1e-12))
    p = (hits + 1) / (n_resamples + 1)
    ci = np.quantile(means, [0.025, 0.975])
    return TestResult(
        "paired bootstrap", observed, p, len(d),
        extra={"ci_low": float(ci[0]), "ci_high": float(ci[1]), "n_resamples": n_resamples},
    )  # fmt: skip


def approximate_randomization(
    a: Sequence[float], b: Sequence[float], *, n_resamples: int = 10_000, seed: int = 0
) -> TestResult:
    """Paired approximate randomisation test of mean(a - b) = 0 (random swaps per item)."""
    check_positive_int(n_resamples, "n_resamples")
    x, y = _pair(a, b)
    res = sps.permutation_test(
        (x, y), lambda u, v, axis=-1: np.mean(u - v, axis=axis), permutation_type="samples",
        vectorized=True, n_resamples=n_resamples, alternative="two-sided",
        rng=np.random.default_rng(seed),
    )  # fmt: skip
    return TestResult(
        "approximate randomization", float(res.statistic), float(res.pvalue), len(x),
        extra={"n_resamples": n_resamples},
    )  # fmt: skip


def sample_indices(n: int, k: int | None, seed: int) -> np.ndarray:
    """``k`` distinct item indices out of ``n``, sorted, drawn with ``seed`` (all when k is None)."""
    if k is None:
        return np.arange(n)
    check_positive_int(int(k) if isinstance(k, np.integer) else k, "k", minimum=2)
    if k > n:
        raise ValueError(f"k={k} is larger than the number of items ({n})")
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


@dataclass(frozen=True)
class Comparison:
    """The paper's 4.3 comparison of metric A with metric B on the same k items."""

    names: tuple[str, str]
    k: int
    seed: int
    indices: list[int]
    mean_a: float
    sd_a: float
    mean_b: float
    sd_b: float
    ttest: TestResult
    wilcoxon: TestResult
    d: float
    difference: Interval
    dropped: int = 0  # sampled items left out for want of a score (NaN: an LLM judge's unparsed)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["names"] = list(self.names)
        return out

    def format(self) -> str:
        """APA-style summary, as in section 4.3 of the paper."""
        a, b = self.names
        p = lambda v: "p < .001" if v < 0.001 else f"p = {v:.3f}"  # noqa: E731
        return (
            f"{a} (M = {self.mean_a:.3f}, SD = {self.sd_a:.3f}) vs {b} (M = {self.mean_b:.3f}, "
            f"SD = {self.sd_b:.3f}) on k = {self.k} items (seed {self.seed}):\n"
            f"  paired t-test: t({self.ttest.df}) = {self.ttest.statistic:.2f}, {p(self.ttest.pvalue)}\n"
            f"  Wilcoxon signed-rank: W = {self.wilcoxon.statistic:.1f}, {p(self.wilcoxon.pvalue)}\n"
            f"  Cohen's d (paired) = {self.d:.2f}\n"
            f"  mean difference {a} - {b} = {self.difference} (95% bootstrap CI)"
        ) + (
            f"\n  {self.dropped} sampled item(s) left out: no score (NaN) from {a} or {b}"
            if self.dropped
            else ""
        )

    __str__ = format


def compare_metrics(
    scores_a: Sequence[float],
    scores_b: Sequence[float],
    k: int | None = 100,
    seed: int = 0,
    *,
    names: tuple[str, str] = ("a", "b"),
    n_resamples: int = 10_000,
) -> Comparison:
    """Sample ``k`` items with ``seed``; compare the two metrics' scores on them.

    Args:
        scores_a: Metric A's per-item scores (e.g. CEC).
        scores_b: Metric B's per-item scores on the same items (e.g. BERTScore).
        k: Items to sample without replacement (None: all items).
        seed: Seed of the sample (and of the bootstrap CI of the difference).
        names: Labels for the two metrics.
        n_resamples: Bootstrap resamples for the CI of the mean difference.
    """
    x, y = _pair(scores_a, scores_b)
    idx = sample_indices(len(x), k, seed)
    xs, ys = x[idx], y[idx]
    return Comparison(
        names=tuple(names), k=len(idx), seed=seed, indices=idx.tolist(),
        mean_a=float(xs.mean()), sd_a=float(xs.std(ddof=1)),
        mean_b=float(ys.mean()), sd_b=float(ys.std(ddof=1)),
        ttest=paired_ttest(xs, ys), wilcoxon=wilcoxon(xs, ys), d=cohens_d_paired(xs, ys),
        difference=bootstrap_paired_difference(xs, ys, n_resamples=n_resamples, seed=seed),
    )  # fmt: skip
