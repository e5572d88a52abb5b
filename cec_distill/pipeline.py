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

A stage is reused only if it was made from the same inputs. Before a stage runs, its
*fingerprint* is recorded in ``status.json``: its config section (resolved: presets expanded,
paths inside ``run_dir`` left out), the content hashes of the upstream outputs it reads (and of
the source data) and the code version (``cec.__version__``). When a later run finds the stage's
outputs (complete or partial) under a different fingerprint, it stops with a
:class:`StaleStageError` that names the stage and what changed (``student.learning_rate: 0.01 ->
0.02``, ``data/train.jsonl changed``) before anything is recomputed or overwritten.
``force=True`` (``--force``) redoes every stale stage (and so whatever its new outputs change
downstream); ``from_stage="train"`` (``--from train``) redoes that stage and every later one
(the baseline's generations, which do not depend on training, are kept; ``--from generate``
redoes both generations).
A stage is redone by removing its outputs first (teacher labels, which cost money, are moved
aside to ``labels/teacher.jsonl.stale-<time>`` instead).

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
import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cec_distill.config import ConfigError, load_yaml, merge

__all__ = ["run", "run_command", "load_study_config", "STAGES", "StaleStageError"]

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


class StaleStageError(RuntimeError):
    """A stage's outputs in ``run_dir`` were made from other inputs than this run's."""


# --------------------------------------------------------------------------------------------
# fingerprints
# --------------------------------------------------------------------------------------------
_HASH_WHOLE = 256 * 2**20  # files up to this size are hashed whole; bigger: size, head, tail


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _HASH_WHOLE:
            for block in iter(lambda: fh.read(2**20), b""):
                h.update(block)
        else:  # multi-GB weights: size and the first and last 16 MiB
            h.update(f"size={size}".encode())
            h.update(fh.read(2**24))
            fh.seek(size - 2**24)
            h.update(fh.read(2**24))
    return h.hexdigest()[:16]


