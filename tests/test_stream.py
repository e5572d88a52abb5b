"""Streaming: score_iter gives in-memory scores, reads lazily, reuses embeddings across chunks."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import cec
from cec.cache import SQLiteCache

CLAIMS = 12


def climate_pairs(shared_data, n_claims=CLAIMS):
    """Explanation-shaped pairs from Climate-FEVER: evidence sets vs. claim + some evidence."""
    pairs = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for line in itertools.islice(fh, n_claims):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            pairs.append((rec["claim"] + " " + " ".join(ev[:2]), " ".join(ev)))
            pairs.append((" ".join(ev[3:]), [" ".join(ev[:3]), rec["claim"]]))  # two references
    return pairs


class Counting(cec.Encoder):
    """The real encoder, counting the sentences it is asked to encode."""

    def __init__(self, real):
        self.real, self.name, self.device = real, real.name, real.device
        self.count = 0

    @property
    def weights_hash(self):
        return self.real.weights_hash

    def _embed(self, sentences):
        self.count += len(sentences)
        return self.real.encode(sentences)


def test_score_iter_equals_in_memory_scores(scorer, shared_data):
    pairs = climate_pairs(shared_data)
    whole = scorer.score([g for g, _ in pairs], [r for _, r in pairs])
    for chunk_size, reuse in ((5, 0), (5, 32768), (1000, 32768)):
        streamed = list(scorer.score_iter(iter(pairs), chunk_size=chunk_size, reuse=reuse))
        assert len(streamed) == len(pairs)
        assert np.allclose([p.sym for p in streamed], whole.sym, atol=1e-6)
        assert np.allclose([p.forward for p in streamed], whole.forward, atol=1e-6)
        assert np.allclose([p.backward for p in streamed], whole.backward, atol=1e-6)
        assert [p.best_ref for p in streamed] == whole.best_ref.tolist()


def test_score_iter_reads_lazily(scorer):
    consumed = []

    def source():
        for i in itertools.count():  # an endless stream
            consumed.append(i)
            yield (f"Claim {i} is about heat.", "Heat is the topic.")

    stream = scorer.score_iter(source(), chunk_size=5)
    first = list(itertools.islice(stream, 7))
    assert len(first) == 7 and len(consumed) <= 10  # two chunks read, not the whole stream


def test_reuse_encodes_each_sentence_once_across_chunks(scorer, shared_data):
    pairs = climate_pairs(shared_data, 8) * 3  # every sentence recurs in later chunks
    distinct = {
        s
        for g, r in pairs
        for t in [g, *([r] if isinstance(r, str) else r)]
        for s in scorer.segment(t)
    }
    fresh = Counting(scorer.encoder)
    s = cec.CEC(model=fresh)
    list(s.score_iter(pairs, chunk_size=6, reuse=100_000))
    assert fresh.count == len(distinct)
    none = Counting(scorer.encoder)
    list(cec.CEC(model=none).score_iter(pairs, chunk_size=6, reuse=0))
    assert none.count > len(distinct)  # without reuse, chunks re-encode shared sentences


def test_score_iter_with_disk_cache_encodes_once_across_runs(scorer, shared_data, tmp_path):
    pairs = climate_pairs(shared_data, 6)
    path = tmp_path / "emb.sqlite"
    first_enc = Counting(scorer.encoder)
    first = [p.sym for p in cec.CEC(model=first_enc, cache=path).score_iter(pairs, chunk_size=6)]
    second_enc = Counting(scorer.encoder)
    second = [p.sym for p in cec.CEC(model=second_enc, cache=path).score_iter(pairs, chunk_size=4)]
    assert first_enc.count == len(SQLiteCache(path)) > 0
    assert second_enc.count == 0 and first == second


def test_score_iter_bad_arguments(scorer):
    with pytest.raises(ValueError, match="chunk_size"):
        list(scorer.score_iter([], chunk_size=0))
    with pytest.raises(ValueError, match="reuse"):
        list(scorer.score_iter([], reuse=-1))
    with pytest.raises(TypeError, match=r"pairs: item 2"):
        list(scorer.score_iter([("a.", "b."), ("c.", "d."), "oops"], chunk_size=2))


def test_cli_streams_with_a_cache_file(scorer, shared_data, tmp_path):
    """`cec score --cache PATH --precision fp32` scores a file incrementally into JSONL rows
    equal to in-memory scoring, and fills the shared cache."""
    import os
    import subprocess
    import sys

    pairs = climate_pairs(shared_data, 5)
    pairs = [(g, r if isinstance(r, str) else r[0]) for g, r in pairs]
    with open(tmp_path / "items.jsonl", "w", encoding="utf-8") as fh:
        for g, r in pairs:
            fh.write(json.dumps({"prediction": g, "reference": r}) + "\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        "-m",
        "cec.cli",
        "score",
        "items.jsonl",
        "--format",
        "jsonl",
        "-o",
        "rows.jsonl",
        "--cache",
        "emb.sqlite",
        "--precision",
        "fp32",
        "--chunk-size",
        "3",
        "--quiet",
        "--device",
        "cpu",
    ]
    run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    expected = scorer.score([g for g, _ in pairs], [r for _, r in pairs])
    assert np.allclose([r["sym"] for r in rows], expected.sym, atol=1e-6)
    assert "prec:fp32" in run.stdout
    distinct = {s for g, r in pairs for s in (*scorer.segment(g), *scorer.segment(r))}
    assert len(SQLiteCache(tmp_path / "emb.sqlite")) == len(distinct)
    bad = subprocess.run(
        [*cmd[:-2], "--precision", "fp64"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and "precision" in bad.stderr
