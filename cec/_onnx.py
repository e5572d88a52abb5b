"""ONNX Runtime path for :class:`cec.encode.SentenceTransformerEncoder` (``precision="onnx"``
or ``"onnx-int8"``).

The local sentence-transformers model (transformer + pooling) is exported once with
``torch.onnx.export``, offline, to ``<cache_dir>/onnx/<name>-<identity>/``; BERT-like graphs are
then fused by ONNX Runtime's transformer optimiser, and for ``onnx-int8`` the Linear weights are
quantised to int8 with ``onnxruntime.quantization.quantize_dynamic``. Files are written to a
temporary name and renamed, so concurrent processes never see half a file. Later runs reuse them
while their sha256 is the one recorded when they were made and checked against torch
(:func:`export_onnx`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cec._files import (
    atomic_target,
    atomic_write,
    cache_dir,
    durable_replace,
    file_digest,
    unwritable_reason,
)
from cec._warnings import PrecisionWarning
from cec.devices import cuda_provider_missing, import_onnxruntime
from cec.layout import transformer_config

__all__ = [
    "PROBES",
    "EXPORT_TOLERANCE",
    "OnnxRunner",
    "export_onnx",
    "optimise",
    "cuda_provider_missing",
]

# Texts every new export is checked on against the torch fp32 model (the fast start too)
PROBES = (
    "Rising CO2 concentrations trap more heat in the atmosphere.",
    "Dr. Smith measured a 1.5°C rise in the U.S. between 1900 and 2020!",
    "Sea ice declines.",
    "«Warmer oceans» expand; glaciers melt — sea levels rise (about 3.3 mm/yr).",
    "Ünïcödé tèxt, 中文字符 and emoji 🌍 are tokenised too.",
    "x",
    " ".join(["The greenhouse effect warms the surface of the planet."] * 40),  # past 256 tokens
)
# most |difference| of an embedding component from torch fp32 that a new export may have
EXPORT_TOLERANCE = {"fp32": 1e-5, "int8": 0.1}  # int8 measured: 0.034 (AVX-512 VNNI)
_RECORD_VERSION = 1
_LOCK = threading.Lock()  # one export at a time in a process (processes: atomic renames)


def _wrapped(model: Any, names: list[str]) -> Any:
    """``model`` as a torch module of positional tensors (what ``torch.onnx.export`` traces)."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(dict(zip(names, tensors, strict=True)))["sentence_embedding"]

    return Wrapped()


