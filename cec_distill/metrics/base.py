"""The metric interface, the registry and input checks shared by every metric."""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np

__all__ = [
    "Metric",
    "MetricOutput",
    "register_metric",
    "available_metrics",
    "get_metric",
    "check_options",
    "normalize_references",
    "normalize_contexts",
]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


def normalize_references(references: Any, n: int | None = None) -> list[list[str]]:
    """One list of reference strings per item (a string becomes a one-element list).

    Raises:
        TypeError: ``references`` is None/a string, or an entry is not a string.
        ValueError: An item has no references, or the length differs from ``n``.
    """
    if references is None or isinstance(references, (str, bytes)):
        raise TypeError(
            "references must be a sequence with one entry (str or list of str) per item"
        )
    out: list[list[str]] = []
    for i, r in enumerate(references):
        refs = [r] if isinstance(r, str) else list(r) if isinstance(r, Iterable) else None
        if refs is None:
            raise TypeError(
                f"references[{i}] must be a str or a list of str, got {type(r).__name__}"
            )
        if not refs:
            raise ValueError(f"references[{i}] is an empty list; give at least one reference")
        for k, x in enumerate(refs):
            if not isinstance(x, str):
                raise TypeError(f"references[{i}][{k}] must be a str, got {type(x).__name__}")
        out.append(refs)
    if n is not None and len(out) != n:
        raise ValueError(f"generated has {n} items but references has {len(out)}; they must match")
    return out


def normalize_contexts(contexts: Any, n: int) -> list[dict[str, Any] | None]:
    """One context per item (a dict such as ``{"claim", "evidence", "label"}`` or ``{"premise",
    "hypothesis"}``, or None when the item has none); ``contexts=None`` is no context at all.

    Raises:
        TypeError: ``contexts`` is not a sequence, or an entry is neither a mapping nor None.
        ValueError: The length differs from ``n``.
    """
    if contexts is None:
        return [None] * n
    if isinstance(contexts, (str, bytes, Mapping)) or not isinstance(contexts, Iterable):
        raise TypeError("contexts must be a sequence with one dict (or None) per item")
    out: list[dict[str, Any] | None] = []
    for i, c in enumerate(contexts):
        if c is not None and not isinstance(c, Mapping):
            raise TypeError(f"contexts[{i}] must be a dict or None, got {type(c).__name__}")
        out.append(dict(c) if c else None)
    if len(out) != n:
        raise ValueError(f"generated has {n} items but contexts has {len(out)}; they must match")
    return out


def _check_ids(ids: Any, n: int) -> list[Any]:
    if ids is None:
        return list(range(n))
    if isinstance(ids, (str, bytes)):
        raise TypeError("ids must be a sequence with one id per item")
    ids = list(ids)
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} entries but generated has {n}")
    return ids


def _check_generated(generated: Any) -> list[str]:
    if generated is None or isinstance(generated, (str, bytes)):
        raise TypeError("generated must be a sequence of strings (one per item)")
    gens = list(generated)
    for i, g in enumerate(gens):
        if not isinstance(g, str):
            raise TypeError(f"generated[{i}] must be a str, got {type(g).__name__}")
    return gens


@dataclass
class MetricOutput:
    """Per-item arrays (``columns``) and corpus-level values (``corpus``) of one metric, and
    what else the run reports (``info``: e.g. the LLM judge's unparsed count), JSON-ready."""

    columns: dict[str, np.ndarray]
    corpus: dict[str, float]
    info: dict[str, Any] = field(default_factory=dict)


class Metric:
    """A metric: ``compute(generated, references) -> MetricOutput``; ``signature`` string.

    Subclasses set ``name`` and ``columns`` (the first column is the metric's main score) and
    implement :meth:`item_scores`. The corpus value is the mean of items unless overridden.
    A metric that reads more than the texts (the LLM judge: the item's claim and evidence, and
    its id and system for its records) sets ``uses_context = True``; its ``item_scores`` is then
    also given ``ids=``, ``contexts=`` and ``system=``. Others never see them.
    """

    name: str = ""
    columns: tuple[str, ...] = ()
    uses_context: bool = False

    def item_scores(
        self, generated: list[str], references: list[list[str]]
    ) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def corpus_scores(
        self, generated: list[str], references: list[list[str]], items: dict[str, np.ndarray]
    ) -> dict[str, float]:
        return {c: _nanmean(v) for c, v in items.items()}

    def compute(
        self,
        generated: Sequence[str],
        references: Sequence[Any],
        *,
        ids: Sequence[Any] | None = None,
        contexts: Sequence[Mapping[str, Any] | None] | None = None,
        system: str | None = None,
    ) -> MetricOutput:
        """Score every item; ``ids``/``contexts``/``system`` reach only ``uses_context`` metrics
        (and are checked for every metric: one id and one context, or None, per item)."""
        gens = _check_generated(generated)
        refs = normalize_references(references, len(gens))
        ids_ = _check_ids(ids, len(gens))
        ctxs = normalize_contexts(contexts, len(gens))
        if self.uses_context:
            raw = self.item_scores(gens, refs, ids=ids_, contexts=ctxs, system=system)  # type: ignore[call-arg]
        else:
            raw = self.item_scores(gens, refs)
        items = {c: np.asarray(v, dtype=np.float64) for c, v in raw.items()}
        return MetricOutput(items, self.corpus_scores(gens, refs, items), self.run_info())

    def run_info(self) -> dict[str, Any]:
        """What the last :meth:`compute` reports beside its scores (JSON-ready; default none)."""
        return {}

    @property
    def signature(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.signature}>"


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    ok = ~np.isnan(x)
    return float(x[ok].mean()) if ok.any() else math.nan


_REGISTRY: dict[str, Callable[..., Metric]] = {}
_OPTIONS: dict[str, frozenset[str]] = {}


def register_metric(
    name: str, factory: Callable[..., Metric], options: Iterable[str] | None = None
) -> None:
    """Add a metric: ``factory(**options) -> Metric``.

    Args:
        name: The metric's name in :func:`available_metrics`.
        factory: Builds the metric from keyword options.
        options: The keyword options ``factory`` takes (default: read from its signature).
            An option that no registered metric takes is an error in :func:`get_metric` and
            :func:`cec_distill.metrics.evaluate`, so a typo never passes silently.
    """
    if options is None:
        params = inspect.signature(factory).parameters.values()
        options = [
            p.name for p in params
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is not p.empty
        ]  # fmt: skip
    _REGISTRY[name] = factory
    _OPTIONS[name] = frozenset(options)


def available_metrics() -> list[str]:
    """Names accepted by :func:`get_metric` and :func:`cec_distill.metrics.evaluate`."""
    return list(_REGISTRY)


def check_options(options: dict[str, Any]) -> None:
    """Refuse options that no registered metric takes (a typo such as ``bertscore_modle``).

    Raises:
        ValueError: Names the unknown option, the closest known one, and the known ones.
    """
    known = sorted(set().union(*_OPTIONS.values()))
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(
                f"options: unknown metric option {key!r}{hint}; known: {', '.join(known)}"
            )


def get_metric(name: str, **options: Any) -> Metric:
    """Build metric ``name``; options meant for other metrics are left out, unknown ones refused.

    Raises:
        ValueError: Unknown metric or unknown option.
    """
    if name not in _REGISTRY:
        raise ValueError(f"metrics: unknown metric {name!r}; choose from {available_metrics()}")
    check_options(options)
    mine = {k: v for k, v in options.items() if k in _OPTIONS[name]}
    return _REGISTRY[name](**mine)
