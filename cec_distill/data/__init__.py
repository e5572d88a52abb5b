"""Datasets -> :class:`Instance` objects, a deterministic stratified split, instance JSONL files.

One instance type carries both datasets of the study:

* Climate-FEVER: a claim, its five Wikipedia evidence sentences (each with its label and source
  article) and the claim label (SUPPORTS / REFUTES / NOT_ENOUGH_INFO / DISPUTED).
* e-SNLI: the hypothesis plays the claim, the premise is the single evidence sentence (label
  ``"premise"``), the NLI label is the label and the human explanations ride along.

Examples:
    >>> ev = (Evidence("CO2 traps heat.", "SUPPORTS", "Greenhouse effect"),)
    >>> inst = Instance("climate-fever:1", "climate-fever", "The planet warms.", ev, "SUPPORTS")
    >>> Instance.from_dict(inst.to_dict()) == inst
    True
    >>> parts = split([inst] * 1, seed=0)
    >>> sorted(parts)
    ['test', 'train', 'validation']
"""

from __future__ import annotations

from cec_distill.data.datasets import load_climate_fever, load_esnli, load_instances
from cec_distill.data.instances import (
    CLIMATE_FEVER,
    ESNLI,
    SPLITS,
    Evidence,
    Instance,
    read_instances,
    write_instances,
)
from cec_distill.data.labels import TRUNCATED_LABELS, TeacherLabels, read_teacher_labels
from cec_distill.data.splitting import split

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
