"""CEC as an entry of the metric registry (``sym`` with ``forward``/``backward``).

Not to be confused with :class:`cec.CECMetric`, the stateful metric for training loops.
"""

from __future__ import annotations

from typing import Any

from cec_distill.metrics.base import Metric, register_metric

__all__ = ["CECEvalMetric"]


class CECEvalMetric(Metric):
    """CEC ``sym`` (Eq. 2) with ``forward``/``backward``; best reference per item."""

    name = "cec"
    columns = ("cec", "cec_forward", "cec_backward")

    def __init__(
        self,
        cec_options: dict[str, Any] | None = None,
        device: str | None = None,
        scorer: Any = None,
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


register_metric("cec", CECEvalMetric)
