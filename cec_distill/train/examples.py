"""Training data: each instance's target explanation, and tokenized examples with the prompt masked."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from cec_distill.config import TrainConfig
from cec_distill.data import Instance
from cec_distill.formatting import Example, encode_example

__all__ = ["targets_for", "build_examples"]

log = logging.getLogger("cec_distill.train")


def targets_for(
    instances: Sequence[Instance],
    labels_file: str | None,
    reference_index: int = 0,
    truncated: str = "keep",
) -> dict[str, str]:
    """The target explanation of each instance: the teacher's label, else a human explanation.

    Instances without a target are left out (and counted in the log). Teacher labels cut by the
    token limit are kept with a warning, dropped or refused, as ``truncated`` says
    (:func:`cec_distill.data.read_teacher_labels`).
    """
    teacher: dict[str, str] = {}
    if labels_file:
        from cec_distill.data import read_teacher_labels

        labels = read_teacher_labels(
            labels_file, truncated=truncated, ids=[x.id for x in instances]
        )
        teacher = labels.explanations
        if labels.truncated:
            log.warning(
                "%d of %d teacher labels were cut by the token limit (finish_reason length): %s",
                len(labels.truncated),
                len(teacher) + len(labels.dropped),
                "dropped" if labels.dropped else "kept (truncated_labels: drop leaves them out)",
            )
    out = {}
    for inst in instances:
        if inst.id in teacher:
            out[inst.id] = teacher[inst.id]
        elif not labels_file and len(inst.explanations) > reference_index:
            out[inst.id] = inst.explanations[reference_index]
    missing = len(instances) - len(out)
    if missing:
        log.warning(
            "%d of %d instances have no target explanation and are skipped", missing, len(instances)
        )
    return out


def build_examples(
    instances: Sequence[Instance],
    targets: dict[str, str],
    tokenizer: Any,
    cfg: TrainConfig,
    chat: bool,
    max_length: int,
) -> tuple[list[Example], list[str], int, int]:
    """Tokenized examples, their target texts, and the counts dropped (too long) and truncated."""
    examples, texts, dropped, truncated = [], [], 0, 0
    for inst in instances:
        if inst.id not in targets:
            continue
        ex = encode_example(
            inst, targets[inst.id], tokenizer, cfg.format, chat=chat, max_length=max_length
        )
        if ex is None:
            dropped += 1
            continue
        truncated += ex.truncated
        examples.append(ex)
        texts.append(targets[inst.id])
    return examples, texts, dropped, truncated


def _model_max_length(model: Any, tokenizer: Any) -> int:
    n = getattr(model.config, "max_position_embeddings", None) or 2048
    t = getattr(tokenizer, "model_max_length", None)
    if isinstance(t, int) and 0 < t < 10**6:
        n = min(n, t)
    return int(n)
