"""The stages of a study run: data, label, base, train config, generation, evaluate, stats.

Each stage function reads its inputs from ``run_dir`` and writes its outputs there; the
orchestration (fingerprints, skipping, timings) is :func:`cec_distill.pipeline.runner.run`'s.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from cec_distill.config import ConfigError, merge
from cec_distill.pipeline.config import _DEFAULT_METRICS, _student_section
from cec_distill.pipeline.status import _Run

log = logging.getLogger("cec_distill.pipeline")


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
