"""BERTScore: bert-score P/R/F1 on a local backbone (default: the embedded all-MiniLM-L6-v2)."""

from __future__ import annotations

import functools
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cec._checks import check_positive_int
from cec_distill.metrics.base import Metric, _version, register_metric

__all__ = ["BERTScoreMetric", "DEFAULT_BERTSCORE_LAYER", "resolve_bertscore_model"]

DEFAULT_BERTSCORE_LAYER = 5


def resolve_bertscore_model(model: str | os.PathLike[str] | None) -> tuple[str, str]:
    """``(path_or_name, label)`` for a BERTScore backbone, checked to exist locally.

    ``None`` is the embedded all-MiniLM-L6-v2 directory. A directory is used as it is. A hub
    name (e.g. ``"roberta-large"``) must already be in the local Hugging Face cache.

    Raises:
        FileNotFoundError: The model is not available offline.
    """
    if model is None:
        from cec.encode import default_model_dir

        return str(default_model_dir()), "all-MiniLM-L6-v2"
    spec = str(model)
    if Path(spec).expanduser().is_dir():
        path = Path(spec).expanduser()
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"bertscore_model: {path} has no config.json")
        return str(path), path.name
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(spec, "config.json")
    except Exception:  # noqa: BLE001 - invalid repo ids and the like
        cached = None
    if not isinstance(cached, str):
        raise FileNotFoundError(
            f"bertscore_model={spec!r} is not in the local Hugging Face cache and downloads are "
            "off; download it once (e.g. `huggingface-cli download roberta-large`) or pass a "
            "local model directory"
        )
    return spec, spec


def _truncation(folder: Path) -> int | None:
    """Tokens per text bert-score reads: the tokenizer's ``model_max_length`` (``None``: unset)."""
    import json

    try:
        cfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = cfg.get("model_max_length") if isinstance(cfg, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9:
        return value
    return None  # transformers' "no limit" sentinel, or none given


def _identity(model: str) -> tuple[int | None, str]:
    """``(truncation, short identity)`` of a backbone, by cec's own identity function.

    The hash is :func:`cec.models.model_identity` of the model's files and the truncation in
    force, the scheme that labels the model in CEC's signature, so one model read the same way
    gets one label across the toolkit (and CEC at 256 tokens and bert-score at 512 get two, each
    with its ``trunc:``). ``""`` when the model has no files on disk.
    """
    from cec.models import local_dir, model_identity, weights_file

    folder = local_dir(model)
    if folder is None:
        return None, ""
    trunc = _truncation(folder)
    return trunc, model_identity(folder, weights_file(folder), trunc or 0)[:8]


@functools.lru_cache(maxsize=2)
def _bert_scorer(model: str, layer: int, device: str, batch_size: int, rescale: bool) -> Any:
    from bert_score import BERTScorer
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on stderr (as cec's loads)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BERTScorer(
                model_type=model, num_layers=layer, idf=False, device=device,
                batch_size=batch_size, lang="en" if rescale else None,
                rescale_with_baseline=rescale,
            )  # fmt: skip
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()


class BERTScoreMetric(Metric):
    """bert-score P/R/F1 on a local backbone (default: embedded all-MiniLM-L6-v2, layer 5)."""

    name = "bertscore"
    columns = ("bertscore", "bertscore_p", "bertscore_r")

    def __init__(
        self,
        bertscore_model: str | os.PathLike[str] | None = None,
        bertscore_layer: int | None = None,
        bertscore_rescale: bool = False,
        device: str | None = None,
        bertscore_batch_size: int = 64,
    ):
        from bert_score.utils import model2layers

        self.model, self.label = resolve_bertscore_model(bertscore_model)
        if bertscore_layer is None:
            if bertscore_model is None:
                bertscore_layer = DEFAULT_BERTSCORE_LAYER
            elif self.model in model2layers:
                bertscore_layer = model2layers[self.model]
            else:
                raise ValueError(
                    f"bertscore_layer: no default layer known for {self.model!r}; pass one"
                )
        self.layer = check_positive_int(
            bertscore_layer, "bertscore_layer", minimum=0, what="a non-negative int"
        )
        self.rescale = bool(bertscore_rescale)
        if self.rescale:
            import bert_score

            base = (
                Path(bert_score.__file__).parent / "rescale_baseline" / "en" / f"{self.model}.tsv"
            )
            if not base.is_file():
                raise FileNotFoundError(
                    f"bertscore_rescale: no baseline file for {self.model!r} at {base}"
                )
        from cec.encode import resolve_device

        self.device = str(resolve_device(device))
        self.batch_size = check_positive_int(bertscore_batch_size, "bertscore_batch_size")
        self.truncation, self.identity = _identity(self.model)
        if self.identity:
            self.label += "@" + self.identity

    def item_scores(self, generated, references):
        # empty texts score 0 (bert-score cannot tokenise them with transformers 5)
        refs = [[r for r in rs if r.strip()] for rs in references]
        keep = [i for i, g in enumerate(generated) if g.strip() and refs[i]]
        out = {c: np.zeros(len(generated)) for c in self.columns}
        if keep:
            scorer = _bert_scorer(
                self.model, self.layer, self.device, self.batch_size, self.rescale
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p, r, f = scorer.score(
                    [generated[i] for i in keep],
                    [refs[i] for i in keep],
                    batch_size=self.batch_size,
                )
            for col, val in zip(self.columns, (f, p, r), strict=False):
                out[col][keep] = val.numpy()
        return out

    @property
    def signature(self) -> str:
        return (
            f"bert-score:{_version('bert-score')}|model:{self.label}|layer:{self.layer}|idf:no|"
            f"rescale:{'yes' if self.rescale else 'no'}|stat:f1|multiref:max|"
            f"trunc:{self.truncation or 'none'}|transformers:{_version('transformers')}"
        )


register_metric("bertscore", BERTScoreMetric)
