"""cec as a real torchmetrics.Metric: DDP on 2 gloo processes, MetricCollection, Lightning."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

pytest.importorskip("torchmetrics")

import cec  # noqa: E402
from cec.integrations.torchmetrics import CECScore  # noqa: E402

PREDS = [
    "CO2 traps heat. The planet warms.",
    "Ice sheets melt, so seas rise.",
    "Cows are loud animals.",
    "Deforestation releases carbon. Forests store less.",
    "The sun is bright.",
    "Warmer oceans fuel storms.",
]
REFS = [
    ["The planet warms because CO2 traps heat.", "Greenhouse gases warm the Earth."],
    "Sea level rises as ice melts.",
    ["Volcanoes emit gases.", "Cows moo loudly."],
    "Cutting forests releases stored carbon.",
    "Solar output varies little.",
    ["Storms get stronger over warm water.", "Hurricanes feed on heat."],
]


@pytest.fixture(scope="module")
def expected():
    return cec.score(PREDS, REFS)


def test_batched_updates_equal_cec_score(expected):
    metric = CECScore()
    for i in range(0, len(PREDS), 4):
        metric.update(PREDS[i : i + 4], REFS[i : i + 4])
    assert float(metric.compute()) == pytest.approx(expected.mean, abs=1e-6)
    parts = metric.compute_all()
    assert float(parts["cec_forward"]) == pytest.approx(expected.mean_forward, abs=1e-6)
    assert float(parts["cec_backward"]) == pytest.approx(expected.mean_backward, abs=1e-6)
    assert metric.signature == str(expected.signature.with_(nrefs="var"))
    metric.reset()
    assert math.isnan(float(metric.compute()))


def test_empty_policy_nan_is_left_out_and_counted():
    metric = CECScore(empty="nan")
    metric.update(PREDS[:2] + [""], REFS[:2] + ["A reference."])
    want = cec.score(PREDS[:2] + [""], REFS[:2] + ["A reference."], empty="nan")
    assert float(metric.compute()) == pytest.approx(want.mean, abs=1e-6)
    assert int(metric.compute_all()["n_empty"]) == 1 and "empty:nan" in metric.signature


def test_scorer_built_once_and_bad_options_fail_at_construction():
    a, b = CECScore(splitter="cec"), CECScore(splitter="cec")
    assert a._scorer is b._scorer and a.clone()._scorer is a._scorer
    with pytest.raises(ValueError, match="splitter"):
        CECScore(splitter="no-such-splitter")
    with pytest.raises((TypeError, ValueError), match="colour"):
        CECScore(colour="red")
    with pytest.raises(ValueError, match="must match"):
        a.update(PREDS[:2], REFS[:1])


def test_pickled_metric_keeps_its_scorer():
    """As for spawned workers: options rebuild the cached scorer; a scorer object refuses."""
    import pickle

    by_options = CECScore(splitter="none", empty="nan")
    again = pickle.loads(pickle.dumps(by_options))
    assert again._scorer is by_options._scorer  # same process: the same cached scorer
    assert again.cec_options == {"splitter": "none", "empty": "nan"}
    given = CECScore(cec.CEC(splitter="none", empty="nan"))
    with pytest.raises(TypeError, match="build it from options"):
        pickle.dumps(given)  # rather than becoming the default scorer in the other process


def test_metric_collection(expected):
    from torchmetrics import MetricCollection

    coll = MetricCollection({"cec": CECScore(), "cec_nosplit": CECScore(splitter="none")})
    coll.update(PREDS, REFS)
    out = coll.compute()
    assert float(out["cec"]) == pytest.approx(expected.mean, abs=1e-6)
    assert float(out["cec_nosplit"]) == pytest.approx(
        cec.score(PREDS, REFS, splitter="none").mean, abs=1e-6
    )


def test_lightning_self_log(expected):
    pl = pytest.importorskip("pytorch_lightning")

    class Explainer(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(1, 1)  # a module needs a parameter
            self.val_cec = CECScore()

        def validation_step(self, batch, batch_idx):
            preds, refs = batch
            self.val_cec.update(preds, refs)
            self.log("val_cec", self.val_cec, on_epoch=True, batch_size=len(preds))

    def collate(items):
        return [p for p, _ in items], [r for _, r in items]

    batches = torch.utils.data.DataLoader(
        list(zip(PREDS, REFS, strict=True)), batch_size=3, collate_fn=collate
    )
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.validate(Explainer(), dataloaders=batches, verbose=False)
    assert float(trainer.callback_metrics["val_cec"]) == pytest.approx(expected.mean, abs=1e-6)


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    # a rendezvous file, not a TCP port picked in advance (another process may take the port)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world)  # fmt: skip
    try:
        metric = CECScore()
        half = len(PREDS) // world
        mine = slice(rank * half, (rank + 1) * half)
        metric.update(PREDS[mine], REFS[mine])
        local = float(metric._mean(metric.sym_sum))  # this rank's items only, unsynced
        value = float(metric.compute())  # torchmetrics syncs the sum states over both ranks
        parts = {k: float(v) for k, v in metric.compute_all().items()}
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as fh:
            json.dump({"local": local, "cec": value, **parts}, fh)
        dist.barrier()  # no rank tears gloo down while the other still talks to it
    finally:
        dist.destroy_process_group()


def test_ddp_two_gloo_processes_compute_the_all_items_mean(tmp_path, expected):
    import torch.multiprocessing as mp

    init = tmp_path / "rendezvous"
    mp.spawn(_ddp_worker, args=(2, str(init), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    first, second = cec.score(PREDS[:3], REFS[:3]), cec.score(PREDS[3:], REFS[3:])
    assert ranks[0]["local"] == pytest.approx(first.mean, abs=1e-6)
    assert ranks[1]["local"] == pytest.approx(second.mean, abs=1e-6)
    assert ranks[0]["local"] != pytest.approx(expected.mean, abs=1e-3)  # halves really differ
    for r in ranks:
        assert r["cec"] == pytest.approx(expected.mean, abs=1e-6)
        assert r["cec_forward"] == pytest.approx(expected.mean_forward, abs=1e-6)
        assert r["cec_backward"] == pytest.approx(expected.mean_backward, abs=1e-6)
