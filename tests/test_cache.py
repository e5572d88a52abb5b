"""Embedding caches: exact round trips, LRU bound, SQLite shared by concurrent processes."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import cec
from cec.cache import (
    CacheError,
    CacheWarning,
    MemoryCache,
    SQLiteCache,
    encode_cached,
    resolve_cache,
)

KEY = "model@abcd|fp32"


def vec_of(sentence: str, dim: int = 8) -> np.ndarray:
    """A deterministic vector per sentence (what any writer of that sentence would store)."""
    seed = int.from_bytes(hashlib.sha256(sentence.encode()).digest()[:4], "little")
    return np.random.default_rng(seed).standard_normal(dim).astype(np.float32)


def test_memory_cache_round_trip_and_lru():
    cache = MemoryCache(max_items=3)
    cache.put(KEY, ["a", "b", "c"], np.stack([vec_of(s) for s in "abc"]))
    found, vecs = cache.get(KEY, ["a", "x"])  # touches "a": "b" is now the oldest
    assert found.tolist() == [True, False] and np.array_equal(vecs[0], vec_of("a"))
    cache.put(KEY, ["d"], vec_of("d")[None])
    assert len(cache) == 3
    assert cache.get(KEY, ["b"])[0].tolist() == [False]
    assert cache.get(KEY, ["a", "c", "d"])[0].all()
    assert not cache.get("other@key|fp32", ["a"])[0].any()  # keys never mix


def test_memory_cache_holds_only_its_rows_not_the_callers_array():
    """A kept vector must not pin the whole array it came from: the bound is a bound.

    Before the fix each stored row was a view of the encoded chunk, so one surviving sentence
    kept its chunk's whole array alive (the reuse buffer of a million-pair stream grew by
    megabytes per chunk).
    """
    import gc
    import tracemalloc

    cache = MemoryCache(max_items=2)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        for k in range(20):  # 20 chunks of 2,000 vectors (3 MB each); 2 rows survive
            chunk = np.random.default_rng(k).random((2000, 384), dtype=np.float32)
            cache.put("m", [f"c{k}s{i}" for i in range(2000)], chunk)
            del chunk
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert len(cache) == 2
    assert held < 200_000, f"the cache holds {held:,} bytes for 2 vectors of 384 floats"
    found, rows = cache.get("m", ["c19s1998", "c19s1999"])
    assert found.all() and rows.shape == (2, 384)


def test_sqlite_cache_returns_identical_bytes(tmp_path):
    path = tmp_path / "sub" / "emb.sqlite"
    cache = SQLiteCache(path)
    sents = [f"sentence {i} ünïcode ✓" for i in range(1200)]  # more than one SELECT batch
    vecs = np.stack([vec_of(s, 384) for s in sents])
    cache.put(KEY, sents, vecs)
    again = SQLiteCache(path)  # a fresh connection reads what was written
    found, got = again.get(KEY, [*reversed(sents), "absent"])
    assert found.tolist() == [True] * len(sents) + [False]
    assert got.dtype == np.float32 and np.array_equal(got, vecs[::-1])
    assert len(again) == len(sents)
    # first writer wins: a second put of the same sentence keeps the stored vector
    again.put(KEY, [sents[0]], np.zeros((1, 384), dtype=np.float32))
    assert np.array_equal(cache.get(KEY, [sents[0]])[1][0], vecs[0])
    # pickles as its path (for worker processes)
    clone = pickle.loads(pickle.dumps(cache))
    assert np.array_equal(clone.get(KEY, sents[:2])[1], vecs[:2])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _writer(path: str, start: int, rounds: int) -> None:
    cache = SQLiteCache(path, timeout=120)
    for r in range(rounds):
        # overlapping ranges: both processes write many of the same sentences at once
        sents = [f"s{i}" for i in range(start + 40 * r, start + 40 * r + 120)]
        cache.put(KEY, sents, np.stack([vec_of(s) for s in sents]))
        cache.get(KEY, sents[:50])


def test_sqlite_cache_survives_two_processes_writing_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite")
    SQLiteCache(path)  # create the schema first, as a study would
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, start, 25)) for start in (0, 60)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=180)
    assert [p.exitcode for p in procs] == [0, 0]
    expected = sorted(
        {f"s{i}" for s in (0, 60) for r in range(25) for i in range(s + 40 * r, s + 40 * r + 120)}
    )
    cache = SQLiteCache(path)
    assert len(cache) == len(expected)
    found, got = cache.get(KEY, expected)
    assert found.all()
    assert np.array_equal(got, np.stack([vec_of(s) for s in expected]))
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_encode_cached_encodes_only_missing(scorer):
    calls: list[list[str]] = []
    real = scorer.encoder

    class Counting(cec.Encoder):
        name, device = real.name, real.device
        identity = real.identity

        def _embed(self, sentences):
            calls.append(list(sentences))
            return real.encode(sentences)

    enc = Counting()
    cache = MemoryCache()
    first = encode_cached(enc, ["CO2 traps heat.", "Ice melts."], cache)
    second = encode_cached(enc, ["Ice melts.", "Seas rise.", "CO2 traps heat."], cache)
    assert calls == [["CO2 traps heat.", "Ice melts."], ["Seas rise."]]
    assert isinstance(first, np.ndarray) and isinstance(second, np.ndarray)  # CPU: numpy rows
    assert np.array_equal(second[0], first[1]) and np.array_equal(second[2], first[0])
    want = real.encode(["Ice melts.", "Seas rise.", "CO2 traps heat."]).numpy()
    np.testing.assert_allclose(second, want, rtol=0, atol=1e-6)
    assert (
        encode_cached(enc, ["Ice melts."], cache).shape == (1, first.shape[1]) and len(calls) == 2
    )


def test_scorer_with_disk_cache_gives_identical_scores_across_processes(scorer, tmp_path):
    path = tmp_path / "study.sqlite"
    gens = ["CO2 traps heat. The planet warms.", "Ice melts. Seas rise."]
    refs = ["The planet warms because CO2 traps heat.", "Seas rise as ice melts."]
    cached = cec.CEC(model=scorer.encoder, cache=path)
    first = cached.score(gens, refs)
    plain = scorer.score(gens, refs)
    assert np.allclose(first.sym, plain.sym, atol=1e-6)
    assert str(first.signature) == str(plain.signature)  # the cache does not change the score
    n_rows = len(SQLiteCache(path))
    assert n_rows == 6
    # another process reads the same file: every sentence is found, nothing is encoded there
    code = textwrap.dedent(
        f"""
        import numpy as np, cec
        from cec.cache import SQLiteCache
        class NoModel(cec.Encoder):
            name = {scorer.encoder.name!r}
            identity = {scorer.encoder.identity!r}
            truncation = {scorer.encoder.truncation!r}
            def _embed(self, sentences):
                raise AssertionError("encoded " + repr(sentences))
        s = cec.CEC(model=NoModel(), cache={str(path)!r})
        r = s.score({gens!r}, {refs!r})
        print(" ".join(repr(float(x)) for x in r.sym))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert [float(x) for x in out.stdout.split()] == [float(x) for x in first.sym]


