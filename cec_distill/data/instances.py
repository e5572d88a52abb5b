"""The study's instance type and instance JSONL files.

One :class:`Instance` carries every dataset of the study (Climate-FEVER, e-SNLI; see
:mod:`cec_distill.data`); :func:`write_instances` and :func:`read_instances` keep them in files.

Examples:
    >>> ev = (Evidence("CO2 traps heat.", "SUPPORTS", "Greenhouse effect"),)
    >>> Instance("climate-fever:1", "climate-fever", "The planet warms.", ev, "SUPPORTS").premise
    'CO2 traps heat.'
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cec._files import atomic_target, durable_replace

__all__ = [
    "Evidence",
    "Instance",
    "CLIMATE_FEVER",
    "ESNLI",
    "SPLITS",
    "write_instances",
    "read_instances",
]

CLIMATE_FEVER = "climate-fever"
ESNLI = "esnli"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class Evidence:
    """One evidence sentence.

    Attributes:
        text: The sentence.
        label: SUPPORTS / REFUTES / NOT_ENOUGH_INFO (Climate-FEVER); ``"premise"`` for e-SNLI.
        article: Source article title (Climate-FEVER), ``""`` otherwise.
    """

    text: str
    label: str
    article: str = ""

    def to_dict(self) -> dict:
        """Plain-JSON form."""
        return {"text": self.text, "label": self.label, "article": self.article}

    @classmethod
    def from_dict(cls, d: dict) -> Evidence:
        """Inverse of :meth:`to_dict`."""
        return cls(text=str(d["text"]), label=str(d["label"]), article=str(d.get("article", "")))


@dataclass(frozen=True)
class Instance:
    """One claim-evidence (or hypothesis-premise) item of the study.

    Attributes:
        id: Unique, stable id (``"climate-fever:<claim_id>"``, ``"esnli:<split>:<idx>"``).
        dataset: ``"climate-fever"`` or ``"esnli"``.
        claim: The claim (Climate-FEVER) or the hypothesis (e-SNLI).
        evidence: Five evidence sentences (Climate-FEVER) or the premise (e-SNLI).
        label: Claim label / NLI label.
        explanations: Human reference explanations (e-SNLI); empty for Climate-FEVER.
    """

    id: str
    dataset: str
    claim: str
    evidence: tuple[Evidence, ...]
    label: str
    explanations: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Instance id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.claim, str):
            raise TypeError(f"Instance {self.id}: claim must be a string, got {type(self.claim)}")
        # Accept lists from callers but store tuples, so instances stay hashable and frozen.
        if not isinstance(self.evidence, tuple):
            object.__setattr__(self, "evidence", tuple(self.evidence))
        if not isinstance(self.explanations, tuple):
            object.__setattr__(self, "explanations", tuple(self.explanations))
        for ev in self.evidence:
            if not isinstance(ev, Evidence):
                raise TypeError(f"Instance {self.id}: evidence items must be Evidence, got {ev!r}")

    @property
    def premise(self) -> str:
        """The evidence sentences joined by spaces (the premise, for e-SNLI)."""
        return " ".join(ev.text for ev in self.evidence)

    def to_dict(self) -> dict:
        """Plain-JSON form (one line of an instances JSONL file)."""
        return {
            "id": self.id,
            "dataset": self.dataset,
            "claim": self.claim,
            "evidence": [ev.to_dict() for ev in self.evidence],
            "label": self.label,
            "explanations": list(self.explanations),
        }

    @classmethod
    def from_dict(cls, d: dict) -> Instance:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(d["id"]),
            dataset=str(d["dataset"]),
            claim=str(d["claim"]),
            evidence=tuple(Evidence.from_dict(e) for e in d.get("evidence", ())),
            label=str(d["label"]),
            explanations=tuple(str(x) for x in d.get("explanations", ())),
        )


def _iter_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ValueError(
                    f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}"
                )
            yield lineno, obj


def _check_file(path: str | os.PathLike, arg: str = "path") -> Path:
    if path is None:
        raise TypeError(f"{arg} must be a file path, got None")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{arg}: no such file: {p}")
    return p


def _check_unique(instances: Sequence[Instance], where: object) -> None:
    seen: set[str] = set()
    for inst in instances:
        if inst.id in seen:
            raise ValueError(f"{where}: duplicate instance id {inst.id!r}")
        seen.add(inst.id)


def write_instances(instances: Iterable[Instance], path: str | os.PathLike) -> Path:
    """Write instances as JSONL, atomically (a temporary file renamed over ``path``)."""
    p = Path(path)
    tmp = atomic_target(p)
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for inst in instances:
                fh.write(json.dumps(inst.to_dict(), ensure_ascii=False) + "\n")
        durable_replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return p


def read_instances(path: str | os.PathLike) -> list[Instance]:
    """Read a JSONL written by :func:`write_instances`."""
    p = _check_file(path, "path")
    out = []
    for lineno, obj in _iter_jsonl(p):
        try:
            out.append(Instance.from_dict(obj))
        except KeyError as exc:
            raise ValueError(f"{p}:{lineno}: instance record lacks field {exc.args[0]!r}") from None
    _check_unique(out, p)
    return out
