"""Statistics agree with scipy and with their formulas; the bootstrap is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from cec_distill import stats as S


@pytest.fixture
def paired():
    rng = np.random.default_rng(42)
    a = rng.normal(0.9, 0.03, 200)
    b = a - rng.normal(0.05, 0.04, 200)
    return a, b


def test_paired_ttest_agrees_with_scipy_and_formula(paired):
    a, b = paired
    res = S.paired_ttest(a, b)
    ref = sps.ttest_rel(a, b)
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    d = a - b
    assert res.statistic == pytest.approx(d.mean() / (d.std(ddof=1) / np.sqrt(len(d))))
    assert res.df == len(a) - 1 and res.n == len(a)


def test_wilcoxon_agrees_with_scipy(paired):
    a, b = paired
    res = S.wilcoxon(a[:40], b[:40])
    ref = sps.wilcoxon(a[:40], b[:40])
    assert res.statistic == pytest.approx(ref.statistic) and res.pvalue == pytest.approx(ref.pvalue)
    # W is the smaller signed-rank sum: 0 when every difference has the same sign
    assert S.wilcoxon(a[:30] + 1, a[:30]).statistic == 0.0


def test_cohens_d_paired_formula(paired):
    a, b = paired
    d = a - b
    assert S.cohens_d_paired(a, b) == pytest.approx(d.mean() / d.std(ddof=1))
    assert S.cohens_d_paired([3.0, 4.0, 5.0], [1.0, 1.0, 1.0]) == pytest.approx(3.0)
    assert S.cohens_d_paired(b, a) == pytest.approx(-S.cohens_d_paired(a, b))
    # d_z = t / sqrt(n)
    assert S.cohens_d_paired(a, b) == pytest.approx(
        S.paired_ttest(a, b).statistic / np.sqrt(len(a))
    )


def test_bootstrap_ci_reproducible_and_agrees_with_scipy(paired):
    a, _ = paired
    one = S.bootstrap_ci(a, seed=7, n_resamples=2000)
    two = S.bootstrap_ci(a, seed=7, n_resamples=2000)
    other = S.bootstrap_ci(a, seed=8, n_resamples=2000)
    assert one == two and one != other
    ref = sps.bootstrap((a,), np.mean, n_resamples=2000, method="percentile",
                        rng=np.random.default_rng(7)).confidence_interval  # fmt: skip
    assert (one.low, one.high) == pytest.approx((ref.low, ref.high))
    assert one.low < a.mean() < one.high and one.estimate == pytest.approx(a.mean())
    # the interval is about mean +- 1.96 SE
    se = a.std(ddof=1) / np.sqrt(len(a))
    assert one.high - one.low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_bootstrap_of_a_paired_statistic(paired):
    a, b = paired
    rho = lambda x, y: sps.spearmanr(x, y)[0]  # noqa: E731
    iv = S.bootstrap_ci((a, b), rho, n_resamples=500, seed=1)
    assert iv.estimate == pytest.approx(rho(a, b))
    assert iv.low < iv.estimate < iv.high
    assert iv == S.bootstrap_ci((a, b), rho, n_resamples=500, seed=1)


def test_bootstrap_paired_difference(paired):
    a, b = paired
    iv = S.bootstrap_paired_difference(a, b, seed=3, n_resamples=2000)
    assert iv.estimate == pytest.approx((a - b).mean())
    assert iv == S.bootstrap_ci(a - b, seed=3, n_resamples=2000)
    assert iv.low > 0  # true difference 0.05, SE ~0.003


def test_paired_bootstrap_and_randomization_tests(paired):
    a, b = paired
    rng = np.random.default_rng(0)
    same = a + rng.normal(0, 0.01, len(a))
    for test in (S.paired_bootstrap_test, S.approximate_randomization):
        differ = test(a, b, n_resamples=2000, seed=5)
        null = test(a, same, n_resamples=2000, seed=5)
        assert differ.pvalue < 0.01 and null.pvalue > 0.05
        assert differ == test(a, b, n_resamples=2000, seed=5)  # reproducible
        assert differ.statistic == pytest.approx((a - b).mean())
    # approximate randomisation agrees with scipy's permutation test with the same seed
    ref = sps.permutation_test((a, same), lambda u, v, axis: np.mean(u - v, axis=axis),
                               permutation_type="samples", n_resamples=999, vectorized=True,
                               rng=np.random.default_rng(2))  # fmt: skip
    assert S.approximate_randomization(a, same, n_resamples=999, seed=2).pvalue == pytest.approx(
        ref.pvalue
    )


def test_compare_metrics_is_the_4_3_procedure(paired):
    a, b = paired
    c = S.compare_metrics(a, b, k=100, seed=11, names=("cec", "bertscore"))
    idx = np.sort(np.random.default_rng(11).choice(len(a), 100, replace=False))
    assert c.indices == idx.tolist() and c.k == 100
    xs, ys = a[idx], b[idx]
    assert c.mean_a == pytest.approx(xs.mean()) and c.sd_b == pytest.approx(ys.std(ddof=1))
    assert c.ttest.statistic == pytest.approx(sps.ttest_rel(xs, ys).statistic)
    assert c.ttest.df == 99
    assert c.wilcoxon.statistic == pytest.approx(sps.wilcoxon(xs, ys).statistic)
    assert c.d == pytest.approx((xs - ys).mean() / (xs - ys).std(ddof=1))
    assert c == S.compare_metrics(a, b, k=100, seed=11, names=("cec", "bertscore"))
    text = c.format()
    assert "t(99) = " in text and "W = " in text and "Cohen's d" in text
    assert S.compare_metrics(a, b, k=None).k == len(a)


def test_bad_input():
    with pytest.raises(ValueError, match="same length"):
        S.paired_ttest([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        S.wilcoxon([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="k=10 is larger"):
        S.compare_metrics(np.arange(5.0), np.arange(5.0) + 1, k=10)
    with pytest.raises(ValueError, match="confidence"):
        S.bootstrap_ci([1.0, 2.0, 3.0], confidence=95)


@pytest.mark.parametrize("k", [1, True, 2.0, np.int64(1)])
def test_k_must_be_an_integer_of_at_least_two(k):
    with pytest.raises(ValueError, match="k must be an integer >= 2"):
        S.sample_indices(10, k, seed=0)


def test_k_accepts_numpy_integers():
    assert S.sample_indices(10, np.int64(3), seed=0).tolist() == S.sample_indices(10, 3, 0).tolist()


@pytest.mark.parametrize(
    "fn",
    [
        lambda n: S.paired_bootstrap_test([1.0, 2, 3, 4], [0.5, 2, 2, 3], n_resamples=n),
        lambda n: S.approximate_randomization([1.0, 2, 3, 4], [0.5, 2, 2, 3], n_resamples=n),
        lambda n: S.bootstrap_ci([1.0, 2.0, 3.0], n_resamples=n),
        lambda n: S.bootstrap_paired_difference([1.0, 2, 3], [0.5, 2, 2], n_resamples=n),
    ],
)
@pytest.mark.parametrize("n", [0, -5, 1.5, True])
def test_n_resamples_must_be_a_positive_integer(fn, n):
    """Checked before any resampling (``paired_bootstrap_test`` crashed on 0 with IndexError)."""
    with pytest.raises(ValueError, match=rf"n_resamples must be a positive integer, got {n!r}"):
        fn(n)
