"""The study pipeline end to end on a tiny random Llama, then re-run: every stage skipped."""

from __future__ import annotations

import json

import pytest
from tiny_models import build_tiny_llama, tiny_instances

from cec_distill.config import ConfigError
from cec_distill.data import write_instances
from cec_distill.pipeline import load_study_config, run


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    model = build_tiny_llama(d / "model")
    write_instances(tiny_instances(14), d / "items.jsonl")
    return {
        "name": "tiny",
        "run_dir": str(d / "run"),
        "seed": 0,
        "data": {"path": str(d / "items.jsonl"), "n_train": 8, "n_validation": 2, "n_test": 4},
        "student": {
            "model": {"name_or_path": str(model)},
            "lora": {"r": 4, "alpha": 8},
            "epochs": 1,
            "batch_size": 4,
            "learning_rate": 1e-2,
            "eval_generate_n": 0,
            "save_steps": 1,
        },
        "generate": {"batch_size": 4, "max_new_tokens": 6},
        "evaluate": {"metrics": ["bleu", "rouge1", "cec"]},
        "stats": {"k": 4, "n_resamples": 200},
    }


def test_study_runs_end_to_end_and_resumes_by_skipping(study, scorer):
    md = run(study, scorer=scorer)
    rd = md.parents[1]
    text = md.read_text()
    assert (
        "## Table 1" in text
        and "| tiny (before fine-tuning) |" in text
        and "| tiny (fine-tuned) |" in text
    )
    assert "cec:" in text  # the CEC signature is in the report
    status = json.loads((rd / "status.json").read_text())
    assert status["label"]["state"].startswith("skipped")  # human references exist
    for stage in ("data", "train", "generate", "evaluate", "stats", "report"):
        assert status[stage]["state"] == "done"
    for s, n in (("train", 8), ("validation", 2), ("test", 4)):
        assert len((rd / "data" / f"{s}.jsonl").read_text().splitlines()) == n
    ids = {
        json.loads(x)["id"]
        for s in ("train", "validation", "test")
        for x in (rd / "data" / f"{s}.jsonl").open()
    }
    assert len(ids) == 14  # disjoint splits
    before = json.loads((rd / "results" / "before.json").read_text())
    after = json.loads((rd / "results" / "after.json").read_text())
    assert before["n"] == after["n"] == 4
    assert set(after["signatures"]) == {"bleu", "rouge1", "cec"}
    assert after["signatures"]["cec"].startswith("cec:")
    stats = json.loads((rd / "results" / "stats.json").read_text())
    assert "cec_vs_bertscore" not in stats  # bertscore was not asked for
    for col, v in stats["before_vs_after"].items():
        assert v["n"] == 4 and 0 <= v["ttest"]["pvalue"] <= 1 and 0 <= v["wilcoxon"]["pvalue"] <= 1
        assert v["mean_after"] == pytest.approx(after["corpus"][col]["mean"])
    assert (rd / "train" / "adapter" / "adapter_model.safetensors").is_file()
    assert (rd / "config.yaml").is_file() and (rd / "pipeline.log").stat().st_size > 0

    # re-run: nothing is recomputed
    watched = [
        rd / "train" / "train_summary.json",
        rd / "generations" / "after.jsonl",
        rd / "results" / "after.json",
    ]
    stamps = [p.stat().st_mtime_ns for p in watched]
    md2 = run(study, scorer=scorer)
    assert md2 == md
    assert [p.stat().st_mtime_ns for p in watched] == stamps
    status2 = json.loads((rd / "status.json").read_text())
    for stage in ("data", "train", "generate", "evaluate", "stats", "report"):
        assert status2[stage]["state"] == "done (skipped: complete)"
        assert status2[stage]["seconds"] == status[stage]["seconds"]  # the working run's time
    assert len((rd / "generations" / "after.jsonl").read_text().splitlines()) == 4


def test_study_config_errors_name_the_key(study):
    with pytest.raises(ConfigError, match="unknown key"):
        load_study_config({**study, "stages": ["all"]})
    with pytest.raises(ConfigError, match="student.train_file"):
        load_study_config({**study, "student": {**study["student"], "train_file": "x"}})
    with pytest.raises(ConfigError, match="data.path"):
        load_study_config({**study, "data": {"n_train": 3}})
    with pytest.raises(ConfigError, match="epochs"):
        load_study_config({**study, "student": {**study["student"], "epochs": 0}})
