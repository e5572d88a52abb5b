"""Baseline rescaling (opt-in): map a score ``x`` to ``(x - b) / (1 - b)``.

Raw CEC of two *unrelated* explanations is far above 0 (sentence embeddings of any two English
sentences have a positive cosine), so raw scores crowd into the top of [0, 1]. As in
bert_score's ``rescale_with_baseline``, a baseline ``b`` (the mean CEC of unrelated explanation
pairs from a reference corpus, for one embedding model) moves "unrelated" to about 0 and keeps
"identical" at 1. The map is linear, so rankings, correlations and significance tests are
unchanged; only the numbers are easier to read.

- Off by default (Eq. 2 stays the default). ``cec.score(..., rescale=True)`` uses the baseline
  shipped for the default model; ``rescale="my-baseline.json"`` a baseline made with
  ``cec baseline CORPUS --model PATH -o my-baseline.json``.
- One ``b`` (of ``sym``) maps ``forward``, ``backward`` and ``sym`` alike, so ``sym`` stays the
  mean of the two. Pairs scored by the empty policy keep its value (0 or NaN), unrescaled.
- The signature carries ``rescale:<hash>`` (the baseline's short hash): rescaled numbers compare
  only with numbers of the same signature, that is, the same model *and* the same baseline.
- Rescaled scores can be negative (a pair less alike than the average unrelated pair).

Examples:
    >>> b = Baseline(model="m", weights="", value=0.25, forward=0.25, backward=0.25, n_pairs=4,
    ...              corpus="toy", splitter="cec-1", seed=0)
    >>> b.apply(1.0), b.apply(0.25), round(b.apply(0.625), 3)
    (1.0, 0.0, 0.5)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "B_RANGE",
    "Baseline",
    "check_baseline",
    "compute_baseline",
    "default_baseline_path",
    "load_baseline",
    "resolve_baseline",
    "unrelated_pairs",
]

FORMAT = "cec-baseline-1"
#: Where ``b`` may lie (docs/rescaling.md): the mean best-match cosine of unrelated texts is
#: about 0 or above (N unit vectors have a mean pairwise cosine >= -1/(N-1), and CEC takes each
#: sentence's best match), and above 0.9 rescaling multiplies every difference (and the float
#: noise) by more than 10: such a model cannot tell unrelated texts from identical ones.
B_RANGE = (-0.1, 0.9)
_FIELDS = (
    "model", "weights", "value", "forward", "backward", "n_pairs", "corpus", "splitter", "seed",
    "precision",
)  # fmt: skip
_SHIPPED = Path(__file__).with_name("baselines")


@dataclass(frozen=True)
class Baseline:
    """The mean CEC of unrelated explanation pairs for one embedding model.

    Attributes:
        model: Model name, as in the signature.
        weights: The model identity hash (as in the signature, `model:NAME@HASH`); empty for
            callables.
        value: ``b``, the mean ``sym`` of the unrelated pairs.
        forward: Mean ``forward`` of the same pairs (for information).
        backward: Mean ``backward`` of the same pairs (for information).
        n_pairs: Number of unrelated pairs averaged.
        corpus: Where the explanations came from (a name or file name).
        splitter: Splitter label used to compute it.
        seed: Seed of the pairing.
        precision: Encoder precision used to compute it.
    """

    model: str
    weights: str
    value: float
    forward: float
    backward: float
    n_pairs: int
    corpus: str
    splitter: str
    seed: int
    precision: str = "fp32"

    def __post_init__(self) -> None:
        for name in ("model", "weights", "corpus", "splitter", "precision"):
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"baseline {name} must be a string, got {getattr(self, name)!r}")
        for name in ("model", "splitter", "precision"):
            if not getattr(self, name).strip():
                raise ValueError(f"baseline {name} must not be empty")
        for name in ("n_pairs", "seed"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise ValueError(f"baseline {name} must be an integer, got {v!r}")
        if self.n_pairs < 2:
            raise ValueError(f"baseline n_pairs must be at least 2, got {self.n_pairs}")
        for name in ("value", "forward", "backward"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
                raise ValueError(f"baseline {name} must be a finite number, got {v!r}")
            if not -1.0 <= v <= 1.0:
                raise ValueError(f"baseline {name} must lie in [-1, 1], got {v!r}")
        lo, hi = B_RANGE
        if not lo <= self.value <= hi:
            raise ValueError(
                f"baseline value must lie in [{lo}, {hi}] (where the mean CEC of unrelated texts "
                f"can lie, docs/rescaling.md), got {self.value!r}"
            )
        if abs(self.value - (self.forward + self.backward) / 2) > 1e-5:
            raise ValueError(
                f"baseline value {self.value!r} is not the mean of forward {self.forward!r} and "
                f"backward {self.backward!r} (sym = (forward + backward) / 2)"
            )

    @property
    def hash(self) -> str:
        """Short hash of everything that defines the baseline (goes into the signature)."""
        return _content_hash(asdict(self))

    def apply(self, x: Any) -> Any:
        """``(x - b) / (1 - b)``, elementwise; NaN stays NaN."""
        b = self.value
        if isinstance(x, np.ndarray):
            return (x - b) / (1.0 - b)
        return (float(x) - b) / (1.0 - b)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self), "hash": self.hash}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the baseline as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def load_baseline(path: str | os.PathLike[str]) -> Baseline:
    """Read a baseline JSON written by :meth:`Baseline.save` (or ``cec baseline``).

    Raises:
        ValueError: Missing file, not a baseline, or a hash that does not match its content.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"rescale: baseline file {str(p)!r} does not exist")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"rescale: {str(p)!r} is not a baseline JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"rescale: {str(p)!r} is not a baseline file (format {FORMAT!r})")
    missing = [k for k in (*_FIELDS, "hash") if k not in data]
    if missing:
        raise ValueError(
            f"rescale: {str(p)!r} lacks the field(s) {', '.join(missing)}; make the baseline "
            "again with `cec baseline`"
        )
    unknown = sorted(set(data) - {*_FIELDS, "hash", "format"})
    if unknown:
        raise ValueError(f"rescale: {str(p)!r} has unexpected field(s) {', '.join(unknown)}")
    stored = data.pop("hash")
    data.pop("format")
    if stored != _content_hash(data):
        raise ValueError(
            f"rescale: {str(p)!r} was edited (hash {stored!r} != {_content_hash(data)})"
        )
    try:
        return Baseline(**data)
    except ValueError as exc:
        raise ValueError(f"rescale: {str(p)!r}: {exc}") from None


