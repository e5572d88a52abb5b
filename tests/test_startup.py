"""Fast start: fp32 from a checked ONNX Runtime copy, without importing transformers.

Each check runs the real default model in fresh processes (the point is what a new process
imports) against a cache folder of this module, exported once.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import onnxruntime  # noqa: F401

    HAVE_ORT = True
except ImportError:
    HAVE_ORT = False
# the fast start itself needs the `onnx` extra; the checks without it run everywhere
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason='onnxruntime absent (pip install ".[onnx]")')

ROOT = Path(__file__).resolve().parents[1]

SCORE_SCRIPT = """
import json, sys
import cec
from cec.io import read_records
recs = list(read_records(sys.argv[1]))
s = cec.CEC(device="cpu")
r = s.score([x.prediction for x in recs], [x.references[0] for x in recs])
print(json.dumps({
    "sym": [float(v) for v in r.sym],
    "signature": str(r.signature),
    "transformers": "transformers" in sys.modules,
    "torch": "torch" in sys.modules,
    "fast": bool(s.encoder._fast),
}))
"""

# the CLI in a fresh process, then what it imported
CLI_SCRIPT = """
import json, sys
from cec.cli import main
rc = main(["score", sys.argv[1], "--format", "json", "--device", "cpu"])
heavy = ("torch", "transformers", "sentence_transformers", "sklearn", "pandas")
print(json.dumps({"rc": rc, "loaded": [m for m in heavy if m in sys.modules]}))
"""


ABSENT_SCRIPT = """
import csv, json, sys
sys.modules["onnxruntime"] = None  # as if the onnx extra were not installed: import fails
import cec
from cec.cli import main
from cec.io import read_records
rc = main(["score", sys.argv[1], "-o", sys.argv[2], "-q", "--device", "cpu"])
recs = list(read_records(sys.argv[1]))
s = cec.CEC(device="cpu")
r = s.score([x.prediction for x in recs], [x.references[0] for x in recs])
with open(sys.argv[2], encoding="utf-8") as fh:
    rows = list(csv.DictReader(fh))
