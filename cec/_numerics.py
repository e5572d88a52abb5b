"""Pinned full-fp32 matrix products, whatever the host process chose.

A process that called ``torch.set_float32_matmul_precision("high")`` (or set
``torch.backends.cuda.matmul.allow_tf32``) lets float32 matrix products run in TF32 on CUDA or
in bf16/TF32 through oneDNN on CPUs that have it: about three significant digits instead of
seven. cec's ``fp32`` path promises full fp32, so the encoder's forward pass and the similarity
kernel run inside :func:`full_fp32`, which pins IEEE fp32 products for its duration and gives the
process its own setting back afterwards (reference-counted, so threads that overlap restore it
once, at the end of the last one). torch is imported when the block is entered, not before.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["full_fp32", "matmul_precision_state"]

_lock = threading.Lock()
_depth = 0
_saved: Any = None


def _backends() -> list[Any]:
    """The matmul back-ends with a per-backend fp32 precision (torch >= 2.9), else []."""
    import torch

    found = []
    for path in (("cuda", "matmul"), ("mkldnn", "matmul")):
        obj: Any = torch.backends
        for part in path:
            obj = getattr(obj, part, None)
        if obj is not None and hasattr(obj, "fp32_precision"):
            found.append(obj)
    return found


def matmul_precision_state() -> tuple[str, ...]:
    """The fp32 precision of each matmul back-end now (``ieee``/``none`` mean full fp32)."""
    import torch

    backends = _backends()
    if backends:
        return tuple(str(b.fp32_precision) for b in backends)
    return (torch.get_float32_matmul_precision(), str(torch.backends.cuda.matmul.allow_tf32))


def _pin() -> Any:
    import torch

    backends = _backends()
    if backends:
        saved = [(b, b.fp32_precision) for b in backends]
        for b in backends:
            b.fp32_precision = "ieee"
        return saved
    saved = (torch.get_float32_matmul_precision(), torch.backends.cuda.matmul.allow_tf32)
    torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    return saved


def _restore(saved: Any) -> None:
    import torch

    if isinstance(saved, list):
        for backend, value in saved:
            backend.fp32_precision = value
        return
    torch.set_float32_matmul_precision(saved[0])
    torch.backends.cuda.matmul.allow_tf32 = saved[1]


@contextlib.contextmanager
def full_fp32() -> Iterator[None]:
    """Run the block with IEEE fp32 matrix products (no TF32, no bf16 down-conversion).

    Examples:
        >>> import torch
        >>> torch.set_float32_matmul_precision("high")
        >>> with full_fp32():
        ...     pinned = matmul_precision_state()
        >>> set(pinned) <= {"ieee", "highest", "False"}
        True
        >>> torch.set_float32_matmul_precision("highest")
    """
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = _pin()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore(_saved)
                _saved = None
