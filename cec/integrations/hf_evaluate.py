"""CEC as an HF ``evaluate`` module script: ``evaluate.load(cec.integrations.EVALUATE_SCRIPT)``.

This file is both a module of :mod:`cec` and the script that ``evaluate.load`` copies and runs
(so its imports are one module per line, as evaluate's dependency check reads them). CEC
options go to ``evaluate.load(...)`` (checked there, before any data is added) or to
``compute(...)`` (for that call); the scorer for a set of options is built once per process::

    import evaluate, cec.integrations
    cec_metric = evaluate.load(cec.integrations.EVALUATE_SCRIPT, splitter="cec")
    cec_metric.compute(predictions=["CO2 traps heat."], references=[["CO2 traps heat.", "..."]])
    # {'cec': 1.0, 'forward': 1.0, 'backward': 1.0, 'scores': [1.0], 'n_empty': 0,
    #  'signature': 'cec:0.1.0|model:all-MiniLM-L6-v2@53aa5117|...'}

The output is :func:`cec.metric.compute`'s: the same numbers as :func:`cec.score`.
"""

from __future__ import annotations

from typing import Any

import datasets
import evaluate

from cec.integrations._common import build_scorer, check_options
from cec.metric import compute as cec_compute

_CITATION = """\
@article{muhebwa-osman-causal-distillation,
  title  = {Causal Distillation: Transferring Structured Explanations from Large to Compact
            Language Models},
  author = {Muhebwa, Aggrey and Osman, Khalid K.},
  note   = {Causal Explanation Coherence (CEC), Eq. 2}
}
"""

_DESCRIPTION = """\
Causal Explanation Coherence (CEC) scores how well a generated explanation matches a reference
explanation, sentence by sentence: each text is split into sentences and embedded
(all-MiniLM-L6-v2 by default, shipped offline); `forward` is the mean over generated sentences
of the best cosine with a reference sentence, `backward` the mean over reference sentences of
the best cosine with a generated sentence, and CEC their mean. With several references per
prediction, the best reference counts. Range [-1, 1], in practice about [0, 1]. Report the
signature beside the score.
"""

_KWARGS_DESCRIPTION = """\
Args:
    predictions: list of generated explanations (str).
    references: one reference (str) per prediction, or a list of references (list[str]) per
        prediction (the best one counts).
    model, splitter, empty, precision, directional, device, batch_size, cache, ...: cec.CEC
        options, at load or per compute call.
Returns:
    cec: corpus CEC (mean of per-item scores; None if undefined with empty="nan"),
    forward, backward: their corpus means,
    scores: per-item CEC,
    n_empty: items with no sentences on a side,
    signature: what the numbers depend on.
Examples:
    >>> import evaluate, cec.integrations
    >>> m = evaluate.load(cec.integrations.EVALUATE_SCRIPT)
    >>> out = m.compute(predictions=["CO2 traps heat."], references=[["CO2 traps heat.", "Hi."]])
    >>> round(out["cec"], 4), "nrefs:2" in out["signature"].split("|")
    (1.0, True)
"""

__all__ = ["Cec"]


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class Cec(evaluate.Metric):
    """The ``evaluate`` metric; build it with ``evaluate.load(EVALUATE_SCRIPT, **options)``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # CEC options given to evaluate.load(...) arrive here; check them and build the scorer
        # now, so a bad option fails at load rather than after the predictions are collected
        options = {k: kwargs.pop(k) for k in list(kwargs) if k in _option_names()}
        super().__init__(*args, **kwargs)
        self.cec_options = check_options(options, "evaluate.load(cec)")
        build_scorer(self.cec_options, where="evaluate.load(cec)")

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Sequence(datasets.Value("string")),
                    }
                ),
                datasets.Features(
                    {
                        "predictions": datasets.Value("string"),
                        "references": datasets.Value("string"),
                    }
                ),
            ],
            reference_urls=["https://example.invalid/cec/docs"],
        )

    def _compute(self, predictions: Any, references: Any, **options: Any) -> dict[str, Any]:
        merged = {**self.cec_options, **check_options(options, "compute")}
        return cec_compute(predictions=list(predictions), references=list(references), **merged)


def _option_names() -> tuple[str, ...]:
    from cec.integrations._common import cec_options

    return cec_options()
