"""Meta-evaluation on your own human ratings: ``cec-distill meta-eval RATINGS --human FIELD``.

Does a metric agree with people *on my data*? Input is one file of rated outputs (JSONL, JSON,
CSV or TSV): a generated text, one or more references, optionally an item id (several rated
outputs of one item), and one or more numeric human ratings. Every metric asked for is run
through the registry of :mod:`cec_distill.metrics` (so any registered metric, an LLM judge
included, is called by name), and for every metric and rating this module reports:

- **Spearman's rho, Kendall's tau-b and Pearson's r** (the values are scipy's
  ``spearmanr``/``kendalltau``/``pearsonr``) with **percentile bootstrap CIs** (default 95%,
  1,000 resamples, via :func:`cec_distill.stats.bootstrap_ci`). Items are resampled; with an
  item id the *items* are resampled and each brings all its rows (a cluster bootstrap), since
  several outputs of one item are not independent.
- **The paired difference against CEC** (``against``, default ``cec``): corr(CEC, rating) minus
  corr(metric, rating) on the same resamples, its bootstrap CI, and a **paired permutation
  p-value**: each metric's scores are standardised (z-scores for Pearson; ranks, then z-scores,
  for Spearman and Kendall), then for every item (every cluster, with an id) the two metrics'
  scores are swapped with probability 1/2, and p = (1 + #{|d*| >= |d|}) / (1 + n_permutations)
  (two-sided, with the +1 correction). Under the null hypothesis that the two metrics agree with
  the rating equally well the swap leaves the distribution unchanged; this is the paired
  permutation test used to compare metric correlations (e.g. Deutsch, Dror & Roth, TACL 2021).
  Two identical metrics get p = 1.

Every cell uses the same seed, so every cell resamples (and permutes) the same items: the
results are paired across metrics and deterministic given ``seed``.

Public API:

- :func:`read_ratings` ``(path, human, *, generated_field=None, references_fields=None,
  id_field=None) -> Ratings``: the file, checked; errors name the file, line and field.
- :func:`resolve_metrics` ``(names) -> dict[registry name, list[column]]``: ``cec_forward`` is
  a column of ``cec``, ``bertscore_p`` of ``bertscore``; an unknown name is an error.
- :func:`score_metrics` ``(generated, references, metrics, *, ids=None, contexts=None,
  cache=None, force=False, **options) -> (columns, signatures)``: per-row scores, each metric
  saved to ``cache`` (a JSON file) as it completes and reused by a later run on the same texts
  and contexts with the same options and the same metric setup (its signature).
- :func:`meta_evaluate` ``(scores, human, *, clusters=None, against="cec", ...) ->
  MetaEvalResult``: the statistics, no I/O.
- :func:`meta_eval_file` ``(path, human, *, out_dir=None, ...) -> MetaEvalResult``: all of it;
  with ``out_dir``: ``meta_eval.md``, ``meta_eval.csv``, ``meta_eval.json``, ``meta_eval.png``,
  ``scores.csv`` and ``scores_cache.json``.
- :class:`MetaEvalResult`: ``.rows`` (one dict per rating x metric), ``.meta``,
  ``.to_markdown()``, ``.to_dict()``, ``.write_csv(path)``, ``.plot(path)``.

Examples:
    >>> import numpy as np
    >>> from cec_distill.meta_eval import meta_evaluate
    >>> human = np.array([1.0, 2, 3, 4, 5, 2, 4])
    >>> res = meta_evaluate({"cec": human + [0, .1, 0, .2, 0, 0, 0], "bleu": -human},
    ...                     {"quality": human}, n_bootstrap=50, n_permutations=50)
    >>> row = res.row("quality", "bleu")
    >>> round(row["spearman"]["value"], 3), row["against"]["spearman"]["value"] > 1.9
    (-1.0, True)
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import platform
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from scipy import stats as sps

from cec._files import atomic_write
from cec._version import __version__
from cec_distill.evaluate import GENERATED_KEYS, REFERENCE_KEYS, _options, _refs
from cec_distill.metrics.base import _REGISTRY, available_metrics
from cec_distill.stats import bootstrap_ci

__all__ = [
    "DEFAULT_META_METRICS",
    "STATISTICS",
    "FORMAT",
    "Ratings",
    "MetaEvalResult",
    "read_ratings",
    "resolve_metrics",
    "score_metrics",
    "meta_evaluate",
    "meta_eval_file",
    "meta_eval_command",
]

FORMAT = "cec-distill-meta-eval/1"
CACHE_FORMAT = "cec-distill-meta-eval-scores/1"
DEFAULT_META_METRICS: tuple[str, ...] = (
    "cec", "cec_forward", "cec_backward", "bertscore", "rouge1", "rougeL", "bleu", "meteor",
)  # fmt: skip
STATISTICS: tuple[str, ...] = ("spearman", "kendall", "pearson")
STAT_LABELS = {"spearman": "Spearman", "kendall": "Kendall tau-b", "pearson": "Pearson"}
LABELS = {
    "bleu": "BLEU", "rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeL": "ROUGE-L",
    "meteor": "METEOR", "bertscore": "BERTScore (F1)", "bertscore_p": "BERTScore (P)",
    "bertscore_r": "BERTScore (R)", "cec": "CEC (sym)", "cec_forward": "CEC forward",
    "cec_backward": "CEC backward", "llm_judge": "LLM judge",
}  # fmt: skip
PERMUTATION_SCHEME = (
    "paired permutation: scores standardised per metric (z-scores for pearson; ranks then "
    "z-scores for spearman and kendall), the two metrics' scores swapped per item (per cluster "
    "when an id field is given) with probability 1/2; p = (1 + #{|d*| >= |d|}) / (1 + n), "
    "two-sided"
)
BOOTSTRAP_SCHEME = (
    "percentile bootstrap over items (cec_distill.stats.bootstrap_ci); with an id field the "
    "ids are resampled and each brings all its rows"
)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------
@dataclass
class Ratings:
    """Rated outputs read from one file: one entry per row (a rated output)."""

    path: Path
    generated: list[str]
    references: list[list[str]]
    human: dict[str, np.ndarray]
    ids: list[str] | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    contexts: list[dict[str, Any] | None] | None = None  # what each item was about (the judge)

    def __len__(self) -> int:
        return len(self.generated)


_MISSING = object()
# a row's own fields that say what the item was about; metrics that read a context (the LLM
# judge) are given them
CONTEXT_KEYS = ("premise", "hypothesis", "claim", "evidence", "label")


def _get(record: Mapping[str, Any], name: str) -> Any:
    """``record[name]``; ``a.b`` reaches into nested objects when no key is literally ``a.b``."""
    if name in record:
        return record[name]
    head, dot, rest = name.partition(".")
    while dot:
        if head in record and isinstance(record[head], Mapping):
            value = _get(record[head], rest)
            if value is not _MISSING:
                return value
        more, dot, rest = rest.partition(".")
        head = f"{head}.{more}"
    return _MISSING


def _records(path: Path) -> list[tuple[str, Any]]:
    """(location, record) for each record; the location is ``FILE:LINE`` or ``FILE record N``."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        out = []
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if line.strip():
                    try:
                        out.append((f"{path}:{n}", json.loads(line)))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        return out
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a JSON list of records (or JSONL)")
        return [(f"{path} record {n}", r) for n, r in enumerate(data, 1)]
    if suffix in (".csv", ".tsv"):
        out = []
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ",")
            for rec in reader:
                out.append((f"{path}:{reader.line_num}", rec))
        return out
    raise ValueError(
        f"{path}: unsupported file type {suffix!r} (use .jsonl, .ndjson, .json, .csv or .tsv)"
    )


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or value is None:
        raise ValueError(f"{where}: human rating field {name!r} is {value!r}, not a number")
    if isinstance(value, (int, float)):
        x = float(value)
    elif isinstance(value, str):
        if not value.strip():
            raise ValueError(f"{where}: human rating field {name!r} is empty")
        try:
            x = float(value)
        except ValueError:
            raise ValueError(
                f"{where}: human rating field {name!r} is {value!r}, not a number"
            ) from None
    else:
        raise ValueError(
            f"{where}: human rating field {name!r} is a {type(value).__name__}, not a number"
        )
    if not math.isfinite(x):
        raise ValueError(f"{where}: human rating field {name!r} is {value!r}, not a finite number")
    return x


