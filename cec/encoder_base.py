"""The encoder interface: sentences -> unit rows, and an encoder around any callable.

:class:`Encoder` is what the scorer calls: :meth:`~Encoder.encode_array` gives numpy rows on the
CPU (torch is never imported for them) and torch tensors on another device;
:meth:`~Encoder.encode` always gives a torch tensor. A subclass implements ``_embed``.
:class:`CallableEncoder` wraps any ``fn(list[str]) -> array [n, d]``. Both are importable from
:mod:`cec.encode`, with the sentence-transformers encoder and :func:`cec.encode.resolve_encoder`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cec.devices import device_name, device_type

if TYPE_CHECKING:
    import torch

__all__ = ["CallableEncoder", "Encoder"]


class Encoder:
    """Base class: turns sentences into L2-normalised float32 rows on :attr:`device`.

    Subclasses implement :meth:`_embed` (returning a numpy array or a torch tensor). Attributes
    used by the signature and the caches: :attr:`name`, :attr:`identity` (short hex of
    everything that defines the vectors; may be empty), :attr:`truncation` (token window,
    ``None`` if unknown), :attr:`precision`. A subclass whose vectors depend on more than its
    name must override :attr:`identity`.
    """

    name: str = "encoder"
    precision: str = "fp32"
    #: True when the encoder cannot say what it computes (a callable without a name): its
    #: vectors are never shared with another encoder and a persistent cache refuses it.
    anonymous: bool = False
    _device: str = "cpu"

    @property
    def device(self) -> torch.device:
        """Where the vectors live, as a ``torch.device`` (reading it imports torch)."""
        import torch

        return torch.device(self._device)

    @device.setter
    def device(self, value: str | torch.device) -> None:
        self._device = str(value)

    @property
    def device_type(self) -> str:
        """``"cpu"``, ``"cuda"``...: the type of :attr:`device`, known without importing torch."""
        if type(self).device is Encoder.device:  # not overridden: the stored name
            return device_type(self._device)
        return str(self.device.type)

    @property
    def weights_hash(self) -> str:
        """Short sha256 of the weights file alone ("" when there is none)."""
        return ""

    @property
    def identity(self) -> str:
        """Short hash of everything that defines the embedding function (default: weights)."""
        return self.weights_hash

    @property
    def truncation(self) -> int | None:
        """Most tokens per sentence the encoder reads (``None``: unknown or no limit)."""
        return None

    @property
    def key(self) -> str:
        """Identity of the embedding function, for caches: name, identity hash and precision."""
        return f"{self.name}@{self.identity}|{self.precision}"

    def _embed(self, sentences: list[str]) -> Any:
        raise NotImplementedError

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """Embed sentences; rows are unit vectors (a zero vector stays zero).

        Args:
            sentences: Sentences to encode, in order.

        Returns:
            Tensor ``[len(sentences), d]`` float32 on :attr:`device`.
        """
        import torch

        out = self.encode_array(sentences)
        return torch.from_numpy(out) if isinstance(out, np.ndarray) else out

    def encode_array(self, sentences: Sequence[str]) -> Any:
        """:meth:`encode` in the array type the scorer computes with: a numpy array when
        :attr:`device` is the CPU (torch is not imported when the encoder does not need it),
        a torch tensor on :attr:`device` otherwise.

        Returns:
            Unit rows ``[len(sentences), d]``, float32.
        """
        sentences = list(sentences)
        cpu = self.device_type == "cpu"
        if type(self).encode is not Encoder.encode:  # a subclass that overrides encode itself
            return _native(self.encode(sentences), cpu)
        if not sentences:
            empty = np.zeros((0, 0), dtype=np.float32)
            return empty if cpu else _native(empty, cpu, self.device)
        emb = self._embed(sentences)
        shape = tuple(getattr(emb, "shape", ()))
        if len(shape) != 2 or shape[0] != len(sentences):
            raise ValueError(
                f"model: the encoder returned shape {shape} for {len(sentences)} "
                "sentences; expected [n_sentences, dim]"
            )
        if cpu and isinstance(emb, np.ndarray):
            emb = emb.astype(np.float32, copy=False)
            # as torch.nn.functional.normalize(p=2, eps=1e-12): x / max(||x||, eps)
            norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float32))[:, None]
            return emb / np.maximum(norms, np.float32(1e-12))
        import torch

        emb = torch.as_tensor(emb).to(device=self.device, dtype=torch.float32)
        return _native(torch.nn.functional.normalize(emb, p=2, dim=1, eps=1e-12), cpu)


def _native(x: Any, cpu: bool, device: Any = None) -> Any:
    """``x`` as :meth:`Encoder.encode_array` returns it: numpy on the CPU, else torch on
    ``device`` (where ``x`` is a numpy array)."""
    if cpu:
        if isinstance(x, np.ndarray):
            return x.astype(np.float32, copy=False)
        return x.detach().to("cpu").float().numpy()
    if isinstance(x, np.ndarray):
        import torch

        return torch.from_numpy(x.astype(np.float32, copy=False)).to(device)
    return x


class CallableEncoder(Encoder):
    """Wraps any ``fn(list[str]) -> array-like [n, d]`` (numpy, torch, lists).

    Args:
        fn: The embedding function.
        device: Where the vectors go (default: CPU).
        name: A name that identifies ``fn`` (shown in the signature). Without one the encoder
            is anonymous: the signature says ``custom:<qualname>``, its vectors are never
            shared with another encoder, and a persistent cache refuses it.
        version: What distinguishes this version of ``fn`` from others of the same name
            (shown after ``@`` in the signature and part of the cache key).

    Examples:
        >>> import numpy as np
        >>> enc = CallableEncoder(lambda s: np.ones((len(s), 3)), name="ones", version="1")
        >>> enc.key, enc.anonymous
        ('ones@1|fp32', False)
    """

    def __init__(
        self,
        fn: Callable[[list[str]], Any],
        device: str | torch.device | None = "cpu",
        name: str | None = None,
        *,
        version: str | None = None,
    ):
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        for arg, value in (("name", name), ("version", version)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{arg} must be a non-empty string or None, got {value!r}")
        if version is not None and name is None:
            raise ValueError("version: give a name too (name=..., version=...)")
        self.fn = fn
        self.device = device_name(device)
        self.anonymous = name is None
        self.name = name or f"custom:{getattr(fn, '__qualname__', type(fn).__name__)}"
        self.version = version or ""
        # an anonymous callable's vectors are its own: a per-instance token in the cache key
        self._instance = uuid.uuid4().hex[:12] if self.anonymous else ""

    @property
    def identity(self) -> str:
        return self.version

    @property
    def key(self) -> str:
        base = super().key
        return f"{base}#anonymous-{self._instance}" if self.anonymous else base

    def _embed(self, sentences: list[str]) -> Any:
        out = self.fn(sentences)
        if type(out).__module__.startswith("torch") and hasattr(out, "detach"):
            return out.detach()
        return np.asarray(out, dtype=np.float32)
