"""Reading teacher labels (``cec-distill label --out``); labels the token limit cut are reported.

The caller chooses whether a cut label is kept, dropped or an error (:data:`TRUNCATED_LABELS`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

from cec_distill.data.instances import _check_file
from cec_distill.store import JsonlStore

__all__ = ["TRUNCATED_LABELS", "TeacherLabels", "read_teacher_labels"]

#: What :func:`read_teacher_labels` does with a label the token limit cut.
TRUNCATED_LABELS = ("keep", "drop", "error")


@dataclass(frozen=True)
class TeacherLabels:
    """Teacher explanations read from a labels JSONL (``cec-distill label --out``).

    Attributes:
        explanations: Id -> explanation, for every id whose latest record is a label (cut ones
            left out when ``truncated="drop"``).
        truncated: Ids whose label was cut by the token limit (``"truncated": true`` or
            ``finish_reason: "length"``), whether kept or dropped.
        dropped: Ids left out because they were cut (``truncated="drop"``).
        failed: Ids whose latest record is an error (no label).
    """

    explanations: dict[str, str]
    truncated: frozenset[str]
    dropped: frozenset[str]
    failed: frozenset[str]


def _is_cut(record: dict) -> bool:
    return bool(record.get("truncated")) or record.get("finish_reason") == "length"


def read_teacher_labels(
    path: str | os.PathLike, *, truncated: str = "keep", ids: Iterable[str] | None = None
) -> TeacherLabels:
    """Read teacher labels, reporting (and optionally dropping) those cut by the token limit.

    A label cut by the teacher's token limit ends mid-sentence; as a training target it teaches
    the student to stop mid-sentence, as a reference it lowers every score. Records written
    before the ``truncated`` flag existed are recognised by ``finish_reason: "length"``.

    Args:
        path: The labels JSONL.
        truncated: ``"keep"`` cut labels (the caller should report ``result.truncated``),
            ``"drop"`` them, or ``"error"``: raise a ValueError naming how many and which.
        ids: Only consider these ids (e.g. one split); None: every id in the file.

    Returns:
        A :class:`TeacherLabels`.

    Examples:
        >>> import tempfile, json, os
        >>> path = os.path.join(tempfile.mkdtemp(), "labels.jsonl")
        >>> with open(path, "w") as fh:
        ...     for rec in ({"id": "a", "explanation": "CO2 traps heat.", "error": None},
        ...                 {"id": "b", "explanation": "Because the", "finish_reason": "length",
        ...                  "error": None}):
        ...         _ = fh.write(json.dumps(rec) + "\\n")
        >>> labels = read_teacher_labels(path, truncated="drop")
        >>> sorted(labels.explanations), sorted(labels.dropped)
        (['a'], ['b'])
    """
    if truncated not in TRUNCATED_LABELS:
        raise ValueError(
            f"truncated must be one of {', '.join(TRUNCATED_LABELS)}, got {truncated!r}"
        )
    latest = JsonlStore.open(_check_file(path, "labels file"), mode="r").latest()
    wanted = None if ids is None else set(ids)
    explanations: dict[str, str] = {}
    cut: set[str] = set()
    failed: set[str] = set()
    for id_, rec in latest.items():
        if wanted is not None and id_ not in wanted:
            continue
        expl = rec.get("explanation")
        if rec.get("error") or not isinstance(expl, str) or not expl.strip():
            failed.add(id_)
            continue
        if _is_cut(rec):
            cut.add(id_)
            if truncated == "drop":
                continue
        explanations[id_] = expl.strip()
    if cut and truncated == "error":
        some = ", ".join(sorted(cut)[:5])
        raise ValueError(
            f"{path}: {len(cut)} teacher label(s) were cut by the token limit "
            f"(finish_reason length), e.g. {some}; relabel them with a larger --max-tokens, or "
            "set truncated_labels to keep or drop"
        )
    dropped = frozenset(cut) if truncated == "drop" else frozenset()
    return TeacherLabels(explanations, frozenset(cut), dropped, frozenset(failed))
