"""The study config: its keys, checks, and the resolved sections that go into the fingerprints."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from cec._checks import check_positive_int
from cec_distill.config import ConfigError, load_yaml, merge

__all__ = ["load_study_config", "STAGES"]

STAGES = ("data", "label", "base", "train", "generate", "evaluate", "stats", "report")
_STUDY_KEYS = {
    "run_dir",
    "seed",
    "data",
    "teacher",
    "student",
    "generate",
    "evaluate",
    "stats",
    "baseline",
    "name",
}
_DEFAULT_METRICS = ["bleu", "rouge1", "rouge2", "rougeL", "meteor", "bertscore", "cec"]


def load_study_config(config: str | Path | dict, overrides: dict | None = None) -> dict:
    """Read and check a study config (unknown top-level keys and missing sections raise)."""
    data = copy.deepcopy(config) if isinstance(config, dict) else load_yaml(config)
    if overrides:
        data = merge(data, overrides)
    unknown = sorted(set(data) - _STUDY_KEYS)
    if unknown:
        raise ConfigError(f"study config: unknown key(s) {unknown}; known: {sorted(_STUDY_KEYS)}")
    for req in ("run_dir", "data", "student"):
        if not data.get(req):
            raise ConfigError(f"study config: {req} is required")
    d = data["data"]
    if not isinstance(d, dict) or not d.get("path"):
        raise ConfigError("study config: data.path is required")
    for k in ("n_train", "n_validation", "n_test"):
        if k in d:
            check_positive_int(d[k], f"data.{k}", minimum=0, error=ConfigError)
    for k in ("train_file", "validation_file", "output_dir"):
        if k in data["student"]:
            raise ConfigError(f"student.{k} is set by the pipeline; remove it")
    data.setdefault("seed", 0)
    data.setdefault("baseline", True)
    data.setdefault("generate", {})
    data.setdefault("evaluate", {})
    data.setdefault("stats", {})
    # validate the student section now, before anything runs
    from cec_distill.config import load_train_config

    load_train_config({**_student_section(data), "train_file": "-", "output_dir": "-"})
    return data


def _student_section(study: dict) -> dict:
    return {k: v for k, v in study["student"].items() if k != "materialize"}


def _resolved_student(study: dict) -> dict:
    """The student's training config as it resolves (preset expanded), without run_dir paths."""
    from cec_distill.config import load_train_config, to_dict

    cfg = to_dict(
        load_train_config({**_student_section(study), "train_file": "-", "output_dir": "-"})
    )
    for k in ("train_file", "output_dir", "validation_file", "labels_file"):
        cfg.pop(k, None)
    cfg["materialize"] = study["student"].get("materialize")
    return cfg


def _gen_section(gcfg: Any, base: dict) -> dict:
    """A generation config without its paths (the base and the adapter are inputs)."""
    from cec_distill.config import to_dict

    g = to_dict(gcfg)
    for k in ("input_file", "output_file", "adapter"):
        g.pop(k, None)
    if base:
        g["model"].pop("name_or_path", None)
    return g
