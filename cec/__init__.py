"""cec: Causal Explanation Coherence.

Score how well generated explanations match reference explanations, sentence by sentence
(Eq. 2 of "Causal Distillation", Muhebwa & Osman):

    >>> import cec
    >>> round(cec.score("CO2 traps heat. The planet warms.", "The planet warms. CO2 traps heat."), 4)
    1.0

See :func:`cec.score`, :class:`cec.CEC` and :class:`cec.CECResult`.
"""

from __future__ import annotations

from cec._version import __version__
from cec.align import Alignment
from cec.encode import DEFAULT_MODEL, Encoder, TruncationWarning
from cec.metric import CECMetric
from cec.result import CECResult, PairScore
from cec.scorer import CEC, EmptyTextWarning, score
from cec.segment import available_splitters, get_splitter
from cec.signature import Signature

__all__ = [
    "__version__",
    "score",
    "CEC",
    "CECResult",
    "PairScore",
    "Signature",
    "Encoder",
    "DEFAULT_MODEL",
    "EmptyTextWarning",
    "TruncationWarning",
    "available_splitters",
    "get_splitter",
    "Alignment",
    "CECMetric",
]
