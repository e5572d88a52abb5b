"""The run: every stage in order, each checked against its fingerprint, skipped when complete."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from cec_distill.config import ConfigError
from cec_distill.pipeline.config import (
    STAGES,
    _gen_section,
    _resolved_student,
    load_study_config,
)
from cec_distill.pipeline.report import _stage_report
from cec_distill.pipeline.stages import (
    _complete_generation,
    _gen_cfg,
    _needs_labels,
    _references,
    _stage_base,
    _stage_data,
    _stage_evaluate,
    _stage_label,
    _stage_stats,
    _system_name,
    _train_cfg,
)
from cec_distill.pipeline.status import _Run

__all__ = ["run"]


def _check_student_package(study: dict) -> None:
    """Raise :class:`ConfigError` when ``student.model.package`` names a package not installed."""
    from cec_distill.config import load_train_config
    from cec_distill.config.loading import resolve_model_path
    from cec_distill.pipeline.config import _student_section

    model = load_train_config({**_student_section(study), "train_file": "-", "output_dir": "-"})
    if model.model.package:
        resolve_model_path(model.model)


def run(
    config: str | Path | dict,
    *,
    overrides: dict | None = None,
    scorer: Any = None,
    force: bool = False,
    from_stage: str | None = None,
) -> Path:
    """Run (or resume) the whole study; returns the path of ``report/report.md``.

    Args:
        config: The study config (YAML path or mapping).
        overrides: Merged over ``config``.
        scorer: A :class:`cec.CEC` for training evaluation and the CEC metric.
        force: Redo every stage whose outputs were made from other inputs (instead of stopping).
        from_stage: Redo this stage (one of :data:`STAGES`) and every later one.

    Raises:
        StaleStageError: a stage's outputs were made from other inputs (config, upstream
            outputs, code version) and neither ``force`` nor ``from_stage`` asks to redo it.
    """
    import yaml

    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {type(force).__name__}")
    if from_stage is not None and from_stage not in STAGES:
        raise ValueError(f"from_stage must be one of {STAGES}, got {from_stage!r}")
    study = load_study_config(config, overrides)
    r = _Run(study, force=force, from_stage=from_stage)
    data_path = (study.get("data") or {}).get("path")
    split_done = (r.dir / "data" / "test.jsonl").is_file()
    hub_names = ("climate-fever", "climate_fever", "hf:climate_fever")
    if (  # checked before the run folder is made: a typo leaves nothing behind
        data_path
        and not split_done
        and not Path(str(data_path)).exists()
        and str(data_path).lower() not in hub_names
    ):
        raise ConfigError(f"data.path: no such file or directory: {data_path}")
    if not (r.dir / "base_model").is_dir():  # likewise a student model package not installed
        _check_student_package(study)
    r.dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(r.dir / "pipeline.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("cec_distill")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    config_yaml = yaml.safe_dump(study, sort_keys=False)
    try:
        if not (r.dir / "config.yaml").is_file():
            (r.dir / "config.yaml").write_text(config_yaml)
        timings: dict[str, float] = {}
        D = r.dir

        def stage(
            name: str, fn, *a, outputs: list[Path], config: dict, inputs: dict, complete=None
        ):
            """Check the stage's fingerprint, run it; a complete one keeps its earlier seconds.

            ``complete`` is called after the check (which may have removed stale outputs).
            """
            prev = r.status.get(name, {})
            r.check(name, outputs, config, inputs)
            done = bool(complete()) if complete is not None else False
            t = time.perf_counter()
            value = fn(*a)
            if done and "seconds" in prev and str(prev.get("state", "")).startswith("done"):
                timings[name] = prev["seconds"]
                r.mark(name, "done (skipped: complete)", prev["seconds"])
            else:
                timings[name] = round(time.perf_counter() - t, 1)
                r.mark(name, "done", timings[name])
            return value

        split_files = [D / "data" / f"{x}.jsonl" for x in ("train", "validation", "test")]
        src = Path(str(study["data"]["path"]))
        files = stage(
            "data", _stage_data, r,
            outputs=split_files,
            config={"data": study["data"], "seed": study["seed"]},
            inputs={"source data": src if src.exists() else None},
            complete=lambda: all(p.is_file() for p in split_files),
        )  # fmt: skip
        data_in = {f"data/{p.name}": p for p in split_files}
        if _needs_labels(files):
            labels = stage(
                "label", _stage_label, r, files,
                outputs=[D / "labels" / "teacher.jsonl"],
                config={"teacher": study.get("teacher") or {}}, inputs=data_in,
            )  # fmt: skip
        else:
            labels = None
            r.mark("label", "skipped (references exist)", 0.0)
        refs = _references(files, labels)
        student = _resolved_student(study)
        base = stage(
            "base", _stage_base, r,
            outputs=[D / "base_model"],
            config={"model": student["model"], "materialize": student["materialize"]},
            inputs={},
            complete=lambda: (D / "base_model" / "materialized.json").is_file(),
        )  # fmt: skip
        base_in = {"base_model": D / "base_model"} if base else {}
        label_in = {"labels/teacher.jsonl": labels} if labels is not None else {}
        tcfg = _train_cfg(r, files, labels, base)

        from cec_distill.data import read_instances
        from cec_distill.generate import generate
        from cec_distill.train import SUMMARY_FILE

        test = [x for x in read_instances(files["test"]) if x.id in refs]
        test_ids = [x.id for x in test]
        test_in = {"data/test.jsonl": files["test"]}

        def gen_stage(name: str, key: str, adapter: str | None, extra_in: dict) -> Path:
            g = _gen_cfg(r, tcfg, files, name, adapter)
            out = Path(g.output_file)

            def go() -> Path:
                if not _complete_generation(out, test_ids):
                    generate(g, test)
                return out

            return stage(
                key, go, outputs=[out], config={"generate": _gen_section(g, base)},
                inputs={**test_in, **base_in, **extra_in},
                complete=lambda: _complete_generation(out, test_ids),
            )  # fmt: skip

        # the baseline's generations do not depend on training: make them first
        names = (["before"] if study["baseline"] else []) + ["after"]
        gens: dict[str, Path] = {}
        if study["baseline"]:
            gens["before"] = gen_stage("before", "generate_before", None, {})

        def stage_train():
            from cec_distill.train import train

            if (Path(tcfg.output_dir) / SUMMARY_FILE).is_file():
                return json.loads((Path(tcfg.output_dir) / SUMMARY_FILE).read_text())
            return train(tcfg, scorer=scorer).__dict__

        stage(
            "train", stage_train,
            outputs=[D / "train"],
            config={"student": student},
            inputs={"data/train.jsonl": files["train"], "data/validation.jsonl": files["validation"],
                    **label_in, **base_in},
            complete=lambda: (D / "train" / SUMMARY_FILE).is_file(),
        )  # fmt: skip
        adapter = D / "train" / "adapter"
        gens["after"] = gen_stage("after", "generate", str(adapter), {"train/adapter": adapter})

        def stage_evaluate() -> dict[str, Path]:
            return {n: _stage_evaluate(r, n, p, test_ids, refs, scorer) for n, p in gens.items()}

        result_files = [D / "results" / f"{n}.json" for n in names]
        results = stage(
            "evaluate", stage_evaluate,
            outputs=result_files,
            config={"evaluate": study["evaluate"], "systems": [_system_name(r, n) for n in names]},
            inputs={**{f"generations/{n}.jsonl": p for n, p in gens.items()}, **test_in,
                    **label_in},
            complete=lambda: all(p.is_file() for p in result_files),
        )  # fmt: skip
        res_in = {f"results/{p.name}": p for p in result_files}
        stats_file = D / "results" / "stats.json"
        stats_path = stage(
            "stats", _stage_stats, r, results,
            outputs=[stats_file], config={"stats": study["stats"], "seed": study["seed"]},
            inputs=res_in, complete=stats_file.is_file,
        )  # fmt: skip
        md = D / "report" / "report.md"

        def stage_report() -> Path:
            if md.is_file():
                return md
            seconds = {k: v.get("seconds") for k, v in r.status.items() if "seconds" in v}
            return _stage_report(r, results, stats_path, seconds)

        md = stage(
            "report", stage_report,
            outputs=[D / "report"], config={"name": study.get("name")},
            inputs={**res_in, "results/stats.json": stats_file,
                    "train/train_summary.json": D / "train" / SUMMARY_FILE},
            complete=md.is_file,
        )  # fmt: skip
        cfg_file = r.dir / "config.yaml"
        if cfg_file.read_text() != config_yaml:  # every stage now matches this config
            cfg_file.write_text(config_yaml)
        return md
    finally:
        root.removeHandler(handler)
        handler.close()
