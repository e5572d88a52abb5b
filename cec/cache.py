"""Embedding caches: keep sentence embeddings across calls, runs and processes.

Reference explanations are shared by every student model of a study, so encoding them once and
reading them back is the cheapest speed-up there is. A cache maps ``(encoder key, sentence)`` to
the float32 unit vector the encoder produced; the encoder key (:attr:`cec.encode.Encoder.key`)
holds the model name, a hash of its weights and the numeric path (``fp32``, ``int8``...), so
vectors from different models or precisions never mix.

Two kinds:

- :class:`MemoryCache`: a dict in this process, optionally bounded (least recently used out).
- :class:`SQLiteCache`: one SQLite file in WAL mode. Safe to share between runs, threads and
  processes on one machine: readers never block, writers take turns (``busy_timeout``), and a
  sentence written twice keeps its first vector (``INSERT OR IGNORE``), so concurrent writers of
  the same sentences cannot corrupt or disagree. Vectors are stored as raw float32 bytes, so a
  read returns exactly the bits that were written. Not for network file systems (NFS), where
  SQLite's locks are unreliable: give each node its own file there.

Examples:
    >>> import numpy as np
    >>> cache = MemoryCache()
    >>> cache.put("m@1|fp32", ["a", "b"], np.eye(2, dtype=np.float32))
    >>> found, vecs = cache.get("m@1|fp32", ["b", "c"])
    >>> found.tolist(), vecs[0].tolist()
    ([True, False], [0.0, 1.0])
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cec._checks import check_positive_int

__all__ = [
    "CacheError",
    "CacheWarning",
    "EmbeddingCache",
    "MemoryCache",
    "SQLiteCache",
    "resolve_cache",
    "encode_cached",
]

#: How far from 1 the norm of a cached vector may be (float32 rounding is ~1e-7).
UNIT_TOLERANCE = 1e-3


class CacheError(ValueError):
    """A cache that cannot be used: the message names its path and what to do."""


class CacheWarning(UserWarning):
    """Vectors read from a cache were unusable and were recomputed."""


class EmbeddingCache:
    """Interface: ``get`` what is known, ``put`` what was computed.

    Attributes:
        persistent: The vectors outlive the scorer that wrote them (a file, a server), so only
            an encoder with a stable identity may use it (an anonymous callable is refused).
            True unless a subclass says otherwise.
    """

    persistent: bool = True

    def get(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Look sentences up.

        Args:
            key: The encoder key (see :attr:`cec.encode.Encoder.key`).
            sentences: Sentences to look up.

        Returns:
            ``(found, vectors)``: a boolean mask over ``sentences`` and a float32 array
            ``[found.sum(), d]`` with the vectors of the found ones, in order.
        """
        raise NotImplementedError

    def put(self, key: str, sentences: Sequence[str], vectors: np.ndarray) -> None:
        """Store vectors ``[len(sentences), d]`` (float32) for sentences under ``key``."""
        raise NotImplementedError

    def discard(self, key: str, sentences: Sequence[str]) -> None:
        """Forget the vectors of ``sentences`` under ``key`` (unusable ones, to store again)."""

    def _rows(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``get`` as a mask and a list of the found rows, each as stored (not yet checked)."""
        found, vectors = self.get(key, sentences)
        return found, list(np.asarray(vectors)) if int(np.count_nonzero(found)) else []

    def __len__(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (a no-op for memory caches)."""


class MemoryCache(EmbeddingCache):
    """Embeddings in a dict, in this process only.

    Args:
        max_items: Keep at most this many vectors (least recently used go first); ``None`` for
            no bound.
    """

    persistent = False

    def __init__(self, max_items: int | None = None):
        self.max_items = check_positive_int(max_items, "max_items", none_ok=True)
        self._data: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return _one_dimension(*self._rows(key, sentences))

    def _rows(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        found = np.zeros(len(sentences), dtype=bool)
        rows: list[np.ndarray] = []
        with self._lock:
            for i, s in enumerate(sentences):
                vec = self._data.get((key, s))
                if vec is not None:
                    found[i] = True
                    rows.append(vec)
                    if self.max_items is not None:
                        self._data.move_to_end((key, s))
        return found, rows

    def discard(self, key: str, sentences: Sequence[str]) -> None:
        with self._lock:
            for s in sentences:
                self._data.pop((key, s), None)

    def put(self, key: str, sentences: Sequence[str], vectors: np.ndarray) -> None:
        vectors = _check_vectors(sentences, vectors)
        with self._lock:
            for s, v in zip(sentences, vectors, strict=True):
                # a copy: a view would keep the caller's whole array alive while this row is
                self._data[(key, s)] = v.copy()
                if self.max_items is not None:
                    self._data.move_to_end((key, s))
            if self.max_items is not None:
                while len(self._data) > self.max_items:
                    self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"MemoryCache(items={len(self)}, max_items={self.max_items})"


def _stack(rows: list[np.ndarray]) -> np.ndarray:
    if not rows:
        return np.zeros((0, 0), dtype=np.float32)
    return np.stack(rows).astype(np.float32, copy=False)


_BROKEN = np.zeros(0, dtype=np.float32)
_DIMS: dict[
    str, int
] = {}  # encoder key -> the dimension its vectors had in this process  # a stored row that is no vector at all


def _one_dimension(found: np.ndarray, rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """``(found, vectors)`` for :meth:`EmbeddingCache.get`: broken rows, and rows of another
    dimension than the most common one, are reported as not found (one key, one dimension)."""
    if any(r.size == 0 for r in rows):
        keep = np.asarray([r.size > 0 for r in rows], dtype=bool)
        found = found.copy()
        found[np.flatnonzero(found)[~keep]] = False
        rows = [r for r in rows if r.size > 0]
    if rows and len({r.shape for r in rows}) > 1:
        shapes = [r.shape for r in rows]
        common = max(set(shapes), key=shapes.count)
        keep = [r.shape == common for r in rows]
        found = found.copy()
        found[np.flatnonzero(found)[~np.asarray(keep)]] = False
        rows = [r for r, k in zip(rows, keep, strict=True) if k]
    return found, _stack(rows)


def _usable(rows: list[Any]) -> list[bool]:
    """Which cached rows the scorer may use: 1-D float32, finite, of unit norm."""
    ok = [
        isinstance(r, np.ndarray) and r.ndim == 1 and r.dtype == np.float32 and r.size > 0
        for r in rows
    ]
    by_dim: dict[int, list[int]] = {}
    for k, r in enumerate(rows):
        if ok[k]:
            by_dim.setdefault(r.shape[0], []).append(k)
    for ks in by_dim.values():  # one vectorised norm per dimension
        block = np.stack([rows[k] for k in ks]).astype(np.float64)
        with np.errstate(all="ignore"):
            norms = np.sqrt(np.einsum("ij,ij->i", block, block))
        unit = np.isfinite(block).all(axis=1) & (np.abs(norms - 1.0) <= UNIT_TOLERANCE)
        for k, u in zip(ks, unit.tolist(), strict=True):
            ok[k] = u
    return ok


def _check_vectors(sentences: Sequence[str], vectors: Any) -> np.ndarray:
    if not isinstance(vectors, np.ndarray) and hasattr(vectors, "detach"):  # a torch tensor
        vectors = vectors.detach().to("cpu").float().numpy()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(sentences):
        raise ValueError(
            f"vectors: shape {vectors.shape} does not match {len(sentences)} sentences"
        )
    return vectors


def _digest(sentence: str) -> bytes:
    return hashlib.sha256(sentence.encode("utf-8", "surrogatepass")).digest()


class SQLiteCache(EmbeddingCache):
    """Embeddings in one SQLite file (WAL mode), shared safely between processes.

    Rows are keyed by the encoder key and the sha256 of the sentence (the sentence itself is not
    stored). Each process or thread opens its own connection lazily, so a cache object can be
    handed to worker processes (it pickles as its path).

    Args:
        path: The database file; parent folders are created.
        timeout: Seconds a writer waits for another writer before giving up.

    Examples:
        >>> import numpy as np, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "emb.sqlite")
        >>> cache = SQLiteCache(path)
        >>> cache.put("m@1|fp32", ["x"], np.ones((1, 3), dtype=np.float32))
        >>> SQLiteCache(path).get("m@1|fp32", ["x"])[1].tolist()
        [[1.0, 1.0, 1.0]]
    """

    _BATCH = 500  # sentences per SELECT (SQLite limits bound parameters)

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 120.0):
        if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
            raise TypeError(f"path must be a file path, got {path!r}")
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ValueError(f"path: {str(self.path)!r} is a directory; give a file name")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(
                f"cache {str(self.path)!r}: cannot create its folder ({exc.strerror or exc}); "
                "give a cache path on a writable disk, or no cache"
            ) from None
        self.timeout = float(timeout)
        self._local = threading.local()
        self._connect()  # fail early on an unusable path, and create the schema

    def __getstate__(self) -> dict[str, Any]:
        return {"path": str(self.path), "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], timeout=state["timeout"])  # type: ignore[misc]

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        pid = getattr(self._local, "pid", None)
        if conn is not None and pid == os.getpid():
            return conn
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone())
            conn.execute("PRAGMA synchronous=NORMAL")
            self._retry(
                lambda: conn.execute(
                    "CREATE TABLE IF NOT EXISTS emb (model TEXT NOT NULL, hash BLOB NOT NULL, "
                    "dim INTEGER NOT NULL, vec BLOB NOT NULL, PRIMARY KEY (model, hash)) "
                    "WITHOUT ROWID"
                )
            )
        except sqlite3.Error as exc:
            if conn is not None:
                conn.close()
            raise self._error(exc) from None
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _error(self, exc: sqlite3.Error) -> CacheError:
        """One clear error for an SQLite failure: the file, what is wrong, what to do."""
        text = str(exc)
        low = text.lower()
        where = f"cache {str(self.path)!r}"
        if "not a database" in low or "malformed" in low or "disk image" in low:
            return CacheError(
                f"{where} is not a readable cec cache (SQLite: {text}); delete it (its vectors "
                "are computed again) or give another cache path"
            )
        if "readonly" in low or "read-only" in low or "unable to open" in low:
            return CacheError(
                f"{where} cannot be written (SQLite: {text}): the file or its folder is "
                "read-only; give a cache path on a writable disk, or no cache"
            )
        if "locked" in low or "busy" in low:
            return CacheError(
                f"{where} stayed locked by another process for {self.timeout:g} s (SQLite: "
                f"{text}); wait for it to finish or give another cache path"
            )
        return CacheError(f"{where} cannot be used (SQLite: {text}); give another cache path")

    def _run(self, op: Any) -> Any:
        """``op(conn)`` on this thread's connection; SQLite failures become :class:`CacheError`."""
        conn = self._connect()
        try:
            return self._retry(lambda: op(conn))
        except sqlite3.Error as exc:
            raise self._error(exc) from None

    def _retry(self, op: Any) -> Any:
        """Run ``op``, retrying while another process holds a lock SQLite did not wait out."""
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def get(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        return _one_dimension(*self._rows(key, sentences))

    def _rows(self, key: str, sentences: Sequence[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        digests = [_digest(s) for s in sentences]
        hits: dict[bytes, np.ndarray] = {}
        for start in range(0, len(digests), self._BATCH):
            part = digests[start : start + self._BATCH]
            marks = ",".join("?" * len(part))
            rows = self._run(
                lambda conn, part=part, marks=marks: conn.execute(
                    f"SELECT hash, dim, vec FROM emb WHERE model = ? AND hash IN ({marks})",
                    (key, *part),
                ).fetchall()
            )
            for h, dim, vec in rows:
                # a blob that is not `dim` float32 values (truncated, another dtype) reads as an
                # empty row: unusable, so it is computed again and replaced, never scored
                ok = isinstance(dim, int) and dim > 0 and isinstance(vec, bytes)
                ok = ok and len(vec) == 4 * dim
                hits[h] = np.frombuffer(vec, dtype=np.float32) if ok else _BROKEN
        found = np.fromiter((d in hits for d in digests), dtype=bool, count=len(digests))
        return found, [hits[d] for d in digests if d in hits]

    def put(self, key: str, sentences: Sequence[str], vectors: np.ndarray) -> None:
        vectors = _check_vectors(sentences, vectors)
        if not len(sentences):
            return
        dim = int(vectors.shape[1])
        rows = [
            (key, _digest(s), dim, v.tobytes()) for s, v in zip(sentences, vectors, strict=True)
        ]
        self._write("INSERT OR IGNORE INTO emb (model, hash, dim, vec) VALUES (?, ?, ?, ?)", rows)

    def discard(self, key: str, sentences: Sequence[str]) -> None:
        rows = [(key, _digest(s)) for s in sentences]
        if rows:
            self._write("DELETE FROM emb WHERE model = ? AND hash = ?", rows)

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(sql, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._run(write)

    def __len__(self) -> int:
        return int(self._run(lambda conn: conn.execute("SELECT COUNT(*) FROM emb").fetchone()[0]))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __repr__(self) -> str:
        return f"SQLiteCache({str(self.path)!r})"


#: Bound of ``cache="memory"`` (vectors kept, least recently used out).
MEMORY_CACHE_ITEMS = 400_000


def resolve_cache(cache: str | os.PathLike[str] | EmbeddingCache | None) -> EmbeddingCache | None:
    """The ``cache`` option: ``None`` (no cache), ``"memory"``, a file path, or a cache object.

    ``"memory"`` keeps the :data:`MEMORY_CACHE_ITEMS` most recently used vectors (about 600 MB
    for a 384-dimensional model); pass ``MemoryCache(max_items=...)`` for another bound.

    Raises:
        TypeError: Not one of those.
    """
    if cache is None or isinstance(cache, EmbeddingCache):
        return cache
    if isinstance(cache, str) and cache == "memory":
        return MemoryCache(max_items=MEMORY_CACHE_ITEMS)
    if isinstance(cache, (str, os.PathLike)):
        if not os.fspath(cache):
            raise ValueError("cache: empty path; pass None for no cache")
        return SQLiteCache(cache)
    raise TypeError(
        f"cache must be None, 'memory', a file path or an EmbeddingCache, got {type(cache).__name__}"
    )


def encode_cached(encoder: Any, sentences: list[str], cache: EmbeddingCache | None) -> Any:
    """``encoder.encode_array(sentences)``, reading known vectors from ``cache`` and storing
    new ones.

    Every vector read is checked before it is used: float32, finite, of unit norm (within
    :data:`UNIT_TOLERANCE`) and of the encoder's dimension (the one it produced in this process;
    before it has encoded anything, the rows must agree on one, and a warm cache runs no
    model just to learn it). One that is not (a truncated blob,
    another model's dimension, a zero vector) is computed again, replaces the stored one, and
    a :class:`CacheWarning` says how many; it is never scored. Computed rows that are not unit
    vectors (a callable's zero row) are returned but not stored.

    Args:
        encoder: A :class:`cec.encode.Encoder`.
        sentences: Distinct sentences.
        cache: Where to look; ``None`` encodes everything.

    Returns:
        Unit-norm float32 rows ``[len(sentences), d]``: a numpy array when the encoder runs on
        the CPU, else a torch tensor on its device (see :meth:`cec.encode.Encoder.encode_array`).

    Raises:
        CacheError: The cache cannot be read or written (its path and what to do).
    """
    if cache is None or not sentences:
        return encoder.encode_array(sentences)
    key = encoder.key
    found, rows = cache._rows(key, sentences)
    good: dict[int, np.ndarray] = {}
    for i, row, ok in zip(np.flatnonzero(found).tolist(), rows, _usable(rows), strict=True):
        if ok:
            good[i] = row

    def encode(indices: list[int]) -> Any:
        return encoder.encode_array([sentences[i] for i in indices])

    missing = [i for i in range(len(sentences)) if i not in good]
    new = encode(missing) if missing else None
    dims = {r.shape[0] for r in good.values()}
    if new is not None:
        dim = _DIMS.setdefault(key, int(new.shape[1]))
    elif key in _DIMS:  # the dimension this encoder produced earlier in this process
        dim = _DIMS[key]
    elif len(dims) == 1:  # nothing encoded yet: the rows' one dimension (no model run)
        dim = dims.pop()
    else:  # rows of several dimensions: the encoder says which is its own
        dim = _DIMS.setdefault(key, int(encode([next(iter(good))]).shape[1]))
    wrong = [i for i, r in good.items() if r.shape[0] != dim]
    if wrong:  # rare: encode once more, everything that is not a usable row
        for i in wrong:
            del good[i]
        missing = [i for i in range(len(sentences)) if i not in good]
        new = encode(missing)
    bad = [sentences[i] for i in np.flatnonzero(found).tolist() if i not in good]
    if bad:
        warnings.warn(
            f"cache {cache!r}: {len(bad)} stored vector(s) were not unit float32 vectors of "
            f"dimension {dim} (truncated, another model's, zero or edited) and were computed "
            "again",
            CacheWarning,
            stacklevel=3,
        )
        cache.discard(key, bad)
    if not missing:
        known = np.stack([good[i] for i in range(len(sentences))])
        return _on_device(known, encoder)
    _store(cache, key, [sentences[i] for i in missing], new)
    have = np.zeros(len(sentences), dtype=bool)
    have[list(good)] = True
    order = np.asarray(sorted(good), dtype=np.int64)
    if isinstance(new, np.ndarray):
        out = np.empty((len(sentences), dim), dtype=np.float32)
        out[~have] = new
        if good:
            out[order] = np.stack([good[i] for i in order.tolist()])
        return out
    import torch

    out_t = torch.empty((len(sentences), dim), dtype=torch.float32, device=new.device)
    out_t[torch.as_tensor(np.flatnonzero(~have), device=new.device)] = new
    if good:
        rows_t = torch.from_numpy(np.stack([good[i] for i in order.tolist()]))
        out_t[torch.as_tensor(order, device=new.device)] = rows_t.to(new.device)
    return out_t


def _store(cache: EmbeddingCache, key: str, sentences: list[str], vectors: Any) -> None:
    """Put the computed rows that are unit vectors (only such rows are ever read back)."""
    if not isinstance(vectors, np.ndarray):
        vectors = vectors.detach().to("cpu").float().numpy()
    norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64))
    ok = np.isfinite(norms) & (np.abs(norms - 1.0) <= UNIT_TOLERANCE)
    if ok.all():
        cache.put(key, sentences, vectors)
    elif ok.any():
        cache.put(key, [s for s, k in zip(sentences, ok, strict=True) if k], vectors[ok])


def _on_device(vectors: np.ndarray, encoder: Any) -> Any:
    """Cached rows where ``encoder`` keeps its vectors (numpy on the CPU)."""
    if encoder.device_type == "cpu":
        return vectors
    import torch

    return torch.from_numpy(vectors).to(encoder.device)
