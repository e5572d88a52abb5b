"""CEC in lm-evaluation-harness (``lm-eval`` 0.4.x) task YAMLs.

A generate-until task points its ``process_results`` at a function made here (through a small
``utils.py`` beside the YAML, as lm-eval's ``!function`` tag wants) and lists the metrics it
returns::

    # utils.py
    from cec.integrations.lm_eval import make_process_results, signature
    process_results = make_process_results(references="references", splitter="cec")

    # task.yaml
    process_results: !function utils.process_results
    metric_list:
      - {metric: cec, aggregation: mean, higher_is_better: true}
      - {metric: cec_forward, aggregation: mean, higher_is_better: true}
      - {metric: cec_backward, aggregation: mean, higher_is_better: true}
      - {metric: cec_signature, aggregation: !function utils.signature, higher_is_better: true}

Each document is scored as lm-eval hands it over (first filtered response against the
document's references, one string or a list: the best reference counts, as in
:func:`cec.score`); the scorer is built once per process, when ``utils.py`` is imported at task
load, so bad options fail before generation. With the default ``empty="zero"``, lm-eval's
``mean`` of ``cec`` equals ``cec.score(responses, references).mean``; with ``empty="nan"`` use
``aggregation: nanmean``. ``cec_signature`` carries the signature into the results JSON and
each logged sample. This module does not import lm-eval.

Examples:
    >>> pr = make_process_results(references="refs")
    >>> out = pr({"refs": ["CO2 traps heat.", "Cows moo."]}, ["CO2 traps heat."])
    >>> round(out["cec"], 4), out["cec_signature"].split("|")[0]
    (1.0, 'cec:0.1.0')
    >>> signature([out["cec_signature"], out["cec_signature"]]) == out["cec_signature"]
    True
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cec.integrations._common import build_scorer, merge_signatures

__all__ = ["METRICS", "make_process_results", "process_results", "signature"]

#: The keys each processed document returns (list them all in the task's ``metric_list``).
METRICS: tuple[str, ...] = ("cec", "cec_forward", "cec_backward", "cec_signature")

References = str | Callable[[Mapping[str, Any]], Any]


def make_process_results(
    *, references: References = "references", **options: Any
) -> Callable[[Mapping[str, Any], Sequence[Any]], dict[str, Any]]:
    """A ``process_results(doc, results)`` for a generate-until lm-eval task.

    Args:
        references: Where a document's references are: a field name (the field holds one
            reference string or a list of them) or a callable ``doc -> str | list[str]``.
            Make the task's ``doc_to_target`` give the same references, so the logged
            ``target`` is what was scored.
        **options: :class:`cec.CEC` options (``model``, ``splitter``, ``empty``, ``precision``,
            ``directional``...).

    Returns:
        A function returning ``{"cec", "cec_forward", "cec_backward", "cec_signature"}`` per
        document.

    Raises:
        TypeError, ValueError: ``references`` is neither a string nor a callable, or an option
            is unknown or bad (raised here, at task load).
    """
    if not (isinstance(references, str) or callable(references)):
        raise TypeError(
            "references must be a document field name or a callable doc -> references, "
            f"got {type(references).__name__}"
        )
    scorer = build_scorer(options, where="cec.integrations.lm_eval")

    def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, Any]:
        if isinstance(references, str):
            if references not in doc:
                raise KeyError(
                    f"references: document has no field {references!r} (fields: {sorted(doc)})"
                )
            refs = doc[references]
        else:
            refs = references(doc)
        if isinstance(refs, tuple):
            refs = list(refs)
        if not results:
            raise ValueError("results: lm-eval gave no response for this document")
        response = results[0]
        if isinstance(response, (list, tuple)):  # a filter that kept several responses
            response = response[0]
        result = scorer.score([response], [refs])
        return {
            "cec": float(result.sym[0]),
            "cec_forward": float(result.forward[0]),
            "cec_backward": float(result.backward[0]),
            "cec_signature": str(result.signature),
        }

    return process_results


_default: Callable[[Mapping[str, Any], Sequence[Any]], dict[str, Any]] | None = None


def process_results(doc: Mapping[str, Any], results: Sequence[Any]) -> dict[str, Any]:
    """``make_process_results()`` with the defaults: references in ``doc["references"]``."""
    global _default
    if _default is None:
        _default = make_process_results()
    return _default(doc, results)


def signature(items: Sequence[str]) -> str:
    """lm-eval aggregation for ``cec_signature``: the one signature of all documents.

    ``nrefs`` is the common count of references, or ``var`` when it varies.

    Raises:
        ValueError: Documents were scored by different scorers.
    """
    return merge_signatures(items)
