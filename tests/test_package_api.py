"""`import cec` (issue 13.1, 13.8, 13.10): submodules reachable lazily, empty input warns,
the one-item-several-references reading."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest


def test_submodules_are_attributes_after_a_plain_import():
    code = (
        "import sys, cec\n"
        "assert 'torch' not in sys.modules, 'import cec loaded torch'\n"
        "names = ['metric', 'align', 'segment', 'ray', 'io', 'rescale', 'scorer', 'signature']\n"
        "mods = [getattr(cec, n) for n in names]\n"
        "assert all(m.__name__ == 'cec.' + n for m, n in zip(mods, names))\n"
        "assert callable(cec.metric.compute) and 'metric' in dir(cec)\n"
        "try:\n    cec.nosuch\nexcept AttributeError as e:\n    print('AE', e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "AE module 'cec' has no attribute 'nosuch'" in proc.stdout


def test_empty_input_warns_and_counts_zero(scorer):
    import cec

    with pytest.warns(cec.EmptyTextWarning, match="n=0"):
        result = scorer.score([], [])
    assert len(result) == 0 and np.isnan(result.mean)
    with pytest.warns(cec.EmptyTextWarning, match="empty input"):
        assert len(cec.score([], [])) == 0


def test_string_with_a_list_is_one_item_with_several_references(scorer):
    import cec

    one = scorer.score("Ice melts.", ["Seas rise.", "Ice melts."])  # one item, two references
    assert isinstance(one, float) and one == pytest.approx(1.0, abs=1e-6)
    res = scorer.score(["Ice melts."], [["Seas rise.", "Ice melts."]])
    assert res.best_ref.tolist() == [1] and res.sym[0] == pytest.approx(one, abs=1e-9)
    assert "one item with two" in cec.score.__doc__ and "best_ref" in cec.score.__doc__
