"""CEC as an inspect-ai scorer: :func:`cec_scorer`.

Use it in a task file like any inspect scorer; the score's value is the item's CEC (its
``mean`` and ``stderr`` are the task's metrics), and its metadata holds ``forward``,
``backward``, ``best_ref`` and the ``signature``::

    from inspect_ai import Task, task
    from cec.integrations.inspect import cec_scorer

    @task
    def explain():
        return Task(dataset=..., solver=generate(), scorer=cec_scorer(splitter="cec"))

The target may hold several references (``Sample(target=[...])``): the best one counts, as in
:func:`cec.score`. The scorer is built when the task is created (so a bad option fails before
any generation) and shared by every task in the process that uses the same options.
"""

from __future__ import annotations

from typing import Any

from inspect_ai.scorer import Score, Scorer, Target, mean, scorer, stderr
from inspect_ai.solver import TaskState

from cec.integrations._common import build_scorer

__all__ = ["cec_scorer"]


@scorer(metrics=[mean(), stderr()], name="cec")
def cec_scorer(**options: Any) -> Scorer:
    """An inspect scorer giving each sample's CEC against its target reference(s).

    Args:
        **options: :class:`cec.CEC` options (``model``, ``splitter``, ``empty``,
            ``precision``, ``directional``...); keep them plain values (strings, numbers,
            booleans) so inspect can record them in the log.

    Returns:
        The scorer: ``Score(value=cec, answer=completion, metadata={"forward", "backward",
        "best_ref", "signature"})``.

    Raises:
        TypeError, ValueError: An unknown option or a bad value (when the task is created).
    """
    cec = build_scorer(options, where="cec_scorer")

    async def score(state: TaskState, target: Target) -> Score:
        completion = state.output.completion if state.output is not None else ""
        refs = list(target.target)
        if not refs:
            raise ValueError(f"target: sample {state.sample_id!r} has no reference text")
        result = cec.score([completion], [refs])
        item = result[0]
        return Score(
            value=item.sym,
            answer=completion,
            metadata={
                "forward": item.forward,
                "backward": item.backward,
                "best_ref": item.best_ref,
                "empty": item.empty,
                "signature": str(result.signature),
            },
        )

    return score
