"""ROUGE-1/2/L: rouge-score F1 with Porter stemming; several references -> best F1."""

from __future__ import annotations

import functools
from typing import Any

from cec_distill.metrics.base import Metric, _version, register_metric

__all__ = ["ROUGEMetric"]


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


class ROUGEMetric(Metric):
    """rouge-score F1 with stemming; several references -> best F1."""

    def __init__(self, variant: str):
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
    register_metric(_v, functools.partial(ROUGEMetric, _v), options=())