print(json.dumps({
    "rc": rc,
    "sym": [float(v) for v in r.sym],
    "cli_sym": [float(x["sym"]) for x in rows],
    "signature": str(r.signature),
    "transformers": "transformers" in sys.modules,
    "fast": bool(s.encoder._fast),
}))
"""


def _env(cache: Path, fast: bool) -> dict[str, str]:
    env = os.environ.copy()
    env.update(
        CEC_CACHE_DIR=str(cache),
        CEC_FAST_START="1" if fast else "0",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    return env


def _score(path: Path, cache: Path, fast: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCORE_SCRIPT, str(path)],
        env=_env(cache, fast),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory, shared_data) -> Path:
    """30 Climate-FEVER pairs, one with a reference longer than the 256-token window."""
    rows = []
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        for i, line in zip(range(30), fh, strict=False):
            rec = json.loads(line)
            ev = [e["evidence"] for e in rec["evidences"]]
            ref = " ".join(ev * (8 if i == 3 else 1))
            rows.append(
                {"id": f"c{i}", "prediction": rec["claim"] + " " + ev[i % 5], "reference": ref}
            )
    path = tmp_path_factory.mktemp("startup") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, pairs_file) -> tuple[Path, Path, str]:
    """`cec score` (fp32, CPU) with a fresh cache folder and a fresh, empty home folder: it
    prepares the checked ONNX copy. Gives (cache folder, home folder, stderr)."""
    cache = tmp_path_factory.mktemp("cec-cache")
    home = tmp_path_factory.mktemp("home")
    env = _env(cache, fast=True)
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    proc = subprocess.run(
        ["cec", "score", str(pairs_file), "-o", str(cache.parent / "first.csv")],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cache, home, proc.stderr


@pytest.fixture(scope="module")
def prepared(first_run) -> Path:
    """A cache folder where `cec score` (fp32, CPU) prepared the checked ONNX copy."""
    return first_run[0]


def _marker(cache: Path) -> Path:
    (marker,) = cache.glob("onnx/*/fp32-check.json")
    return marker


@needs_ort
def test_first_cli_run_writes_a_passed_check(prepared):
    info = json.loads(_marker(prepared).read_text(encoding="utf-8"))
    assert info["passed"] is True and info["same_token_ids"] is True
    assert 0 <= info["max_abs_diff"] <= info["tolerance"] == 1e-6
    assert (_marker(prepared).parent / info["graph"]).is_file()


@needs_ort
def test_fast_path_skips_transformers_and_keeps_scores_and_signature(prepared, pairs_file):
    fast = _score(pairs_file, prepared, fast=True)
    slow = _score(pairs_file, prepared, fast=False)
    assert fast["fast"] and not fast["transformers"] and not fast["torch"]
    assert not slow["fast"] and slow["transformers"]
    assert fast["signature"] == slow["signature"]
    assert "prec:fp32" in fast["signature"]
    np.testing.assert_allclose(fast["sym"], slow["sym"], rtol=0, atol=1e-6)
    assert len(fast["sym"]) == 30


@needs_ort
def test_cli_fast_path_imports_neither_torch_nor_transformers_and_is_silent(prepared):
    """`cec score examples/pairs.jsonl` from the checked copy: numpy end to end, no stderr."""
    proc = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, str(ROOT / "examples" / "pairs.jsonl")],
        env=_env(prepared, fast=True),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""
    *out, last = proc.stdout.strip().splitlines()
    assert json.loads(last) == {"rc": 0, "loaded": []}
    report = json.loads("\n".join(out))
    assert len(report["items"]) == 4 and "prec:fp32" in report["summary"]["signature"]


@pytest.fixture(scope="module")
def esnli_file(tmp_path_factory, shared_data) -> Path:
    """300 e-SNLI pairs: one annotator's explanation against another's."""
    rows = []
    with open(shared_data / "esnli" / "esnli_dev_3expl.jsonl", encoding="utf-8") as fh:
        for line, _ in zip(fh, range(300), strict=False):
            rec = json.loads(line)
            gen, ref = rec["explanations"][0], rec["explanations"][1]
            rows.append({"id": f"e{rec['idx']}", "prediction": gen, "reference": ref})
    path = tmp_path_factory.mktemp("esnli") / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@needs_ort
def test_fast_path_equals_torch_fp32_on_300_esnli_pairs(prepared, esnli_file):
    fast = _score(esnli_file, prepared, fast=True)
    slow = _score(esnli_file, prepared, fast=False)
    assert fast["fast"] and not fast["torch"] and not slow["fast"] and slow["torch"]
    assert len(fast["sym"]) == 300 and fast["signature"] == slow["signature"]
    np.testing.assert_allclose(fast["sym"], slow["sym"], rtol=0, atol=1e-6)
    assert np.std(fast["sym"]) > 0.05  # real, varied scores, not one value repeated


@needs_ort
def test_cli_output_is_the_same_on_both_paths(prepared, pairs_file):
    outs = []
    for fast in (True, False):
        proc = subprocess.run(
            ["cec", "score", str(pairs_file), "--format", "json", "--device", "cpu", "-q"],
            env=_env(prepared, fast),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        outs.append(json.loads(proc.stdout))
    (fast, slow) = outs
    assert fast["summary"]["signature"] == slow["summary"]["signature"]
    assert abs(fast["summary"]["cec"] - slow["summary"]["cec"]) <= 1e-6
    for a, b in zip(fast["items"], slow["items"], strict=True):
        assert a["id"] == b["id"]
        assert abs(a["sym"] - b["sym"]) <= 1.5e-6  # rows are rounded to 6 decimals


@needs_ort
def test_a_marker_for_another_identity_or_a_failed_check_is_not_used(
    prepared, pairs_file, tmp_path
):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(prepared, cache)
    marker = _marker(cache)
    info = json.loads(marker.read_text(encoding="utf-8"))
    for change in ({"identity": "00000000"}, {"passed": False}, {"version": 0}):
        marker.write_text(json.dumps({**info, **change}), encoding="utf-8")
        out = _score(pairs_file, cache, fast=True)
        assert not out["fast"] and out["transformers"], change


def test_fast_tokenizer_gives_the_transformers_token_ids(scorer, shared_data):
    from cec._fast import PROBES, FastTokenizer
    from cec.hf_model import plain_layout

    enc = scorer.encoder
    folder = enc.local_dir()
    layout = plain_layout(folder)
    tok = FastTokenizer(folder, layout.do_lower_case, enc._input_names(), 0)
    with open(shared_data / "esnli" / "esnli_dev_3expl.jsonl", encoding="utf-8") as fh:
        texts = [json.loads(line)["premise"] for line, _ in zip(fh, range(300), strict=False)]
    texts += list(PROBES)
    limit = enc.max_seq_length
    want, _ = enc.tokenize(texts)
    got = tok(texts, truncation=True, max_length=limit)["input_ids"]
    assert [list(x) for x in got] == [list(x) for x in want]
    assert max(len(x) for x in got) == limit  # the long probe was cut at the window


def test_off_switch(monkeypatch):
    from cec import _fast

    monkeypatch.setenv("CEC_FAST_START", "0")
    assert not _fast.enabled()
    monkeypatch.setenv("CEC_FAST_START", "1")
    assert _fast.enabled()


@pytest.mark.parametrize("cache_kind", ["fresh", "prepared"])
def test_without_onnxruntime_the_torch_path_runs_silently(
    cache_kind, pairs_file, scorer, tmp_path, request
):
    """No `onnx` extra: nothing is prepared or used, no warning, the torch fp32 scores."""
    if cache_kind == "prepared":
        if not HAVE_ORT:
            pytest.skip('needs onnxruntime to prepare the copy (pip install ".[onnx]")')
        cache = request.getfixturevalue("prepared")  # a passed check on disk is not used either
    else:
        cache = tmp_path / "cache"
    before = sorted(p.relative_to(cache) for p in cache.rglob("*")) if cache.is_dir() else []
    proc = subprocess.run(
        [sys.executable, "-c", ABSENT_SCRIPT, str(pairs_file), str(tmp_path / "out.csv")],
        env=_env(cache, fast=True),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fast start" not in proc.stderr and "onnx" not in proc.stderr.lower()  # silently
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["rc"] == 0 and not got["fast"] and got["transformers"]
    after = sorted(p.relative_to(cache) for p in cache.rglob("*")) if cache.is_dir() else []
    assert not [p for p in after if p.parts[:1] == ("onnx",) and p not in before]
    recs = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines()]
    want = scorer.score([r["prediction"] for r in recs], [r["reference"] for r in recs])
    assert got["signature"] == str(want.signature) and "prec:fp32" in got["signature"]
    np.testing.assert_allclose(got["sym"], want.sym, rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["cli_sym"], want.sym, rtol=0, atol=2e-6)


# -- the first run: one line on stderr, nothing outside the cache and output folders ----------


@needs_ort
def test_first_run_announces_the_one_time_preparation_in_one_line(first_run):
    _, _, stderr = first_run
    lines = [line for line in stderr.splitlines() if "fast start" in line]
    assert len(lines) == 1, stderr
    (line,) = lines
    assert line.startswith("cec: fast start: preparing a checked ONNX copy of all-MiniLM-L6-v2")
    assert "once" in line and "about" in line and re.search(r"done \(\d+\.\d s\)$", line), line


@needs_ort
def test_fast_start_writes_nothing_outside_the_cache_folder(first_run, tmp_path):
    """ONNX Runtime's telemetry (~/.cache/Microsoft/DeveloperTools/.onnxruntime) stays off."""
    cache, home, _ = first_run
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []  # the preparing run
    env = _env(cache, fast=True)
    env["HOME"] = str(home)
    env.pop("XDG_CACHE_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-c", CLI_SCRIPT, str(ROOT / "examples" / "pairs.jsonl")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"rc": 0, "loaded": []}
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == []  # the fast run
    assert sorted(tmp_path.rglob("*")) == []