def _content_hash(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:8]


def default_baseline_path(model: str) -> Path:
    """Where the shipped baseline of a model would be."""
    return _SHIPPED / f"{model}.json"


def resolve_baseline(rescale: Any, encoder: Any) -> Baseline | None:
    """The baseline for the ``rescale`` option of :class:`cec.CEC`, checked against the encoder.

    Args:
        rescale: ``False``/``None`` (off), ``True`` (the shipped baseline of the encoder's
            model), a path to a baseline JSON, or a :class:`Baseline`.
        encoder: The scorer's :class:`~cec.encode.Encoder` (its name, weights hash and precision).

    Raises:
        TypeError: ``rescale`` has another type.
        ValueError: No shipped baseline for the model, or a bad baseline file (see
            :func:`load_baseline`); the scorer checks the rest (:func:`check_baseline`).
    """
    if rescale is None or rescale is False:
        return None
    if rescale is True:
        path = default_baseline_path(encoder.name)
        if not path.is_file():
            raise ValueError(
                f"rescale=True: no baseline ships for model {encoder.name!r}; make one with "
                "`cec baseline CORPUS --model PATH -o baseline.json` and pass rescale='baseline.json'"
            )
        baseline = load_baseline(path)
    elif isinstance(rescale, Baseline):
        baseline = rescale
    elif isinstance(rescale, (str, os.PathLike)):
        baseline = load_baseline(rescale)
    else:
        raise TypeError(
            f"rescale must be False, True, a baseline file path or a Baseline, got "
            f"{type(rescale).__name__}"
        )
    return baseline


