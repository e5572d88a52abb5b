"""Checkpoints: the trainable weights, optimizer, scheduler and every RNG state, written durably.

A checkpoint is a folder ``output_dir/checkpoints/checkpoint-NNNNNNN`` written under a temporary
name and renamed (fsync'd) when complete, so a crash never leaves a half-written checkpoint under
a final name; a new run resumes from the newest one and reaches the same state as an
uninterrupted run.

Loading never unpickles arbitrary objects: a pickle can run code, and training resumes from
whatever newest checkpoint lies in the output folder. The weights are safetensors, the step and
history JSON, and the optimizer, scheduler and RNG states ``torch.save`` files holding only
tensors and plain values (numpy's RNG keys are stored as a tensor), read with
``torch.load(weights_only=True)``. A file that needs more (a crafted file, or a checkpoint of an
older version that pickled numpy arrays) is refused with a :class:`CheckpointError` naming it.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import torch

from cec._files import durable_replace
from cec_distill.semantic import ProjectionHead

_CKPT = "checkpoint-"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded safely (it needs more than tensors and values)."""


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

    name, keys, pos, has_gauss, gauss = np.random.get_state()
    st = {
        "python": random.getstate(),  # a tuple of ints (and None): plain values
        # numpy's keys as a tensor: loading an ndarray would need numpy's pickle globals
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    import numpy as np

    random.setstate(st["python"])
    name, keys, pos, has_gauss, gauss = st["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
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


def _safe_load(path: Path) -> Any:
    """``torch.load`` of tensors and plain values only; anything else is refused, unrun."""
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:  # torch's refusal of a global it does not allow
        # torch's own text advises weights_only=False; keep only what it found
        text = str(exc)
        at = text.find("Unsupported")
        detail = text[at:].splitlines()[0].split(". ")[0][:200] if at >= 0 else ""
        detail = f" ({detail})" if detail else ""
        raise CheckpointError(
            f"checkpoint file {path} needs more than tensors and plain values to load{detail}; "
            "it was not loaded, as unpickling it could run code. "
            f"A checkpoint written by an older cec_distill or by someone else: delete "
            f"{path.parent} to resume from the checkpoint before it (or from the start)"
        ) from None


def _load_checkpoint(path: Path, model, head, opt, sched) -> dict:
    from safetensors.torch import load_file

    # every pickled file is checked before anything is changed
    opt_state, sched_state, rng_state = (
        _safe_load(path / name) for name in ("optimizer.pt", "scheduler.pt", "rng.pt")
    )
    saved = load_file(str(path / "trainable.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for k, v in saved.items():
            if k.startswith("model."):
                params[k[6:]].copy_(v)
    if head is not None:
        head.load_state_dict({k[5:]: v for k, v in saved.items() if k.startswith("head.")})
    opt.load_state_dict(opt_state)
    sched.load_state_dict(sched_state)
    _set_rng_state(rng_state)
    return json.loads((path / "state.json").read_text(encoding="utf-8"))
