"""CEC for evaluation loops: a stateful metric and an HF-``evaluate``-style ``compute``.

:class:`CECMetric` follows torchmetrics' shape without depending on it: ``update`` with batches,
``compute`` the corpus score, ``reset``; its state (per-item scores) merges across processes, via
``torch.distributed`` when a process group is initialised or by hand with :meth:`merge_state`.
Because per-item scores are kept, ``compute`` equals :func:`cec.score` over all the data fed,
however it was batched or split over workers.

:func:`compute` is the one-call form for ``evaluate``-style harnesses: keyword arguments in,
plain Python types out.

Examples:
    >>> from cec.metric import CECMetric, compute
    >>> metric = CECMetric()
    >>> metric.update(["CO2 traps heat."], ["CO2 traps heat."])
    >>> metric.update(["Ice melts. Seas rise."], ["Seas rise. Ice melts."])
    >>> round(metric.compute().mean, 4)
    1.0
    >>> out = compute(predictions=["CO2 traps heat."], references=["CO2 traps heat."])
    >>> round(out["cec"], 4), out["n_empty"]
    (1.0, 0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from cec.result import CECResult, json_safe
from cec.signature import Signature, nrefs_label

__all__ = ["CECMetric", "compute"]

_STATE_KEYS = ("forward", "backward", "sym", "empty", "best_ref", "nrefs")


class CECMetric:
    """Stateful CEC: ``update(preds, refs)`` per batch, ``compute()`` once, ``reset()`` to reuse.

    Args:
        scorer: A :class:`cec.CEC` to use; when ``None``, the cached scorer for ``options``.
        dist_sync: In :meth:`compute`, gather the states of all processes first when a
            ``torch.distributed`` process group is initialised.
        **options: :class:`cec.CEC` options (``model``, ``device``, ``splitter``, ``empty``...)
            used when ``scorer`` is ``None``.

    States (all per item, in update order): ``forward``, ``backward``, ``sym``, ``empty``,
    ``best_ref``, ``nrefs``; plus the scorer's ``signature``. States merge by concatenation, so
    the merged metric computes exactly what one process would over all items.

    Examples:
        >>> a, b = CECMetric(), CECMetric()
        >>> a.update(["CO2 traps heat."], ["CO2 traps heat."])
        >>> b.update(["Ice cream is tasty."], ["Glaciers retreat."])
        >>> a.merge_state(b)
        >>> len(a), round(float(a.compute().sym[0]), 4)
        (2, 1.0)
    """

    def __init__(self, scorer: Any = None, *, dist_sync: bool = True, **options: Any):
        if scorer is not None and options:
            raise TypeError("give either scorer or CEC options, not both")
        self._scorer = scorer
        self._options = options
        self.dist_sync = dist_sync
        self.reset()

    # -- the scorer ------------------------------------------------------------------------
    @property
    def scorer(self) -> Any:
        """The :class:`cec.CEC` in use (the cached one for the options, built on first use)."""
        if self._scorer is None:
            from cec.scorer import get_scorer

            self._scorer = get_scorer(**self._options)
        return self._scorer

    # -- state -----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every item fed so far."""
        self._state: dict[str, list[Any]] = {k: [] for k in _STATE_KEYS}
        self._signature: str | None = None

    def __len__(self) -> int:
        return len(self._state["sym"])

    def update(self, preds: Any, refs: Any) -> None:
        """Score a batch and add its per-item scores to the state.

        Args:
            preds: Generated texts (a sequence; a single string is one item).
            refs: One reference (string) or list of references per text.

        Raises:
            TypeError, ValueError: As :func:`cec.score` (checked before any model loads).
        """
        from cec.scorer import validate_pairs

        gens, ref_lists, _ = validate_pairs(preds, refs)
        if not gens:
            return
        result = self.scorer.score(gens, ref_lists)
        self._absorb(
            {
                "forward": result.forward.tolist(),
                "backward": result.backward.tolist(),
                "sym": result.sym.tolist(),
                "empty": result.empty.tolist(),
                "best_ref": result.best_ref.tolist(),
                "nrefs": [len(r) for r in ref_lists],
            },
            _base_signature(result.signature),
        )

    __call__ = update

    def _absorb(self, state: Mapping[str, list[Any]], signature: str | None) -> None:
        lengths = {key: len(state[key]) for key in _STATE_KEYS}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"{k} {n}" for k, n in lengths.items())
            raise ValueError(f"state lists have different lengths ({detail})")
        if signature is not None:
            if self._signature is not None and signature != self._signature:
                raise ValueError(
                    "cannot merge CEC states from different scorers: "
                    f"{self._signature!r} vs {signature!r}"
                )
            self._signature = signature
        for key in _STATE_KEYS:
            self._state[key].extend(state[key])

    def state_dict(self) -> dict[str, Any]:
        """The state as plain Python types (picklable and JSON-serialisable; NaN stays float)."""
        return {"signature": self._signature, **{k: list(v) for k, v in self._state.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Replace the state with one from :meth:`state_dict`."""
        missing = [k for k in ("signature", *_STATE_KEYS) if k not in state]
        if missing:
            raise ValueError(f"state is missing {', '.join(missing)}")
        self.reset()
        self._absorb(state, state["signature"])

    def merge_state(self, other: CECMetric | Mapping[str, Any]) -> None:
        """Append another metric's items (or a :meth:`state_dict`) after this one's.

        Raises:
            ValueError: The states come from scorers with different signatures.
        """
        state = other.state_dict() if isinstance(other, CECMetric) else other
        self._absorb(state, state.get("signature"))

    def sync(self, group: Any = None) -> CECMetric:
        """A new metric holding the states of all processes, in rank order.

        Uses ``torch.distributed.all_gather_object`` when a process group is initialised
        (every rank must call it); otherwise a copy of this metric. This metric is unchanged.
        """
        merged = CECMetric(self._scorer, dist_sync=False, **self._options)
        states = [self.state_dict()]
        try:
            import torch.distributed as dist
        except ImportError:  # pragma: no cover - torch without distributed
            dist = None  # type: ignore[assignment]
        if dist is not None and dist.is_available() and dist.is_initialized():
            states = [None] * dist.get_world_size(group)  # type: ignore[list-item]
            dist.all_gather_object(states, self.state_dict(), group=group)
        for state in states:
            merged.merge_state(state)
        return merged

    # -- result ----------------------------------------------------------------------------
    def compute(self) -> CECResult:
        """The corpus result over every item fed (all processes, when distributed).

        Returns:
            A :class:`cec.CECResult`: ``.mean`` is the corpus CEC, ``.sym`` the per-item scores
            in update order (rank order, then update order, after a distributed sync).
        """
        source = self.sync() if self.dist_sync else self
        st = source._state
        if source._signature is None:
            signature = Signature.parse(str(self.scorer.signature))
        else:
            signature = Signature.parse(source._signature)
        return CECResult(
            forward=np.asarray(st["forward"], dtype=np.float64),
            backward=np.asarray(st["backward"], dtype=np.float64),
            sym=np.asarray(st["sym"], dtype=np.float64),
            empty=np.asarray(st["empty"], dtype=bool),
            best_ref=np.asarray(st["best_ref"], dtype=np.int64),
            signature=signature.with_(nrefs=nrefs_label(st["nrefs"])),
        )

    def __repr__(self) -> str:
        return f"CECMetric(n={len(self)}, signature={self._signature!r})"


def _base_signature(sig: Signature) -> str:
    """The signature without ``nrefs`` (which is a property of the data, set at compute)."""
    return str(sig.with_(nrefs="*"))


def compute(
    *,
    predictions: Iterable[str],
    references: Iterable[Any],
    **options: Any,
) -> dict[str, Any]:
    """CEC in the shape HF ``evaluate`` users expect: keyword inputs, plain-type outputs.

    Args:
        predictions: Generated explanations.
        references: One reference string, or a list of references, per prediction.
        **options: :class:`cec.CEC` options (``model``, ``device``, ``splitter``, ``empty``...).

    Returns:
        A ``dict`` of plain Python types, ``{"cec": float, "forward": float, "backward": float,
            "scores": [float, ...], "n_empty": int, "signature": str}``. ``cec`` is the corpus
            mean, ``scores`` the per-item scores in input order; a NaN (only with
            ``empty="nan"``) is ``None``.

    Examples:
        >>> out = compute(predictions=["CO2 traps heat. Seas rise."],
        ...               references=[["Seas rise. CO2 traps heat.", "Unrelated."]])
        >>> sorted(out), round(out["scores"][0], 4)
        (['backward', 'cec', 'forward', 'n_empty', 'scores', 'signature'], 1.0)
    """
    from cec.scorer import get_scorer, validate_pairs

    gens, refs, _ = validate_pairs(
        _listed(predictions, "predictions"), _listed(references, "references")
    )
    result = get_scorer(**options).score(gens, refs)
    return {
        "cec": json_safe(result.mean),
        "forward": json_safe(result.mean_forward),
        "backward": json_safe(result.mean_backward),
        "scores": [json_safe(x) for x in result.sym.tolist()],
        "n_empty": result.n_empty,
        "signature": str(result.signature),
    }


def _listed(value: Any, name: str) -> Any:
    if value is None or isinstance(value, str):
        raise TypeError(f"{name} must be a list (one entry per item), got {type(value).__name__}")
    return value
