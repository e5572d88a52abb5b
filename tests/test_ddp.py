"""Two-process training on CPU (torchrun, gloo) equals one process on the same global batch.

The student is a tiny random Llama with a LoRA adapter and the projection head of the semantic
rationale loss (``rationale_loss: both``). Nine examples in global batches of four leave one
example for the last micro-batch, so the second process's share of it is empty: it must still
join the gradient all-reduce (else the first waits forever), and the head's gradients must be
averaged like the adapter's (else each process's head drifts its own way).
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file
from tiny_models import build_tiny_llama, tiny_instances

from cec_distill.config import load_train_config
from cec_distill.data import write_instances
from cec_distill.train import train

ROOT = Path(__file__).resolve().parents[1]
N_EXAMPLES, PER_RANK, WORLD = 9, 2, 2


def _config(d: Path, model: Path, out: Path, batch_size: int) -> dict:
    return {
        "train_file": str(d / "train.jsonl"),
        "output_dir": str(out),
        "model": {"name_or_path": str(model)},
        "quantization": {"load_in_4bit": False},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},  # no dropout: the same masks everywhere
        "rationale_loss": "both",
        "semantic_weight": 0.5,
        "epochs": 1,
        "batch_size": batch_size,
        "learning_rate": 5e-3,
        "logging_steps": 1,
        "eval_generate_n": 0,
        "device": "cpu",
        "seed": 3,
    }


def _losses(path: Path) -> list[tuple[float, float, float]]:
    recs = json.loads(path.read_text())
    return [
        (h["train_loss"], h["train_ce"], h["train_semantic"]) for h in recs if "train_loss" in h
    ]


def test_two_processes_match_one_process_on_the_same_global_batch(tmp_path, scorer):
    d = tmp_path
    model = build_tiny_llama(d / "model")
    write_instances(tiny_instances(N_EXAMPLES), d / "train.jsonl")
    global_bs = PER_RANK * WORLD
    steps = math.ceil(N_EXAMPLES / global_bs)
    last = list(range(N_EXAMPLES))[(steps - 1) * global_bs :]
    assert last[1::WORLD] == []  # rank 1's share of the last micro-batch is empty

    cfg2 = d / "two.yaml"
    cfg2.write_text(yaml.safe_dump(_config(d, model, d / "two", PER_RANK)))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(WORLD),
        "-m", "cec_distill.cli", "train", "--config", str(cfg2), "--dump-rank-state", str(d / "ranks"),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"two-process training hung (a rank left out of backward?):\n{out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]

    one = train(load_train_config(_config(d, model, d / "one", global_bs)), scorer=scorer,
                dump_rank_state=d / "single")  # fmt: skip
    assert one.steps == steps

    r0 = load_file(str(d / "ranks" / "rank-0.safetensors"))
    r1 = load_file(str(d / "ranks" / "rank-1.safetensors"))
    single = load_file(str(d / "single" / "rank-0.safetensors"))
    assert r0.keys() == r1.keys() == single.keys()
    heads = [k for k in r0 if k.startswith("head.")]
    loras = [k for k in r0 if "lora_B" in k]
    assert heads and loras
    assert all(single[k].abs().max() > 0 for k in loras)  # the adapter moved off its zero init
    for k in r0:  # both ranks hold the same adapter and head
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=1e-7, msg=k)
    for k in r0:  # ... and they equal one process on the same global batches
        torch.testing.assert_close(r0[k], single[k], rtol=1e-4, atol=1e-5, msg=k)

    l0, l1 = _losses(d / "ranks" / "rank-0.json"), _losses(d / "ranks" / "rank-1.json")
    ls = _losses(d / "single" / "rank-0.json")
    assert len(l0) == len(ls) == steps
    assert l0 == l1
    assert [x for t in l0 for x in t] == pytest.approx([x for t in ls for x in t], rel=1e-5)
    # the adapter the main process saved is the one every rank holds
    saved = load_file(str(d / "two" / "adapter" / "adapter_model.safetensors"))
    assert len(saved) == len(loras) * 2
