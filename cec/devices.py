"""Devices and precisions: where an encoder runs and which numeric path it takes.

Nothing here imports torch unless it has to: the CPU, asked for by name or picked by default on
a machine with no GPU driver, is known without it (a fresh process that scores on the CPU from
the fast-start copy, :mod:`cec._fast`, never loads torch). Any other device is checked by torch.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "import_onnxruntime",
    "PRECISIONS",
    "check_precision",
    "cpu_features",
    "cuda_available",
    "device_name",
    "device_type",
    "resolve_device",
]

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "onnx", "onnx-int8")
# device nodes of the GPU drivers torch.cuda can use (NVIDIA, ROCm, WSL)
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")


def cuda_available() -> bool:
    """``torch.cuda.is_available()``, without importing torch where no GPU driver exists.

    On Linux with none of the NVIDIA, ROCm or WSL device nodes, and on macOS, torch could not
    find a CUDA device either, so the answer is ``False`` at no cost; anywhere else (or when
    torch is already imported) torch is asked.
    """
    if "torch" not in sys.modules:
        if sys.platform == "darwin":
            return False
        if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_NODES):
            return False
    import torch

    return bool(torch.cuda.is_available())


def device_name(device: Any) -> str:
    """The canonical name of ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``...).

    ``None`` picks CUDA when available, else the CPU (see :func:`cuda_available`). Only a
    device other than the CPU is checked by torch.

    Raises:
        ValueError: ``device`` is not a device torch knows, or CUDA was asked for and is absent.
    """
    if device is None:
        return "cuda" if cuda_available() else "cpu"
    if isinstance(device, str) and device.strip() == "cpu":
        return "cpu"
    return str(resolve_device(device))


def device_type(device: Any) -> str:
    """``"cpu"``/``"cuda"``/...: the type of a device name or a ``torch.device``."""
    kind = getattr(device, "type", None)
    return kind if isinstance(kind, str) else str(device).split(":", 1)[0]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; otherwise the device given.

    Raises:
        ValueError: ``device`` is not a device torch knows, or CUDA was asked for and is absent.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available here")
    return dev


@lru_cache(maxsize=1)
def cpu_features() -> dict[str, bool]:
    """What this CPU offers for the fast paths: AVX2, AVX-512, VNNI, native bf16, AMX.

    Read from ``/proc/cpuinfo`` where it exists (Linux), else from torch's CPU capability.
    """
    flags: set[str] = set()
    with (
        contextlib.suppress(OSError),
        open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh,
    ):
        for line in fh:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    cap = ""
    if not flags:  # no /proc/cpuinfo (not Linux): ask torch
        import torch

        cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    return {
        "avx2": "avx2" in flags or cap.startswith(("AVX2", "AVX512")),
        "avx512": "avx512f" in flags or cap.startswith("AVX512"),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}) or "BF16" in cap or "AMX" in cap,
        "amx": bool(flags & {"amx_tile", "amx_bf16", "amx_int8"}) or "AMX" in cap,
    }


def cuda_provider_missing() -> str:
    """The error for ``precision='onnx'`` on CUDA when ONNX Runtime has no CUDA provider."""
    return (
        "precision: 'onnx' on a CUDA device needs ONNX Runtime's CUDAExecutionProvider "
        "(pip install onnxruntime-gpu), which this ONNX Runtime lacks; use precision='fp32' or "
        "'fp16' on CUDA, or device='cpu'"
    )


def check_precision(precision: Any, device: Any) -> str:
    """Validate ``precision`` for ``device`` (a name or ``torch.device``; before anything loads).

    Raises:
        ValueError: Unknown precision, a CUDA-only path on CPU or a CPU-only path on CUDA, or
            ONNX Runtime missing for an ``onnx`` path.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    kind = device_type(device)
    if precision == "fp16" and kind != "cuda":
        raise ValueError("precision: 'fp16' needs a CUDA device; on CPU use 'bf16' or 'int8'")
    if precision in ("int8", "onnx-int8") and kind != "cpu":
        raise ValueError(f"precision: {precision!r} is a CPU path; on {kind} use 'fp16' or 'bf16'")
    if precision == "onnx" and kind not in ("cpu", "cuda"):
        raise ValueError(f"precision: 'onnx' runs on CPU or CUDA, not {kind}")
    if precision.startswith("onnx") and importlib.util.find_spec("onnxruntime") is None:
        raise ValueError(f'precision: {precision!r} needs ONNX Runtime (pip install ".[onnx]")')
    if precision == "onnx" and kind == "cuda":
        onnxruntime = import_onnxruntime()
        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError(cuda_provider_missing())
    return precision


def import_onnxruntime() -> Any:
    """``import onnxruntime`` with its telemetry off, unless the user set ``ORT_DISABLE_TELEMETRY``.

    On import, ONNX Runtime (1.2x and later on Linux) starts Microsoft's 1DS telemetry client,
    which writes a device id and an event store to
    ``~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}``
    (``$XDG_CACHE_HOME`` if set) on every run. ``ORT_DISABLE_TELEMETRY=1``, read once when the
    library loads, turns that client off; it is set for the import only (the process keeps the
    user's environment). Where onnxruntime was imported before cec, it is too late: see
    docs/performance.md.
    """
    if sys.modules.get("onnxruntime") is not None:
        return sys.modules["onnxruntime"]
    key = "ORT_DISABLE_TELEMETRY"
    if key in os.environ:
        import onnxruntime

        return onnxruntime
    os.environ[key] = "1"
    try:
        import onnxruntime
    finally:
        os.environ.pop(key, None)
    return onnxruntime
