"""The PST semantic targets come from CEC's one embedding cache (cec.cache).

Real parts only: the embedded all-MiniLM-L6-v2, a second real model (the same weights with CLS
pooling, so a different embedding function), real SQLite files and a second Python process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from encoders import model_copy

import cec
from cec.cache import MemoryCache, SQLiteCache
from cec.encode import SentenceTransformerEncoder
from cec_distill.semantic import target_embeddings

RATIONALES = [
    "CO2 traps heat, so the planet warms.",
    "Melting ice raises the sea level.",
    "CO2 traps heat, so the planet warms.",  # repeated: embedded once
]


class Counting(cec.Encoder):
    """The real default model, counting what it is asked to encode."""

    def __init__(self, real: cec.Encoder):
        self.real, self.calls = real, []
        self.name, self.device = real.name, real.device

    @property
    def identity(self) -> str:
        return self.real.identity

    def _embed(self, sentences):
        self.calls.append(list(sentences))
        return self.real.encode(sentences)


def test_targets_are_read_back_by_a_later_run_from_the_sqlite_cache(scorer, tmp_path):
    path = tmp_path / "emb.sqlite"
    enc = Counting(scorer.encoder)
    first = target_embeddings(RATIONALES, enc, path)
    assert enc.calls == [RATIONALES[:2]]  # each distinct text once
    assert first.dtype == torch.float32 and first.device.type == "cpu"
    assert torch.equal(first[0], first[2])
    assert torch.allclose(first, scorer.encoder.encode(RATIONALES).cpu(), atol=1e-6)
    assert len(SQLiteCache(path)) == 2
    # a later run (another process) with a model that cannot encode: every vector is read back
    code = textwrap.dedent(
        f"""
        import cec, torch
        from cec_distill.semantic import target_embeddings
        class NoModel(cec.Encoder):
            name = {scorer.encoder.name!r}
            identity = {scorer.encoder.identity!r}
            def _embed(self, sentences):
                raise AssertionError("encoded " + repr(sentences))
        vecs = target_embeddings({RATIONALES!r}, NoModel(), {str(path)!r})
        torch.save(vecs, {str(tmp_path / "second.pt")!r})
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert torch.equal(torch.load(tmp_path / "second.pt"), first)  # the same bits


def test_the_scorer_and_the_targets_share_one_cache(scorer, tmp_path):
    """Vectors the scorer cached while scoring are the targets' vectors, and the other way."""
    path = tmp_path / "study.sqlite"
    cached = cec.CEC(model=scorer.encoder, cache=path)
    cached.score(["Melting ice raises the sea level."], ["The sea rises."])
    enc = Counting(scorer.encoder)
    target_embeddings(RATIONALES, enc, cached.cache)
    assert enc.calls == [[RATIONALES[0]]]  # the second rationale came from the scoring
    assert cached.cache.get(scorer.encoder.key, [RATIONALES[0]])[0].all()


def test_two_models_never_share_vectors_in_one_cache(scorer, tmp_path):
    cls = SentenceTransformerEncoder(
        str(model_copy(tmp_path, pooling={"pooling_mode_mean_tokens": False,
                                          "pooling_mode_cls_token": True})), torch.device("cpu"),
    )  # fmt: skip
    assert cls.key != scorer.encoder.key
    path = tmp_path / "shared.sqlite"
    mean_vecs = target_embeddings(RATIONALES, scorer.encoder, path)
    counting = Counting(cls)
    cls_vecs = target_embeddings(RATIONALES, counting, path)
    assert counting.calls == [RATIONALES[:2]]  # nothing read from the other model's rows
    assert torch.allclose(cls_vecs, cls.encode(RATIONALES).cpu(), atol=1e-6)
    assert not torch.allclose(cls_vecs, mean_vecs, atol=1e-2)
    assert len(SQLiteCache(path)) == 4
    # each model reads back its own vectors
    assert torch.equal(target_embeddings(RATIONALES, Counting(cls), path), cls_vecs)
    assert torch.equal(target_embeddings(RATIONALES, scorer, path), mean_vecs)


def test_memory_cache_and_no_cache_give_the_same_vectors(scorer):
    plain = target_embeddings(RATIONALES, scorer)
    mem = MemoryCache()
    assert torch.equal(target_embeddings(RATIONALES, scorer, mem), plain)
    assert len(mem) == 2
    assert target_embeddings([], scorer).shape == (0, 0)


def test_bad_arguments_are_refused_before_a_cache_file_is_made(tmp_path):
    anon = cec.CallableEncoder(lambda s: np.ones((len(s), 3)))
    path = tmp_path / "emb.sqlite"
    with pytest.raises(ValueError, match="cache: a persistent cache needs an encoder"):
        target_embeddings(["a"], anon, path)
    assert not path.exists()
    assert target_embeddings(["a", "b"], anon, "memory").shape == (2, 3)
    with pytest.raises(TypeError, match="encoder must be a cec.CEC or a cec.encode.Encoder"):
        target_embeddings(["a"], lambda s: np.ones((len(s), 3)))
    with pytest.raises(TypeError, match="texts must be a sequence of strings"):
        target_embeddings("a text", anon)
    with pytest.raises(TypeError, match="texts must be a sequence of strings"):
        target_embeddings(["a", None], anon)
