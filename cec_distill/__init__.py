"""cec_distill: the causal-distillation study around CEC.

teacher labels -> student fine-tuning -> generation -> evaluation -> statistics -> report.
Install with ``pip install ".[distill]"``. Imports :mod:`cec`; :mod:`cec` never imports this.
"""

from __future__ import annotations

from cec._version import __version__

__all__ = ["__version__"]
