"""``benchmarks/gpu_check.py --cpu``: the prepared GPU check runs end to end on the CPU.

The CPU mode runs the same code as the GPU check at tiny sizes: the scorer at each CPU
precision against CPU fp32, and one 4-bit QLoRA step of each preset's architecture with its
peak memory measured (torch's profiler) beside ``cec-distill plan``'s estimate of it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRESETS = {"tinyllama-1.1b": "llama", "phi-2": "phi", "gemma-2b": "gemma", "gemma-2-2b": "gemma2"}


def test_gpu_check_cpu_mode_writes_the_report_with_plan_against_measured(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1", "PYTHONPATH": str(ROOT)}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--cpu", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["format"] == "cec-gpu-check/1" and r["mode"] == "cpu"
    env_ = r["environment"]
    assert env_["device"] == "cpu" and set(env_["cpu_flags"]) >= {"avx2", "avx512", "bf16"}
    assert {"torch", "transformers", "peft", "bitsandbytes", "cec"} <= set(env_["versions"])
    # the CUDA tests are found by grepping the tests, and listed (CI runs them on the CPU)
    assert "tests/test_encode.py" in r["cuda_tests"]["files"] and not r["cuda_tests"]["ran"]
    thr = r["scorer_throughput"]
    assert thr["sentences"] == 400 and thr["fp32"]["sentences_per_s"] > 0
    num = r["scorer_numerics"]
    assert num["fp32"]["max_abs_dcec"] < 1e-6  # the same path on the same device
    assert num["bf16"]["mean_abs_dcec"] < 0.01
    steps = r["qlora_steps"]
    assert {s["preset"] for s in steps} == set(PRESETS)
    for s in steps:
        assert s["model_type"] == PRESETS[s["preset"]]
        assert s["loss"] == s["loss"] and s["step_seconds"] > 0  # a finite loss: it trained
        assert s["measured_peak_gib"] > s["resident_gib"] > 0
        # the plan's estimate of the same step, within 35% of the measured peak
        assert 0.75 < s["estimate_over_measured"] < 1.35, s
    pvm = r["plan_vs_measured"]
    assert pvm["runs"] == len(steps) == 8