# -- threads -----------------------------------------------------------------------------------


def _texts(n: int, seed: int) -> list[str]:
    """``n`` one-sentence texts: long ones (280-480 words, past the window) and short ones."""
    import random

    words = (ROOT / "examples" / "pairs.jsonl").read_text(encoding="utf-8")
    words = re.findall(r"[A-Za-z]+", words)
    rng = random.Random(seed)
    sizes = [rng.randint(280, 480) if i % 2 == 0 else rng.randint(3, 12) for i in range(n)]
    return [" ".join(rng.choice(words) for _ in range(k)) + "." for k in sizes]


def _in_threads(work, n_threads: int = 4) -> list[BaseException]:
    """Run ``work(k)`` in threads with a tiny GIL switch interval (races show up at once)."""
    import threading

    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            work(k)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(before)
    return errors


@pytest.fixture
def fast_env(prepared, monkeypatch):
    """This process on the fast path: the prepared cache folder, the fast start on."""
    monkeypatch.setenv("CEC_CACHE_DIR", str(prepared))
    monkeypatch.setenv("CEC_FAST_START", "1")
    return prepared


@needs_ort
@pytest.mark.parametrize("path", ["fast", "torch"])
def test_tokenizing_from_threads_gives_the_serial_token_ids(path, request):
    """Truncating and non-truncating calls at once, long and short sentences, both paths."""
    import cec

    if path == "fast":
        request.getfixturevalue("fast_env")
        enc = cec.CEC(device="cpu").encoder
        assert enc._fast_path() is not None
    else:
        enc = request.getfixturevalue("scorer").encoder
        assert enc._fast_path() is None
    sents = _texts(24, seed=1)
    want = [list(enc.tokenize([s])[0][0]) for s in sents]
    want_len = [int(enc.token_lengths([s])[0]) for s in sents]
    assert max(want_len) > enc.max_seq_length >= max(len(x) for x in want)
    wrong: list[tuple[str, int]] = []

    def work(k: int) -> None:
        for j in range(200):
            i = (k * 7 + j * 5) % len(sents)
            if j % 2:
                if list(enc.tokenize([sents[i]])[0][0]) != want[i]:
                    wrong.append(("ids", i))
            elif int(enc.token_lengths([sents[i]])[0]) != want_len[i]:
                wrong.append(("length", i))

    assert _in_threads(work) == []
    assert wrong == []


