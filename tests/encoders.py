"""Test helpers: cheap deterministic encoders, the reference sentence-transformers model, and
edited copies of the default model folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import zlib
from pathlib import Path

import numpy as np

from cec.encode import default_model_dir


def hash_model(sentences: list[str]) -> np.ndarray:
    """Bag of signed hashed words -> 64-d vector (+ a constant so no row is zero).

    Same words give the same vector; word order does not matter; unrelated words rarely collide.
    """
    out = np.zeros((len(sentences), 64), dtype=np.float32)
    for row, sentence in enumerate(sentences):
        out[row, 63] = 0.5
        for word in re.findall(r"\w+", sentence.lower()):
            h = zlib.crc32(word.encode())
            out[row, h % 63] += 1.0 if (h >> 7) & 1 else -1.0
    return out


_ST_MODELS: dict[str, object] = {}


def sentence_transformer_of(encoder):
    """The encoder's model folder loaded by sentence-transformers itself, once per folder:
    an independent implementation to check cec's own loading and encoding path against."""
    from sentence_transformers import SentenceTransformer

    folder = str(encoder.local_dir())
    if folder not in _ST_MODELS:
        _ST_MODELS[folder] = SentenceTransformer(folder, device="cpu")
    return _ST_MODELS[folder]


def model_copy(where: Path, *, sbert: dict | None = None, pooling: dict | None = None) -> Path:
    """A copy of the default model folder (weights linked, configs copied), optionally edited.

    Copies are always named ``model`` so that only their contents can tell them apart.
    """
    src = default_model_dir()
    dst = where / "model"
    for path in src.rglob("*"):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            os.symlink(path, target)
        else:
            shutil.copy(path, target)
    for rel, changes in (("sentence_bert_config.json", sbert), ("1_Pooling/config.json", pooling)):
        if changes:
            cfg = json.loads((dst / rel).read_text())
            cfg.update(changes)
            (dst / rel).write_text(json.dumps(cfg))
    return dst