def check_baseline(baseline: Baseline, encoder: Any, splitter: str) -> None:
    """Fail unless the baseline was made by this scorer: every field that defines ``b``.

    Model name, model identity (weights, configs, tokenizer, truncation: the signature's
    ``@HASH``, compared exactly, so an empty one matches only an encoder without identity),
    precision and splitter label must all be the scorer's.
    """
    checks = (
        ("model", baseline.model, encoder.name, "--model"),
        ("weights", baseline.weights, encoder.identity, "--model"),
        ("precision", baseline.precision, encoder.precision, "--precision"),
        ("splitter", baseline.splitter, splitter, "--splitter"),
    )
    for field, made, here, option in checks:
        if made != here:
            raise ValueError(
                f"rescale: the baseline was made with {field} {made!r}, but this scorer has "
                f"{field} {here!r} ({option}); use the {field} it was made with, or make a "
                "baseline for this one with `cec baseline`"
            )


def unrelated_pairs(n: int, seed: int = 0) -> np.ndarray:
    """A permutation of ``range(n)`` with no fixed point (item ``i`` is paired with ``p[i] != i``).

    Examples:
        >>> p = unrelated_pairs(5, seed=1)
        >>> sorted(p.tolist()) == list(range(5)) and all(p != np.arange(5))
        True
    """
    if n < 2:
        raise ValueError(f"need at least 2 texts to pair unrelated ones, got {n}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    # a random cyclic shift of a random order: a derangement for any n >= 2
    shift = int(rng.integers(1, n))
    out = np.empty(n, dtype=np.int64)
    out[perm] = perm[(np.arange(n) + shift) % n]
    return out


def compute_baseline(
    scorer: Any,
    texts: Sequence[str],
    *,
    corpus: str = "custom",
    seed: int = 0,
) -> Baseline:
    """The baseline of a scorer's model: mean CEC of each text against an unrelated one.

    Each text is paired with another text of the corpus (a random derangement, ``seed``); give
    texts that are about different items (for example one explanation per item). Pairs with an
    empty side are left out.

    Args:
        scorer: A :class:`cec.CEC` (its model, splitter and precision are used, rescaling off).
        texts: Explanations, at least two, one per item.
        corpus: A name for the corpus, stored in the baseline.
        seed: Seed of the pairing.

    Raises:
        ValueError: Fewer than two texts, or no pair with sentences on both sides.
    """
    if not (callable(getattr(scorer, "score", None)) and hasattr(scorer, "encoder")):
        raise TypeError(f"scorer must be a cec.CEC, got {type(scorer).__name__}")
    texts = list(texts)
    for k, t in enumerate(texts):
        if not isinstance(t, str):
            raise TypeError(f"texts[{k}] must be a str, got {type(t).__name__}")
    perm = unrelated_pairs(len(texts), seed)
    raw = type(scorer)(  # the same scorer, Eq. 2 without rescaling
        scorer.encoder, splitter=scorer.splitter, empty="nan", max_memory=scorer.max_memory
    )
    result = raw.score(texts, [texts[j] for j in perm.tolist()])
    keep = ~np.isnan(result.sym)
    if not keep.any():
        raise ValueError("texts: no pair has sentences on both sides")
    return Baseline(
        model=scorer.encoder.name,
        weights=scorer.encoder.identity,
        value=round(float(result.sym[keep].mean()), 6),
        forward=round(float(result.forward[keep].mean()), 6),
        backward=round(float(result.backward[keep].mean()), 6),
        n_pairs=int(keep.sum()),
        corpus=corpus,
        splitter=scorer.splitter.label,
        seed=int(seed),
        precision=scorer.encoder.precision,
    )
