"""CECMetric and compute(): same numbers as cec.score however the data is batched or split."""

from __future__ import annotations

import hashlib
import json
import math
import warnings

import numpy as np
import pytest

import cec
from cec.metric import CECMetric, compute

PREDS = [
    "Rising CO2 traps heat. The planet warms.",
    "Arctic sea ice is shrinking because the air is warmer.",
    "The evidence is about sea level, not hurricanes.",
    "Deforestation releases stored carbon. Fewer trees absorb CO2.",
    "Rising temperatures lead to more CO2 in the atmosphere.",
    "Coral reefs bleach when the ocean warms.",
    "Cities are hotter than the countryside.",
]
REFS: list[object] = [
    "CO2 traps heat, so the planet warms.",
    ["Arctic sea ice shrinks as the air warms.", "Summers may become ice-free."],
    "The evidence concerns sea level rise. It does not address hurricane frequency.",
    "Cutting forests releases carbon and removes a carbon sink.",
    "More CO2 in the atmosphere leads to rising temperatures.",
    "Warmer oceans cause coral bleaching.",
    "Urban heat islands make cities warmer than rural areas.",
]


def _batches(sizes: list[int]) -> list[tuple[list[str], list[object]]]:
    out, start = [], 0
    for size in sizes:
        out.append((PREDS[start : start + size], REFS[start : start + size]))
        start += size
    assert start == len(PREDS)
    return out


@pytest.fixture(scope="module")
def expected(scorer):
    return scorer.score(PREDS, REFS)


def test_one_batch_or_many_equals_score(scorer, expected):
    for sizes in ([7], [1, 1, 1, 1, 1, 1, 1], [2, 0, 5]):
        metric = CECMetric(scorer)
        for preds, refs in _batches(sizes):
            metric.update(preds, refs)
        assert len(metric) == len(PREDS)
        result = metric.compute()
        np.testing.assert_allclose(result.sym, expected.sym, atol=1e-6)
        np.testing.assert_allclose(result.forward, expected.forward, atol=1e-6)
        np.testing.assert_array_equal(result.best_ref, expected.best_ref)
        assert abs(result.mean - expected.mean) < 1e-6
        assert str(result.signature) == str(expected.signature)  # nrefs:var, as cec.score says
    metric.reset()
    assert len(metric) == 0
    metric.update(PREDS[:1], REFS[:1])
    assert len(metric) == 1 and "nrefs:1" in str(metric.compute().signature)


def test_merged_states_equal_score(scorer, expected):
    first, second = CECMetric(scorer), CECMetric(scorer)
    first.update(PREDS[:2], REFS[:2])
    first.update(PREDS[2:4], REFS[2:4])
    second.update(PREDS[4:], REFS[4:])
    # a state travels as plain JSON (e.g. written by another process) and merges after ours
    shipped = json.loads(json.dumps(second.state_dict()))
    first.merge_state(shipped)
    result = first.compute()
    np.testing.assert_allclose(result.sym, expected.sym, atol=1e-6)
    assert abs(result.mean - expected.mean) < 1e-6
    # load_state_dict restores exactly
    clone = CECMetric(scorer)
    clone.load_state_dict(first.state_dict())
    np.testing.assert_array_equal(clone.compute().sym, result.sym)
    # merging with a metric object works the same
    third = CECMetric(scorer)
    third.update(PREDS[:4], REFS[:4])
    third.merge_state(second)
    np.testing.assert_allclose(third.compute().sym, expected.sym, atol=1e-6)


