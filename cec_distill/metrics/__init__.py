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
  :func:`available_metrics`: the registry. An option no registered metric takes (a typo such as
  ``bertscore_modle``) is a ``ValueError``. A :class:`Metric` has ``name``, ``columns`` and
  ``compute(generated, references, *, ids=None, contexts=None, system=None) -> MetricOutput``
  (per-item arrays, corpus values and ``info``) and a ``signature`` string; only a metric with
  ``uses_context`` reads ``ids``/``contexts``/``system``.

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
``llm_judge``   An LLM behind an OpenAI-compatible endpoint grades each item 1-5 with a
                versioned, hashed rubric (:mod:`cec_distill.metrics.judge_rubric`) that shows
                it the item's claim/evidence or premise/hypothesis (``contexts``), the
                reference(s) and the generated text. Not offline, so not in
                :data:`DEFAULT_METRICS`; needs ``judge_model`` (and ``judge_base_url``). An
                answer that does not parse is asked again once, then NaN (``unparsed``, left out
                of the mean, counted in ``EvaluationResult.meta["llm_judge"]``). Resumable
                records keyed by (item id, system) in ``judge_records``.
==============  ===========================================================================

Examples:
    >>> from cec_distill.metrics import evaluate
    >>> res = evaluate(["the cat sat on the mat"], [["the cat sat on the mat"]],
    ...                metrics=["bleu", "rouge1"])
    >>> round(float(res.corpus.loc["bleu", "score"]), 3), round(float(res.items["rouge1"][0]), 3)
    (1.0, 1.0)
"""

from __future__ import annotations

# one module per metric, as sacrebleu keeps metrics/bleu.py, metrics/chrf.py; importing them
# registers them, in the order of Table 1
from cec_distill.metrics.base import (
    Metric,
    MetricOutput,
    available_metrics,
    check_options,
    get_metric,
    normalize_contexts,
    normalize_references,
    register_metric,
)
from cec_distill.metrics.bertscore import (
    DEFAULT_BERTSCORE_LAYER,
    BERTScoreMetric,
    resolve_bertscore_model,
)
from cec_distill.metrics.bleu import BLEUMetric
from cec_distill.metrics.cec import CECEvalMetric
from cec_distill.metrics.evaluation import (
    DEFAULT_METRICS,
    RESULTS_FORMAT,
    EvaluationResult,
    evaluate,
    load_results,
)
from cec_distill.metrics.llm_judge import JUDGE_OPTIONS, LLMJudgeMetric
from cec_distill.metrics.meteor import METEORMetric
from cec_distill.metrics.rouge import ROUGEMetric

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_BERTSCORE_LAYER",
    "RESULTS_FORMAT",
    "Metric",
    "MetricOutput",
    "EvaluationResult",
    "evaluate",
    "get_metric",
    "register_metric",
    "available_metrics",
    "check_options",
    "load_results",
    "normalize_references",
    "normalize_contexts",
    "resolve_bertscore_model",
    "JUDGE_OPTIONS",
    "BLEUMetric",
    "ROUGEMetric",
    "METEORMetric",
    "BERTScoreMetric",
    "CECEvalMetric",
    "LLMJudgeMetric",
]
