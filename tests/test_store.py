"""cec_distill.store: append-only fsync'd JSONL keyed by id, torn tails, locking, threads, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from cec_distill import store as store_mod
from cec_distill.store import JsonlStore, StoreLockedError, open_store


def _lines(path):
    return path.read_bytes().split(b"\n")


def test_append_latest_done_and_failed(tmp_path):
    path = tmp_path / "out.jsonl"
    with open_store(path) as s:
        s.append({"id": "a", "error": {"kind": "http_500"}})
        s.append({"id": "b", "explanation": "x"})
        s.append({"id": "a", "explanation": "y", "error": None})
        s.append({"id": "c", "error": "timeout"})
    ro = JsonlStore.open(path, mode="r")
    assert [r["id"] for r in ro.iter_records()] == ["a", "b", "a", "c"]
    assert ro.latest()["a"]["explanation"] == "y"
    assert ro.done_ids() == {"a", "b"}
    assert ro.failed_ids() == {"c"}
    with pytest.raises(RuntimeError, match="read-only"):
        ro.append({"id": "d"})
    # reopening appends after what is there
    with open_store(path) as s:
        s.append({"id": "c", "explanation": "z"})
    assert JsonlStore.open(path, mode="r").done_ids() == {"a", "b", "c"}
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_custom_key_and_bad_records(tmp_path):
    with open_store(tmp_path / "gen.jsonl", key="uid") as s:
        s.append({"uid": 1, "text": "ok"})
        with pytest.raises(ValueError, match="'uid'"):
            s.append({"id": "x"})
        with pytest.raises(ValueError, match="JSON-serializable"):
            s.append({"uid": 2, "bad": object()})
        with pytest.raises(ValueError, match="JSON-serializable"):
            s.append({"uid": 3, "nan": float("nan")})
    assert JsonlStore.open(tmp_path / "gen.jsonl", key="uid", mode="r").done_ids() == {"1"}
    with pytest.raises(FileNotFoundError):
        JsonlStore.open(tmp_path / "absent.jsonl", mode="r")
    with pytest.raises(ValueError, match="mode"):
        JsonlStore.open(tmp_path / "x.jsonl", mode="w")


@pytest.mark.parametrize(
    "tail",
    [
        b'{"id": "c", "explanation": "cut sh',  # a record cut short by the crash
        b"\x00" * 37,  # blocks allocated but never written (power loss on ext4/xfs)
        b'{"id": "c", "explanation": "whole but no newline"}',  # the newline never made it
        b'{"id": "c", "expl\n',  # torn line that happens to end in a newline
    ],
)
def test_torn_last_line_is_cut_off_and_kept_aside(tmp_path, tail):
    path = tmp_path / "out.jsonl"
    good = b'{"id": "a", "explanation": "x"}\n{"id": "b", "explanation": "y"}\n'
    path.write_bytes(good + tail)
    # reading never yields the torn record and leaves the file alone
    assert JsonlStore.open(path, mode="r").done_ids() == {"a", "b"}
    assert path.read_bytes() == good + tail
    with pytest.warns(RuntimeWarning, match="torn last line"):
        s = JsonlStore.open(path)
    s.append({"id": "c", "explanation": "redone"})
    s.close()
    assert path.read_bytes() == good + b'{"id": "c", "explanation": "redone"}\n'
    assert (tmp_path / "out.jsonl.torn").read_bytes().rstrip(b"\n") == tail.rstrip(b"\n")
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_clean_file_is_not_touched(tmp_path, recwarn):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\n\n')
    JsonlStore.open(path).close()
    assert path.read_bytes() == b'{"id": "a"}\n\n'
    assert not (tmp_path / "out.jsonl.torn").exists()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_corrupt_middle_line_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b'{"id": "a"}\nnot json\n{"id": "b"}\n')
    s = JsonlStore.open(path, mode="r")
    with pytest.warns(RuntimeWarning, match=":2: skipping"):
        assert s.done_ids() == {"a", "b"}
    assert s.skipped_lines == 1


def test_second_writer_is_refused(tmp_path):
    path = tmp_path / "out.jsonl"
    first = JsonlStore.open(path)
    with pytest.raises(StoreLockedError, match="another process"):
        JsonlStore.open(path)
    JsonlStore.open(path, mode="r").done_ids()  # readers are welcome
    first.close()
    JsonlStore.open(path).close()  # released on close


def test_every_append_is_fsynced(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(store_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    with JsonlStore.open(tmp_path / "out.jsonl") as s:
        before = len(calls)
        for i in range(5):
            s.append({"id": str(i)})
            assert len(calls) == before + i + 1  # fsync'd before append returned
    with JsonlStore.open(tmp_path / "nosync.jsonl", fsync=False) as s:
        n = len(calls)
        s.append({"id": "x"})
        assert len(calls) == n


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "out.jsonl"
    s = JsonlStore.open(path)
    text = "word " * 2000  # 10 kB lines, larger than a pipe buffer

    def work(t):
        for i in range(60):
            s.append({"id": f"{t}-{i}", "text": text})

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    s.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 240
    assert {json.loads(line)["id"] for line in lines} == {
        f"{t}-{i}" for t in range(4) for i in range(60)
    }


# Loads store.py by path: the package __init__ imports cec (and torch), seconds this test needn't spend.
_WRITER = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("store", sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
s = mod.JsonlStore.open(sys.argv[1])
i = 0
while True:
    s.append({"id": str(i), "text": "x" * 5000})
    if i == 20:
        print("ready", flush=True)
    i += 1
"""


def test_kill_9_mid_append_leaves_a_resumable_store(tmp_path):
    path = tmp_path / "out.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), store_mod.__file__],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    n_before = len(JsonlStore.open(path, mode="r").done_ids())
    assert n_before > 20
    s = JsonlStore.open(path)  # the lock died with the process; a torn tail (if any) is repaired
    s.append({"id": "after"})
    s.close()
    ids = [json.loads(line)["id"] for line in path.read_text().splitlines()]  # every line parses
    assert ids[-1] == "after" and ids[:-1] == [str(i) for i in range(len(ids) - 1)]
    assert len(ids) - 1 >= n_before
