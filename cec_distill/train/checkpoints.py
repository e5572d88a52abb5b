"""Checkpoints: the trainable weights, optimizer, scheduler and every RNG state, written durably.

A checkpoint is a folder ``output_dir/checkpoints/checkpoint-NNNNNNN`` written under a temporary
name and renamed (fsync'd) when complete, so a crash never leaves a half-written checkpoint under
a final name; a new run resumes from the newest one and reaches the same state as an
uninterrupted run.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from cec._files import durable_replace
from cec_distill.semantic import ProjectionHead

_CKPT = "checkpoint-"


def _trainable_state(model: Any, head: ProjectionHead | None) -> dict[str, torch.Tensor]:
    state = {
        f"model.{n}": p.detach().cpu().contiguous()
        for n, p in model.named_parameters()
        if p.requires_grad
    }
    if head is not None:
        state.update(
            {f"head.{n}": p.detach().cpu().contiguous() for n, p in head.state_dict().items()}
        )
    return state


def _rng_state() -> dict[str, Any]:
    import numpy as np

    st = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    root = output_dir / "checkpoints"
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(_CKPT) and (d / "state.json").is_file():
                out.append((int(d.name[len(_CKPT) :]), d))
    return sorted(out)


def _save_checkpoint(
    output_dir: Path, step: int, model, head, opt, sched, state: dict, limit: int
) -> Path:
    from safetensors.torch import save_file

    root = output_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_CKPT}{step:07d}"
    tmp = root / f".tmp-{_CKPT}{step:07d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file(_trainable_state(model, head), str(tmp / "trainable.safetensors"))
    torch.save(opt.state_dict(), tmp / "optimizer.pt")
    torch.save(sched.state_dict(), tmp / "scheduler.pt")
    torch.save(_rng_state(), tmp / "rng.pt")
    (tmp / "state.json").write_text(json.dumps(state, indent=1) + "\n", encoding="utf-8")
    shutil.rmtree(final, ignore_errors=True)
    # the data on disk before the name says it is complete, and the rename itself durable
    durable_replace(tmp, final)
    for _, old in _checkpoints(output_dir)[:-limit]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _load_checkpoint(path: Path, model, head, opt, sched) -> dict:
    from safetensors.torch import load_file

    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in saved.items():
            if k.startswith("model."):
                params[k[6:]].copy_(v)
    if head is not None:
        head.load_state_dict({k[5:]: v for k, v in saved.items() if k.startswith("head.")})
    opt.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    sched.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))
    _set_rng_state(torch.load(path / "rng.pt", weights_only=False))
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