def model_dir(encoder: Any) -> Path:
    """The folder of ``encoder``'s ONNX files (named by the model name and identity)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder.name)
    return cache_dir() / "onnx" / f"{safe}-{encoder.identity}"


def export_onnx(encoder: Any, *, quantize: bool = False) -> Path:
    """Export ``encoder``'s model to ONNX (and int8) once; return the file to load.

    Each file cec loads has a record beside it (``<file>.check.json``): its sha256 and, for the
    graph that is run, the largest difference of the :data:`PROBES`' embeddings from the torch
    fp32 model when it was made. A cached file is used only while its sha256 is the recorded
    one; a file changed since (edited, replaced, truncated) is made again, with one
    :class:`~cec.encode.PrecisionWarning`. A new export further from torch than
    :data:`EXPORT_TOLERANCE` is used with a warning that gives the difference.

    Args:
        encoder: A :class:`cec.encode.SentenceTransformerEncoder`.
        quantize: Also write (and return) the dynamic-int8 model.
    """
    with _LOCK:
        graph = _fp32_graph(encoder)
        if not quantize:
            return graph
        int8 = graph.parent / "model-int8.onnx"
        why = _untrusted(int8)
        if why is None or _kept_read_only(encoder, int8, why, "int8"):
            return int8
        if why:
            _distrust(int8, why)
        _must_write(int8)
        import onnx

        import_onnxruntime()  # telemetry off before onnxruntime.quantization loads it
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = atomic_target(int8)
        try:
            # its advice "consider to run pre-processing" goes to the root logger, once per
            # export: not a line for the user of a metric
            previous = logging.root.manager.disable
            logging.disable(logging.WARNING)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_dynamic(
                    str(graph),
                    str(tmp),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            durable_replace(tmp, int8)
        finally:
            logging.disable(previous)
            tmp.unlink(missing_ok=True)
        _record(encoder, int8, "int8")
        return int8


def _fp32_graph(encoder: Any) -> Path:
    """The fp32 graph to run: the fused ``model-opt.onnx``, else the plain ``model.onnx``."""
    folder = model_dir(encoder)
    fp32 = folder / "model.onnx"
    opt = folder / "model-opt.onnx"
    why = _untrusted(opt)
    if why is None or _kept_read_only(encoder, opt, why, "fp32"):
        return opt
    if why:
        _distrust(opt, why)
    _must_write(opt)
    source_why = _untrusted(fp32)
    if source_why is not None or why:  # no trusted source, or the fused file changed
        if source_why:
            _distrust(fp32, source_why)
        _export(encoder, fp32)  # the source of a file that changed is made again too
        _record(encoder, fp32, None)
    cfg = transformer_config(encoder.model)
    graph = optimise(fp32, opt, int(cfg.num_attention_heads), int(cfg.hidden_size))
    _record(encoder, graph, "fp32")
    return graph


def _kept_read_only(encoder: Any, graph: Path, why: str, kind: str) -> bool:
    """Whether an unrecorded ``graph`` in a folder cec cannot write is run as it is: only when
    it is within :data:`EXPORT_TOLERANCE` of torch on the probe texts now (a folder prepared by a
    cec before records, mounted read-only). A changed file there, or one that fails the check,
    is an error: it can be neither trusted nor made again."""
    if not graph.is_file():
        return False
    problem = unwritable_reason(graph.parent)
    if not problem:
        return False
    where = f"the cache folder cannot be written ({problem}); point CEC_CACHE_DIR at a writable one"
    if why:
        raise ValueError(f"precision onnx: the cached {graph} is not used: {why}, and {where}")
    diff = _max_diff(encoder, graph)
    if not diff <= EXPORT_TOLERANCE[kind]:
        raise ValueError(
            f"precision onnx: the cached {graph} has no record and differs from the torch fp32 "
            f"model by up to {diff:.3g} (more than {EXPORT_TOLERANCE[kind]:g}), and {where}"
        )
    return True


def _must_write(graph: Path) -> None:
    problem = unwritable_reason(graph.parent)
    if problem:
        raise ValueError(
            f"precision onnx: cannot make {graph.name} in {graph.parent} ({problem}); point "
            "CEC_CACHE_DIR at a writable folder"
        )


def _export(encoder: Any, fp32: Path) -> None:
    import_onnxruntime()  # telemetry off, in case the exporter loads onnxruntime itself
    import torch

    model = encoder.model
    names = encoder._input_names()
    seq = 16
    dummy = tuple(torch.ones((2, seq), dtype=torch.long) for _ in names)
    tmp = atomic_target(fp32)
    axes = {n: {0: "batch", 1: "seq"} for n in names}
    axes["embedding"] = {0: "batch"}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            wrapped = _wrapped(model, names).to("cpu").eval()
            torch.onnx.export(
                wrapped,
                dummy,
                str(tmp),
                input_names=names,
                output_names=["embedding"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
                do_constant_folding=True,
            )
        durable_replace(tmp, fp32)
    finally:
        tmp.unlink(missing_ok=True)
        model.to(encoder.device)


def _record_path(graph: Path) -> Path:
    return graph.with_name(graph.name + ".check.json")


def _untrusted(graph: Path) -> str | None:
    """``None`` when ``graph`` is the file cec made and recorded; else why not (``""``: no
    record, as for a file not made yet or made by a cec before records)."""
    record = _record_path(graph)
    if not graph.is_file() or not record.is_file():
        return ""
    try:
        info = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its record {record.name} cannot be read ({type(exc).__name__})"
    if (
        not isinstance(info, dict)
        or info.get("version") != _RECORD_VERSION
        or not isinstance(info.get("sha256"), str)
    ):
        return f"its record {record.name} is not one this cec writes"
    try:
        digest = file_digest(graph)
    except OSError as exc:
        return f"it cannot be read ({type(exc).__name__}: {exc.strerror or exc})"
    if digest != info["sha256"]:
        return "it has another sha256 than when cec made it"
    return None


def _distrust(graph: Path, why: str) -> None:
    warnings.warn(
        f"precision onnx: the cached {graph} is not used: {why}; making it again",
        PrecisionWarning,
        stacklevel=4,
    )


def _record(encoder: Any, graph: Path, kind: str | None) -> None:
    """Write ``graph``'s record; for a graph that is run (``kind``), check it against torch."""
    info: dict[str, Any] = {
        "version": _RECORD_VERSION,
        "file": graph.name,
        "identity": encoder.identity,
        "sha256": file_digest(graph),
    }
    if kind is not None:
        diff = _max_diff(encoder, graph)
        info.update(kind=kind, max_abs_diff=diff, tolerance=EXPORT_TOLERANCE[kind])
        if not diff <= EXPORT_TOLERANCE[kind]:
            warnings.warn(
                f"precision onnx: the new ONNX file {graph.name} differs from the torch fp32 "
                f"model by up to {diff:.3g} per embedding component on cec's probe texts "
                f"(more than the {EXPORT_TOLERANCE[kind]:g} expected of {kind}); scores "
                "differ from fp32 by more than usual",
                PrecisionWarning,
                stacklevel=4,
            )
    # an unwritable cache: the file is made again (and checked) next time
    with contextlib.suppress(OSError):
        atomic_write(_record_path(graph), json.dumps(info, indent=2) + "\n")


