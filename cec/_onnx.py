"""ONNX Runtime path for :class:`cec.encode.SentenceTransformerEncoder` (``precision="onnx"``
or ``"onnx-int8"``).

The local sentence-transformers model (transformer + pooling) is exported once with
``torch.onnx.export``, offline, to ``<cache_dir>/onnx/<name>-<identity>/``; BERT-like graphs are
then fused by ONNX Runtime's transformer optimiser, and for ``onnx-int8`` the Linear weights are
quantised to int8 with ``onnxruntime.quantization.quantize_dynamic``. Files are written to a
temporary name and renamed, so concurrent processes never see half a file. Later runs reuse them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cec._files import atomic_target, cache_dir, durable_replace
from cec._warnings import PrecisionWarning
from cec.devices import cuda_provider_missing, import_onnxruntime
from cec.layout import transformer_config

__all__ = ["OnnxRunner", "export_onnx", "optimise", "cuda_provider_missing"]


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

    Args:
        encoder: A :class:`cec.encode.SentenceTransformerEncoder`.
        quantize: Also write (and return) the dynamic-int8 model.
    """
    folder = model_dir(encoder)
    fp32 = folder / "model.onnx"
    opt = folder / "model-opt.onnx"
    int8 = folder / "model-int8.onnx"
    names = encoder._input_names()
    if not fp32.is_file():
        import_onnxruntime()  # telemetry off, in case the exporter loads onnxruntime itself
        import torch

        model = encoder.model
        seq = 16
        dummy = tuple(torch.ones((2, seq), dtype=torch.long) for _ in names)
        tmp = atomic_target(fp32)
        axes = {n: {0: "batch", 1: "seq"} for n in names}
        axes["embedding"] = {0: "batch"}
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
        model.to(encoder.device)
    if not opt.is_file():
        cfg = transformer_config(encoder.model)
        opt = optimise(fp32, opt, int(cfg.num_attention_heads), int(cfg.hidden_size))
    if not quantize:
        return opt
    if not int8.is_file():
        import onnx

        import_onnxruntime()  # telemetry off before onnxruntime.quantization loads it
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = atomic_target(int8)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(
                str(opt),
                str(tmp),
                weight_type=QuantType.QInt8,
                per_channel=True,
                extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
            )
        durable_replace(tmp, int8)
    return int8


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
