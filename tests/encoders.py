"""Cheap deterministic encoders for tests that need many embeddings but not a real model."""

from __future__ import annotations

import re
import zlib

import numpy as np


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
