"""METEOR: nltk on lower-cased wordpunct tokens, WordNet 3.0 offline."""

from __future__ import annotations

from cec_distill.metrics.base import Metric, _version, register_metric

__all__ = ["METEORMetric"]


class METEORMetric(Metric):
    """nltk METEOR on lower-cased wordpunct tokens; WordNet 3.0 offline."""

    name = "meteor"
    columns = ("meteor",)

    def __init__(self) -> None:
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
