"""Dataset readers -> instances: Climate-FEVER (JSONL, Hugging Face), e-SNLI (JSONL, CSV).

:func:`load_instances` tells the format of a file or folder and calls the right reader.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

from cec_distill.data.instances import (
    CLIMATE_FEVER,
    ESNLI,
    Evidence,
    Instance,
    _check_file,
    _check_unique,
    _iter_jsonl,
    read_instances,
)

__all__ = ["load_climate_fever", "load_esnli", "load_instances"]

# Hugging Face `climate_fever` stores labels as class indices.
_HF_CLAIM_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO", "DISPUTED")
_HF_EVIDENCE_LABELS = ("SUPPORTS", "REFUTES", "NOT_ENOUGH_INFO")
_ESNLI_LABELS = ("entailment", "neutral", "contradiction")


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