def test_resolve_cache_options(tmp_path):
    assert resolve_cache(None) is None
    assert isinstance(resolve_cache("memory"), MemoryCache)
    assert isinstance(resolve_cache(tmp_path / "c.sqlite"), SQLiteCache)
    with pytest.raises(TypeError, match="cache must be"):
        resolve_cache(42)
    with pytest.raises(ValueError, match="directory"):
        SQLiteCache(tmp_path)
    with pytest.raises(ValueError, match="max_items"):
        MemoryCache(max_items=0)
    with pytest.raises(ValueError, match="vectors"):
        MemoryCache().put(KEY, ["a", "b"], np.zeros((3, 2), dtype=np.float32))


# --------------------------------------------------------------------------------------------
# every vector read is checked; a cache that cannot be used is one clear error (issue 24.6)
# --------------------------------------------------------------------------------------------
GENS = ["CO2 traps heat. The planet warms.", "Ice melts. Seas rise.", "Bananas are yellow."]
REFS = ["The planet warms because CO2 traps heat.", "Seas rise as ice melts.", "Stocks fell."]
ROOT = Path(__file__).resolve().parents[1]


def _rows_of(path: Path) -> list[tuple[bytes, int, bytes]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT hash, dim, vec FROM emb ORDER BY hash").fetchall()


def _set_row(path: Path, digest: bytes, dim: int, vec: bytes) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE emb SET dim = ?, vec = ? WHERE hash = ?", (dim, vec, digest))
    conn.close()


def test_bad_vectors_on_disk_are_computed_again_never_scored(scorer, tmp_path):
    path = tmp_path / "study.sqlite"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        cec.CEC(model=scorer.encoder, cache=path).score(GENS, REFS)
    want = scorer.score(GENS, REFS).sym
    rows = _rows_of(path)
    assert len(rows) == 8 and {r[1] for r in rows} == {384}
    rng = np.random.default_rng(0)
    other = rng.standard_normal(768).astype(np.float32)
    other /= np.linalg.norm(other)
    good = np.frombuffer(rows[5][2], dtype=np.float32)
    corrupt = [
        (384, rows[0][2][:700]),  # a truncated blob
        (768, other.tobytes()),  # another model's dimension (a unit vector)
        (384, np.zeros(384, np.float32).tobytes()),  # all zero
        (384, (2 * good).tobytes()),  # not unit length
        (384, good.astype(np.float64).tobytes()),  # float64 bytes under dim 384
        (192, good[:192].tobytes()),  # a consistent row of another dimension, not unit
    ]
    for (digest, _, _), (dim, vec) in zip(rows, corrupt, strict=False):
        _set_row(path, digest, dim, vec)
    with pytest.warns(CacheWarning, match=r"6 stored vector\(s\)"):
        got = cec.CEC(model=scorer.encoder, cache=path).score(GENS, REFS).sym
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    repaired = _rows_of(path)
    assert len(repaired) == 8 and {r[1] for r in repaired} == {384}
    for _, _, vec in repaired:
        v = np.frombuffer(vec, dtype=np.float32)
        assert v.shape == (384,) and abs(float(np.linalg.norm(v)) - 1) < 1e-5
    with warnings.catch_warnings():  # repaired: read back without a warning, same scores
        warnings.simplefilter("error", CacheWarning)
        again = cec.CEC(model=scorer.encoder, cache=path).score(GENS, REFS).sym
    np.testing.assert_allclose(again, want, rtol=0, atol=1e-6)
    # get() itself never raises on such rows: they read as not found
    _set_row(path, repaired[0][0], 384, b"\0" * 10)
    _set_row(path, repaired[1][0], 768, other.tobytes())
    found, vecs = SQLiteCache(path).get(KEY, ["x"])
    assert not found.any()


def test_vectors_all_of_another_dimension_are_replaced(scorer, tmp_path):
    """Rows that agree on a wrong dimension: the encoder's own dimension decides."""
    sents = ["Ice melts.", "Seas rise.", "Dogs bark."]
    want = scorer.encoder.encode_array(sents)
    first = SQLiteCache(tmp_path / "a.sqlite")
    first.put(scorer.encoder.key, sents[:2], np.eye(2, 8, dtype=np.float32))
    with pytest.warns(CacheWarning, match=r"2 stored vector\(s\).*dimension 384"):
        got = encode_cached(scorer.encoder, sents, first)  # one missing: encoded, 384
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    assert {r[1] for r in _rows_of(tmp_path / "a.sqlite")} == {384}
    second = SQLiteCache(tmp_path / "b.sqlite")  # every row found, the dimension known now
    second.put(scorer.encoder.key, sents, np.eye(3, 8, dtype=np.float32))
    with pytest.warns(CacheWarning, match=r"3 stored vector\(s\).*dimension 384"):
        got = encode_cached(scorer.encoder, sents, second)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)


