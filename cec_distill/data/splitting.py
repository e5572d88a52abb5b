"""A deterministic, seeded, label-stratified train/validation/test split of instances.

Examples:
    >>> from cec_distill.data.instances import Evidence, Instance
    >>> ev = (Evidence("CO2 traps heat.", "SUPPORTS", "Greenhouse effect"),)
    >>> items = [Instance(f"x:{i}", "climate-fever", "The planet warms.", ev, "SUPPORTS")
    ...          for i in range(10)]
    >>> {name: len(part) for name, part in split(items, seed=0).items()}
    {'train': 8, 'validation': 1, 'test': 1}
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cec_distill.data.instances import SPLITS, Instance, _check_unique

__all__ = ["split"]


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
