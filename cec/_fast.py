"""Fast start for the fp32 path: a validated ONNX Runtime copy of a plain model, no transformers.

Importing transformers costs about 3.5 s of CPU before a sentence is encoded, and torch alone
about 1.5-2 s, more than the whole scoring of a small file. For a plain model folder
(:func:`cec.layout.plain_layout`) on the CPU, cec therefore keeps, in ``<cache_dir>/onnx/<name>-<identity>/``, the ONNX export of
the model (written by :mod:`cec._onnx`, the same files as ``precision="onnx"``) and a marker file
``fp32-check.json`` written only after the export was **checked against the torch fp32 model**:
the token ids of :data:`PROBES` (a text past the window among them) must be equal and every
embedding within :data:`TOLERANCE`. When the marker is there, ``precision="fp32"`` runs the
ONNX graph with the ``tokenizers`` library (``tokenizer.json``) on numpy arrays end to end and
imports neither transformers nor torch (the similarity kernel runs on numpy on the CPU);
the scores equal the torch path's to float noise (the check bounds the vectors), so the
signature is the same ``prec:fp32``.

The marker is written by :func:`prepare` (the ``cec score`` command calls it after its first
fp32 run on the CPU, when the model is already loaded). ``CEC_FAST_START=0`` turns the whole
mechanism off (no marker is written or used).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["PROBES", "TOLERANCE", "FastTokenizer", "enabled", "load", "prepare", "marker_path"]

TOLERANCE = 1e-6  # most |difference| of any embedding component, ONNX Runtime vs torch fp32
_MARKER = "fp32-check.json"
_MARKER_VERSION = 1
PROBES = (
    "Rising CO2 concentrations trap more heat in the atmosphere.",
    "Dr. Smith measured a 1.5°C rise in the U.S. between 1900 and 2020!",
    "Sea ice declines.",
    "«Warmer oceans» expand; glaciers melt — sea levels rise (about 3.3 mm/yr).",
    "Ünïcödé tèxt, 中文字符 and emoji 🌍 are tokenised too.",
    "x",
    " ".join(["The greenhouse effect warms the surface of the planet."] * 40),  # past 256 tokens
)


def enabled() -> bool:
    """Whether the fast start may be used and prepared (``CEC_FAST_START`` is not ``0``)."""
    return os.environ.get("CEC_FAST_START", "1").strip().lower() not in ("0", "false", "no", "off")


def marker_path(encoder: Any) -> Path:
    """Where the check marker of ``encoder``'s export lives."""
    from cec._onnx import model_dir

    return model_dir(encoder) / _MARKER


class FastTokenizer:
    """The subset of a Hugging Face fast tokenizer that the encoder calls, on ``tokenizers``.

    Args:
        folder: Model folder with ``tokenizer.json``.
        do_lower_case: Lower-case first (the folder's ``sentence_bert_config.json`` option).
        input_names: The model's input names (recorded at export).
        pad_token_id: Id of the padding token.
    """

    def __init__(
        self, folder: Path, do_lower_case: bool, input_names: list[str], pad_token_id: int
    ):
        from tokenizers import Tokenizer

        self.backend_tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.backend_tokenizer.no_padding()
        self.backend_tokenizer.no_truncation()
        if do_lower_case:
            from cec.layout import lowercase_first

            lowercase_first(self)
        self.model_input_names = list(input_names)
        self.pad_token_id = pad_token_id

    def __call__(
        self,
        sentences: list[str],
        *,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        **_: Any,
    ) -> dict[str, list[list[int]]]:
        tok = self.backend_tokenizer
        if truncation and max_length is not None:
            tok.enable_truncation(max_length)
        else:
            tok.no_truncation()
        encs = tok.encode_batch(list(sentences), add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encs]}


class FastModel:
    """Stands in for the loaded model on the fast path: ``tokenizer`` and ``max_seq_length``."""

    def __init__(self, tokenizer: FastTokenizer, max_seq_length: int):
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length