@pytest.fixture(scope="module")
def thread_pairs() -> tuple[list[str], list[str]]:
    return _texts(12, seed=2), _texts(12, seed=3)[::-1]


@pytest.fixture(scope="module")
def serial_fast_scores(prepared, thread_pairs) -> np.ndarray:
    """The pairs scored in one thread on the fast path, no cache."""
    import cec

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CEC_CACHE_DIR", str(prepared))
        mp.setenv("CEC_FAST_START", "1")
        s = cec.CEC(device="cpu")
        gens, refs = thread_pairs
        sym = s.score(gens, refs).sym
        assert s.encoder._fast
    return np.asarray(sym)


@needs_ort
@pytest.mark.parametrize("cache_kind", ["none", "memory", "sqlite"])
def test_threads_sharing_a_scorer_equal_a_serial_run(
    cache_kind, fast_env, thread_pairs, serial_fast_scores, tmp_path
):
    """Four threads, one `cec.CEC()`, long and short texts: every score as in one thread, and
    what the cache kept (read back later, or by a new scorer for a file) is right too."""
    import cec

    cache = {"none": None, "memory": "memory", "sqlite": str(tmp_path / "emb.sqlite")}
    shared = cec.CEC(device="cpu", cache=cache[cache_kind])
    gens, refs = thread_pairs
    got = np.full(len(gens), np.nan)

    def work(k: int) -> None:
        for i in range(k, len(gens), 4):
            got[i] = shared.score([gens[i]], [refs[i]]).sym[0]

    assert _in_threads(work) == []
    assert shared.encoder._fast
    np.testing.assert_allclose(got, serial_fast_scores, rtol=0, atol=1e-6)
    if cache_kind != "none":  # the vectors the threads stored
        np.testing.assert_allclose(shared.score(gens, refs).sym, serial_fast_scores, atol=1e-6)
    if cache_kind == "sqlite":
        again = cec.CEC(device="cpu", cache=cache["sqlite"])
        np.testing.assert_allclose(again.score(gens, refs).sym, serial_fast_scores, atol=1e-6)