def _cli(*args: str, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [*(wrap or []), "cec", "score", *args], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def pairs(tmp_path) -> Path:
    import json

    path = tmp_path / "pairs.jsonl"
    rows = [{"prediction": g, "reference": r} for g, r in zip(GENS, REFS, strict=True)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line


def test_cli_names_a_cache_file_that_is_not_sqlite_or_is_truncated(scorer, pairs, tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("these are my notes, not a cache\n" * 200)
    line = _one_error_line(_cli(str(pairs), "--cache", str(text), "-q"))
    assert line.startswith(f"cec: error: cache '{text}' is not a readable cec cache"), line
    assert "delete it" in line
    big = tmp_path / "big.sqlite"  # a real cache of many pages, cut to a third on disk
    cache = SQLiteCache(big)
    sents = [f"sentence {i}" for i in range(3000)]
    cache.put(scorer.encoder.key, sents, np.stack([vec_of(s, 384) for s in sents]))
    cache.close()
    with sqlite3.connect(big) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = big.read_bytes()
    big.write_bytes(data[: len(data) // 3])
    with pytest.raises(CacheError, match=f"cache '{big}' is not a readable"):
        encode_cached(scorer.encoder, sents[-50:], SQLiteCache(big))
    line = _one_error_line(_cli(str(pairs), "--cache", str(big), "-q"))
    assert f"cache '{big}'" in line and "delete it" in line, line


def test_cli_names_a_cache_on_a_read_only_mount(scorer, pairs, tmp_path):
    import shutil

    if shutil.which("unshare") is None:
        pytest.skip("needs unshare (a private read-only bind mount)")
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"unshare -rm is not allowed here: {probe.stderr.decode().strip()}")
    src, ro = tmp_path / "src", tmp_path / "ro"
    src.mkdir(), ro.mkdir()
    cache = SQLiteCache(src / "emb.sqlite")
    cache.put(scorer.encoder.key, ["Ice melts."], scorer.encoder.encode_array(["Ice melts."]))
    cache.close()
    mount = f'mount --bind {src} {ro} && mount -o remount,ro,bind {ro} && exec "$@"'
    wrap = ["unshare", "-rm", "sh", "-c", mount, "sh"]
    line = _one_error_line(_cli(str(pairs), "--cache", str(ro / "emb.sqlite"), "-q", wrap=wrap))
    # found by the output-path check before the model loads (cec.cli.outputs), one line naming it
    assert line.startswith("cec: error: ") and str(ro / "emb.sqlite") in line, line
    assert "cannot write" in line or "cannot be written" in line, line
