"""cec.result: CECResult's aggregates, iteration, serialisation and confidence interval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cec.result import CECResult, PairScore
from cec.signature import Signature

SIG = Signature("0.1.0", "m", "abcd1234", "newline", "nan", "1")


def make(sym, forward=None, backward=None, empty=None, best_ref=None) -> CECResult:
    sym = np.asarray(sym, dtype=float)
    forward = sym if forward is None else np.asarray(forward, dtype=float)
    backward = sym if backward is None else np.asarray(backward, dtype=float)
    empty = np.isnan(sym) if empty is None else np.asarray(empty, dtype=bool)
    best_ref = np.zeros(len(sym), dtype=np.int64) if best_ref is None else np.asarray(best_ref)
    return CECResult(forward, backward, sym, empty, best_ref, SIG)


def test_means_and_counts():
    r = make([0.9, 0.5, 0.7], forward=[1.0, 0.4, 0.8], backward=[0.8, 0.6, 0.6])
    assert len(r) == 3 and r.n_empty == 0
    assert r.mean == pytest.approx(0.7) and r.score == r.mean
    assert r.mean_forward == pytest.approx(2.2 / 3) and r.mean_backward == pytest.approx(2.0 / 3)


def test_nan_pairs_are_left_out_of_means_and_counted():
    r = make([0.8, math.nan, 0.4])
    assert r.n_empty == 1 and r.mean == pytest.approx(0.6)
    assert math.isnan(make([math.nan]).mean)


def test_iteration_and_indexing_give_pair_scores():
    r = make([0.9, 0.5], forward=[1.0, 0.4], backward=[0.8, 0.6], best_ref=[2, 0])
    pairs = list(r)
    assert pairs == [PairScore(1.0, 0.8, 0.9, False, 2), PairScore(0.4, 0.6, 0.5, False, 0)]
    assert r[1] == pairs[1] and type(r[0].sym) is float and type(r[0].best_ref) is int


def test_to_dict_is_json_with_nan_as_null():
    r = make([0.8, math.nan], best_ref=[1, 0])
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    assert d["cec"] == pytest.approx(0.8) and d["n"] == 2 and d["n_empty"] == 1
    assert d["per_item"]["sym"] == [pytest.approx(0.8), None]
    assert d["per_item"]["empty"] == [False, True] and d["per_item"]["best_ref"] == [1, 0]
    assert d["signature"] == str(SIG)


def test_format_str_and_repr():
    r = make([0.9, 0.5], forward=[1.0, 0.4], backward=[0.8, 0.6])
    assert r.format() == "CEC = 0.700 (fwd 0.700, bwd 0.700; n=2, empty=0)"
    assert r.format(width=1).startswith("CEC = 0.7 (fwd 0.7")
    assert str(r) == f"{r.format()} | {SIG}"
    assert "n=2" in repr(r) and str(SIG) in repr(r)


def test_confidence_interval_brackets_the_mean_and_is_reproducible():
    rng = np.random.default_rng(0)
    r = make(rng.uniform(0.3, 0.9, size=60))
    low, high = r.confidence_interval()
    assert low < r.mean < high and high - low < 0.2
    assert r.confidence_interval() == (low, high)  # seeded
    low99, high99 = r.confidence_interval(level=0.99)
    assert low99 <= low and high99 >= high


def test_confidence_interval_edge_cases():
    assert all(math.isnan(x) for x in make([0.5]).confidence_interval())
    assert make([0.5, 0.5, 0.5]).confidence_interval() == (0.5, 0.5)
    low, high = make([0.2, math.nan, 0.4, 0.6]).confidence_interval()
    assert 0.2 <= low <= high <= 0.6
    for bad in (0, 1, 1.5, -0.1):
        with pytest.raises(ValueError, match="level"):
            make([0.1, 0.2]).confidence_interval(level=bad)


def test_result_from_the_scorer_is_consistent(scorer):
    result = scorer.score(
        ["CO2 traps heat. Ice melts.", "Seas rise."], ["Ice melts.", "Seas rise."]
    )
    np.testing.assert_allclose(result.sym, (result.forward + result.backward) / 2)
    assert result.mean == pytest.approx(result.sym.mean())
    assert result.sym.dtype == np.float64 and result.best_ref.dtype.kind == "i"
    assert json.loads(json.dumps(result.to_dict()))["n"] == 2
