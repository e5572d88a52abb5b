"""Score a system with several metrics: :func:`evaluate`, :class:`EvaluationResult`, results files."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cec._files import atomic_write
from cec.result import json_safe
from cec_distill.metrics.base import (
    _REGISTRY,
    MetricOutput,
    _check_generated,
    _nanmean,
    available_metrics,
    check_options,
    get_metric,
    normalize_contexts,
    normalize_references,
)

__all__ = ["DEFAULT_METRICS", "EvaluationResult", "evaluate", "load_results", "RESULTS_FORMAT"]

DEFAULT_METRICS: tuple[str, ...] = (
    "bleu",
    "rouge1",
    "rouge2",
    "rougeL",
    "meteor",
    "bertscore",
    "cec",
)
RESULTS_FORMAT = "cec-distill-evaluation/1"


@dataclass
class EvaluationResult:
    """Per-item and corpus scores of one system, with each metric's signature.

    Attributes:
        items: DataFrame, one row per item: ``id`` then one column per score.
        corpus: DataFrame indexed by score column with ``metric``, ``score`` (corpus level:
            corpus BLEU for ``bleu``, mean of items otherwise), ``mean``, ``sd`` (ddof=1), ``n``.
        signatures: metric name -> signature string.
        system: Optional system name (a row of Table 1).
        meta: Anything else worth keeping (e.g. input file names).
    """

    items: Any
    corpus: Any
    signatures: dict[str, str]
    system: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> list[str]:
        return list(self.signatures)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""
        corpus = {
            col: {k: json_safe(v) for k, v in row.items()}
            for col, row in self.corpus.to_dict("index").items()
        }
        items = [{k: json_safe(v) for k, v in row.items()} for row in self.items.to_dict("records")]
        return {
            "format": RESULTS_FORMAT, "system": self.system, "n": len(self.items),
            "metrics": self.metrics, "signatures": self.signatures, "corpus": corpus,
            "items": items, "meta": self.meta,
        }  # fmt: skip

    def save(self, path: str | os.PathLike[str], *, csv: bool = False) -> Path:
        """Write the JSON results file; with ``csv=True`` also ``<stem>.items.csv`` and
        ``<stem>.corpus.csv`` beside it. Returns the JSON path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        if csv:
            stem = path.with_suffix("")
            self.items.to_csv(f"{stem}.items.csv", index=False)
            self.corpus.to_csv(f"{stem}.corpus.csv", index_label="column")
        return path

    def __str__(self) -> str:
        name = self.system or "system"
        lines = [f"{name}: {len(self.items)} items"]
        for col, row in self.corpus.iterrows():
            lines.append(
                f"  {col:<14} {row['score']:.4f}  (mean {row['mean']:.4f}, sd {row['sd']:.4f})"
            )
        return "\n".join(lines)


def _corpus_frame(outputs: dict[str, MetricOutput]) -> Any:
    import pandas as pd

    rows = {}
    for metric, out in outputs.items():
        for col, values in out.columns.items():
            ok = values[~np.isnan(values)]
            rows[col] = {
                "metric": metric,
                "score": out.corpus.get(col, _nanmean(values)),
                "mean": float(ok.mean()) if len(ok) else math.nan,
                "sd": float(ok.std(ddof=1)) if len(ok) > 1 else math.nan,
                "n": int(len(ok)),
            }
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["metric", "score", "mean", "sd", "n"]
    )


def evaluate(
    generated: Sequence[str],
    references: Sequence[str | Sequence[str]],
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    *,
    ids: Sequence[Any] | None = None,
    system: str | None = None,
    contexts: Sequence[Mapping[str, Any] | None] | None = None,
    **options: Any,
) -> EvaluationResult:
    """Score generated explanations against references with several metrics.

    Args:
        generated: One text per item.
        references: One reference per item, or a list of references per item.
        metrics: Names from :func:`available_metrics` (or one comma-separated string).
        ids: Item ids (default ``0..n-1``).
        system: A name for this system (the row label in Table 1; the LLM judge keys its
            records by item id and system).
        contexts: One dict per item with what the item was about (``claim``/``evidence``/
            ``label`` or ``premise``/``hypothesis``), or None; only metrics that read it (the
            LLM judge) see it.
        **options: Passed to the metrics: ``bertscore_model`` (local dir or cached hub name,
            default the embedded MiniLM), ``bertscore_layer``, ``bertscore_rescale``,
            ``bertscore_batch_size``, ``device``, ``cec_options`` (dict for :class:`cec.CEC`),
            ``scorer`` (a ready :class:`cec.CEC`), and the ``judge_*`` options of
            ``llm_judge`` (:class:`~cec_distill.metrics.llm_judge.LLMJudgeMetric`).

    Returns:
        An :class:`EvaluationResult`; ``meta[name]`` holds what a metric reports beside its
        scores (``llm_judge``: scored, unparsed, failed, pending, requests, tokens, ...).

    Raises:
        TypeError / ValueError: Bad inputs or an unknown metric, before any model loads.
    """
    import pandas as pd

    gens = _check_generated(generated)
    refs = normalize_references(references, len(gens))
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise ValueError("metrics is empty; choose from " + ", ".join(available_metrics()))
    for m in names:
        if m not in _REGISTRY:
            raise ValueError(f"metrics: unknown metric {m!r}; choose from {available_metrics()}")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics lists a metric twice: {names}")
    check_options(options)
    if ids is None:
        ids = list(range(len(gens)))
    elif len(ids) != len(gens):
        raise ValueError(f"ids has {len(ids)} entries but generated has {len(gens)}")

    ctxs = normalize_contexts(contexts, len(gens))

    built = {m: get_metric(m, **options) for m in names}  # every option checked before scoring
    outputs: dict[str, MetricOutput] = {}
    signatures: dict[str, str] = {}
    for m, metric in built.items():
        outputs[m] = metric.compute(gens, refs, ids=ids, contexts=ctxs, system=system)
        signatures[m] = metric.signature
    items = pd.DataFrame({"id": list(ids)})
    for out in outputs.values():
        for col, values in out.columns.items():
            items[col] = values
    meta = {m: _json_safe_tree(out.info) for m, out in outputs.items() if out.info}
    return EvaluationResult(items, _corpus_frame(outputs), signatures, system, meta)


def _json_safe_tree(value: Any) -> Any:
    """``value`` with NaN/inf floats as None, through dicts and lists (for ``meta``)."""
    if isinstance(value, dict):
        return {str(k): _json_safe_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe_tree(v) for v in value]
    return json_safe(value)


def load_results(path: str | os.PathLike[str]) -> EvaluationResult:
    """Read a JSON results file written by :meth:`EvaluationResult.save`."""
    import pandas as pd

    data = json.loads(Path(path).read_text())
    if data.get("format") != RESULTS_FORMAT:
        raise ValueError(
            f"{path}: not a {RESULTS_FORMAT} results file (format={data.get('format')!r})"
        )
    items = pd.DataFrame(data["items"]).astype(
        {c: float for c in _score_columns(data)}, errors="ignore"
    )
    corpus = pd.DataFrame.from_dict(data["corpus"], orient="index")
    for c in ("score", "mean", "sd"):
        if c in corpus:
            corpus[c] = corpus[c].astype(float)
    return EvaluationResult(
        items, corpus, data["signatures"], data.get("system"), data.get("meta", {})
    )


def _score_columns(data: dict[str, Any]) -> list[str]:
    return list(data["corpus"])