def _first_present(rec: Mapping[str, Any], keys: Sequence[str]) -> str | None:
    return next((k for k in keys if k in rec), None)


def read_ratings(
    path: str | os.PathLike[str],
    human: Sequence[str] | str,
    *,
    generated_field: str | None = None,
    references_fields: Sequence[str] | str | None = None,
    id_field: str | None = None,
) -> Ratings:
    """Read rated outputs: a generated text, references, optional id, numeric ratings per row.

    Args:
        path: ``.jsonl``/``.ndjson`` (one object per line), ``.json`` (a list of objects),
            ``.csv`` or ``.tsv`` (a header row).
        human: The rating field(s). ``a.b`` reads field ``b`` of an object in field ``a``
            (``human.Overall Quality``) when no field is literally named ``a.b``.
        generated_field: Default: the first present of ``generated``, ``explanation``,
            ``prediction``.
        references_fields: One or more fields, each holding a reference or a list of them (in a
            CSV cell: a JSON list); several fields give several references. Default: the first
            present of ``references``, ``reference``, ``teacher``, ``target``.
        id_field: An item id; rows with the same id are outputs for the same item and are
            resampled together. Default: none (every row is its own item).

    Raises:
        ValueError: Empty file, a missing field, a non-numeric or empty rating, a generated
            text that is not a string, or an item without references: the message names the
            file, the line (or record) and the field.
    """
    path = Path(path)
    humans = [human] if isinstance(human, str) else list(human)
    if not humans:
        raise ValueError("human: name at least one rating field (--human FIELD)")
    if len(set(humans)) != len(humans):
        raise ValueError(f"human: a rating field is named twice: {humans}")
    ref_fields = (
        [references_fields] if isinstance(references_fields, str) else
        list(references_fields) if references_fields else None
    )  # fmt: skip
    records = _records(path)
    if not records:
        raise ValueError(f"{path}: no records (the file is empty)")
    gens: list[str] = []
    refs: list[list[str]] = []
    ids: list[str] = []
    ratings: dict[str, list[float]] = {h: [] for h in humans}
    contexts: list[dict[str, Any] | None] = []
    gen_key, ref_keys = generated_field, ref_fields
    for where, rec in records:
        if not isinstance(rec, Mapping):
            raise ValueError(f"{where}: not an object with fields")
        if gen_key is None:
            gen_key = _first_present(rec, GENERATED_KEYS[:-1])
            if gen_key is None:
                raise ValueError(
                    f"{where}: none of the fields {list(GENERATED_KEYS[:-1])} is present; "
                    "name the generated text with --generated-field"
                )
        if ref_keys is None:
            key = _first_present(rec, REFERENCE_KEYS[:-1])
            if key is None:
                raise ValueError(
                    f"{where}: none of the fields {list(REFERENCE_KEYS[:-1])} is present; "
                    "name the reference(s) with --references-field"
                )
            ref_keys = [key]
        gen = _get(rec, gen_key)
        if gen is _MISSING:
            raise ValueError(f"{where}: no generated text field {gen_key!r}")
        if not isinstance(gen, str):
            raise ValueError(
                f"{where}: generated text field {gen_key!r} is a {type(gen).__name__}, not text"
            )
        item_refs: list[str] = []
        for key in ref_keys:
            value = _get(rec, key)
            if value is _MISSING:
                raise ValueError(f"{where}: no references field {key!r}")
            if value is None or not isinstance(value, (str, list, tuple)):
                raise ValueError(
                    f"{where}: references field {key!r} is {value!r}, not text or a list of texts"
                )
            for r in _refs(value):
                if not isinstance(r, str):
                    raise ValueError(f"{where}: references field {key!r} holds a non-text {r!r}")
                item_refs.append(r)
        if not item_refs:
            raise ValueError(f"{where}: references field(s) {ref_keys} hold no reference")
        if id_field is not None:
            value = _get(rec, id_field)
            if value is _MISSING or value is None or (isinstance(value, str) and not value):
                raise ValueError(f"{where}: no item id field {id_field!r}")
            ids.append(str(value))
        for h in humans:
            value = _get(rec, h)
            if value is _MISSING:
                raise ValueError(f"{where}: no human rating field {h!r}")
            ratings[h].append(_number(value, where, h))
        gens.append(gen)
        refs.append(item_refs)
        found = {k: rec[k] for k in CONTEXT_KEYS if rec.get(k) not in (None, "", [])}
        contexts.append(found or None)
    return Ratings(
        path, gens, refs, {h: np.asarray(v) for h, v in ratings.items()},
        ids if id_field is not None else None,
        {"generated": gen_key, "references": ref_keys, "id": id_field, "human": humans},
        contexts if any(c is not None for c in contexts) else None,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------
def _columns_of(name: str) -> tuple[str, ...]:
    cols = getattr(_REGISTRY[name], "columns", ())
    return tuple(cols) if cols else (name,)


def resolve_metrics(names: Sequence[str] | str) -> dict[str, list[str]]:
    """Registry metric -> the asked columns of it, in the order asked.

    A name is a registry metric (``cec``: its main column) or a column of one (``cec_forward``
    of ``cec``, ``bertscore_p`` of ``bertscore``).

    Raises:
        ValueError: Empty list, a name asked twice, or a name that is neither.
    """
    asked = [m.strip() for m in names.split(",")] if isinstance(names, str) else list(names)
    asked = [m for m in asked if m]
    if not asked:
        raise ValueError("metrics: the list is empty; choose from " + _choices())
    if len(set(asked)) != len(asked):
        raise ValueError(f"metrics: a metric is named twice: {asked}")
    out: dict[str, list[str]] = {}
    for m in asked:
        if m in _REGISTRY:
            out.setdefault(m, []).append(m)
            continue
        owner = next((r for r in _REGISTRY if m in _columns_of(r)), None)
        if owner is None:
            raise ValueError(f"metrics: unknown metric {m!r}; choose from {_choices()}")
        out.setdefault(owner, []).append(m)
    return out


def _choices() -> str:
    cols = [c for r in available_metrics() for c in (r, *_columns_of(r)) if c]
    return ", ".join(dict.fromkeys(cols))


def _cache_key(name: str, generated: list[str], references: list[list[str]], options: Any) -> str:
    blob = json.dumps(
        {"metric": name, "cec": __version__, "options": options, "generated": generated,
         "references": references},
        sort_keys=True, default=repr,
    )  # fmt: skip
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _load_cache(path: Path | None) -> dict[str, Any]:
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged cache is recomputed, never trusted
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT:
        return {}
    return dict(data.get("metrics", {}))


def score_metrics(
    generated: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] | str = DEFAULT_META_METRICS,
    *,
    ids: Sequence[Any] | None = None,
    contexts: Sequence[Mapping[str, Any] | None] | None = None,
    cache: str | os.PathLike[str] | None = None,
    force: bool = False,
    **options: Any,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Per-row scores of each asked column, and each registry metric's signature.

    Each registry metric runs once through :func:`cec_distill.metrics.evaluate` (``options``
    go to it: ``device``, ``cec_options``, ``bertscore_model``, a judge's options...). With
    ``cache`` (a JSON file), each metric's scores are written there as soon as they are
    computed and reused by a later call on the same texts with the same metric and options
    (``force=True`` recomputes).
    """
    from cec_distill.metrics import evaluate, get_metric

    wanted = resolve_metrics(metrics)
    gens, refs = list(generated), [list(r) for r in references]
    cache_path = Path(cache) if cache is not None else None
    stored = {} if force else _load_cache(cache_path)
    columns: dict[str, np.ndarray] = {}
    signatures: dict[str, str] = {}
    for name, cols in wanted.items():
        # the metric's own signature (splitter rules, model hash, library versions) is part
        # of the key: scores cached by another setup are never reused under this one's name
        setup = get_metric(name, **options).signature
        key = _cache_key(name, gens, refs, {"options": options, "contexts": contexts, "setup": setup})
        hit = stored.get(name)
        if not (isinstance(hit, dict) and hit.get("key") == key and all(
            c in hit.get("columns", {}) for c in cols
        )):  # fmt: skip
            res = evaluate(gens, refs, [name], ids=ids, contexts=contexts, **options)
            hit = {
                "key": key, "signature": res.signatures[name],
                "columns": {
                    c: [None if math.isnan(v) else float(v) for v in res.items[c].to_numpy(float)]
                    for c in res.items.columns if c != "id"
                },
            }  # fmt: skip
            stored[name] = hit
            if cache_path is not None:
                doc = {"format": CACHE_FORMAT, "metrics": stored}
                atomic_write(cache_path, json.dumps(doc, allow_nan=False) + "\n")
        for c in cols:
            if c not in hit["columns"]:
                raise ValueError(
                    f"metrics: {name} gives the columns {list(hit['columns'])}, not {c!r}"
                )
            columns[c] = np.array([math.nan if v is None else v for v in hit["columns"][c]])
        signatures[name] = hit["signature"]
    return columns, signatures


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's r of each row of ``x`` (2-D) with ``y`` (1-D); NaN where a row is constant."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc @ yc) / np.sqrt((xc * xc).sum(axis=-1) * (yc @ yc))
    return np.clip(r, -1.0, 1.0)


def _corr(stat: str, x: np.ndarray, y: np.ndarray) -> float:
    """One correlation; the same value as scipy's (NaN for a constant side, no warning)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    if stat == "pearson":
        return float(_pearson_rows(x[None, :], y)[0])
    if stat == "spearman":
        return float(_pearson_rows(sps.rankdata(x)[None, :], sps.rankdata(y))[0])
    if stat == "kendall":
        return float(sps.kendalltau(x, y).statistic)  # tau-b (ratings have ties)
    raise ValueError(f"statistics: unknown statistic {stat!r}; choose from {list(STATISTICS)}")


def _corr_rows(stat: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if stat == "pearson":
        return _pearson_rows(x, y)
    if stat == "spearman":
        return _pearson_rows(sps.rankdata(x, axis=1), sps.rankdata(y))
    return np.array([_corr(stat, row, y) for row in x])


def _standardise(stat: str, x: np.ndarray) -> np.ndarray:
    v = x if stat == "pearson" else sps.rankdata(x)
    sd = v.std()
    return (v - v.mean()) / sd if sd > 0 else np.zeros_like(v, dtype=float)


class _Clusters:
    """Rows grouped by item id (first appearance order); singletons without ids."""

    def __init__(self, ids: Sequence[Any] | None, n: int):
        if ids is None:
            self.of_row = np.arange(n)
            self.members: list[np.ndarray] | None = None
            self.k = n
        else:
            if len(ids) != n:
                raise ValueError(f"clusters has {len(ids)} entries but there are {n} rows")
            index: dict[str, int] = {}
            self.of_row = np.array([index.setdefault(str(i), len(index)) for i in ids])
            self.k = len(index)
            self.members = [np.flatnonzero(self.of_row == c) for c in range(self.k)]
            if all(len(m) == 1 for m in self.members):
                self.members = None  # the same as no clusters (the same resamples too)

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """The rows of the clusters ``idx`` (a resample of 0..k-1), in that order."""
        i = idx.astype(np.int64)
        if self.members is None:  # singletons: cluster c is row c (first-appearance order)
            return i
        return np.concatenate([self.members[c] for c in i])


def _interval(stat_fn: Any, clusters: _Clusters, n_boot: int, conf: float, seed: int) -> dict:
    if clusters.k < 3:
        return {"value": math.nan, "low": math.nan, "high": math.nan}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NaN correlations of constant resamples
        iv = bootstrap_ci(
            np.arange(clusters.k, dtype=float), lambda idx: stat_fn(clusters.rows(idx)),
            paired=False, n_resamples=n_boot, confidence=conf, seed=seed,
        )  # fmt: skip
    return {"value": iv.estimate, "low": iv.low, "high": iv.high}


def _permutation_p(
    stat: str, a: np.ndarray, b: np.ndarray, h: np.ndarray, clusters: _Clusters, n: int, seed: int
) -> float:
    observed = _corr(stat, a, h) - _corr(stat, b, h)
    if math.isnan(observed):
        return math.nan
    za, zb = _standardise(stat, a), _standardise(stat, b)
    rng = np.random.default_rng(seed)
    hits, done, batch = 0, 0, 500
    while done < n:
        m = min(batch, n - done)
        swap = (rng.random((m, clusters.k)) < 0.5)[:, clusters.of_row]
        d = _corr_rows(stat, np.where(swap, zb, za), h) - _corr_rows(
            stat, np.where(swap, za, zb), h
        )
        hits += int(np.sum(np.abs(d) >= abs(observed) - 1e-12))
        done += m
    return (hits + 1) / (n + 1)


@dataclass
class MetaEvalResult:
    """Correlations of each metric with each rating, with CIs and differences against CEC.

    Attributes:
        rows: One dict per (rating, metric): ``rating``, ``metric``, ``n`` (rows used),
            ``n_items`` (items/clusters), and per statistic ``{"value", "low", "high"}``;
            ``against`` holds, per statistic, ``{"value", "low", "high", "p"}`` of
            corr(against) - corr(metric) (absent for the ``against`` metric itself).
        meta: Settings, counts, signatures and versions.
    """

    rows: list[dict[str, Any]]
    meta: dict[str, Any]

    def row(self, rating: str, metric: str) -> dict[str, Any]:
        for r in self.rows:
            if r["rating"] == rating and r["metric"] == metric:
                return r
        raise KeyError(f"no row for rating {rating!r} and metric {metric!r}")

    def to_dict(self) -> dict[str, Any]:
        from cec.result import json_safe

        def safe(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: safe(x) for k, x in v.items()}
            if isinstance(v, list):
                return [safe(x) for x in v]
            return json_safe(v)

        return safe({"format": FORMAT, **self.meta, "results": self.rows})

    def to_markdown(self, digits: int = 3) -> str:
        def cell(d: dict[str, float]) -> str:
            if d is None or math.isnan(d["value"]):
                return "n/a"
            return f"{d['value']:.{digits}f} [{d['low']:.2f}, {d['high']:.2f}]"

        def pval(p: float) -> str:
            return "n/a" if math.isnan(p) else f"{p:.3f}"

        against = self.meta["against"]
        stats = self.meta["statistics"]
        first = stats[0]
        lines: list[str] = []
        for rating in self.meta["human"]:
            rows = [r for r in self.rows if r["rating"] == rating]
            n, k = rows[0]["n"], rows[0]["n_items"]
            lines.append(f"{rating} (n = {n} rows" + (f", {k} items)" if k != n else ")"))
            lines.append("")
            head = ["metric", *(STAT_LABELS[s] for s in stats)]
            if against:
                head += [f"{LABELS.get(against, against)} minus metric ({STAT_LABELS[first]})", "p"]
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            for r in rows:
                cells = [LABELS.get(r["metric"], r["metric"]), *(cell(r[s]) for s in stats)]
                if against:
                    d = r.get("against")
                    cells += ["", ""] if d is None else [cell(d[first]), pval(d[first]["p"])]
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        conf = round(100 * self.meta["confidence"])
        lines.append(
            f"{conf}% percentile bootstrap CIs ({self.meta['n_bootstrap']} resamples of "
            f"{'items by ' + repr(self.meta['id_field']) if self.meta.get('id_field') else 'rows'}"
            f", seed {self.meta['seed']}); p: paired permutation test "
            f"({self.meta['n_permutations']} permutations)."
        )
        return "\n".join(lines)

    def write_csv(self, path: str | os.PathLike[str]) -> Path:
        """One row per (rating, metric, statistic), with the difference against CEC."""
        path = Path(path)
        buf = [["rating", "metric", "statistic", "n", "n_items", "value", "low", "high",
                "against", "diff", "diff_low", "diff_high", "p_value"]]  # fmt: skip
        for r in self.rows:
            for s in self.meta["statistics"]:
                d = (r.get("against") or {}).get(s)
                buf.append([
                    r["rating"], r["metric"], s, r["n"], r["n_items"],
                    *(_fmt(r[s][k]) for k in ("value", "low", "high")),
                    self.meta["against"] if d else "",
                    *((_fmt(d[k]) for k in ("value", "low", "high", "p")) if d else ("",) * 4),
                ])  # fmt: skip
        import io

        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(buf)
        return atomic_write(path, out.getvalue())

    def plot(self, path: str | os.PathLike[str], statistic: str | None = None) -> Path:
        """Each metric's correlation with each rating and its CI (one panel per rating); PNG."""
        from cec_distill.report import _pyplot, _save

        stat = statistic or self.meta["statistics"][0]
        plt = _pyplot()
        ratings = self.meta["human"]
        fig, axes = plt.subplots(
            1, len(ratings), figsize=(4.2 * len(ratings), 0.45 * len(self.meta["columns"]) + 1.4),
            squeeze=False, sharey=True,
        )  # fmt: skip
        for ax, rating in zip(axes.flat, ratings, strict=True):
            rows = [r for r in self.rows if r["rating"] == rating][::-1]
            y = np.arange(len(rows))
            v = np.array([r[stat]["value"] for r in rows], dtype=float)
            lo = np.array([r[stat]["low"] for r in rows], dtype=float)
            hi = np.array([r[stat]["high"] for r in rows], dtype=float)
            ax.errorbar(v, y, xerr=[v - lo, hi - v], fmt="o", capsize=3)
            ax.axvline(0, color="grey", lw=0.8)
            ax.set_yticks(y, [LABELS.get(r["metric"], r["metric"]) for r in rows])
            ax.set_title(rating, fontsize="medium")
            ax.set_xlabel(f"{STAT_LABELS[stat]} ({round(100 * self.meta['confidence'])}% CI)")
        return _save(plt, fig, path)


def _fmt(v: Any) -> str:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.6f}"


def meta_evaluate(
    scores: Mapping[str, Sequence[float]],
    human: Mapping[str, Sequence[float]],
    *,
    clusters: Sequence[Any] | None = None,
    against: str | None = "cec",
    statistics: Sequence[str] = STATISTICS,
    n_bootstrap: int = 1000,
    n_permutations: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> MetaEvalResult:
    """Correlate every metric column with every rating; CIs, differences, permutation p-values.

    Args:
        scores: Metric column -> one score per row (NaN rows are left out of that metric's
            cells, e.g. a judge's unparsed answers).
        human: Rating name -> one rating per row.
        clusters: An item id per row; rows of one item are resampled (and permuted) together.
        against: The metric every other is compared with (None: no comparison). Default
            ``cec``; when it is not among ``scores``, no comparison is made.
        statistics: Any of ``spearman``, ``kendall``, ``pearson``.
        n_bootstrap, n_permutations: Resamples; confidence: CI level; seed: one seed for all.

    Raises:
        ValueError: Lengths differ, fewer than 3 rows, a rating with one value only, an
            unknown statistic, or ``against`` not a column while given explicitly as non-cec.
    """
    cols = {c: np.asarray(v, dtype=float) for c, v in scores.items()}
    hum = {h: np.asarray(v, dtype=float) for h, v in human.items()}
    if not cols:
        raise ValueError("scores: no metric columns")
    if not hum:
        raise ValueError("human: no rating")
    n = len(next(iter(hum.values())))
    for name, v in [*cols.items(), *hum.items()]:
        if v.ndim != 1 or len(v) != n:
            raise ValueError(f"{name!r} has {len(v)} values; every column needs {n} (one per row)")
    if n < 3:
        raise ValueError(f"meta-evaluation needs at least 3 rated rows, got {n}")
    for h, v in hum.items():
        ok = v[np.isfinite(v)]
        if len(np.unique(ok)) < 2:
            raise ValueError(
                f"human rating {h!r} has one value only ({ok[0] if len(ok) else 'none'}) in all "
                f"{n} rows: nothing to correlate"
            )
    stats = list(statistics)
    for s in stats:
        if s not in STATISTICS:
            raise ValueError(f"statistics: unknown statistic {s!r}; choose from {list(STATISTICS)}")
    if against is not None and against not in cols:
        if against != "cec":
            raise ValueError(f"against: {against!r} is not among the metrics {list(cols)}")
        against = None
    from cec._checks import check_positive_int

    check_positive_int(n_bootstrap, "n_bootstrap")
    check_positive_int(n_permutations, "n_permutations")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    ids = None if clusters is None else list(clusters)
    if ids is not None and len(ids) != n:
        raise ValueError(f"clusters has {len(ids)} entries but there are {n} rows")

    def subset(mask: np.ndarray) -> _Clusters:
        return _Clusters(None if ids is None else [ids[i] for i in np.flatnonzero(mask)],
                         int(mask.sum()))  # fmt: skip

    rows: list[dict[str, Any]] = []
    for hname, h in hum.items():
        for col, x in cols.items():
            mask = np.isfinite(x) & np.isfinite(h)
            cl = subset(mask)
            xs, hs = x[mask], h[mask]
            row: dict[str, Any] = {"rating": hname, "metric": col, "n": int(mask.sum()),
                                   "n_items": cl.k}  # fmt: skip
            for s in stats:
                row[s] = _interval(
                    lambda r, s=s, xs=xs, hs=hs: _corr(s, xs[r], hs[r]),
                    cl,
                    n_bootstrap,
                    confidence,
                    seed,
                )
                row[s]["value"] = _corr(s, xs, hs)
            if against is not None and col != against:
                a = cols[against]
                m2 = mask & np.isfinite(a)
                cl2 = subset(m2)
                a2, b2, h2 = a[m2], x[m2], h[m2]
                row["against"] = {}
                for s in stats:

                    def delta(r, s=s, a2=a2, b2=b2, h2=h2):
                        return _corr(s, a2[r], h2[r]) - _corr(s, b2[r], h2[r])

                    d = _interval(delta, cl2, n_bootstrap, confidence, seed)
                    d["value"] = _corr(s, a2, h2) - _corr(s, b2, h2)
                    d["p"] = _permutation_p(s, a2, b2, h2, cl2, n_permutations, seed)
                    d["n"] = int(m2.sum())
                    row["against"][s] = d
            rows.append(row)
    all_cl = _Clusters(ids, n)
    meta = {
        "n": n, "n_items": all_cl.k, "human": list(hum), "columns": list(cols),
        "statistics": stats, "against": against, "seed": seed, "n_bootstrap": n_bootstrap,
        "n_permutations": n_permutations, "confidence": confidence,
        "bootstrap": BOOTSTRAP_SCHEME, "permutation": PERMUTATION_SCHEME,
        "rating_counts": {
            h: {_num_label(k): int(c) for k, c in zip(*np.unique(v, return_counts=True),
                                                      strict=True)}
            for h, v in hum.items()
        } if all(len(np.unique(v)) <= 20 for v in hum.values()) else {},
        "versions": _versions(),
    }  # fmt: skip
    return MetaEvalResult(rows, meta)


def _num_label(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _versions() -> dict[str, str]:
    import scipy

    return {"cec": __version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "python": platform.python_version()}  # fmt: skip


# --------------------------------------------------------------------------------------------
# files in, files out
# --------------------------------------------------------------------------------------------
OUTPUT_FILES = ("meta_eval.md", "meta_eval.csv", "meta_eval.json", "meta_eval.png",
                "scores.csv", "scores_cache.json")  # fmt: skip


def _check_out_dir(out_dir: Path, inputs: Sequence[Path]) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir}: is a file, not a folder")
    for name in OUTPUT_FILES:
        target = out_dir / name
        for src in inputs:
            if target.exists() and src.exists() and os.path.samefile(target, src):
                raise ValueError(
                    f"--out {out_dir}: would overwrite the input {src} ({name}); "
                    "write to another folder"
                )


def meta_eval_file(
    path: str | os.PathLike[str],
    human: Sequence[str] | str,
    *,
    out_dir: str | os.PathLike[str] | None = None,
    metrics: Sequence[str] | str = DEFAULT_META_METRICS,
    against: str | None = "cec",
    generated_field: str | None = None,
    references_fields: Sequence[str] | str | None = None,
    id_field: str | None = None,
    statistics: Sequence[str] = STATISTICS,
    n_bootstrap: int = 1000,
    n_permutations: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    plot: bool = True,
    force: bool = False,
    **options: Any,
) -> MetaEvalResult:
    """Read ``path``, score it with ``metrics``, correlate with the ratings ``human``.

    With ``out_dir``: ``meta_eval.md`` (the table), ``meta_eval.csv``, ``meta_eval.json``
    (results, settings, signatures, versions), ``meta_eval.png`` (with ``plot``), ``scores.csv``
    (per-row scores and ratings) and ``scores_cache.json`` (reused by the next run on the same
    texts and options; ``force`` recomputes). ``options`` go to the metrics. Metric names and
    the output folder are checked before the file is scored.
    """
    wanted = resolve_metrics(metrics)
    columns = [c for cs in wanted.values() for c in cs]
    if against is not None and against != "cec" and against not in columns:
        raise ValueError(f"--against: {against!r} is not among --metrics {columns}")
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        _check_out_dir(out, [Path(path)])
    data = read_ratings(path, human, generated_field=generated_field,
                        references_fields=references_fields, id_field=id_field)  # fmt: skip
    cache = out / "scores_cache.json" if out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    scores, signatures = score_metrics(
        data.generated, data.references, columns, contexts=data.contexts, cache=cache,
        force=force, **options,
    )
    res = meta_evaluate(
        {c: scores[c] for c in columns}, data.human, clusters=data.ids, against=against,
        statistics=statistics, n_bootstrap=n_bootstrap, n_permutations=n_permutations,
        confidence=confidence, seed=seed,
    )  # fmt: skip
    res.meta = {
        "input": str(path), "fields": data.fields, "id_field": id_field,
        "metrics": list(wanted), "signatures": signatures, **res.meta,
    }  # fmt: skip
    if out is not None:
        atomic_write(out / "meta_eval.md", res.to_markdown() + "\n")
        res.write_csv(out / "meta_eval.csv")
        atomic_write(out / "meta_eval.json", json.dumps(res.to_dict(), indent=1) + "\n")
        _write_scores(out / "scores.csv", data, scores, columns)
        if plot:
            res.plot(out / "meta_eval.png")
    return res


def _write_scores(
    path: Path, data: Ratings, scores: dict[str, np.ndarray], cols: list[str]
) -> None:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "id", *cols, *data.human])
    for i in range(len(data)):
        w.writerow([i + 1, data.ids[i] if data.ids else "", *(_fmt(scores[c][i]) for c in cols),
                    *(repr(float(data.human[h][i])) for h in data.human)])  # fmt: skip
    atomic_write(path, buf.getvalue())


def _parse_option(text: str) -> tuple[str, Any]:
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise ValueError(f"--metric-option: expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def meta_eval_command(
    ratings: Annotated[
        Path,
        typer.Argument(help="JSONL/JSON/CSV/TSV of rated outputs: text, reference(s), ratings."),
    ],
    human: Annotated[
        list[str],
        typer.Option(
            "--human",
            help="A numeric human rating field (repeat for several; a.b: field b of object a).",
        ),
    ],
    metrics: Annotated[
        str,
        typer.Option(help="Comma-separated metrics or metric columns (cec_forward, llm_judge...)."),
    ] = ",".join(DEFAULT_META_METRICS),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Folder for meta_eval.md/.csv/.json/.png, scores.csv and the score cache.",
        ),
    ] = None,
    generated_field: Annotated[
        str | None,
        typer.Option(
            help="Field of the generated text (default: generated, explanation, prediction)."
        ),
    ] = None,
    references_field: Annotated[
        list[str] | None,
        typer.Option(
            "--references-field",
            help="Field of the reference(s); repeat for several (default: references, reference, teacher, target).",
        ),
    ] = None,
    id_field: Annotated[
        str | None,
        typer.Option(
            help="Item id: rows of one item are resampled together (default: every row is an item)."
        ),
    ] = None,
    against: Annotated[
        str, typer.Option(help="Metric the others are compared with ('none': no comparison).")
    ] = "cec",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples.")] = 1000,
    permutations: Annotated[int, typer.Option(help="Permutations of the paired test.")] = 1000,
    confidence: Annotated[float, typer.Option(help="CI level.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and the permutations.")] = 0,
    plot: Annotated[
        bool, typer.Option("--plot/--no-plot", help="Write meta_eval.png with --out.")
    ] = True,
    force: Annotated[
        bool, typer.Option("--force", help="Recompute scores saved in the cache.")
    ] = False,
    metric_option: Annotated[
        list[str] | None,
        typer.Option(
            "--metric-option",
            help="KEY=VALUE passed to the metrics (JSON values parsed), e.g. a judge's base_url; repeatable.",
        ),
    ] = None,
    bertscore_model: Annotated[str | None, typer.Option(help="BERTScore backbone.")] = None,
    bertscore_layer: Annotated[int | None, typer.Option(help="BERTScore layer.")] = None,
    cec_model: Annotated[str | None, typer.Option(help="CEC encoder.")] = None,
    splitter: Annotated[str | None, typer.Option(help="CEC sentence splitter.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, cuda, cuda:1.")] = None,
) -> None:
    """Agreement of each metric with your human ratings: Spearman, Kendall, Pearson, CIs, tests."""
    from cec_distill.metrics import check_options

    opts = _options(bertscore_model, bertscore_layer, device, cec_model, splitter)
    for text in metric_option or []:
        k, v = _parse_option(text)
        opts[k] = v
    check_options(opts)
    res = meta_eval_file(
        ratings, human, out_dir=out, metrics=metrics,
        against=None if against.lower() == "none" else against,
        generated_field=generated_field, references_fields=references_field, id_field=id_field,
        n_bootstrap=bootstrap, n_permutations=permutations, confidence=confidence, seed=seed,
        plot=plot, force=force, **opts,
    )  # fmt: skip
    typer.echo(res.to_markdown())
    for name, sig in res.meta["signatures"].items():
        typer.echo(f"  {name}: {sig}")
    if out is not None:
        typer.echo(f"wrote {out}/meta_eval.md, .csv, .json" + (", .png" if plot else ""))
