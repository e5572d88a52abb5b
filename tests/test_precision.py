"""Opt-in numeric paths: they run, stay close to fp32, and are recorded in the signature."""

from __future__ import annotations

import importlib.util
import json
import warnings

import numpy as np
import pytest

import cec
from cec.encode import PrecisionWarning, cpu_features
from cec.signature import Signature

# (path, largest mean |CEC change| vs fp32 allowed on the small set)
PATHS = [("bf16", 0.01), ("int8", 0.01), ("onnx", 1e-4), ("onnx-int8", 0.01)]


@pytest.fixture(scope="module")
def pairs(shared_data):
    """Pairs shaped like benchmarks/bench_score.py's (where the acceptance limits apply):
    reference = a claim's five evidence sentences; generated = the claim, three of them and
    one sentence of another claim's evidence."""
    with open(shared_data / "climate-fever" / "climate-fever.jsonl", encoding="utf-8") as fh:
        claims = [json.loads(line) for line, _ in zip(fh, range(17), strict=False)]
    gens, refs = [], []
    for i, rec in enumerate(claims[:16]):
        ev = [e["evidence"] for e in rec["evidences"]]
        other = claims[i + 1]["evidences"][i % 5]["evidence"]
        gens.append(" ".join([rec["claim"], *(ev[(i + k) % 5] for k in range(3)), other]))
        refs.append(" ".join(ev))
    return gens, refs


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    """ONNX exports go to a fresh folder for this module (exercises export + quantise)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("CEC_CACHE_DIR", str(tmp_path_factory.mktemp("cec-cache")))
    yield
    mp.undo()


@pytest.mark.parametrize(("precision", "tol"), PATHS)
def test_path_close_to_fp32_and_signed(precision, tol, scorer, pairs, onnx_home):
    if precision.startswith("onnx") and importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    gens, refs = pairs
    base = scorer.score(gens, refs)
    fast = cec.CEC(device="cpu", precision=precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fast.score(gens, refs)
    bf16_warned = any(issubclass(w.category, PrecisionWarning) for w in caught)
    assert bf16_warned == (precision == "bf16" and not cpu_features()["bf16"])
    change = np.abs(result.sym - base.sym)
    assert change.mean() <= tol, (precision, change.mean())
    assert not np.allclose(result.sym, base.sym, atol=0) or precision == "onnx"
    sig = Signature.parse(str(result.signature))
    assert sig.precision == precision and f"|prec:{precision}|" in str(result.signature)
    assert fast.encoder.key.endswith(f"|{precision}")
    emb = fast.encode(["CO2 traps heat.", "Ice melts."])
    assert emb.dtype.is_floating_point and np.allclose(emb.norm(dim=1).numpy(), 1.0, atol=1e-3)


def test_int8_quantises_the_attention_projections_only():
    """int8 keeps the FFN (and the fp32 model the scorer may share) untouched."""
    import torch

    enc = cec.CEC(device="cpu", precision="int8").encoder
    enc.encode(["Warming melts ice."])
    net = enc.runner.__closure__  # the quantised copy lives in the runner's closure
    nets = [c.cell_contents for c in net if isinstance(c.cell_contents, torch.nn.Module)]
    assert len(nets) == 1
    kinds = {}
    for name, mod in nets[0].named_modules():
        if "pooler" in name:  # [CLS] only, unused by mean pooling
            continue
        if isinstance(mod, torch.nn.Linear) or type(mod).__name__ == "Linear":
            kinds[name] = type(mod).__module__.startswith("torch.ao.nn.quantized")
    quantised = {n for n, q in kinds.items() if q}
    assert quantised and all(".attention." in n for n in quantised)
    assert all(
        not q
        for n, q in kinds.items()
        if ".intermediate." in n or n.endswith("output.dense") and ".attention." not in n
    )
    assert len(quantised) == 4 * len([n for n in kinds if n.endswith("intermediate.dense")])
    assert all(
        isinstance(m, torch.nn.Linear) and type(m) is torch.nn.Linear
        for m in enc.model.modules()
        if isinstance(m, torch.nn.Linear)
    )


def test_onnx_export_is_reused(scorer, onnx_home):
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    from cec._onnx import export_onnx

    enc = cec.CEC(device="cpu", precision="onnx-int8").encoder
    path = export_onnx(enc, quantize=True)  # made by the test above (or now)
    stamp = path.stat().st_mtime_ns
    assert export_onnx(enc, quantize=True) == path and path.stat().st_mtime_ns == stamp
    assert path.name == "model-int8.onnx" and (path.parent / "model.onnx").is_file()


def test_a_cached_export_changed_since_it_was_made_is_made_again_not_run(scorer, pairs, onnx_home):
    """A valid graph with other numbers put where the fp32 export was (here: the int8 file) is
    found by its sha256, named in one warning, and made again: the scores stay fp32's."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    import hashlib
    import shutil

    from cec._onnx import EXPORT_TOLERANCE, export_onnx

    gens, refs = pairs
    enc = cec.CEC(device="cpu", precision="onnx-int8").encoder
    int8 = export_onnx(enc, quantize=True)
    opt = int8.parent / "model-opt.onnx"
    made = json.loads((int8.parent / "model-opt.onnx.check.json").read_text(encoding="utf-8"))
    assert made["sha256"] == hashlib.sha256(opt.read_bytes()).hexdigest()
    assert made["max_abs_diff"] <= EXPORT_TOLERANCE["fp32"]
    shutil.copyfile(int8, opt)  # runs, and gives int8's numbers
    with pytest.warns(
        PrecisionWarning, match=r"model-opt\.onnx is not used: it has another sha256"
    ):
        result = cec.CEC(device="cpu", precision="onnx").score(gens, refs)
    assert np.abs(result.sym - scorer.score(gens, refs).sym).max() <= 1e-4
    assert (
        hashlib.sha256(opt.read_bytes()).hexdigest()
        != hashlib.sha256(int8.read_bytes()).hexdigest()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # made again and recorded: reused without a word
        assert export_onnx(cec.CEC(device="cpu", precision="onnx").encoder) == opt


def _freeze(folder, request):
    """No entry can be added to or removed from ``folder``, even by root (chattr +i)."""
    import os
    import subprocess

    if os.geteuid() != 0:
        folder.chmod(0o555)
        request.addfinalizer(lambda: folder.chmod(0o755))
    else:
        proc = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not possible here: {proc.stderr.strip()}")
        request.addfinalizer(lambda: subprocess.run(["chattr", "-i", str(folder)], check=False))
    try:
        (folder / "probe").mkdir()
    except OSError:
        return
    pytest.skip(f"{folder} can still be written to")


def test_a_read_only_cache_keeps_working_only_with_files_that_check_out(
    scorer, pairs, tmp_path, monkeypatch, request
):
    """A cache prepared before records, mounted read-only: its file is checked against torch
    and run (scores as fp32's); a file changed there can be neither trusted nor made again: one
    clear error naming it, never its numbers."""
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("onnxruntime is not installed")
    import shutil

    from cec._onnx import export_onnx

    monkeypatch.setenv("CEC_CACHE_DIR", str(tmp_path / "cache"))
    gens, refs = pairs
    int8 = export_onnx(cec.CEC(device="cpu", precision="onnx-int8").encoder, quantize=True)
    folder = int8.parent
    for record in folder.glob("*.check.json"):  # as a cec before records left it
        record.unlink()
    _freeze(folder, request)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PrecisionWarning)
        result = cec.CEC(device="cpu", precision="onnx").score(gens, refs)
    assert np.abs(result.sym - scorer.score(gens, refs).sym).max() <= 1e-4

    monkeypatch.setenv("CEC_CACHE_DIR", str(tmp_path / "cache2"))  # a changed file, recorded
    int8 = export_onnx(cec.CEC(device="cpu", precision="onnx-int8").encoder, quantize=True)
    shutil.copyfile(int8, int8.parent / "model-opt.onnx")
    _freeze(int8.parent, request)
    with pytest.raises(ValueError, match=r"model-opt\.onnx is not used: it has another sha256.*"
                       r"cannot be written"):  # fmt: skip
        cec.CEC(device="cpu", precision="onnx").score(gens, refs)


def test_precision_option_errors_before_loading():
    with pytest.raises(ValueError, match="precision must be one of"):
        cec.CEC(precision="float8")
    with pytest.raises(ValueError, match="fp16"):
        cec.CEC(device="cpu", precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        cec.score("a.", "b.", precision="half")