def _max_diff(encoder: Any, graph: Path) -> float:
    """Largest |difference| of the :data:`PROBES`' embeddings, ``graph`` vs torch fp32."""
    import torch

    ort = import_onnxruntime()
    names = encoder._input_names()
    ids, _ = encoder.tokenize(list(PROBES))
    feats = encoder._pad(ids, np.arange(len(PROBES)))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = _threads(encoder)
    session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: feats[i.name] for i in session.get_inputs()}
    (got,) = session.run(["embedding"], feeds)
    model = encoder.model
    device = next(model.parameters()).device
    with torch.no_grad():
        ref = _wrapped(model, names).eval()(
            *(torch.as_tensor(feats[n], device=device) for n in names)
        )
    diff = np.abs(np.asarray(got, dtype=np.float64) - ref.float().cpu().numpy())
    return float(diff.max()) if np.isfinite(diff).all() else float("inf")


_WARNED: set[str] = set()


def optimise(src: Path, dst: Path, num_heads: int, hidden_size: int) -> Path:
    """Fuse ``src`` with ONNX Runtime's transformer optimiser into ``dst``; return the file to use.

    A graph the optimiser cannot handle (not BERT-like, or an optimiser error) keeps the plain
    export: the numbers are the same, only slower, and a :class:`~cec.encode.PrecisionWarning`
    says so once per file and process.
    """
    tmp = atomic_target(dst)
    try:
        import_onnxruntime()  # telemetry off before onnxruntime.transformers loads it
        from onnxruntime.transformers.optimizer import optimize_model

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimize_model(
                str(src),
                model_type="bert",
                num_heads=num_heads,
                hidden_size=hidden_size,
                opt_level=1,
            )
            fused.save_model_to_file(str(tmp))
        durable_replace(tmp, dst)
        return dst
    except Exception as exc:  # noqa: BLE001 - any optimiser failure: keep the plain export
        tmp.unlink(missing_ok=True)
        if str(src) not in _WARNED:
            _WARNED.add(str(src))
            warnings.warn(
                f"precision onnx: ONNX Runtime's transformer optimiser failed on {src.name} "
                f"({type(exc).__name__}: {str(exc)[:200]}); using the unfused export instead "
                "(same numbers, slower)",
                PrecisionWarning,
                stacklevel=2,
            )
        return src


def _threads(encoder: Any) -> int:
    """Intra-op threads: the encoder's, else torch's setting where torch is loaded (a user's
    ``torch.set_num_threads`` is respected), else 0 (ONNX Runtime's default: one per core)."""
    if encoder.num_threads:
        return int(encoder.num_threads)
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else 0


class OnnxRunner:
    """Runs padded, pre-tokenised batches through an ONNX Runtime session (numpy in and out)."""

    def __init__(self, encoder: Any, *, quantize: bool = False, path: Path | None = None):
        ort = import_onnxruntime()

        self.path = export_onnx(encoder, quantize=quantize) if path is None else path
        self.device_type = encoder.device_type
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = _threads(encoder)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if self.device_type == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ValueError(cuda_provider_missing())
            providers = ["CUDAExecutionProvider"]  # no silent fall-back to the CPU
        self.session = ort.InferenceSession(str(self.path), opts, providers=providers)
        self.inputs = [i.name for i in self.session.get_inputs()]

    @classmethod
    def from_file(cls, path: Path, encoder: Any) -> OnnxRunner:
        """A runner on an exported file (no export, no model load)."""
        return cls(encoder, path=path)

    def __call__(self, features: dict[str, np.ndarray]) -> np.ndarray:
        feeds = {name: features[name] for name in self.inputs}
        (out,) = self.session.run(["embedding"], feeds)
        return out