def test_merge_refuses_other_scorers_and_bad_states(scorer):
    metric = CECMetric(scorer)
    metric.update(PREDS[:1], REFS[:1])
    foreign = metric.state_dict()
    foreign["signature"] = foreign["signature"].replace("empty:zero", "empty:nan")
    with pytest.raises(ValueError, match="different scorers"):
        metric.merge_state(foreign)
    broken = metric.state_dict()
    broken["sym"] = broken["sym"] + [0.5]
    with pytest.raises(ValueError, match="different lengths"):
        CECMetric(scorer).load_state_dict(broken)
    with pytest.raises(ValueError, match="missing"):
        CECMetric(scorer).load_state_dict({"sym": []})
    with pytest.raises(ValueError, match="items but reference has"):
        metric.update(PREDS[:2], REFS[:1])
    with pytest.raises(TypeError, match="not both"):
        CECMetric(scorer, splitter="newline")


def test_compute_returns_plain_python(scorer, expected):
    out = compute(predictions=PREDS, references=REFS, model=scorer.encoder)
    assert set(out) == {"cec", "forward", "backward", "scores", "n_empty", "signature"}
    assert type(out["cec"]) is float and type(out["n_empty"]) is int
    assert all(type(x) is float for x in out["scores"])
    assert out["signature"] == str(expected.signature)
    np.testing.assert_allclose(out["scores"], expected.sym, atol=1e-6)
    assert abs(out["cec"] - expected.mean) < 1e-6
    assert json.loads(json.dumps(out)) == out
    # empty="nan": the empty item is None in the scores and left out of the mean
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nan_out = compute(
            predictions=["", *PREDS[:2]],
            references=["x", *REFS[:2]],
            model=scorer.encoder,
            empty="nan",
        )
    assert nan_out["scores"][0] is None and nan_out["n_empty"] == 1
    assert math.isclose(nan_out["cec"], float(np.mean(expected.sym[:2])), abs_tol=1e-6)
    with pytest.raises(TypeError, match="predictions must be a list"):
        compute(predictions="one text", references=["x"])


# ----------------------------------------------------------------------------------------------
# torch.distributed: two real gloo processes gather their states
# ----------------------------------------------------------------------------------------------
def trigram_encoder(sentences: list[str]) -> np.ndarray:
    """A deterministic, dependency-free sentence encoder (hashed character trigrams).

    The distributed test is about state gathering, so it uses this cheap public ``model=``
    callable to keep two extra processes from each loading the transformer.
    """
    out = np.zeros((len(sentences), 256), dtype=np.float32)
    for i, s in enumerate(sentences):
        text = f"  {s.lower()}  "
        for k in range(len(text) - 2):
            h = int.from_bytes(hashlib.blake2b(text[k : k + 3].encode(), digest_size=4).digest())
            out[i, h % 256] += 1.0
    return out


def _dist_worker(rank: int, world_size: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        metric = CECMetric(cec.CEC(model=trigram_encoder, device="cpu"))
        half = len(PREDS) // 2
        lo, hi = (0, half) if rank == 0 else (half, len(PREDS))
        for k in range(lo, hi, 2):  # several updates per rank
            metric.update(PREDS[k : min(k + 2, hi)], REFS[k : min(k + 2, hi)])
        result = metric.compute()  # gathers both ranks' states
        payload = {
            "sym": result.sym.tolist(),
            "local": len(metric),
            "signature": str(result.signature),
        }
        with open(f"{out_dir}/rank{rank}.json", "w") as fh:
            json.dump(payload, fh)
        dist.barrier()  # no rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()


def test_distributed_sync_gathers_all_ranks(tmp_path):
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if not dist.is_available():
        pytest.skip("torch.distributed is not available in this torch build")
    mp.spawn(_dist_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    expected = cec.score(PREDS, REFS, model=trigram_encoder, device="cpu")
    for rank in (0, 1):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert got["local"] == (3 if rank == 0 else 4)  # each rank fed only its half
        np.testing.assert_allclose(got["sym"], expected.sym, atol=1e-6)  # rank order kept
        assert got["signature"] == str(expected.signature)
    # not initialised here: sync() is a plain copy
    metric = CECMetric(cec.CEC(model=trigram_encoder, device="cpu"))
    metric.update(PREDS[:2], REFS[:2])
    assert metric.sync().state_dict() == metric.state_dict()
