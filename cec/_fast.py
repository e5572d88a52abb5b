"""Fast start for the fp32 path: a validated ONNX Runtime copy of a plain model, no transformers.

Importing transformers costs about 3.5 s of CPU before a sentence is encoded, and torch alone
about 1.5-2 s, more than the whole scoring of a small file. For a plain model folder
(:func:`cec.layout.plain_layout`) on the CPU, cec therefore keeps, in
``<cache_dir>/onnx/<name>-<identity>/``, the ONNX export of the model (written by :mod:`cec._onnx`, the same files as ``precision="onnx"``) and a marker file
``fp32-check.json`` written only after the export was **checked against the torch fp32 model**:
the token ids of :data:`PROBES` (a text past the window among them) must be equal and every
embedding within :data:`TOLERANCE`. When the marker is there, ``precision="fp32"`` runs the
ONNX graph with the ``tokenizers`` library (``tokenizer.json``) on numpy arrays end to end and
imports neither transformers nor torch (the similarity kernel runs on numpy on the CPU);
the scores equal the torch path's to float noise (the check bounds the vectors), so the
signature is the same ``prec:fp32``.

The marker records the sha256 of the files that were checked (the graph and ``tokenizer.json``);
:func:`load` hashes them again once per process and runs nothing else: a copy replaced or edited
after its check gives one warning and the torch path, and the next ``cec score`` exports and
checks a new copy. Tokenising is safe from several threads (:class:`FastTokenizer`).

The marker is written by :func:`prepare` (the ``cec score`` command calls it after its first
fp32 run on the CPU, when the model is already loaded, and says so on stderr in one line). A
cache folder that cannot be written leaves the torch path in use, and ``prepare`` says why.
``CEC_FAST_START=0`` turns the whole mechanism off (no marker is written or used).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cec._files import _file_key, _sha256_of, file_digest, unwritable_reason
from cec._onnx import PROBES

__all__ = ["PROBES", "TOLERANCE", "FastTokenizer", "enabled", "load", "prepare", "marker_path"]

TOLERANCE = 1e-6  # most |difference| of any embedding component, ONNX Runtime vs torch fp32
_MARKER = "fp32-check.json"
_MARKER_VERSION = 2  # 2: the sha256 of the files that were checked


def enabled() -> bool:
    """Whether the fast start may be used and prepared (``CEC_FAST_START`` is not ``0``)."""
    return os.environ.get("CEC_FAST_START", "1").strip().lower() not in ("0", "false", "no", "off")


def marker_path(encoder: Any) -> Path:
    """Where the check marker of ``encoder``'s export lives."""
    from cec._onnx import model_dir

    return model_dir(encoder) / _MARKER


class FastTokenizer:
    """The subset of a Hugging Face fast tokenizer that the encoder calls, on ``tokenizers``.

    Safe to call from several threads at once: no call changes a tokenizer. There is one
    ``tokenizers`` object per setting (truncating at a given length, or not truncating), each
    made once, under a lock, the first time that setting is asked for, and never changed
    afterwards. (A single object switched between truncating and not by each call gave another
    thread's call the wrong setting.) The one for ``max_length`` is made at once; the one that
    does not truncate only when a length past the window is asked for (about 0.05-0.1 s).

    Args:
        folder: Model folder with ``tokenizer.json``.
        do_lower_case: Lower-case first (the folder's ``sentence_bert_config.json`` option).
        input_names: The model's input names (recorded at export).
        pad_token_id: Id of the padding token.
        text: The content of ``tokenizer.json`` when the caller already read (and checked) it.
        max_length: The window the calls will truncate to (its tokenizer is made at once).
    """

    thread_safe = True  # the encoder needs no lock around its calls (cec.encode)

    def __init__(
        self,
        folder: Path,
        do_lower_case: bool,
        input_names: list[str],
        pad_token_id: int,
        *,
        text: str | None = None,
        max_length: int | None = None,
    ):
        self._text = (
            (folder / "tokenizer.json").read_text(encoding="utf-8") if text is None else text
        )
        self._lower = do_lower_case
        self.model_input_names = list(input_names)
        self.pad_token_id = pad_token_id
        self._made: dict[int | None, Any] = {}  # truncation length (None: none) -> tokenizer
        self._lock = threading.Lock()
        self.backend_tokenizer = self._tokenizer(max_length)

    def _tokenizer(self, max_length: int | None) -> Any:
        tok = self._made.get(max_length)
        if tok is None:
            with self._lock:
                tok = self._made.get(max_length)
                if tok is None:
                    from types import SimpleNamespace

                    from tokenizers import Tokenizer

                    tok = Tokenizer.from_str(self._text)
                    tok.no_padding()
                    if max_length is None:
                        tok.no_truncation()
                    else:
                        tok.enable_truncation(int(max_length))
                    if self._lower:
                        from cec.layout import lowercase_first

                        lowercase_first(SimpleNamespace(backend_tokenizer=tok))
                    self._made[max_length] = tok  # published only once configured
        return tok

    def __call__(
        self,
        sentences: list[str],
        *,
        add_special_tokens: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        **_: Any,
    ) -> dict[str, list[list[int]]]:
        limit = int(max_length) if truncation and max_length is not None else None
        encs = self._tokenizer(limit).encode_batch(
            list(sentences), add_special_tokens=add_special_tokens
        )
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


