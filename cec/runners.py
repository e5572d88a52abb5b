"""Precision runners: the forward pass of a loaded model for each numeric path.

A runner maps one padded, pre-tokenised batch (``input_ids``, ``attention_mask`` and maybe
``token_type_ids``, numpy ``int64``) to its sentence embeddings. :func:`build_runner` makes the
one of a :class:`~cec.encode.SentenceTransformerEncoder`'s precision:

- ``"fp32"``: the torch model in IEEE fp32 (:func:`cec._numerics.full_fp32`).
- ``"bf16"`` / ``"fp16"``: the same model under ``torch.autocast``.
- ``"int8"``: dynamic int8 quantisation of the attention projections (``torch.ao``).
- ``"onnx"`` / ``"onnx-int8"``: ONNX Runtime on an export of the model (:mod:`cec._onnx`).

:func:`load_model` loads the fp32 model itself: a plain folder with transformers alone
(:class:`cec.hf_model.PooledTransformer`), anything else through sentence-transformers. torch is
imported here only when a function is called: the fast start (:mod:`cec._fast`) never calls them.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

from cec._numerics import full_fp32
from cec._onnx import OnnxRunner
from cec._warnings import PrecisionWarning
from cec.devices import cpu_features
from cec.layout import plain_layout

__all__ = ["build_runner", "load_model", "quiet_logger", "torch_threads"]

Runner = Callable[[dict[str, Any]], Any]


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Hold a third-party logger at ERROR inside the block, unless the user configured it."""
    log = logging.getLogger(name)
    if log.level != logging.NOTSET or log.handlers:
        yield
        return
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(logging.NOTSET)


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block (``None``: leave torch's setting alone)."""
    if n is None:
        yield
        return
    import torch

    if n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_model(encoder: Any) -> Any:
    """The fp32 model of ``encoder`` (a :class:`~cec.encode.SentenceTransformerEncoder`).

    A plain folder (transformer, pooling, normalise) loads with transformers alone
    (:mod:`cec.hf_model`); anything else through sentence-transformers. Both map features to
    ``{"sentence_embedding": ...}`` and have ``tokenizer`` and ``max_seq_length``.
    """
    from transformers.utils import logging as hf_logging

    folder = encoder.local_dir()
    layout = plain_layout(folder) if folder is not None else None
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
    try:
        if layout is not None:
            from cec.hf_model import PooledTransformer

            model = PooledTransformer(folder, layout, encoder.device)
        else:
            with quiet_logger("bitsandbytes"):  # its CPU-kernel notice, via transformers->peft
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(encoder.path_or_name, device=str(encoder.device))
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model.eval()
    return model


def _int8_model(model: Any) -> Any:
    """A copy of ``model`` with its square Linear layers dynamically quantised to int8."""
    import copy

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # per-channel weight scales, on the square Linear layers only (the attention
        # projections: Q, K, V and output). The FFN layers stay fp32: quantising their
        # inputs with one dynamic scale per batch loses the outlier features, and the
        # STS-B Spearman change grows from 0.000 to -0.003..-0.007 depending on how
        # sentences fall into batches (docs/performance.md).
        spec = {
            name: per_channel_dynamic_qconfig
            for name, mod in model.named_modules()
            if isinstance(mod, torch.nn.Linear) and mod.in_features == mod.out_features
        }
        net = quantize_dynamic(copy.deepcopy(model), spec, dtype=torch.qint8)
    net.eval()
    return net


def build_runner(encoder: Any) -> Runner:
    """The forward function of ``encoder``'s precision on its loaded model.

    ONNX runners return numpy arrays, torch runners tensors on the encoder's device.
    """
    prec = encoder.precision
    if prec.startswith("onnx"):
        return OnnxRunner(encoder, quantize=prec == "onnx-int8")
    import torch

    model = encoder.model
    device = encoder.device
    net = _int8_model(model) if prec == "int8" else model
    autocast: Callable[[], Any] = contextlib.nullcontext
    if prec in ("bf16", "fp16"):
        dtype = torch.bfloat16 if prec == "bf16" else torch.float16
        if device.type == "cpu" and not cpu_features()["bf16"]:
            warnings.warn(
                "precision='bf16': this CPU has no native bfloat16 (no AVX512-BF16 or AMX), "
                "so bf16 is emulated and slower than fp32 here",
                PrecisionWarning,
                stacklevel=7,
            )

        def autocast() -> Any:
            return torch.autocast(device_type=device.type, dtype=dtype)

    def run(features: dict[str, Any]) -> Any:
        feats = {k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in features.items()}
        # fp32 means IEEE fp32 even if the process allowed TF32/bf16 matmuls (cec._numerics)
        with torch.inference_mode(), full_fp32(), autocast(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # quantised-tensor deprecation notices
            return net(feats)["sentence_embedding"]

    return run
