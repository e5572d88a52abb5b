"""BLEU: sacrebleu, sentence BLEU per item and corpus BLEU per corpus, on a 0-1 scale."""

from __future__ import annotations

from cec_distill.metrics.base import Metric, _version, register_metric

__all__ = ["BLEUMetric"]


class BLEUMetric(Metric):
    """sacrebleu BLEU on a 0-1 scale: sentence BLEU per item, corpus BLEU per corpus."""

    name = "bleu"
    columns = ("bleu",)

    def __init__(self) -> None:
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
