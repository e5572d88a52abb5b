"""Checkpoints load tensors and plain values only: a crafted pickle is refused and never run."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from cec_distill.train.checkpoints import (
    CheckpointError,
    _checkpoints,
    _load_checkpoint,
    _save_checkpoint,
)


class _Payload:
    """Pickles to a call of ``exec`` that writes a file when the pickle is loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def _parts():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 / (1 + s))
    model(torch.ones(4, 3)).sum().backward()
    opt.step()
    sched.step()
    return model, opt, sched


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng.pt"])
def test_a_crafted_pickle_in_the_newest_checkpoint_is_refused_and_never_run(tmp_path, name):
    model, opt, sched = _parts()
    _save_checkpoint(tmp_path, 2, model, None, opt, sched, {"step": 2}, 3)
    newest = _save_checkpoint(tmp_path, 4, model, None, opt, sched, {"step": 4}, 3)
    marker = tmp_path / "pwned.txt"
    # what an attacker would write: a torch.save file whose unpickling calls exec
    torch.save({"state": {}, "param_groups": _Payload(marker)}, newest / name)
    assert _checkpoints(tmp_path)[-1][1] == newest  # the one a new run resumes from
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(CheckpointError, match=f"{name}.*needs more than tensors") as info:
        _load_checkpoint(newest, model, None, opt, sched)
    assert not marker.exists()  # the payload did not run
    assert str(newest) in str(info.value) and "delete" in str(info.value)
    assert "GLOBAL exec was not an allowed global" in str(info.value)  # what torch refused
    assert "weights_only` set to `False`" not in str(info.value)  # no unsafe advice passed on
    # nothing was changed before the refusal: the weights are as they were
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b.detach())


def test_the_cli_reports_a_refused_checkpoint_as_a_user_error():
    from cec_distill.cli import _user_message

    assert _user_message(CheckpointError("checkpoint file x needs more")) is not None


def test_resume_restores_optimizer_scheduler_and_every_rng_state(tmp_path):
    model, opt, sched = _parts()
    random.seed(5)
    np.random.seed(6)
    np.random.normal()  # numpy's cached Gaussian is part of its state
    torch.manual_seed(7)
    path = _save_checkpoint(tmp_path, 1, model, None, opt, sched, {"step": 1}, 2)
    expected = (random.random(), np.random.normal(), float(torch.rand(1)))

    model2, opt2, sched2 = _parts()  # a fresh process would build these from scratch
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    assert _load_checkpoint(path, model2, None, opt2, sched2) == {"step": 1}
    got = (random.random(), np.random.normal(), float(torch.rand(1)))
    assert got == pytest.approx(expected, abs=1e-12)
    s1, s2 = opt.state_dict(), opt2.state_dict()
    for k in s1["state"]:
        for field in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][k][field], s2["state"][k][field])
    assert sched2.state_dict()["last_epoch"] == sched.state_dict()["last_epoch"] == 1
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr(), abs=1e-12)
