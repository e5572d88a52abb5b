"""Evaluation stage: files in, results out; the ``evaluate``, ``compare`` and ``report`` commands.

Python API (all plain files; see :mod:`cec_distill.metrics`, :mod:`cec_distill.stats`,
:mod:`cec_distill.report` for the cores):

- :func:`read_pairs` ``(path, ...) -> (ids, generated, references)``: one JSONL/JSON/CSV file with
  an id, a generated text and a reference (or a list of references) per record.
- :func:`read_pairs_from_files` ``(generated_path, references_path, ...)``: two files (JSONL/
  JSON/CSV records, or ``.txt`` with one text per line), joined by id when both have ids, else
  by position.
- :func:`read_contexts` ``(path, ...) -> list[dict | None]``: what each record of a pairs file
  says the item was about (``claim``/``evidence``/``premise``/``hypothesis``/``label``), for
  metrics that read it (the LLM judge); :func:`contexts_from_instances` ``(path, ids)`` the same
  from an instances file joined by id.
- :func:`evaluate_files` ``(input | generated+references, out, metrics=..., ...) ->
  EvaluationResult``: read, score, write ``out`` (JSON) plus ``<out>.items.csv`` and
  ``<out>.corpus.csv`` (and, with ``llm_judge``, its records ``<out>.judge.jsonl`` unless
  ``judge_records`` names them).
- :func:`compare_results` ``(results, metric_a="cec", metric_b="bertscore", k=100, seed=0)
  -> Comparison``: the paper's 4.3 procedure on per-item scores already computed.
- :func:`compare_pairs` ``(generated, references, metric_a, metric_b, k=100, seed=0, **options)
  -> Comparison``: samples the same ``k`` items first, scores only those with the two metrics.

CLI (registered in :mod:`cec_distill.cli`)::

    cec-distill evaluate pairs.jsonl --out results/phi2.json --system Phi-2
    cec-distill evaluate --generated gen.jsonl --references teacher.jsonl --out r.json
    cec-distill compare results/phi2.json --metric-a cec --metric-b bertscore -k 100 --seed 0
    cec-distill report results/*.json --out-dir reports/
    cec-distill evaluate pairs.jsonl --metrics cec,llm_judge --judge-model gpt-4o \
        --judge-base-url http://localhost:8000/v1 --instances test.jsonl --out r.json
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from cec_distill.metrics import DEFAULT_METRICS, EvaluationResult, evaluate, load_results
from cec_distill.stats import Comparison, compare_metrics, sample_indices

__all__ = [
    "read_pairs",
    "read_pairs_from_files",
    "read_contexts",
    "contexts_from_instances",
    "evaluate_files",
    "compare_results",
    "compare_pairs",
    "evaluate_command",
    "compare_command",
    "report_command",
]

GENERATED_KEYS = ("generated", "explanation", "prediction", "hypothesis_text", "text")
REFERENCE_KEYS = ("references", "reference", "teacher", "target", "text")
ID_KEYS = ("id", "instance_id", "idx")
CONTEXT_KEYS = ("claim", "evidence", "premise", "hypothesis", "label")


def _records(path: Path) -> list[Any]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        out = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        return out
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of records")
        return data
    if suffix in (".csv", ".tsv"):
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    if suffix == ".txt":
        return path.read_text(encoding="utf-8").splitlines()
    raise ValueError(
        f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .csv, .tsv or .txt)"
    )


def _pick(
    record: dict[str, Any], keys: Sequence[str], field: str | None, path: Path, n: int
) -> Any:
    if field is not None:
        if field not in record:
            raise ValueError(f"{path}: record {n} has no field {field!r}")
        return record[field]
    for k in keys:
        if k in record:
            return record[k]
    raise ValueError(f"{path}: record {n} has none of the fields {list(keys)}; name one")


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.strip()
        if value.startswith("["):  # a JSON list inside a CSV cell
            try:
                parsed = json.loads(value)
            except json.JSONDecodeError:
                return [value]
            return [str(v) for v in parsed]
        return [value]
    return list(value)


def read_pairs(
    path: str | os.PathLike[str],
    *,
    generated_field: str | None = None,
    references_field: str | None = None,
    id_field: str | None = None,
) -> tuple[list[Any], list[str], list[list[str]]]:
    """Read ``(ids, generated, references)`` from one file of records.

    Field names default to the first present of ``generated``/``explanation``/``prediction``,
    ``references``/``reference``/``teacher``/``target`` and ``id``/``instance_id``/``idx``
    (position when no id).
    """
    path = Path(path)
    ids, gens, refs = [], [], []
    for n, rec in enumerate(_records(path)):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: record {n} is not an object with fields")
        gens.append(_pick(rec, GENERATED_KEYS[:-1], generated_field, path, n))
        refs.append(_refs(_pick(rec, REFERENCE_KEYS[:-1], references_field, path, n)))
        ids.append(_id_of(rec, id_field, n))
    if not gens:
        raise ValueError(f"{path}: no records")
    return ids, gens, refs


def _id_of(rec: Any, id_field: str | None, n: int) -> Any:
    if isinstance(rec, dict):
        for k in (id_field,) if id_field else ID_KEYS:
            if k in rec:
                return rec[k]
    return None


def _texts(
    path: Path, keys: Sequence[str], field: str | None, id_field: str | None
) -> tuple[list[Any], list[Any]]:
    ids, texts = [], []
    for n, rec in enumerate(_records(path)):
        if isinstance(rec, str):
            ids.append(None)
            texts.append(rec)
        else:
            ids.append(_id_of(rec, id_field, n))
            texts.append(_pick(rec, keys, field, path, n))
    return ids, texts


def read_pairs_from_files(
    generated_path: str | os.PathLike[str],
    references_path: str | os.PathLike[str],
    *,
    generated_field: str | None = None,
    references_field: str | None = None,
    id_field: str | None = None,
) -> tuple[list[Any], list[str], list[list[str]]]:
    """Read generated texts and references from two files; join by id if both have ids."""
    gp, rp = Path(generated_path), Path(references_path)
    gids, gens = _texts(gp, GENERATED_KEYS, generated_field, id_field)
    rids, refs = _texts(rp, REFERENCE_KEYS, references_field, id_field)
    if all(i is not None for i in gids) and all(i is not None for i in rids):
        by_id = {str(i): r for i, r in zip(rids, refs, strict=False)}
        missing = [i for i in gids if str(i) not in by_id]
        if missing:
            raise ValueError(
                f"{rp}: no reference for {len(missing)} generated id(s), e.g. {missing[:3]}"
            )
        return gids, gens, [_refs(by_id[str(i)]) for i in gids]
    if len(gens) != len(refs):
        raise ValueError(
            f"{gp} has {len(gens)} texts but {rp} has {len(refs)} and there are no ids to join on"
        )
    ids = [i if i is not None else n for n, i in enumerate(gids)]
    return ids, gens, [_refs(r) for r in refs]


def read_contexts(path: str | os.PathLike[str]) -> list[dict[str, Any] | None]:
    """The context fields (``claim``, ``evidence``, ``premise``, ``hypothesis``, ``label``) of
    each record of ``path``, in order; None for a record (or a ``.txt`` line) without any."""
    path = Path(path)
    out: list[dict[str, Any] | None] = []
    for rec in _records(path):
        ctx = {k: rec[k] for k in CONTEXT_KEYS if isinstance(rec, dict) and rec.get(k)}
        if isinstance(ctx.get("evidence"), str) and ctx["evidence"].lstrip().startswith("["):
            with contextlib.suppress(json.JSONDecodeError):  # a JSON list inside a CSV cell
                ctx["evidence"] = json.loads(ctx["evidence"])
        out.append(ctx or None)
    return out


def contexts_from_instances(
    path: str | os.PathLike[str], ids: Sequence[Any]
) -> list[dict[str, Any] | None]:
    """The context of each id from an instances file (:func:`cec_distill.data.load_instances`):
    premise/hypothesis for e-SNLI, claim/evidence otherwise, with the label.

    Raises:
        ValueError: An id has no instance in the file.
    """
    from cec_distill.data import load_instances
    from cec_distill.metrics.judge_rubric import context_of_instance

    by_id = {inst.id: inst for inst in load_instances(path)}
    missing = [i for i in ids if str(i) not in by_id]
    if missing:
        raise ValueError(
            f"--instances: {path} has no instance for {len(missing)} of {len(ids)} id(s), "
            f"e.g. {missing[:3]}"
        )
    return [context_of_instance(by_id[str(i)]) for i in ids]


def _contexts_of_pairs(source: dict[str, str], ids: list[Any]) -> list[dict[str, Any] | None]:
    path = source.get("input") or source.get("generated")
    ctxs = read_contexts(path) if path else [None] * len(ids)
    if len(ctxs) != len(ids):
        return [None] * len(ids)
    return ctxs


def evaluate_files(
    input: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    generated: str | os.PathLike[str] | None = None,
    references: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | str = DEFAULT_METRICS,
    system: str | None = None,
    csv: bool = True,
    generated_field: str | None = None,
    references_field: str | None = None,
    instances: str | os.PathLike[str] | None = None,
    **options: Any,
) -> EvaluationResult:
    """Read pairs (one ``input`` file, or ``generated`` + ``references``), score, write ``out``.

    Each item's context (for ``llm_judge``) comes from ``instances`` (an instances file, joined
    by id) when given, else from the pairs' own ``claim``/``evidence``/``premise``/
    ``hypothesis``/``label`` fields. With ``llm_judge`` and ``out``, the judge's records default
    to ``<out>.judge.jsonl``.
    """
    fields = {"generated_field": generated_field, "references_field": references_field}
    if input is not None:
        if generated is not None or references is not None:
            raise ValueError("give either input or generated + references, not both")
        ids, gens, refs = read_pairs(input, **fields)
        source = {"input": str(input)}
    elif generated is not None and references is not None:
        ids, gens, refs = read_pairs_from_files(generated, references, **fields)
        source = {"generated": str(generated), "references": str(references)}
    else:
        raise ValueError("give an input file, or both generated and references files")
    ids = [i if i is not None else n for n, i in enumerate(ids)]
    if instances is not None:
        contexts = contexts_from_instances(instances, ids)
        source["instances"] = str(instances)
    else:
        contexts = _contexts_of_pairs(source, ids)
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    if "llm_judge" in names and out is not None and options.get("judge_records") is None:
        options["judge_records"] = Path(out).with_suffix(".judge.jsonl")
    res = evaluate(gens, refs, names, ids=ids, system=system, contexts=contexts, **options)
    res.meta.update(source)
    if out is not None:
        res.save(out, csv=csv)
    return res


def _scores(results: EvaluationResult | str | os.PathLike[str], column: str) -> Any:
    if not isinstance(results, EvaluationResult):
        path = Path(results)
        results = load_results(path) if path.suffix == ".json" else _items_csv(path)
    items = results.items if isinstance(results, EvaluationResult) else results
    if column not in items.columns:
        raise ValueError(
            f"metric column {column!r} is not in the results; have {list(items.columns)}"
        )
    return items[column].to_numpy(dtype=float)


def _items_csv(path: Path) -> Any:
    import pandas as pd

    return pd.read_csv(path)


def compare_results(
    results: EvaluationResult | str | os.PathLike[str],
    metric_a: str = "cec",
    metric_b: str = "bertscore",
    k: int | None = 100,
    seed: int = 0,
    **kwargs: Any,
) -> Comparison:
    """The 4.3 comparison on per-item scores from a results file (JSON) or items CSV.

    Items without a score (NaN: an LLM judge's unparsed, failed or pending items) are left out
    after the sample is drawn, so the same ``k`` and ``seed`` draw the same items whatever the
    scores; ``Comparison.dropped`` counts them.
    """
    a, b = _scores(results, metric_a), _scores(results, metric_b)
    return _compare_sampled(a, b, sample_indices(len(a), k, seed), seed,
                            (metric_a, metric_b), **kwargs)  # fmt: skip


def _compare_sampled(a: Any, b: Any, idx: Any, seed: int, names: tuple[str, str],
                     **kwargs: Any) -> Comparison:  # fmt: skip
    """Compare ``a[idx]`` with ``b[idx]``, leaving out items where either is NaN."""
    import numpy as np

    a, b, idx = np.asarray(a, float), np.asarray(b, float), np.asarray(idx)
    if len(a) != len(b):
        raise ValueError(f"a and b must have the same length, got {len(a)} and {len(b)}")
    keep = idx[~(np.isnan(a[idx]) | np.isnan(b[idx]))]
    comp = compare_metrics(a[keep], b[keep], None, seed, names=names, **kwargs)
    return dataclasses.replace(comp, indices=keep.tolist(), dropped=len(idx) - len(keep))


def _metric_of(column: str) -> str:
    for base in ("bertscore", "cec"):  # columns such as bertscore_p, cec_forward
        if column.startswith(base + "_"):
            return base
    return column


def compare_pairs(
    generated: Sequence[str],
    references: Sequence[Any],
    metric_a: str = "cec",
    metric_b: str = "bertscore",
    k: int | None = 100,
    seed: int = 0,
    *,
    ids: Sequence[Any] | None = None,
    contexts: Sequence[Any] | None = None,
    **options: Any,
) -> Comparison:
    """Sample ``k`` pairs with ``seed``, score them with the two metrics, compare (4.3).

    The same ``k`` and ``seed`` sample the same items as :func:`compare_results` on a full
    evaluation, so both give the same comparison. ``ids`` and ``contexts`` (one per pair) reach
    the metrics that read them (``llm_judge``); items one metric could not score are left out.
    """
    idx = sample_indices(len(generated), k, seed)
    gens = [generated[i] for i in idx]
    refs = [references[i] for i in idx]
    sub_ids = [ids[i] for i in idx] if ids is not None else [int(i) for i in idx]
    sub_ctx = [contexts[i] for i in idx] if contexts is not None else None
    names = list(dict.fromkeys([_metric_of(metric_a), _metric_of(metric_b)]))
    res = evaluate(gens, refs, names, ids=sub_ids, contexts=sub_ctx, **options)
    comp = _compare_sampled(res.items[metric_a].to_numpy(float), res.items[metric_b].to_numpy(float),
                            range(len(idx)), seed, (metric_a, metric_b))  # fmt: skip
    # indices into the full input
    return dataclasses.replace(comp, indices=[int(idx[i]) for i in comp.indices])


# --------------------------------------------------------------------------------------------
# CLI commands
# --------------------------------------------------------------------------------------------
def _options(bertscore_model, bertscore_layer, device, cec_model, splitter) -> dict[str, Any]:
    opts: dict[str, Any] = {"device": device}
    if bertscore_model:
        opts["bertscore_model"] = bertscore_model
    if bertscore_layer is not None:
        opts["bertscore_layer"] = bertscore_layer
    cec_opts = {k: v for k, v in (("model", cec_model), ("splitter", splitter)) if v}
    if cec_opts:
        opts["cec_options"] = cec_opts
    return opts


# The LLM judge's options, shared by `evaluate` and `compare` (plain keyword options of
# get_metric("llm_judge", ...), named judge_*).
JudgeModel = Annotated[
    str | None, typer.Option("--judge-model", help="llm_judge: the judge's model name.")
]
JudgeBaseUrl = Annotated[
    str | None,
    typer.Option(
        "--judge-base-url",
        help="llm_judge: OpenAI-compatible API root, e.g. http://localhost:8000/v1.",
    ),
]
JudgeKeyEnv = Annotated[
    str,
    typer.Option(
        "--judge-api-key-env", help="llm_judge: environment variable holding the API key."
    ),
]
JudgeTemperature = Annotated[
    float, typer.Option("--judge-temperature", help="llm_judge: sampling temperature.")
]
JudgeConcurrency = Annotated[
    int, typer.Option("--judge-concurrency", min=1, help="llm_judge: requests in flight at once.")
]
JudgeMaxTokens = Annotated[
    int,
    typer.Option(
        "--judge-max-tokens", min=1, help="llm_judge: completion-token limit per request."
    ),
]
JudgeBudget = Annotated[
    int | None,
    typer.Option(
        "--judge-max-total-tokens",
        min=1,
        help="llm_judge budget: tokens in this run (stops cleanly; re-run to go on).",
    ),
]
JudgeMaxRequests = Annotated[
    int | None,
    typer.Option("--judge-max-requests", min=1, help="llm_judge budget: requests in this run."),
]
JudgeRecords = Annotated[
    Path | None,
    typer.Option(
        "--judge-records", help="llm_judge: records JSONL, resumable (default: <out>.judge.jsonl)."
    ),
]
JudgeRubric = Annotated[
    Path | None,
    typer.Option("--judge-rubric", help="llm_judge: rubric file (default: built-in v1)."),
]
JudgeTimeout = Annotated[
    float,
    typer.Option("--judge-timeout", help="llm_judge: seconds before a request counts as hung."),
]
Instances = Annotated[
    Path | None,
    typer.Option(
        "--instances",
        help="Instances file (claim/evidence or premise/hypothesis) joined by id, for llm_judge.",
    ),
]


def _judge_options(
    command: Any, values: dict[str, Any], judged: bool, where: str
) -> dict[str, Any]:
    """The ``judge_*`` options of ``command`` from its ``locals()`` (``values``), for the metric
    (None left out, so the metric's defaults apply). When no LLM judge runs (``judged`` false),
    a ``--judge-*`` option set to other than its default is an error naming it (it would be
    ignored without a word), and there are none."""
    import inspect

    params = {
        n: p for n, p in inspect.signature(command).parameters.items() if n.startswith("judge_")
    }
    if judged:
        return {n: values[n] for n in params if values[n] is not None}
    given = ["--" + n.replace("_", "-") for n, p in params.items() if values[n] != p.default]
    if given:
        raise ValueError(
            f"{', '.join(given)}: only used by the llm_judge metric, which is not among {where}"
        )
    return {}


def _judge_summary(res: EvaluationResult) -> int:
    """Print what the judge did; the exit status it asks for (1 when items failed)."""
    info = res.meta.get("llm_judge")
    if not info:
        return 0
    typer.echo(
        f"llm_judge: {info['scored']} scored, {info['unparsed']} unparsed (answer not in the "
        f"rubric's format twice: NaN, left out of the mean), {info['failed']} failed, "
        f"{info['pending']} pending; {info['judged_before']} judged by an earlier run, "
        f"{info['requests']} requests, {info['tokens']} tokens; records: {info['records']}",
        err=True,
    )
    for msg, n in sorted(info.get("errors", {}).items(), key=lambda kv: -kv[1])[:5]:
        typer.echo(f"llm_judge: failed ({n} item{'s' if n != 1 else ''}): {msg}", err=True)
    if info.get("pending"):
        typer.echo(
            f"llm_judge: stopped ({info['stopped']}); {info['pending']} items not judged (NaN); "
            "re-run the same command to judge them",
            err=True,
        )
    if info.get("failed"):
        typer.echo(
            f"llm_judge: {info['failed']} item(s) failed and are recorded with their error; "
            "re-run the same command to retry them",
            err=True,
        )
        return 1
    return 0


def _run_judged(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(...)``, with a judge that cannot go on (bad key, unknown model) as exit 2."""
    from cec_distill.teacher.errors import TeacherError

    try:
        return fn(*args, **kwargs)
    except TeacherError as exc:
        typer.echo(f"cec-distill: error: {exc}", err=True)
        raise typer.Exit(2) from None


def evaluate_command(
    input: Annotated[
        Path | None,
        typer.Argument(help="JSONL/JSON/CSV with id, generated, references per record."),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Results JSON to write (CSV tables beside it).")
    ] = Path("results.json"),
    generated: Annotated[
        Path | None, typer.Option(help="Generated texts (JSONL/JSON/CSV/TXT) instead of INPUT.")
    ] = None,
    references: Annotated[
        Path | None, typer.Option(help="References (JSONL/JSON/CSV/TXT) instead of INPUT.")
    ] = None,
    metrics: Annotated[str, typer.Option(help="Comma-separated metrics.")] = ",".join(
        DEFAULT_METRICS
    ),
    system: Annotated[str | None, typer.Option(help="System name (row of Table 1).")] = None,
    generated_field: Annotated[
        str | None, typer.Option(help="Field holding the generated text.")
    ] = None,
    references_field: Annotated[
        str | None, typer.Option(help="Field holding the reference(s).")
    ] = None,
    bertscore_model: Annotated[
        str | None,
        typer.Option(
            help="BERTScore backbone: local dir or cached hub name (default: embedded all-MiniLM-L6-v2)."
        ),
    ] = None,
    bertscore_layer: Annotated[
        int | None,
        typer.Option(help="BERTScore layer (default 5 for MiniLM, bert-score's for known names)."),
    ] = None,
    cec_model: Annotated[
        str | None, typer.Option(help="CEC encoder (default: embedded all-MiniLM-L6-v2).")
    ] = None,
    splitter: Annotated[str | None, typer.Option(help="CEC sentence splitter.")] = None,
    device: Annotated[
        str | None, typer.Option(help="cpu, cuda, cuda:1 (default: CUDA when present).")
    ] = None,
    instances: Instances = None,
    judge_model: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_temperature: JudgeTemperature = 0.0,
    judge_concurrency: JudgeConcurrency = 4,
    judge_max_tokens: JudgeMaxTokens = 128,
    judge_max_total_tokens: JudgeBudget = None,
    judge_max_requests: JudgeMaxRequests = None,
    judge_records: JudgeRecords = None,
    judge_rubric: JudgeRubric = None,
    judge_timeout: JudgeTimeout = 60.0,
) -> None:
    """Score generated explanations against references (BLEU, ROUGE, METEOR, BERTScore, CEC;
    and an LLM judge with --metrics ...,llm_judge --judge-model M --judge-base-url URL).

    Exit status: 0 done (an LLM judge's budget may have stopped it: re-run to go on); 1 some
    items the judge failed on after its retries (recorded; re-run to retry); 2 a user error,
    or a judge that cannot go on (bad key, unknown model), with the server's words.
    """
    judged = "llm_judge" in [m.strip() for m in metrics.split(",")]
    judge = _judge_options(evaluate_command, locals(), judged, f"--metrics {metrics}")
    res = _run_judged(
        evaluate_files, input, out, generated=generated, references=references, metrics=metrics,
        system=system, generated_field=generated_field, references_field=references_field,
        instances=instances, **_options(bertscore_model, bertscore_layer, device, cec_model, splitter),
        **judge,
    )  # fmt: skip
    typer.echo(str(res))
    for name, sig in res.signatures.items():
        typer.echo(f"  {name}: {sig}")
    typer.echo(f"wrote {out}")
    status = _judge_summary(res)
    if status:
        raise typer.Exit(status)


def compare_command(
    results: Annotated[
        Path,
        typer.Argument(
            help="Results JSON from `evaluate` (or its items CSV), or a pairs JSONL to score the sample directly."
        ),
    ],
    metric_a: Annotated[str, typer.Option("--metric-a", help="Metric column A.")] = "cec",
    metric_b: Annotated[str, typer.Option("--metric-b", help="Metric column B.")] = "bertscore",
    k: Annotated[int, typer.Option("-k", help="Items sampled (0 = all).")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the sample and of the bootstrap.")] = 0,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the comparison as JSON.")
    ] = None,
    device: Annotated[str | None, typer.Option(help="Device when scoring a pairs file.")] = None,
    instances: Instances = None,
    judge_model: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_temperature: JudgeTemperature = 0.0,
    judge_concurrency: JudgeConcurrency = 4,
    judge_max_tokens: JudgeMaxTokens = 128,
    judge_max_total_tokens: JudgeBudget = None,
    judge_max_requests: JudgeMaxRequests = None,
    judge_records: JudgeRecords = None,
    judge_rubric: JudgeRubric = None,
    judge_timeout: JudgeTimeout = 60.0,
) -> None:
    """The paper's 4.3 test: k random items, paired t-test, Wilcoxon, Cohen's d, means, SDs.

    Items without a score in either column (an LLM judge's unparsed ones) are left out of the
    sample and counted. Scoring a pairs file with llm_judge takes the --judge-* options (its
    records default to <pairs>.judge.jsonl).
    """
    kk = None if k == 0 else k
    suffix = results.suffix.lower()
    is_results = suffix == ".csv"
    if suffix == ".json":
        head = json.loads(results.read_text(encoding="utf-8"))
        is_results = isinstance(head, dict) and str(head.get("format", "")).startswith(
            "cec-distill-evaluation"
        )
    if is_results:
        where = f"the scoring of {results.name} (a results file is compared as it is)"
        _judge_options(compare_command, locals(), False, where)
        comp = compare_results(results, metric_a, metric_b, kk, seed)
    else:
        judged = "llm_judge" in (_metric_of(metric_a), _metric_of(metric_b))
        where = f"--metric-a {metric_a} / --metric-b {metric_b}"
        judge = _judge_options(compare_command, locals(), judged, where)
        if judged:
            judge.setdefault("judge_records", results.with_suffix(".judge.jsonl"))
        ids, gens, refs = read_pairs(results)
        ids = [i if i is not None else n for n, i in enumerate(ids)]
        contexts = (contexts_from_instances(instances, ids) if instances is not None
                    else _contexts_of_pairs({"input": str(results)}, ids))  # fmt: skip
        comp = _run_judged(compare_pairs, gens, refs, metric_a, metric_b, kk, seed, ids=ids,
                           contexts=contexts, device=device, **judge)  # fmt: skip
    typer.echo(comp.format())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(comp.to_dict(), indent=1) + "\n")
        typer.echo(f"wrote {out}")


def report_command(
    results: Annotated[list[Path], typer.Argument(help="Results JSON files, one per system.")],
    out_dir: Annotated[
        Path, typer.Option("--out-dir", "-o", help="Folder for table1.md/.csv/.tex and PNGs.")
    ] = Path("report"),
    stem: Annotated[str, typer.Option(help="File name stem of the tables.")] = "table1",
    digits: Annotated[int, typer.Option(help="Decimals in Markdown/LaTeX.")] = 3,
    plots: Annotated[bool, typer.Option("--plots/--no-plots", help="Write the PNG plots.")] = True,
) -> None:
    """Table 1 (Markdown, CSV, LaTeX) and plots from evaluation results."""
    from cec_distill.report import table1, to_markdown, write_report

    written = write_report(results, out_dir, stem=stem, digits=digits, plots=plots)
    typer.echo(to_markdown(table1(results), digits))
    for kind, path in written.items():
        typer.echo(f"wrote {kind}: {path}")
