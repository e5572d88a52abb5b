"""CEC as a real ``torchmetrics.Metric``: :class:`CECScore`.

Its states are sums (``dist_reduce_fx="sum"``), so torchmetrics' own synchronisation makes
``compute()`` the mean over every rank's items under DDP, and the metric works inside a
``MetricCollection`` and with Lightning's ``self.log`` (``compute`` returns a scalar tensor)::

    from cec.integrations.torchmetrics import CECScore
    metric = CECScore(splitter="cec")          # the scorer is built here, once per process
    metric.update(generated_texts, references) # a reference may be a list of references
    metric.compute()                           # tensor(0.71..., dtype=torch.float64)
    metric.compute_all()                       # {"cec": ..., "cec_forward": ..., ...}
    metric.signature                           # report beside the number

Examples:
    >>> m = CECScore()
    >>> m.update(["CO2 traps heat. Seas rise."], [["Seas rise. CO2 traps heat.", "Hi."]])
    >>> round(float(m.compute()), 4), "nrefs:2" in m.signature.split("|")
    (1.0, True)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torchmetrics import Metric

from cec.integrations._common import build_scorer, check_options

__all__ = ["CECScore"]


class _Shared:
    """Holds the scorer so that copies of the metric (``clone``, collections) share it."""

    def __init__(self, scorer: Any, from_options: bool = True):
        self.scorer = scorer
        self.from_options = from_options

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled for another process: a scorer built from options is rebuilt there from the
        # options (once per process); a scorer object cannot travel, and must not silently
        # become the default scorer there
        if self.from_options:
            return (_Shared, (None, True))
        raise TypeError(
            "CECScore(scorer) cannot be sent to another process (a cec.CEC is not picklable); "
            "build it from options instead: CECScore(model=..., splitter=..., ...)"
        )


class CECScore(Metric):
    """Corpus CEC over every item fed with :meth:`update`, on every rank.

    Args:
        scorer: A :class:`cec.CEC` to use; when ``None``, the process-wide scorer for
            ``options`` (built here, so bad options fail here).
        **options: :class:`cec.CEC` options (``model``, ``splitter``, ``empty``,
            ``precision``, ``directional``...), or torchmetrics' ``Metric`` keyword arguments
            (``dist_sync_on_step``, ``sync_on_compute``, ``process_group``...).

    States (float64 sums, reduced by ``sum`` across processes): ``sym_sum``,
    ``forward_sum``, ``backward_sum``, ``n_scored`` (items with a number), ``n_items`` and
    ``n_empty``. Items scored NaN (``empty="nan"``) are left out of the means, as in
    :func:`cec.score`.
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False
    plot_lower_bound = -1.0
    plot_upper_bound = 1.0

    sym_sum: torch.Tensor
    forward_sum: torch.Tensor
    backward_sum: torch.Tensor
    n_scored: torch.Tensor
    n_items: torch.Tensor
    n_empty: torch.Tensor

    def __init__(self, scorer: Any = None, **options: Any) -> None:
        from cec.integrations._common import cec_options

        names = set(cec_options())
        cec_opts = {k: options.pop(k) for k in list(options) if k in names}
        super().__init__(**options)
        if scorer is not None and cec_opts:
            raise TypeError("CECScore: give either scorer or CEC options, not both")
        self.cec_options = check_options(cec_opts, "CECScore")
        if scorer is None:
            self._shared = _Shared(build_scorer(self.cec_options, where="CECScore"))
        else:
            self._shared = _Shared(scorer, from_options=False)
        self._signature = str(self._scorer.signature.with_(nrefs="*"))
        self._nrefs: set[int] = set()
        for name in ("sym_sum", "forward_sum", "backward_sum"):
            self.add_state(name, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        for name in ("n_scored", "n_items", "n_empty"):
            self.add_state(name, torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    @property
    def _scorer(self) -> Any:
        if self._shared.scorer is None:  # unpickled in another process
            self._shared.scorer = build_scorer(self.cec_options, where="CECScore")
        return self._shared.scorer

    def update(self, preds: Any, target: Any) -> None:  # type: ignore[override]
        """Score a batch: ``preds`` generated texts, ``target`` a reference or list per text.

        Raises:
            TypeError, ValueError: As :func:`cec.score` (bad inputs, mismatched lengths).
        """
        from cec.scorer import validate_pairs

        gens, refs, _ = validate_pairs(preds, target)
        if not gens:
            return
        result = self._scorer.score(gens, refs)
        sym = torch.as_tensor(result.sym, dtype=torch.float64)
        fwd = torch.as_tensor(result.forward, dtype=torch.float64)
        bwd = torch.as_tensor(result.backward, dtype=torch.float64)
        ok = ~torch.isnan(sym)
        self.sym_sum += sym[ok].sum().to(self.sym_sum.device)
        self.forward_sum += fwd[ok].sum().to(self.forward_sum.device)
        self.backward_sum += bwd[ok].sum().to(self.backward_sum.device)
        self.n_scored += int(ok.sum())
        self.n_items += len(gens)
        self.n_empty += int(result.n_empty)
        self._nrefs.update(len(r) for r in refs)

    def _mean(self, total: torch.Tensor) -> torch.Tensor:
        if int(self.n_scored) == 0:
            return torch.tensor(math.nan, dtype=torch.float64, device=total.device)
        return total / self.n_scored

    def compute(self) -> torch.Tensor:
        """Corpus CEC (mean over items with a score; NaN when none has), a 0-d float64 tensor."""
        return self._mean(self.sym_sum)

    def compute_all(self) -> dict[str, torch.Tensor]:
        """``{"cec", "cec_forward", "cec_backward", "n_empty"}`` over all items (synced)."""
        with self.sync_context(should_sync=self._should_sync()):
            return {
                "cec": self._mean(self.sym_sum),
                "cec_forward": self._mean(self.forward_sum),
                "cec_backward": self._mean(self.backward_sum),
                "n_empty": self.n_empty.clone(),
            }

    def _should_sync(self) -> bool:
        return (
            bool(self.sync_on_compute)
            and torch.distributed.is_available()
            and (torch.distributed.is_initialized())
        )

    @property
    def signature(self) -> str:
        """The scorer's signature; ``nrefs`` from this process's updates (``var`` if mixed)."""
        nrefs = "var" if len(self._nrefs) > 1 else str(next(iter(self._nrefs), 1))
        return self._signature.replace("nrefs:*", f"nrefs:{nrefs}")

    def reset(self) -> None:
        super().reset()
        self._nrefs = set()