def _digest(path: Path) -> str | None:
    """Content hash of a file or of a folder's files (names included); None if absent."""
    if path.is_file():
        return _file_digest(path)
    if not path.is_dir():
        return None
    h = hashlib.sha256()
    for f in sorted(x for x in path.rglob("*") if x.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\x00{_file_digest(f)}\x00".encode())
    return h.hexdigest()[:16]


def _code_version() -> str:
    import cec

    return cec.__version__


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out if out or not prefix else {prefix: {}}
    return {prefix: d}


def _changes(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints, in words."""
    out = []
    if old.get("code") != new.get("code"):
        out.append(f"code version {old.get('code')} -> {new.get('code')}")
    a, b = _flatten(old.get("config", {})), _flatten(new.get("config", {}))
    for k in sorted(set(a) | set(b)):
        if a.get(k, "<unset>") != b.get(k, "<unset>"):
            out.append(f"{k}: {a.get(k, '<unset>')!r} -> {b.get(k, '<unset>')!r}")
    ia, ib = old.get("inputs", {}), new.get("inputs", {})
    for k in sorted(set(ia) | set(ib)):
        if ia.get(k) != ib.get(k):
            what = "is new" if k not in ia else "is gone" if ib.get(k) is None else "changed"
            out.append(f"{k} {what}")
    return out


# the stage each status entry belongs to; the order they run in (the baseline's generations
# come before training, which they do not depend on: --from train keeps them)
_STAGE_OF = {"generate_before": "generate"}
_RUN_ORDER = ("data", "label", "base", "generate_before", "train", "generate", "evaluate",
              "stats", "report")  # fmt: skip


class _Run:
    def __init__(self, study: dict, force: bool = False, from_stage: str | None = None):
        self.study = study
        self.dir = Path(study["run_dir"])
        self.status_path = self.dir / "status.json"
        self.status: dict[str, Any] = (
            json.loads(self.status_path.read_text()) if self.status_path.is_file() else {}
        )
        self.force = force
        first = "generate_before" if from_stage == "generate" else from_stage
        self.redo = set(_RUN_ORDER[_RUN_ORDER.index(first) :]) if first else set()

    def _write_status(self) -> None:
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.status, indent=1) + "\n")
        os.replace(tmp, self.status_path)

    def mark(self, stage: str, state: str, seconds: float, **info: Any) -> None:
        fp = self.status.get(stage, {}).get("fingerprint")
        self.status[stage] = {"state": state, "seconds": round(seconds, 1), **info}
        if fp is not None:
            self.status[stage]["fingerprint"] = fp
        self._write_status()
        log.info("stage %s: %s (%.1fs) %s", stage, state, seconds, info or "")

    def check(
        self, stage: str, outputs: list[Path], config: dict, inputs: dict[str, Path | None]
    ) -> None:
        """Make sure ``outputs`` were made from these inputs, or clear them; record the fingerprint.

        Raises:
            StaleStageError: outputs made from other inputs (or with no fingerprint recorded),
                without ``force`` or ``from_stage`` to redo them.
        """
        fp = {
            "code": _code_version(),
            "config": json.loads(json.dumps(config, default=str)),
            "inputs": {k: (_digest(p) if p is not None else None) for k, p in inputs.items()},
        }
        present = [p for p in outputs if p.exists()]
        prev = self.status.get(stage, {}).get("fingerprint")
        redo = stage in self.redo
        if present and not redo and prev != fp:
            why = (
                _changes(prev, fp)
                if prev is not None
                else ["no fingerprint was recorded for its outputs (an older cec, or by hand)"]
            )
            if not self.force:
                rel = ", ".join(str(p.relative_to(self.dir)) for p in present)
                raise StaleStageError(
                    f"stage {_STAGE_OF.get(stage, stage)!r} is stale: its outputs in {self.dir} "
                    f"({rel}) were made from other inputs: {'; '.join(why)}. Nothing was "
                    f"changed. Re-run with --force to redo the stale stages (force=True), "
                    f"--from {_STAGE_OF.get(stage, stage)} to redo it and every later stage "
                    f"(from_stage=...), or use another run_dir."
                )
            log.warning("stage %s is stale (%s): redoing it", stage, "; ".join(why))
            redo = True
        if redo and present:
            for p in present:
                _remove_output(p)
        self.status[stage] = {"state": "running", "fingerprint": fp}
        self._write_status()


def _remove_output(p: Path) -> None:
    if p.name == "teacher.jsonl":  # paid for: keep it aside
        p.rename(p.with_name(f"{p.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}"))
    elif p.is_dir():
        shutil.rmtree(p)
    else:
        p.unlink()


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
    from cec_distill.data import read_instances, read_teacher_labels

    teacher = {}
    if labels is not None:
        got = read_teacher_labels(labels)
        teacher = got.explanations
        if got.truncated:  # a cut reference lowers every score against it: say so
            log.warning("%d teacher references were cut by the token limit "
                        "(finish_reason length); relabel with a larger max_tokens",
                        len(got.truncated))  # fmt: skip
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


def run_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Study YAML (see docs/training.md).")
    ],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key, e.g. --set student.epochs=1.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Redo every stage whose outputs were made from other inputs."),
    ] = False,
    from_stage: Annotated[
        str | None,
        typer.Option("--from", help=f"Redo this stage and every later one: {', '.join(STAGES)}."),
    ] = None,
) -> None:
    """Run or resume the study: label -> train -> generate -> evaluate -> stats -> report."""
    from cec_distill.train import _parse_sets

    if from_stage is not None and from_stage not in STAGES:
        raise typer.BadParameter(
            f"{from_stage!r} is not a stage; stages: {', '.join(STAGES)}", param_hint="--from"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t = time.perf_counter()
    try:
        md = run(config, overrides=_parse_sets(set_), force=force, from_stage=from_stage)
    except StaleStageError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(md.read_text())
    typer.echo(f"report: {md} ({math.ceil(time.perf_counter() - t)} s)")
