"""The whole study in one resumable run: data -> label -> train -> generate -> evaluate -> stats -> report.

``cec-distill run --config study.yaml`` creates one directory per run (``run_dir``)::

    config.yaml                 the study config as run (resolved)
    pipeline.log                every stage's log
    status.json                 stage -> done / skipped, seconds
    data/{train,validation,test}.jsonl
    labels/teacher.jsonl        teacher explanations (only when the data has no references)
    base_model/                 the base written once as safetensors (GGUF or package sources)
    train/                      checkpoints, adapter/, log.jsonl, train_summary.json
    generations/{before,after}.jsonl   the base model's and the fine-tuned student's outputs
    results/{before,after}.json        per-item and corpus scores, one signature per metric
    results/stats.json          before-vs-after tests per metric, CEC-vs-BERTScore comparison
    report/report.md            Table 1 style report (+ table1.md/.csv/.tex, plots)

Every stage is skipped when its output exists and is complete, so re-running the same command
after an interruption continues where it stopped (training resumes from its last checkpoint,
generation from its last written record).

Study config keys (YAML):

``run_dir``
    Output directory.
``seed``
    Seeds the item selection (``data.seed`` overrides) and the statistics.
``data``
    ``path`` (anything :func:`cec_distill.data.load_instances` reads), ``n_train``,
    ``n_validation``, ``n_test`` (items drawn by a seeded hash order, disjoint), or
    ``fractions`` (a stratified :func:`cec_distill.data.split`) when the counts are absent.
``teacher``
    A :class:`cec_distill.teacher.TeacherConfig` mapping (plus ``template``); used only when the
    instances have no reference explanations.
``student``
    A training config (:class:`cec_distill.config.TrainConfig`, ``preset`` allowed) without
    ``train_file``/``validation_file``/``output_dir``; ``materialize: false`` keeps loading the
    base from its source each time.
``generate``
    :class:`cec_distill.config.GenerateConfig` settings (batch size, length, sampling, seed).
``evaluate``
    ``metrics`` (default: the paper's seven) and options for :func:`cec_distill.metrics.evaluate`.
``stats``
    ``k`` (items in the CEC-vs-BERTScore comparison, default 100 or all), ``n_resamples``.
``baseline``
    Also generate and score with the base model before fine-tuning (default true).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cec_distill.config import ConfigError, load_yaml, merge

__all__ = ["run", "run_command", "load_study_config", "STAGES"]

log = logging.getLogger("cec_distill.pipeline")
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
        if k in d and (isinstance(d[k], bool) or not isinstance(d[k], int) or d[k] < 0):
            raise ConfigError(f"data.{k} must be a non-negative integer, got {d[k]!r}")
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


class _Run:
    def __init__(self, study: dict):
        self.study = study
        self.dir = Path(study["run_dir"])
        self.status_path = self.dir / "status.json"
        self.status: dict[str, Any] = (
            json.loads(self.status_path.read_text()) if self.status_path.is_file() else {}
        )

    def mark(self, stage: str, state: str, seconds: float, **info: Any) -> None:
        self.status[stage] = {"state": state, "seconds": round(seconds, 1), **info}
        self.status_path.write_text(json.dumps(self.status, indent=1) + "\n")
        log.info("stage %s: %s (%.1fs) %s", stage, state, seconds, info or "")


# --------------------------------------------------------------------------------------------
# stages
# --------------------------------------------------------------------------------------------
def _stage_data(r: _Run) -> dict[str, Path]:
    from cec_distill.data import load_instances, read_instances, split, write_instances

    out = {s: r.dir / "data" / f"{s}.jsonl" for s in ("train", "validation", "test")}
    if all(p.is_file() for p in out.values()):
        return out
    d = r.study["data"]
    seed = d.get("seed", r.study["seed"])
    insts = load_instances(d["path"])
    if any(k in d for k in ("n_train", "n_validation", "n_test")):
        order = sorted(
            insts, key=lambda x: hashlib.sha256(f"{seed}\x00{x.id}".encode()).hexdigest()
        )
        n_tr, n_va, n_te = (d.get(k, 0) for k in ("n_train", "n_validation", "n_test"))
        if n_tr + n_va + n_te > len(order):
            raise ConfigError(
                f"data: asked for {n_tr + n_va + n_te} items, {d['path']} has {len(order)}"
            )
        parts = {"train": order[:n_tr], "validation": order[n_tr : n_tr + n_va],
                 "test": order[n_tr + n_va : n_tr + n_va + n_te]}  # fmt: skip
    else:
        parts = split(insts, seed=seed, fractions=tuple(d.get("fractions", (0.8, 0.1, 0.1))))
    for s, p in out.items():
        write_instances(parts[s], p)
    log.info("data: %s", {s: len(read_instances(p)) for s, p in out.items()})
    return out


def _needs_labels(files: dict[str, Path]) -> bool:
    from cec_distill.data import read_instances

    return any(not x.explanations for p in files.values() for x in read_instances(p))


def _stage_label(r: _Run, files: dict[str, Path]) -> Path:
    from cec_distill.data import read_instances
    from cec_distill.teacher import TeacherConfig, label_instances

    t = dict(r.study.get("teacher") or {})
    template = t.pop("template", None)
    out = r.dir / "labels" / "teacher.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    insts = [x for p in files.values() for x in read_instances(p)]
    summary = label_instances(insts, out, TeacherConfig(**t), template=template)
    if summary.remaining:
        raise RuntimeError(
            f"label: {summary.remaining} instances still unlabelled; re-run to resume"
        )
    return out


def _references(files: dict[str, Path], labels: Path | None) -> dict[str, list[str]]:
    """Item id -> reference explanations (the teacher's when labelled, else the human ones)."""
    from cec_distill.data import read_instances
    from cec_distill.store import JsonlStore

    teacher = {}
    if labels is not None:
        teacher = {k: v["explanation"] for k, v in JsonlStore.open(labels, mode="r").latest().items()
                   if v.get("explanation") and not v.get("error")}  # fmt: skip
    refs = {}
    for p in files.values():
        for x in read_instances(p):
            if x.id in teacher:
                refs[x.id] = [teacher[x.id]]
            elif labels is None and x.explanations:
                refs[x.id] = list(x.explanations)
    return refs


def _stage_base(r: _Run) -> dict:
    from cec_distill.config import load_train_config
    from cec_distill.modeling import materialize

    student = _student_section(r.study)
    cfg = load_train_config({**student, "train_file": "-", "output_dir": "-"})
    src = cfg.model
    if not r.study["student"].get("materialize", bool(src.gguf_file or src.package)):
        return {}
    m = materialize(src, r.dir / "base_model")
    return {"name_or_path": m.name_or_path, "gguf_file": None, "package": None}


def _train_cfg(r: _Run, files: dict[str, Path], labels: Path | None, base: dict):
    from cec_distill.config import load_train_config

    student = _student_section(r.study)
    over: dict[str, Any] = {
        "train_file": str(files["train"]),
        "validation_file": str(files["validation"]),
        "output_dir": str(r.dir / "train"),
    }
    if labels is not None:
        over["labels_file"] = str(labels)
    if base:
        over["model"] = base
    return load_train_config(merge(student, over))


def _complete_generation(path: Path, ids: list[str]) -> bool:
    from cec_distill.store import JsonlStore

    return path.is_file() and set(ids) <= JsonlStore.open(path, mode="r").done_ids()


def _gen_cfg(r: _Run, tcfg, files: dict[str, Path], name: str, adapter: str | None):
    from cec_distill.config import from_dict, GenerateConfig  # noqa: I001

    g = dict(r.study.get("generate") or {})
    g.update(
        input_file=str(files["test"]),
        output_file=str(r.dir / "generations" / f"{name}.jsonl"),
        model=tcfg.model,
        format=tcfg.format,
        adapter=adapter,
        device=tcfg.device,
    )
    g.setdefault("quantization", tcfg.quantization)
    g.setdefault("max_prompt_length", tcfg.max_length)
    return from_dict(GenerateConfig, g)


def _read_generations(path: Path) -> dict[str, dict]:
    from cec_distill.store import JsonlStore

    return JsonlStore.open(path, mode="r").latest()


def _stage_evaluate(
    r: _Run, name: str, gen_path: Path, test_ids: list[str], refs: dict, scorer: Any
):
    from cec_distill.metrics import evaluate

    out = r.dir / "results" / f"{name}.json"
    if out.is_file():
        return out
    gens = _read_generations(gen_path)
    ev = dict(r.study.get("evaluate") or {})
    metrics = ev.pop("metrics", _DEFAULT_METRICS)
    if scorer is not None and "cec" in metrics and "scorer" not in ev and "cec_options" not in ev:
        ev["scorer"] = scorer
    res = evaluate(
        [gens[i]["explanation"] for i in test_ids], [refs[i] for i in test_ids],
        metrics=metrics, ids=test_ids, system=_system_name(r, name), **ev,
    )  # fmt: skip
    res.meta = {"generations": str(gen_path), "n": len(test_ids)}
    res.save(out, csv=True)
    return out


def _system_name(r: _Run, name: str) -> str:
    student = r.study["student"]
    base = (
        r.study.get("name")
        or student.get("preset")
        or (student.get("model") or {}).get("gguf_file")
        or (student.get("model") or {}).get("name_or_path")
        or "student"
    )
    base = str(base).removesuffix(".gguf")
    return f"{base} ({'before fine-tuning' if name == 'before' else 'fine-tuned'})"


def _stage_stats(r: _Run, results: dict[str, Path]) -> Path:
    import numpy as np

    from cec_distill import stats as st
    from cec_distill.metrics import load_results

    out = r.dir / "results" / "stats.json"
    if out.is_file():
        return out
    s = dict(r.study.get("stats") or {})
    seed = int(s.get("seed", r.study["seed"]))
    n_res = int(s.get("n_resamples", 10_000))
    after = load_results(results["after"])
    data: dict[str, Any] = {"seed": seed, "n_resamples": n_res, "before_vs_after": {}}
    if "before" in results:
        before = load_results(results["before"])
        b_items = before.items.set_index("id")
        a_items = after.items.set_index("id").loc[b_items.index]
        for col in after.corpus.index:
            if col not in b_items.columns:
                continue
            a = a_items[col].to_numpy(float)
            b = b_items[col].to_numpy(float)
            ok = ~(np.isnan(a) | np.isnan(b))
            a, b = a[ok], b[ok]
            if len(a) < 3 or np.allclose(a - b, 0):
                continue
            data["before_vs_after"][col] = {
                "n": int(len(a)), "mean_before": float(b.mean()), "mean_after": float(a.mean()),
                "ttest": st.paired_ttest(a, b).to_dict(), "wilcoxon": st.wilcoxon(a, b).to_dict(),
                "cohens_d": st.cohens_d_paired(a, b),
                "difference_ci": st.bootstrap_paired_difference(a, b, n_resamples=n_res, seed=seed).to_dict(),
            }  # fmt: skip
    if {"cec", "bertscore"} <= set(after.items.columns):
        n = len(after.items)
        k = min(int(s.get("k", 100)), n)
        c = st.compare_metrics(after.items["cec"].to_numpy(float), after.items["bertscore"].to_numpy(float),
                               k=k, seed=seed, names=("cec", "bertscore"))  # fmt: skip
        data["cec_vs_bertscore"] = c.to_dict()
        data["cec_vs_bertscore_text"] = c.format()
    out.write_text(json.dumps(data, indent=1, default=float) + "\n")
    return out


def _p(v: float) -> str:
    return "< .001" if v < 0.001 else f"{v:.3f}"


def _stage_report(r: _Run, results: dict[str, Path], stats_path: Path, timings: dict) -> Path:
    from cec_distill.metrics import load_results
    from cec_distill.report import table1, to_markdown, write_report

    out_dir = r.dir / "report"
    md = out_dir / "report.md"
    res = [load_results(results[k]) for k in ("before", "after") if k in results]
    write_report(res, out_dir)
    stats = json.loads(stats_path.read_text())
    train_sum = json.loads((r.dir / "train" / "train_summary.json").read_text())
    lines = [f"# Study report: {r.study.get('name') or r.dir.name}", ""]
    n_test = len(res[-1].items)
    lines += [
        f"Test items: {n_test}. References: {'teacher' if (r.dir / 'labels').exists() else 'human (e-SNLI, all three)'}.",
        "",
    ]
    lines += ["## Table 1 (corpus scores)", "", to_markdown(table1(res)), ""]
    if stats.get("before_vs_after"):
        lines += ["## Before vs after fine-tuning (paired, same test items)", "",
                  "| score | before | after | diff [95% CI] | t (df) | p (t) | Wilcoxon W | p (W) | Cohen's d |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for col, v in stats["before_vs_after"].items():
            ci = v["difference_ci"]
            lines.append(
                f"| {col} | {v['mean_before']:.3f} | {v['mean_after']:.3f} | "
                f"{ci['estimate']:+.3f} [{ci['low']:+.3f}, {ci['high']:+.3f}] | "
                f"{v['ttest']['statistic']:.2f} ({v['ttest']['df']}) | {_p(v['ttest']['pvalue'])} | "
                f"{v['wilcoxon']['statistic']:.1f} | {_p(v['wilcoxon']['pvalue'])} | {v['cohens_d']:.2f} |"
            )
        lines.append("")
    if "cec_vs_bertscore_text" in stats:
        lines += ["## CEC vs BERTScore on the fine-tuned student (the paper's 4.3 procedure)", "",
                  "```", stats["cec_vs_bertscore_text"], "```", ""]  # fmt: skip
    lines += ["## Training", "",
              f"- steps {train_sum['steps']}, examples {train_sum['n_examples']} "
              f"(dropped {train_sum['n_dropped']}, truncated {train_sum['n_truncated']}), "
              f"4-bit {train_sum['loaded_in_4bit']}, final train loss {train_sum['final_train_loss']}",
              f"- last validation: {json.dumps(train_sum.get('eval'))}", ""]  # fmt: skip
    lines += (
        ["## Signatures", ""] + [f"- {m}: `{sig}`" for m, sig in res[-1].signatures.items()] + [""]
    )
    lines += ["## Stage times (seconds)", ""] + [f"- {k}: {v}" for k, v in timings.items()] + [""]
    md.write_text("\n".join(lines))
    return md


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------
def run(config: str | Path | dict, *, overrides: dict | None = None, scorer: Any = None) -> Path:
    """Run (or resume) the whole study; returns the path of ``report/report.md``."""
    import yaml

    study = load_study_config(config, overrides)
    r = _Run(study)
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
    r.dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(r.dir / "pipeline.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger("cec_distill")
    root.addHandler(handler)
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        (r.dir / "config.yaml").write_text(yaml.safe_dump(study, sort_keys=False))
        timings: dict[str, float] = {}

        def timed(stage: str, fn, *a, complete: bool = False):
            """Run a stage; one that was already complete keeps the seconds of the run that did it."""
            t = time.perf_counter()
            value = fn(*a)
            prev = r.status.get(stage, {})
            if complete and "seconds" in prev and str(prev.get("state", "")).startswith("done"):
                timings[stage] = prev["seconds"]
                r.mark(stage, "done (skipped: complete)", prev["seconds"])
            else:
                timings[stage] = round(time.perf_counter() - t, 1)
                r.mark(stage, "done", timings[stage])
            return value

        data_done = all(
            (r.dir / "data" / f"{x}.jsonl").is_file() for x in ("train", "validation", "test")
        )
        files = timed("data", _stage_data, r, complete=data_done)
        if _needs_labels(files):
            labels = timed("label", _stage_label, r, files)
        else:
            labels = None
            r.mark("label", "skipped (references exist)", 0.0)
        refs = _references(files, labels)
        base = timed(
            "base", _stage_base, r, complete=(r.dir / "base_model" / "materialized.json").is_file()
        )
        tcfg = _train_cfg(r, files, labels, base)

        from cec_distill.data import read_instances

        test = [x for x in read_instances(files["test"]) if x.id in refs]
        test_ids = [x.id for x in test]

        def stage_generate() -> dict[str, Path]:
            from cec_distill.generate import generate

            outs = {}
            names = (["before"] if study["baseline"] else []) + ["after"]
            for name in names:
                adapter = None if name == "before" else str(r.dir / "train" / "adapter")
                g = _gen_cfg(r, tcfg, files, name, adapter)
                if not _complete_generation(Path(g.output_file), test_ids):
                    generate(g, test)
                outs[name] = Path(g.output_file)
            return outs

        def stage_train():
            from cec_distill.train import SUMMARY_FILE, train

            if (Path(tcfg.output_dir) / SUMMARY_FILE).is_file():
                return json.loads((Path(tcfg.output_dir) / SUMMARY_FILE).read_text())
            return train(tcfg, scorer=scorer).__dict__

        # the baseline's generations do not depend on training: make them first
        if study["baseline"]:
            from cec_distill.generate import generate

            g = _gen_cfg(r, tcfg, files, "before", None)
            if not _complete_generation(Path(g.output_file), test_ids):
                timed("generate_before", generate, g, test)
        from cec_distill.train import SUMMARY_FILE

        timed("train", stage_train, complete=(r.dir / "train" / SUMMARY_FILE).is_file())
        names = (["before"] if study["baseline"] else []) + ["after"]
        gen_done = all(
            _complete_generation(r.dir / "generations" / f"{n}.jsonl", test_ids) for n in names
        )
        gens = timed("generate", stage_generate, complete=gen_done)

        def stage_evaluate() -> dict[str, Path]:
            return {n: _stage_evaluate(r, n, p, test_ids, refs, scorer) for n, p in gens.items()}

        ev_done = all((r.dir / "results" / f"{n}.json").is_file() for n in names)
        results = timed("evaluate", stage_evaluate, complete=ev_done)
        stats_done = (r.dir / "results" / "stats.json").is_file()
        stats_path = timed("stats", _stage_stats, r, results, complete=stats_done)
        md = r.dir / "report" / "report.md"
        if md.is_file() and md.stat().st_mtime >= stats_path.stat().st_mtime:
            r.mark(
                "report", "done (skipped: complete)", r.status.get("report", {}).get("seconds", 0.0)
            )
            return md
        seconds = {k: v.get("seconds") for k, v in r.status.items() if "seconds" in v}
        return timed("report", _stage_report, r, results, stats_path, seconds)
    finally:
        root.removeHandler(handler)
        handler.close()


def run_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Study YAML (see docs/training.md).")
    ],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key, e.g. --set student.epochs=1.")
    ] = None,
) -> None:
    """Run or resume the study: label -> train -> generate -> evaluate -> stats -> report."""
    from cec_distill.train import _parse_sets

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t = time.perf_counter()
    md = run(config, overrides=_parse_sets(set_))
    typer.echo(md.read_text())
    typer.echo(f"report: {md} ({math.ceil(time.perf_counter() - t)} s)")
