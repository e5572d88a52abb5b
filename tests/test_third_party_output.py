"""No third party speaks on the user's streams during a ``cec`` command (issue 23, cause 2).

The libraries a command imports (torch, transformers, sentence-transformers, ONNX Runtime,
tokenizers, and what they import: bitsandbytes and ``kernels`` on AVX512-BF16 CPUs) may print at
import or load time, by any route. The test does not depend on what today's releases print on
this CPU: a ``sitecustomize`` on PYTHONPATH puts a library that speaks by every route into the
real import chain (an import hook that fires when ``transformers``, ``sentence_transformers``,
``onnxruntime``, ``tokenizers`` or ``torch`` is first imported), and the real ``cec`` runs on the
real default model, on the success and the error paths, torch path and fast start.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cec import _streams

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CEC_BIN = shutil.which("cec", path=str(BIN)) or shutil.which("cec")

NOISY = r'''
import importlib.abc, logging, os, sys, warnings

_TARGETS = {"transformers", "sentence_transformers", "onnxruntime", "tokenizers", "torch"}
_done = set()


def _speak(name):
    print(f"NOISE print-stdout {name}")
    print(f"NOISE print-stderr {name}", file=sys.stderr)
    os.write(1, f"NOISE fd1 {name}\n".encode())
    os.write(2, f"NOISE fd2 {name}\n".encode())
    logging.getLogger("noisy").warning("NOISE last-resort-logging %s", name)
    bound = logging.getLogger("noisy.bound")  # a handler bound to sys.stderr at import time
    if not bound.handlers:
        bound.addHandler(logging.StreamHandler())
        bound.propagate = False
    bound.warning("NOISE handler-logging %s", name)
    warnings.warn(f"NOISE warnings.warn {name}", UserWarning, stacklevel=2)


class _Noisy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in _TARGETS and name not in _done:
            _done.add(name)
            _speak(name)
        return None


sys.meta_path.insert(0, _Noisy())
'''

PAIRS = [
    ("CO2 traps heat. The planet warms.", "The planet warms because CO2 traps heat."),
    ("Ice melts in summer.", "Summer heat melts the ice."),
]


@pytest.fixture(scope="module")
def noisy(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("noisy")
    (d / "site").mkdir()
    (d / "site" / "sitecustomize.py").write_text(NOISY, encoding="utf-8")
    (d / "notamodel").mkdir()  # a folder that is no model: loading goes through sentence-transformers
    (d / "notamodel" / "config.json").write_text("{}", encoding="utf-8")
    pairs = d / "pairs.jsonl"
    pairs.write_text(
        "".join(json.dumps({"prediction": p, "reference": r}) + "\n" for p, r in PAIRS),
        encoding="utf-8",
    )
    return {"dir": d, "site": d / "site", "pairs": pairs}


def _cec(noisy: dict[str, Path], *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}
    full.pop("CEC_DEBUG", None)
    full.pop("CEC_VERBOSE", None)
    full["PYTHONPATH"] = os.pathsep.join([str(noisy["site"]), str(ROOT)])
    return subprocess.run(
        [CEC_BIN, *args],
        cwd=noisy["dir"],
        env=full,
        capture_output=True,
        text=True,
        timeout=600,
    )


pytestmark = pytest.mark.skipif(CEC_BIN is None, reason="the cec console script is not installed")


def test_the_noisy_library_really_speaks(noisy):
    """The injection works: a plain ``import transformers`` under it prints by every route."""
    env = {**os.environ, "PYTHONPATH": str(noisy["site"])}
    proc = subprocess.run(
        [sys.executable, "-c", "import tokenizers"], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "NOISE fd1 tokenizers" in proc.stdout and "NOISE print-stdout" in proc.stdout
    for route in ("print-stderr", "fd2", "last-resort-logging", "handler-logging", "warnings.warn"):
        assert f"NOISE {route} tokenizers" in proc.stderr, (route, proc.stderr)


def test_score_torch_path_success_and_error_paths_show_only_cec(noisy):
    rows = _cec(noisy, "score", str(noisy["pairs"]), "--format", "jsonl", CEC_FAST_START="0")
    assert rows.returncode == 0, rows.stderr
    assert "NOISE" not in rows.stdout and "NOISE" not in rows.stderr, (rows.stdout, rows.stderr)
    lines = rows.stdout.strip().splitlines()
    assert len(lines) == len(PAIRS)  # one row per item, nothing else
    assert all(json.loads(line) for line in lines)
    assert rows.stderr.startswith("CEC = ") and len(rows.stderr.splitlines()) == 2  # the summary

    bad = _cec(noisy, "score", str(noisy["pairs"]), "--model", "notamodel", CEC_FAST_START="0")
    assert bad.returncode == 2
    assert bad.stdout == ""
    err = bad.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cec: error: ") and "notamodel" in err[0], err

    shown = _cec(noisy, "--verbose", "explain", "A b.", "C d.", CEC_FAST_START="0")
    assert shown.returncode == 0, shown.stderr
    assert "NOISE fd2 transformers" in shown.stderr  # --verbose lets it through
    quiet = _cec(noisy, "explain", "A b.", "C d.", CEC_FAST_START="0")
    assert quiet.returncode == 0 and "NOISE" not in quiet.stdout + quiet.stderr
    assert "A b." in quiet.stdout


def test_fast_start_prepare_and_use_show_only_cec(noisy, tmp_path):
    cache = tmp_path / "cache"
    env = {"CEC_FAST_START": "1", "CEC_CACHE_DIR": str(cache)}
    first = _cec(noisy, "score", str(noisy["pairs"]), "-o", str(tmp_path / "a.csv"), **env)
    assert first.returncode == 0, first.stderr
    assert "NOISE" not in first.stdout + first.stderr, first.stderr
    assert list(cache.rglob("fp32-check.json")), "the fast start was not prepared"
    second = _cec(noisy, "score", str(noisy["pairs"]), **env)
    assert second.returncode == 0, second.stderr
    assert "NOISE" not in second.stdout + second.stderr, second.stderr
    assert "CEC =" in second.stdout


def test_hold_keeps_cec_streams_and_holds_every_other_route(capfd):
    with _streams.hold_third_party(show=False):
        print("held print")
        os.write(1, b"held fd1\n")
        os.write(2, b"held fd2\n")
        _streams.out().write("cec row\n")
        _streams.err().write("cec: warning: own\n")
    captured = capfd.readouterr()
    assert captured.out == "cec row\n"
    assert captured.err == "cec: warning: own\n"
    held = _streams.held_text()
    assert "held print" in held and "held fd1" in held and "held fd2" in held


def test_every_cec_command_runs_held():
    from cec.cli import app

    for info in app.registered_commands:
        assert getattr(info.callback, "_cec_held", False), info.name


def test_cli_warnings_cec_shown_third_party_held(capfd):
    from cec.cli._app import showwarning

    with _streams.hold_third_party(show=False):
        showwarning(RuntimeWarning("ours"), RuntimeWarning, __file__, 1)  # issued here: a test
        from cec import _warnings

        showwarning(
            _warnings.PrecisionWarning("own class"), _warnings.PrecisionWarning, "/x.py", 1
        )
    captured = capfd.readouterr()
    assert "cec: warning: own class" in captured.err
    assert "ours" not in captured.err  # a warning not issued by cec's code is held back
    assert "ours" in _streams.held_text()


def test_a_failing_write_of_cecs_own_output_is_raised_not_swallowed(monkeypatch):
    """A full disk behind stdout, found when the held command flushes its rows: an error, never
    exit 0 with the rows lost."""
    import io

    class Full(io.StringIO):
        def flush(self):
            if self.getvalue():
                raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stdout", Full())
    with pytest.raises(OSError, match="No space left"), _streams.hold_third_party(show=False):
        _streams.out().write("row\n")
    assert not isinstance(sys.stdout, _streams._HoldStream)  # the streams were given back
