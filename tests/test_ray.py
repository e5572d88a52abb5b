"""Ray scale-out: a pool of scorer actors on a local Ray instance gives single-process scores."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from cec.ray import score_ray_dataset  # noqa: E402


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        ignore_reinit_error=True,
    )
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def make_rows(shared_data, multi: bool):
    out = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for i, line in zip(range(20), fh, strict=False):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            ref = [" ".join(ev[:2]), " ".join(ev[2:])][: 1 + i % 2] if multi else " ".join(ev)
            out.append({"id": i, "generated": rec["claim"] + " " + ev[i % 5], "reference": ref})
    empty_ref = ["Heat is trapped."] if multi else "Heat is trapped."
    out.append({"id": len(out), "generated": "", "reference": empty_ref})  # an empty pair
    return out


@pytest.fixture(scope="module")
def rows(shared_data):
    return make_rows(shared_data, multi=False)


@pytest.mark.parametrize("multi", [False, True], ids=["one-reference", "several-references"])
def test_ray_actor_pool_equals_single_process(local_ray, shared_data, scorer, multi):
    rows = make_rows(shared_data, multi)
    ds = ray.data.from_items(rows)
    scored = score_ray_dataset(ds, num_actors=2, batch_size=6, empty="nan").take_all()
    scored.sort(key=lambda r: r["id"])
    assert [r["id"] for r in scored] == [r["id"] for r in rows]
    local = type(scorer)(model=scorer.encoder, empty="nan").score(
        [r["generated"] for r in rows], [r["reference"] for r in rows]
    )

    def column(name):  # Arrow may hand a NaN back as null
        return np.array([np.nan if r[name] is None else r[name] for r in scored], dtype=float)

    sym = column("cec_sym")
    assert np.allclose(sym, local.sym, atol=1e-6, equal_nan=True)
    assert np.allclose(column("cec_forward"), local.forward, atol=1e-6, equal_nan=True)
    assert np.allclose(column("cec_backward"), local.backward, atol=1e-6, equal_nan=True)
    assert [bool(r["cec_empty"]) for r in scored] == local.empty.tolist()
    assert [int(r["cec_best_ref"]) for r in scored] == local.best_ref.tolist()
    assert np.isnan(sym[-1]) and np.isfinite(sym[:-1]).all()
    assert {r["cec_signature"] for r in scored} == {str(local.signature)}
    assert scored[0]["generated"] == rows[0]["generated"]  # input columns are kept


def test_ray_bad_arguments_fail_before_actors(local_ray, rows):
    ds = ray.data.from_items(rows)
    with pytest.raises(ValueError, match="generated_column"):
        score_ray_dataset(ds, generated_column="hypothesis")
    with pytest.raises(ValueError, match="num_actors"):
        score_ray_dataset(ds, num_actors=0)
    with pytest.raises(ValueError, match="precision"):
        score_ray_dataset(ds, precision="fp8")
    with pytest.raises(TypeError, match="ray.data.Dataset"):
        score_ray_dataset(rows)
