"""CEC inside evaluation harnesses: lm-evaluation-harness, HF evaluate, torchmetrics, inspect-ai.

One module per harness; importing :mod:`cec` or :mod:`cec.integrations` never imports a harness
(each module imports its harness only when that module is imported):

- :mod:`cec.integrations.lm_eval`: ``process_results`` and an aggregation for lm-eval task YAMLs;
- :data:`EVALUATE_SCRIPT`: the path of an HF ``evaluate`` module script
  (``evaluate.load(cec.integrations.EVALUATE_SCRIPT)``), :mod:`cec.integrations.hf_evaluate`;
- :mod:`cec.integrations.torchmetrics`: ``CECScore``, a ``torchmetrics.Metric``;
- :mod:`cec.integrations.inspect`: ``cec_scorer``, an inspect-ai scorer.

In every harness the scorer for a set of options is built once per process (when the task,
module or metric is created, so bad options fail before any generation) and the signature
reaches the harness's output. See docs/integrations.md.

Examples:
    >>> import cec.integrations
    >>> cec.integrations.EVALUATE_SCRIPT.endswith("hf_evaluate.py")
    True
"""

from __future__ import annotations

from pathlib import Path

from cec.integrations._common import build_scorer, cec_options, merge_signatures

__all__ = ["EVALUATE_SCRIPT", "build_scorer", "cec_options", "merge_signatures"]

#: Path of the HF ``evaluate`` module script: ``evaluate.load(EVALUATE_SCRIPT)``.
EVALUATE_SCRIPT: str = str(Path(__file__).with_name("hf_evaluate.py"))
