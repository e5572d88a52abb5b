"""Datasets -> :class:`Instance` objects, a deterministic stratified split, instance JSONL files.

One instance type carries both datasets of the study:

* Climate-FEVER: a claim, its five Wikipedia evidence sentences (each with its label and source
  article) and the claim label (SUPPORTS / REFUTES / NOT_ENOUGH_INFO / DISPUTED).
* e-SNLI: the hypothesis plays the claim, the premise is the single evidence sentence (label
  ``"premise"``), the NLI label is the label and the human explanations ride along.

Example:
    >>> ev = (Evidence("CO2 traps heat.", "SUPPORTS", "Greenhouse effect"),)
    >>> inst = Instance("climate-fever:1", "climate-fever", "The planet warms.", ev, "SUPPORTS")
    >>> Instance.from_dict(inst.to_dict()) == inst
    True
    >>> parts = split([inst] * 1, seed=0)
    >>> sorted(parts)
    ['test', 'train', 'validation']
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Evidence",
    "Instance",
    "CLIMATE_FEVER",
    "ESNLI",
    "SPLITS",
    "load_climate_fever",
    "load_esnli",
    "load_instances",
    "split",
    "write_instances",
    "read_instances",
    "TRUNCATED_LABELS",
    "TeacherLabels",
    "read_teacher_labels",
]

CLIMATE_FEVER = "climate-fever"
ESNLI = "esnli"
SPLITS = ("train", "validation", "test")

# Hugging Face `climate_fever` stores labels as class indices.
_HF_CLAIM_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO", "DISPUTED")
_HF_EVIDENCE_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO")
_ESNLI_LABELS = ("entailment", "neutral", "contradiction")


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


# ----------------------------------------------------------------------------- readers


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


def _label_name(value: object, names: Sequence[str], where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < len(names):
            return names[value]
        raise ValueError(f"{where}: label index {value} out of range for {list(names)}")
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where}: missing or non-string label {value!r}")
    return value


def _climate_fever_record(obj: dict, where: str) -> Instance:
    try:
        claim_id, claim = obj["claim_id"], obj["claim"]
        evidences = obj["evidences"]
    except KeyError as exc:
        raise ValueError(f"{where}: Climate-FEVER record lacks field {exc.args[0]!r}") from None
    ev = []
    for i, e in enumerate(evidences):
        try:
            ev.append(
                Evidence(
                    text=str(e["evidence"]),
                    label=_label_name(
                        e["evidence_label"], _HF_EVIDENCE_LABELS, f"{where} evidence {i}"
                    ),
                    article=str(e.get("article") or ""),
                )
            )
        except KeyError as exc:
            raise ValueError(f"{where}: evidence {i} lacks field {exc.args[0]!r}") from None
    return Instance(
        id=f"{CLIMATE_FEVER}:{claim_id}",
        dataset=CLIMATE_FEVER,
        claim=str(claim),
        evidence=tuple(ev),
        label=_label_name(obj.get("claim_label"), _HF_CLAIM_LABELS, where),
    )


def load_climate_fever(
    path: str | os.PathLike | None = None, *, hf: bool = False
) -> list[Instance]:
    """Load Climate-FEVER into instances, in file order.

    Args:
        path: The dataset's JSONL (``climate-fever.jsonl`` from tdiggelm/climate-fever-dataset);
            a directory holding it is accepted too.
        hf: Load the Hugging Face ``climate_fever`` dataset instead (needs the optional
            ``datasets`` package and network, or a warm Hugging Face cache).

    Returns:
        One :class:`Instance` per claim, id ``"climate-fever:<claim_id>"``.

    Raises:
        ValueError: a malformed record (the message names file and line) or duplicate ids.
        ImportError: ``hf=True`` without ``datasets`` installed.
    """
    if hf:
        if path is not None:
            raise ValueError("load_climate_fever: give either path or hf=True, not both")
        return _load_climate_fever_hf()
    p = Path(path) if path is not None else None
    if p is not None and p.is_dir():
        p = p / "climate-fever.jsonl"
    p = _check_file(p, "path")
    out = [_climate_fever_record(obj, f"{p}:{n}") for n, obj in _iter_jsonl(p)]
    _check_unique(out, p)
    return out


def _load_climate_fever_hf() -> list[Instance]:
    try:
        import datasets  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError(
            "load_climate_fever(hf=True) needs the optional 'datasets' package "
            "(pip install datasets) and network access; or pass the path of climate-fever.jsonl"
        ) from None
    try:
        ds = datasets.load_dataset("climate_fever", split="test")
    except Exception as exc:  # network, hub or cache errors: say what to do instead
        raise RuntimeError(
            f"could not load the Hugging Face 'climate_fever' dataset ({type(exc).__name__}: {exc}); "
            "without network, pass the path of climate-fever.jsonl"
        ) from exc
    out = [_climate_fever_record(dict(row), f"climate_fever[{i}]") for i, row in enumerate(ds)]
    _check_unique(out, "climate_fever")
    return out


def load_esnli(path: str | os.PathLike, *, id_prefix: str | None = None) -> list[Instance]:
    """Load e-SNLI items into instances.

    Accepts the JSONL form (``premise``, ``hypothesis``, ``label``, ``explanations``, optional
    ``idx``) and the original CSV form (``pairID``, ``gold_label``, ``Sentence1``, ``Sentence2``,
    ``Explanation_1``...).

    Args:
        path: The file.
        id_prefix: Prefix of the ids; default ``"esnli:<split>"`` where split is ``dev``,
            ``test`` or ``train`` when the file name says so, else ``"esnli"``.

    Returns:
        Instances whose claim is the hypothesis and whose single evidence is the premise.
    """
    p = _check_file(path, "path")
    if id_prefix is None:
        stem = p.name.lower()
        part = next((s for s in ("dev", "test", "train") if s in stem), None)
        id_prefix = f"{ESNLI}:{part}" if part else ESNLI
    out: list[Instance] = []
    if p.suffix.lower() == ".csv":
        with p.open(encoding="utf-8", newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh)):
                where = f"{p}:{i + 2}"
                try:
                    expl = [row[k] for k in sorted(row) if k.startswith("Explanation_") and row[k]]
                    out.append(
                        _esnli_instance(
                            f"{id_prefix}:{row.get('pairID') or i}",
                            row["Sentence1"],
                            row["Sentence2"],
                            row["gold_label"],
                            expl,
                        )
                    )
                except KeyError as exc:
                    raise ValueError(
                        f"{where}: e-SNLI CSV row lacks column {exc.args[0]!r}"
                    ) from None
    else:
        for n, (lineno, obj) in enumerate(_iter_jsonl(p)):
            try:
                out.append(
                    _esnli_instance(
                        f"{id_prefix}:{obj.get('idx', n)}",
                        obj["premise"],
                        obj["hypothesis"],
                        _label_name(obj["label"], _ESNLI_LABELS, f"{p}:{lineno}"),
                        obj.get("explanations") or (),
                    )
                )
            except KeyError as exc:
                raise ValueError(
                    f"{p}:{lineno}: e-SNLI record lacks field {exc.args[0]!r}"
                ) from None
    _check_unique(out, p)
    return out


def _esnli_instance(id_: str, premise, hypothesis, label, explanations) -> Instance:
    return Instance(
        id=id_,
        dataset=ESNLI,
        claim=str(hypothesis).strip(),
        evidence=(Evidence(text=str(premise).strip(), label="premise"),),
        label=str(label),
        explanations=tuple(str(e).strip() for e in explanations),
    )


def _check_unique(instances: Sequence[Instance], where: object) -> None:
    seen: set[str] = set()
    for inst in instances:
        if inst.id in seen:
            raise ValueError(f"{where}: duplicate instance id {inst.id!r}")
        seen.add(inst.id)


def load_instances(path_or_name: str | os.PathLike) -> list[Instance]:
    """Load instances from whatever the user points at.

    * a Climate-FEVER JSONL (records with ``claim`` and ``evidences``), or a directory holding
      ``climate-fever.jsonl``;
    * an e-SNLI JSONL (``premise``/``hypothesis``) or CSV (``Sentence1``/``Sentence2``);
    * an instances JSONL written by :func:`write_instances` (e.g. one split);
    * the name ``"climate-fever"``/``"climate_fever"`` (Hugging Face, needs ``datasets``).

    Raises:
        FileNotFoundError: a path that does not exist (and is not a known dataset name).
        ValueError: a file whose first record matches none of the formats above.
    """
    if path_or_name is None:
        raise TypeError("path_or_name must be a path or a dataset name, got None")
    p = Path(path_or_name)
    if not p.exists():
        if str(path_or_name).lower() in ("climate-fever", "climate_fever", "hf:climate_fever"):
            return load_climate_fever(hf=True)
        raise FileNotFoundError(f"--data: no such file or directory: {p}")
    if p.is_dir():
        if (p / "climate-fever.jsonl").is_file():
            return load_climate_fever(p)
        files = sorted(p.glob("*.jsonl"))
        if not files:
            raise FileNotFoundError(f"--data: directory {p} holds no .jsonl file")
        out: list[Instance] = []
        for f in files:
            out.extend(load_instances(f))
        _check_unique(out, p)
        return out
    if p.suffix.lower() == ".csv":
        return load_esnli(p)
    first = next(iter(_iter_jsonl(p)), None)
    if first is None:
        raise ValueError(f"--data: {p} holds no records")
    rec = first[1]
    if "evidences" in rec and "claim" in rec:
        return load_climate_fever(p)
    if "premise" in rec and "hypothesis" in rec:
        return load_esnli(p)
    if {"id", "dataset", "claim", "evidence", "label"} <= rec.keys():
        return read_instances(p)
    raise ValueError(
        f"--data: cannot tell the format of {p}: the first record has fields {sorted(rec)}; "
        "expected Climate-FEVER (claim, evidences), e-SNLI (premise, hypothesis) or instances"
    )


# ----------------------------------------------------------------------------- split


def _rank(seed: int, id_: str) -> str:
    return hashlib.sha256(f"{seed}\x00{id_}".encode()).hexdigest()


def split(
    instances: Sequence[Instance],
    seed: int = 0,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    stratify: bool = True,
) -> dict[str, list[Instance]]:
    """Deterministic, seeded, optionally label-stratified train/validation/test split.

    The assignment depends only on the ids, labels and seed, never on the order of the input.
    Within each label group (or the whole set when
    ``stratify=False``), instances are ordered by ``sha256(seed, id)``; the first
    ``round(n * f_train)`` go to train, the next ``round(n * f_val)`` to validation, the rest
    to test. Each returned list keeps the input order.

    Args:
        instances: Instances with unique ids.
        seed: The seed.
        fractions: (train, validation, test) fractions, non-negative, summing to 1.
        stratify: Split each label separately so every split keeps the label proportions.

    Returns:
        ``{"train": [...], "validation": [...], "test": [...]}``.
    """
    if isinstance(instances, (str, bytes)) or not isinstance(instances, Sequence):
        raise TypeError("instances must be a sequence of Instance")
    fr = tuple(float(f) for f in fractions)
    if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions!r}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    _check_unique(instances, "instances")
    groups: dict[str, list[Instance]] = {}
    for inst in instances:
        if not isinstance(inst, Instance):
            raise TypeError(f"instances must hold Instance objects, got {type(inst).__name__}")
        groups.setdefault(inst.label if stratify else "", []).append(inst)
    where: dict[str, str] = {}
    for _, members in sorted(groups.items()):
        ordered = sorted(members, key=lambda x: _rank(seed, x.id))
        n = len(ordered)
        n_train = round(n * fr[0])
        n_val = min(n - n_train, round(n * fr[1]))
        for i, inst in enumerate(ordered):
            where[inst.id] = (
                SPLITS[0] if i < n_train else SPLITS[1] if i < n_train + n_val else SPLITS[2]
            )
    out: dict[str, list[Instance]] = {s: [] for s in SPLITS}
    for inst in instances:
        out[where[inst.id]].append(inst)
    return out


# ----------------------------------------------------------------------------- instance files


def write_instances(instances: Iterable[Instance], path: str | os.PathLike) -> Path:
    """Write instances as JSONL, atomically (a temporary file renamed over ``path``)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for inst in instances:
                fh.write(json.dumps(inst.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
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


# ----------------------------------------------------------------------------- teacher labels

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

    Example:
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
    from cec_distill.store import JsonlStore

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
