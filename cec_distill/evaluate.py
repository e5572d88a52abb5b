"""Evaluation stage: files in, results out; the ``evaluate``, ``compare`` and ``report`` commands.

Python API (all plain files; see :mod:`cec_distill.metrics`, :mod:`cec_distill.stats`,
:mod:`cec_distill.report` for the cores):

- :func:`read_pairs` ``(path, ...) -> (ids, generated, references)``: one JSONL/JSON/CSV file with
  an id, a generated text and a reference (or a list of references) per record.
- :func:`read_pairs_from_files` ``(generated_path, references_path, ...)``: two files (JSONL/
  JSON/CSV records, or ``.txt`` with one text per line), joined by id when both have ids, else
  by position.
- :func:`evaluate_files` ``(input | generated+references, out, metrics=..., ...) ->
  EvaluationResult``: read, score, write ``out`` (JSON) plus ``<out>.items.csv`` and
  ``<out>.corpus.csv``.
- :func:`compare_results` ``(results, metric_a="cec", metric_b="bertscore", k=100, seed=0)
  -> Comparison``: the paper's 4.3 procedure on per-item scores already computed.
- :func:`compare_pairs` ``(generated, references, metric_a, metric_b, k=100, seed=0, **options)
  -> Comparison``: samples the same ``k`` items first, scores only those with the two metrics.

CLI (registered in :mod:`cec_distill.cli`)::

    cec-distill evaluate pairs.jsonl --out results/phi2.json --system Phi-2
    cec-distill evaluate --generated gen.jsonl --references teacher.jsonl --out r.json
    cec-distill compare results/phi2.json --metric-a cec --metric-b bertscore -k 100 --seed 0
    cec-distill report results/*.json --out-dir reports/
"""

from __future__ import annotations

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
    **options: Any,
) -> EvaluationResult:
    """Read pairs (one ``input`` file, or ``generated`` + ``references``), score, write ``out``."""
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
    res = evaluate(gens, refs, metrics, ids=[i if i is not None else n for n, i in enumerate(ids)],
                   system=system, **options)  # fmt: skip
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
    """The 4.3 comparison on per-item scores from a results file (JSON) or items CSV."""
    return compare_metrics(_scores(results, metric_a), _scores(results, metric_b), k, seed,
                           names=(metric_a, metric_b), **kwargs)  # fmt: skip


def _metric_of(column: str) -> str:
    for base in ("bertscore", "cec"):
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
    **options: Any,
) -> Comparison:
    """Sample ``k`` pairs with ``seed``, score them with the two metrics, compare (4.3).

    The same ``k`` and ``seed`` sample the same items as :func:`compare_results` on a full
    evaluation, so both give the same comparison.
    """
    idx = sample_indices(len(generated), k, seed)
    gens = [generated[i] for i in idx]
    refs = [references[i] for i in idx]
    names = list(dict.fromkeys([_metric_of(metric_a), _metric_of(metric_b)]))
    res = evaluate(gens, refs, names, **options)
    comp = compare_metrics(
        res.items[metric_a].to_numpy(float), res.items[metric_b].to_numpy(float), None, seed,
        names=(metric_a, metric_b),
    )  # fmt: skip
    return dataclasses.replace(comp, indices=idx.tolist())  # indices into the full input


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
) -> None:
    """Score generated explanations against references (BLEU, ROUGE, METEOR, BERTScore, CEC)."""
    res = evaluate_files(
        input, out, generated=generated, references=references, metrics=metrics, system=system,
        generated_field=generated_field, references_field=references_field,
        **_options(bertscore_model, bertscore_layer, device, cec_model, splitter),
    )  # fmt: skip
    typer.echo(str(res))
    for name, sig in res.signatures.items():
        typer.echo(f"  {name}: {sig}")
    typer.echo(f"wrote {out}")


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
) -> None:
    """The paper's 4.3 test: k random items, paired t-test, Wilcoxon, Cohen's d, means, SDs."""
    kk = None if k == 0 else k
    suffix = results.suffix.lower()
    is_results = suffix == ".csv"
    if suffix == ".json":
        head = json.loads(results.read_text(encoding="utf-8"))
        is_results = isinstance(head, dict) and str(head.get("format", "")).startswith(
            "cec-distill-evaluation"
        )
    if is_results:
        comp = compare_results(results, metric_a, metric_b, kk, seed)
    else:
        _, gens, refs = read_pairs(results)
        comp = compare_pairs(gens, refs, metric_a, metric_b, kk, seed, device=device)
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
