"""The study pipeline end to end on a tiny random Llama, then re-run: every stage skipped."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from tiny_models import build_tiny_llama, tiny_instances

import cec
from cec_distill.config import ConfigError
from cec_distill.data import write_instances
from cec_distill.pipeline import StaleStageError, load_study_config, run

ROOT = Path(__file__).resolve().parents[1]
cec_version = cec.__version__


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
    for bad in (-1, True, 2.0):
        with pytest.raises(
            ConfigError, match=rf"data.n_test must be a non-negative integer, got {bad!r}"
        ):
            load_study_config({**study, "data": {**study["data"], "n_test": bad}})


# --------------------------------------------------------------------------------------------
# stale stages: fingerprints of config sections, upstream outputs and code version
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished(study, scorer):
    """A completed run (the one above, or made here); tests work on copies of it."""
    return run(study, scorer=scorer).parents[1]


def _copy(finished, tmp_path, study) -> tuple[Path, dict]:
    rd = tmp_path / "run"
    shutil.copytree(finished, rd)
    return rd, {**study, "run_dir": str(rd)}


def _stamps(rd: Path) -> dict[str, int]:
    return {
        str(p.relative_to(rd)): p.stat().st_mtime_ns
        for p in sorted(rd.rglob("*"))
        if p.is_file() and p.name not in ("pipeline.log", "status.json")
    }


def _with(study: dict, section: str, **kw) -> dict:
    return {**study, section: {**study[section], **kw}}


def test_a_copied_run_dir_is_reused_and_fingerprints_are_recorded(
    finished, study, scorer, tmp_path
):
    rd, cfg = _copy(finished, tmp_path, study)
    before = _stamps(rd)
    run(cfg, scorer=scorer)  # no path inside run_dir is part of a fingerprint
    after = _stamps(rd)
    assert after.pop("config.yaml") != before.pop("config.yaml")  # it names the new run_dir
    assert after == before
    assert str(rd) in (rd / "config.yaml").read_text()
    status = json.loads((rd / "status.json").read_text())
    fp = status["train"]["fingerprint"]
    assert fp["code"] == cec.__version__
    assert fp["config"]["student"]["learning_rate"] == 0.01
    assert fp["config"]["student"]["lora"]["r"] == 4
    assert set(fp["inputs"]) == {"data/train.jsonl", "data/validation.jsonl"}
    assert status["generate"]["fingerprint"]["inputs"]["train/adapter"]
    assert status["data"]["fingerprint"]["inputs"]["source data"]


def test_a_changed_learning_rate_stops_naming_the_stage_and_from_train_redoes_it(
    finished, study, scorer, tmp_path
):
    rd, cfg = _copy(finished, tmp_path, study)
    before = _stamps(rd)
    config_yaml = (rd / "config.yaml").read_text()
    changed = _with(cfg, "student", learning_rate=0.02)
    with pytest.raises(StaleStageError, match=r"stage 'train' is stale") as err:
        run(changed, scorer=scorer)
    assert "student.learning_rate: 0.01 -> 0.02" in str(err.value)
    assert "--force" in str(err.value) and "--from train" in str(err.value)
    assert _stamps(rd) == before  # nothing rewritten, config.yaml included
    assert (rd / "config.yaml").read_text() == config_yaml

    run(changed, scorer=scorer, from_stage="train")
    after = _stamps(rd)
    for kept in ("data/train.jsonl", "data/test.jsonl", "generations/before.jsonl"):
        assert after[kept] == before[kept], kept
    for redone in (
        "train/train_summary.json", "train/adapter/adapter_model.safetensors",
        "generations/after.jsonl", "results/after.json", "results/stats.json", "report/report.md",
    ):  # fmt: skip
        assert after[redone] != before[redone], redone
    fp = json.loads((rd / "status.json").read_text())["train"]["fingerprint"]
    assert fp["config"]["student"]["learning_rate"] == 0.02
    assert "learning_rate: 0.02" in (rd / "config.yaml").read_text()
    summary = json.loads((rd / "train" / "train_summary.json").read_text())
    assert summary["resumed_from"] == 0  # trained afresh, not resumed from the old checkpoints
    run(changed, scorer=scorer)  # and now it is current
    assert _stamps(rd) == after


def test_force_redoes_only_the_stale_stages(finished, study, scorer, tmp_path):
    rd, cfg = _copy(finished, tmp_path, study)
    before = _stamps(rd)
    changed = _with(cfg, "evaluate", metrics=["bleu", "cec"])
    with pytest.raises(StaleStageError, match=r"stage 'evaluate'.*evaluate\.metrics"):
        run(changed, scorer=scorer)
    run(changed, scorer=scorer, force=True)
    after = _stamps(rd)
    for kept in ("train/train_summary.json", "generations/after.jsonl", "generations/before.jsonl"):
        assert after[kept] == before[kept], kept
    res = json.loads((rd / "results" / "after.json").read_text())
    assert set(res["signatures"]) == {"bleu", "cec"}  # re-evaluated with the new metrics
    assert after["results/stats.json"] != before["results/stats.json"]  # downstream redone


def test_a_changed_upstream_output_or_code_version_is_stale(
    finished, study, scorer, tmp_path, monkeypatch
):
    rd, cfg = _copy(finished, tmp_path, study)
    test_file = rd / "data" / "test.jsonl"
    lines = test_file.read_text().splitlines(keepends=True)
    test_file.write_text("".join(reversed(lines)))  # same items, edited by hand
    # the data stage keeps its outputs; the first stage that reads the edited file stops
    with pytest.raises(
        StaleStageError, match=r"stage 'generate' is stale.*data/test.jsonl changed"
    ):
        run(cfg, scorer=scorer)
    test_file.write_text("".join(lines))
    run(cfg, scorer=scorer)  # restored: current again

    monkeypatch.setattr(cec, "__version__", "999.0")
    with pytest.raises(StaleStageError, match=rf"code version {cec_version} -> 999\.0"):
        run(cfg, scorer=scorer)


def test_cli_run_reports_a_stale_stage_and_rejects_an_unknown_from(finished, study, tmp_path):
    rd, cfg = _copy(finished, tmp_path, study)
    cfg_path = tmp_path / "study.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    base = [sys.executable, "-m", "cec_distill.cli", "run", "--config", str(cfg_path)]
    proc = subprocess.run(base + ["--set", "student.lora.r=8"], env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 2
    assert "stage 'train' is stale" in proc.stderr and "student.lora.r: 4 -> 8" in proc.stderr
    bad = subprocess.run(base + ["--from", "trian"], env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert bad.returncode != 0 and "--from" in bad.stderr and "trian" in bad.stderr
    with pytest.raises(ValueError, match="from_stage"):
        run(cfg, from_stage="trian")