_WARNED: set[str] = set()


def _distrust(marker: Path, why: str) -> None:
    """One warning per marker and process: the copy on disk is not what was checked."""
    if str(marker) in _WARNED:
        return
    _WARNED.add(str(marker))
    warnings.warn(
        f"fast start: {why}, so the ONNX copy in {marker.parent} is not what {_MARKER} "
        "checked; scoring on the torch path instead (the next `cec score` checks a new copy; "
        "or delete that folder)",
        RuntimeWarning,
        stacklevel=4,
    )


def _read_marker(encoder: Any) -> dict[str, Any] | None:
    try:
        info = json.loads(marker_path(encoder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("identity") != encoder.identity:
        return None
    return info


def load(encoder: Any) -> tuple[FastModel, Any] | None:
    """The fast model stand-in and runner for ``encoder``, or ``None`` (use the torch path).

    ``None`` unless the path applies (fp32, CPU, plain folder, ONNX Runtime installed, not
    turned off) and a marker of a passed check for this exact model identity is on disk whose
    sha256 of the graph file and of ``tokenizer.json`` match the files now (each hashed once per
    process). A mismatch warns once and gives ``None``: a file that was not checked never runs.
    """
    layout = _applies(encoder)
    if layout is None:
        return None
    marker = marker_path(encoder)
    info = _read_marker(encoder)
    if info is None or info.get("version") != _MARKER_VERSION or not info.get("passed"):
        return None
    sums = info.get("sha256")
    graph = marker.parent / str(info.get("graph", ""))
    if not isinstance(sums, dict) or not graph.is_file():
        return None
    folder = encoder.local_dir()
    try:
        tok_bytes = (folder / "tokenizer.json").read_bytes()
        if hashlib.sha256(tok_bytes).hexdigest() != sums.get("tokenizer.json"):
            _distrust(marker, f"{folder / 'tokenizer.json'} has changed")
            return None
        before = _file_key(graph)
        # the ~90 MB graph is hashed in a thread while the tokenizer and the session load (a
        # session that fails the check is dropped unused)
        found: list[str] = []
        hasher = threading.Thread(target=lambda: found.append(_sha256_of(before)), daemon=True)
        hasher.start()
        tok = FastTokenizer(
            folder,
            layout.do_lower_case,
            info["input_names"],
            info["pad_token_id"],
            text=tok_bytes.decode("utf-8"),
            max_length=int(layout.max_seq_length),
        )
        from cec._onnx import OnnxRunner

        runner = OnnxRunner.from_file(graph, encoder)
        hasher.join()
        if found != [sums.get(graph.name)]:
            _distrust(marker, f"{graph.name} has another sha256 than the one checked")
            return None
        if _file_key(graph) != before:  # replaced while the session read it
            _distrust(marker, f"{graph.name} changed while it was loaded")
            return None
    except Exception:  # noqa: BLE001 - an optimisation only: onnxruntime or tokenizers missing
        return None  # or broken, an unreadable graph: the torch path runs
    return FastModel(tok, int(layout.max_seq_length)), runner


Announce = Callable[[str], None]


def prepare(encoder: Any, announce: Announce | None = None) -> bool:
    """Export ``encoder``'s model to ONNX once and check it against torch fp32; write the marker.

    Loads the torch model (and transformers) if it is not loaded yet. Returns whether the fast
    path passed the check (a marker that says ``passed: false`` is written too, so a failing
    model is not exported and checked again on every run). A copy whose files no longer match
    its marker is exported and checked again. Does nothing, returning ``False``, when the path
    does not apply. Never raises: a cache folder that cannot be written, or an export error,
    leaves the torch path in use.

    Args:
        encoder: A :class:`cec.encode.SentenceTransformerEncoder`.
        announce: Called with the text of one line in parts: what is prepared, once, where and
            about how long, before the work starts; then how it ended (with a newline).
    """
    if _applies(encoder) is None:
        return False
    say = announce or (lambda _text: None)
    marker = marker_path(encoder)
    info = _read_marker(encoder)
    if info is not None and info.get("version") == _MARKER_VERSION:
        if not info.get("passed"):
            return False  # checked before and failed: not tried on every run
        if load(encoder) is not None:
            return True
    problem = unwritable_reason(marker.parent)
    if problem:
        say(
            f"fast start: cannot prepare the ONNX copy of {encoder.name} in {marker.parent} "
            f"({problem}); scoring stays on torch (point CEC_CACHE_DIR at a writable folder, "
            "or set CEC_FAST_START=0 to skip this)\n"
        )
        return False
    say(
        f"fast start: preparing a checked ONNX copy of {encoder.name}, once, in "
        f"{marker.parent} (about 10-30 s; later runs start without torch) ... "
    )
    t0 = time.perf_counter()
    try:
        for stale in (marker, *(marker.parent / n for n in _GRAPHS)):
            stale.unlink(missing_ok=True)  # never checked, or not what was checked
        info = _check(encoder)
    except Exception as exc:  # noqa: BLE001 - the fast start is an optimisation only
        info = {"version": _MARKER_VERSION, "identity": encoder.identity, "passed": False}
        info["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
    try:
        _write(marker, info)  # a failed check too: not tried again on every run
    except OSError as exc:
        info = {**info, "passed": False, "error": f"{type(exc).__name__}: {exc}"}
    took = time.perf_counter() - t0
    if info["passed"]:
        say(f"done ({took:.1f} s)\n")
    else:
        why = info.get("error") or "the ONNX copy does not match the torch model"
        say(f"not used ({why[:200]}; {took:.1f} s); scoring stays on torch\n")
    return bool(info["passed"])


_GRAPHS = ("model.onnx", "model-opt.onnx")


def _check(encoder: Any) -> dict[str, Any]:
    """Export, then compare token ids and embeddings of :data:`PROBES` with torch fp32."""
    from cec._onnx import OnnxRunner, export_onnx

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_onnx(encoder)
    layout = _applies(encoder)
    folder = encoder.local_dir()
    tok_bytes = (folder / "tokenizer.json").read_bytes()
    sums = {graph.name: file_digest(graph), "tokenizer.json": hashlib.sha256(tok_bytes).hexdigest()}
    runner = OnnxRunner.from_file(graph, encoder)
    names = encoder._input_names()
    pad = int(encoder.tokenizer.pad_token_id or 0)
    limit = encoder.max_seq_length
    fast_tok = FastTokenizer(
        folder, layout.do_lower_case, names, pad, text=tok_bytes.decode("utf-8"), max_length=limit
    )
    ref_ids, _ = encoder.tokenize(list(PROBES))
    fast_ids = fast_tok(list(PROBES), truncation=True, max_length=limit)["input_ids"]
    same_ids = [list(a) for a in ref_ids] == [list(b) for b in fast_ids]
    diff = float("inf")
    if same_ids:
        feats = encoder._pad(ref_ids, np.arange(len(PROBES)))
        torch_out = encoder.runner(feats).detach().cpu().numpy()
        onnx_out = np.asarray(runner(feats))
        diff = float(np.max(np.abs(torch_out - onnx_out)))
    if file_digest(graph) != sums[graph.name]:  # changed while it was checked
        raise RuntimeError(f"{graph} changed while it was checked")
    return {
        "version": _MARKER_VERSION,
        "identity": encoder.identity,
        "graph": graph.name,
        "sha256": sums,  # what was checked: load() runs these files only
        "input_names": names,
        "pad_token_id": pad,
        "same_token_ids": same_ids,
        "max_abs_diff": diff if diff != float("inf") else None,
        "tolerance": TOLERANCE,
        "passed": bool(same_ids and diff <= TOLERANCE),
    }


def _write(marker: Path, info: dict[str, Any]) -> None:
    from cec._files import atomic_write

    atomic_write(marker, json.dumps(info, indent=2) + "\n")