# -- a copy that is not what was checked -------------------------------------------------------


def _scale_one_initializer(graph: Path, factor: float) -> None:
    """Scale the largest 2-D weight of an ONNX file in place (same path)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    mats = [t for t in model.graph.initializer if len(t.dims) == 2]
    target = max(mats, key=lambda t: t.dims[0] * t.dims[1] if t.dims[0] < 30000 else 0)
    scaled = numpy_helper.from_array(numpy_helper.to_array(target) * factor, target.name)
    target.CopyFrom(scaled)
    onnx.save(model, str(graph))


@needs_ort
@pytest.mark.parametrize("change", ["scaled-in-place", "other-export"])
def test_a_changed_onnx_copy_is_never_used_silently(change, prepared, pairs_file, scorer, tmp_path):
    import shutil

    cache = tmp_path / "cache"
    shutil.copytree(prepared, cache)
    marker = _marker(cache)
    graph = marker.parent / json.loads(marker.read_text(encoding="utf-8"))["graph"]
    if change == "scaled-in-place":
        _scale_one_initializer(graph, 1.5)
    else:  # another export in its place (the unfused one: a file that was never checked)
        shutil.copyfile(marker.parent / "model.onnx", graph)
    recs = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines()]
    want = scorer.score([r["prediction"] for r in recs], [r["reference"] for r in recs]).sym
    proc = subprocess.run(
        [sys.executable, "-c", SCORE_SCRIPT, str(pairs_file)],
        env=_env(cache, fast=True),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["fast"] and out["torch"]  # the torch path scored
    assert proc.stderr.count("fast start:") == 1 and "sha256" in proc.stderr  # one warning
    np.testing.assert_allclose(out["sym"], want, rtol=0, atol=1e-6)
    if change == "scaled-in-place":  # the next `cec score` checks a new copy; then it is used
        run = subprocess.run(
            ["cec", "score", str(pairs_file), "-q", "--device", "cpu"],
            env=_env(cache, fast=True),
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert json.loads(marker.read_text(encoding="utf-8"))["passed"] is True
        again = _score(pairs_file, cache, fast=True)
        assert again["fast"] and not again["torch"]
        np.testing.assert_allclose(again["sym"], want, rtol=0, atol=1e-6)


# -- a cache folder that cannot be written -----------------------------------------------------


def _unwritable_dir(path: Path, request) -> Path:
    """An empty folder that even root cannot add entries to (chattr +i), or a mode 0555 one
    for other users; skipped where neither is possible."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        request.addfinalizer(lambda: path.chmod(0o755))
    else:
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {proc.stderr.strip()}")
        request.addfinalizer(lambda: subprocess.run(["chattr", "-i", str(path)], check=False))
    try:
        (path / "probe").mkdir()
    except OSError:
        return path
    pytest.skip(f"{path} can still be written to")


@pytest.mark.parametrize("kind", ["under-a-file", "unwritable-folder"])
def test_an_unwritable_cache_folder_scores_on_torch_says_so_once_and_exits_0(
    kind, pairs_file, scorer, tmp_path, request
):
    if kind == "under-a-file":  # NotADirectoryError for everyone, root too
        (tmp_path / "file").write_text("x", encoding="utf-8")
        cache = tmp_path / "file" / "cache"
    else:
        cache = _unwritable_dir(tmp_path / "cache", request)
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        ["cec", "score", str(pairs_file), "-o", str(out), "--device", "cpu"],
        env=_env(cache, fast=True),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "fast start" in line]
    assert len(lines) == 1 and "cannot prepare" in lines[0] and str(cache) in lines[0], lines
    assert "unexpected" not in proc.stderr
    recs = [json.loads(line) for line in pairs_file.read_text(encoding="utf-8").splitlines()]
    want = scorer.score([r["prediction"] for r in recs], [r["reference"] for r in recs])
    import csv

    with open(out, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    np.testing.assert_allclose([float(r["sym"]) for r in rows], want.sym, rtol=0, atol=2e-6)