def _applies(encoder: Any) -> Any:
    """The plain layout of ``encoder``'s folder when the fast start can apply, else ``None``."""
    if not enabled() or encoder.precision != "fp32" or encoder.device_type != "cpu":
        return None
    import importlib.util

    try:  # the `onnx` extra (pip install ".[onnx]") is not a base dependency
        if importlib.util.find_spec("onnxruntime") is None:
            return None
    except (ImportError, ValueError):  # a parent package or spec that cannot be found
        return None
    from cec.layout import plain_layout

    folder = encoder.local_dir()
    if folder is None or not (folder / "tokenizer.json").is_file():
        return None
    layout = plain_layout(folder)
    if layout is None or layout.max_seq_length is None:
        return None
    return layout


def load(encoder: Any) -> tuple[FastModel, Any] | None:
    """The fast model stand-in and runner for ``encoder``, or ``None`` (use the torch path).

    ``None`` unless the path applies (fp32, CPU, plain folder, ONNX Runtime installed, not
    turned off) and a marker of a passed check for this exact model identity is on disk.
    """
    layout = _applies(encoder)
    if layout is None:
        return None
    marker = marker_path(encoder)
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(info, dict)
        or info.get("version") != _MARKER_VERSION
        or info.get("identity") != encoder.identity
        or not info.get("passed")
    ):
        return None
    graph = marker.parent / str(info.get("graph", ""))
    if not graph.is_file():
        return None
    folder = encoder.local_dir()
    try:
        tok = FastTokenizer(folder, layout.do_lower_case, info["input_names"], info["pad_token_id"])
        from cec._onnx import OnnxRunner

        runner = OnnxRunner.from_file(graph, encoder)
    except Exception:  # noqa: BLE001 - an optimisation only: onnxruntime or tokenizers missing
        return None  # or broken, an unreadable graph: the torch path runs
    return FastModel(tok, int(layout.max_seq_length)), runner


def prepare(encoder: Any) -> bool:
    """Export ``encoder``'s model to ONNX once and check it against torch fp32; write the marker.

    Loads the torch model (and transformers) if it is not loaded yet. Returns whether the fast
    path passed the check (a marker that says ``passed: false`` is written too, so a failing
    model is not exported and checked again on every run). Does nothing, returning ``False``,
    when the path does not apply; errors of the export are turned into a warning.
    """
    if _applies(encoder) is None:
        return False
    marker = marker_path(encoder)
    if marker.is_file():
        return load(encoder) is not None
    from cec._onnx import OnnxRunner, export_onnx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = export_onnx(encoder)
        runner = OnnxRunner.from_file(graph, encoder)
        layout = _applies(encoder)
        names = encoder._input_names()
        pad = int(encoder.tokenizer.pad_token_id or 0)
        fast_tok = FastTokenizer(encoder.local_dir(), layout.do_lower_case, names, pad)
        limit = encoder.max_seq_length
        ref_ids, _ = encoder.tokenize(list(PROBES))
        fast_ids = fast_tok(list(PROBES), truncation=True, max_length=limit)["input_ids"]
        same_ids = [list(a) for a in ref_ids] == [list(b) for b in fast_ids]
        diff = float("inf")
        if same_ids:
            idx = np.arange(len(PROBES))
            feats = encoder._pad(ref_ids, idx)
            torch_out = encoder.runner(feats).detach().cpu().numpy()
            onnx_out = np.asarray(runner(feats))
            diff = float(np.max(np.abs(torch_out - onnx_out)))
        passed = bool(same_ids and diff <= TOLERANCE)
    except Exception as exc:  # noqa: BLE001 - the fast start is an optimisation only
        warnings.warn(
            f"fast start: could not prepare the ONNX copy of {encoder.name} "
            f"({type(exc).__name__}: {str(exc)[:200]}); the torch path is used",
            RuntimeWarning,
            stacklevel=2,
        )
        info = {"version": _MARKER_VERSION, "identity": encoder.identity, "passed": False}
        info["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
        _write(marker, info)  # not tried again on every run; delete the file to retry
        return False
    info = {
        "version": _MARKER_VERSION,
        "identity": encoder.identity,
        "graph": graph.name,
        "input_names": names,
        "pad_token_id": pad,
        "same_token_ids": same_ids,
        "max_abs_diff": diff if diff != float("inf") else None,
        "tolerance": TOLERANCE,
        "passed": passed,
    }
    _write(marker, info)
    return passed


def _write(marker: Path, info: dict[str, Any]) -> None:
    from cec._files import atomic_target

    tmp = atomic_target(marker)
    tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, marker)
