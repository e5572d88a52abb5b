"""Scale-out on Ray: score a Ray Dataset of pairs with a pool of scorer actors.

Each actor loads one model once and scores whole batches through the same pipeline as
:meth:`cec.CEC.score`, so every pair gets the score a single process would give it (equal up to
float noise of 1e-6, from the encoder's batch padding). GPUs are given to the actors when the
cluster has them. Install with ``pip install "cec[ray]"``; the multi-node recipe is in
``docs/scale-out.md``.

Example (not run as a doctest: it starts Ray)::

    import ray
    from cec.ray import score_ray_dataset

    ray.init()
    ds = ray.data.from_items(
        [{"id": 0, "generated": "CO2 traps heat.", "reference": "Heat is trapped by CO2."}]
    )
    scored = score_ray_dataset(ds, num_actors=2)
    print(scored.take_all()[0]["cec_sym"])
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from cec._checks import check_positive_int

__all__ = ["score_ray_dataset", "CECActor"]


class CECActor:
    """Callable class for ``Dataset.map_batches``: one :class:`cec.CEC` per actor."""

    def __init__(
        self,
        options: dict[str, Any],
        generated_column: str,
        reference_column: str,
        prefix: str,
    ):
        import torch

        from cec.scorer import CEC

        options = dict(options)
        if options.get("device") is None:
            options["device"] = "cuda" if torch.cuda.is_available() else "cpu"
        self.scorer = CEC(**options)
        self.generated_column = generated_column
        self.reference_column = reference_column
        self.prefix = prefix

    def __call__(self, batch: Any) -> Any:
        gens = list(batch[self.generated_column])
        refs = [_as_ref(r) for r in batch[self.reference_column]]
        out = batch.copy()
        p = self.prefix
        if not gens:
            for col in ("forward", "backward", "sym", "empty", "best_ref", "signature"):
                out[p + col] = []
            return out
        result = self.scorer.score(gens, refs)
        out[f"{p}forward"] = result.forward
        out[f"{p}backward"] = result.backward
        out[f"{p}sym"] = result.sym
        out[f"{p}empty"] = result.empty
        out[f"{p}best_ref"] = result.best_ref
        out[f"{p}signature"] = [str(result.signature)] * len(gens)
        return out


def _as_ref(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        return [str(x) for x in value.tolist()]
    return value


def score_ray_dataset(
    ds: Any,
    *,
    generated_column: str = "generated",
    reference_column: str = "reference",
    num_actors: int = 2,
    batch_size: int = 1024,
    num_gpus: float | None = None,
    num_cpus: float = 1,
    prefix: str = "cec_",
    **cec_options: Any,
) -> Any:
    """Add CEC columns to a Ray Dataset of pairs, scored by a pool of actors.

    Args:
        ds: A ``ray.data.Dataset`` with a generated-text column and a reference column (a text,
            or a list of texts per row for several references).
        generated_column: Name of the generated-text column.
        reference_column: Name of the reference column.
        num_actors: Scorer actors (each loads the model once).
        batch_size: Rows per call of an actor (sentences are deduplicated within a batch).
        num_gpus: GPUs per actor; ``None`` gives each actor one GPU when the cluster has GPUs,
            else none.
        num_cpus: CPUs reserved per actor.
        prefix: Prefix of the added columns: ``forward``, ``backward``, ``sym``, ``empty``,
            ``best_ref`` and ``signature``.
        **cec_options: Options of :class:`cec.CEC` (``model``, ``precision``, ``cache``,
            ``splitter``...). ``device`` defaults to CUDA in an actor that has a GPU.

    Returns:
        A lazy ``ray.data.Dataset``: the input columns plus the CEC columns. Set
        ``ray.data.DataContext.get_current().execution_options.preserve_order = True`` to keep
        the input order, or join on an id column.

    Raises:
        ValueError: Bad arguments (checked here, before any actor starts), or ``ray`` missing.
        TypeError: ``ds`` is not a Ray Dataset.
    """
    if importlib.util.find_spec("ray") is None:
        raise ValueError('score_ray_dataset needs Ray: pip install "cec[ray]"')
    import ray
    import ray.data

    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"ds must be a ray.data.Dataset, got {type(ds).__name__}")
    check_positive_int(num_actors, "num_actors")
    check_positive_int(batch_size, "batch_size")
    if num_gpus is not None and (isinstance(num_gpus, bool) or num_gpus < 0):
        raise ValueError(f"num_gpus must be None or >= 0, got {num_gpus!r}")
    if set(cec_options) & {"generated", "reference"}:
        raise TypeError("pass the data as ds; generated/reference are column names here")
    columns = ds.schema().names if ds.schema() is not None else []
    for arg, col in (
        ("generated_column", generated_column),
        ("reference_column", reference_column),
    ):
        if columns and col not in columns:
            raise ValueError(f"{arg}: column {col!r} is not in the dataset (columns: {columns})")
    # build one scorer here: validates the options (model, splitter, precision...) cheaply,
    # before any actor starts, without loading the model
    from cec.scorer import CEC

    probe = {**cec_options, "device": "cpu"}
    if probe.get("precision") == "fp16":  # a CUDA path: checked again in each actor
        probe["precision"] = "fp32"
    CEC(**probe)
    if num_gpus is None:
        num_gpus = 1 if ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0 else 0
    return ds.map_batches(
        CECActor,
        fn_constructor_kwargs={
            "options": cec_options,
            "generated_column": generated_column,
            "reference_column": reference_column,
            "prefix": prefix,
        },
        batch_size=batch_size,
        batch_format="pandas",
        concurrency=num_actors,
        num_gpus=num_gpus,
        num_cpus=num_cpus,
    )
