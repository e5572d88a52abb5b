"""cec: Causal Explanation Coherence.

Score how well generated explanations match reference explanations, sentence by sentence
(Eq. 2 of "Causal Distillation", Muhebwa & Osman):

    >>> import cec
    >>> round(cec.score("CO2 traps heat. The planet warms.", "The planet warms. CO2 traps heat."), 4)
    1.0

See :func:`cec.score`, :class:`cec.CEC` and :class:`cec.CECResult`.

``import cec`` is cheap: the names below, and the public submodules (``cec.metric``,
``cec.align``, ``cec.ray``, ...), are imported on first use, so a command-line error or
``cec --help`` never waits for torch to load.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from cec._version import __version__

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "score": "cec.scorer",
    "score_segmented": "cec.scorer",
    "CEC": "cec.scorer",
    "EmptyTextWarning": "cec.scorer",
    "UnreadableTextWarning": "cec.readable",
    "ForeignScriptWarning": "cec.readable",
    "CECResult": "cec.result",
    "PairScore": "cec.result",
    "Signature": "cec.signature",
    "Encoder": "cec.encode",
    "CallableEncoder": "cec.encode",
    "DEFAULT_MODEL": "cec.encode",
    "TruncationWarning": "cec.encode",
    "available_splitters": "cec.segment",
    "get_splitter": "cec.segment",
    "Splitter": "cec.segment",
    "Segmented": "cec.segment",
    "Alignment": "cec.align",
    "CECMetric": "cec.metric",
}

__all__ = [
    "__version__",
    "score",
    "score_segmented",
    "CEC",
    "EmptyTextWarning",
    "UnreadableTextWarning",
    "ForeignScriptWarning",
    "CECResult",
    "PairScore",
    "Signature",
    "Encoder",
    "CallableEncoder",
    "DEFAULT_MODEL",
    "TruncationWarning",
    "available_splitters",
    "get_splitter",
    "Splitter",
    "Segmented",
    "Alignment",
    "CECMetric",
]
assert set(__all__) == {"__version__", *_EXPORTS}

# public submodules, reachable as ``cec.<name>`` after a plain ``import cec`` (loaded on first use)
_SUBMODULES = (
    "align",
    "cache",
    "causal",
    "cli",
    "directional",
    "encode",
    "io",
    "metric",
    "ray",
    "rescale",
    "result",
    "scorer",
    "segment",
    "signature",
    "similarity",
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return import_module(f"cec.{name}")  # the import also binds it on the package
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cec' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBMODULES))


if TYPE_CHECKING:  # static type checkers and IDEs see the real names
    from cec.align import Alignment
    from cec.encode import DEFAULT_MODEL, CallableEncoder, Encoder, TruncationWarning
    from cec.metric import CECMetric
    from cec.readable import ForeignScriptWarning, UnreadableTextWarning
    from cec.result import CECResult, PairScore
    from cec.scorer import CEC, EmptyTextWarning, score, score_segmented
    from cec.segment import Segmented, Splitter, available_splitters, get_splitter
    from cec.signature import Signature
