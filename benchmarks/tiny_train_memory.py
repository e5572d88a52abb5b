"""Peak memory of tiny 4-bit QLoRA training runs on the CPU, by torch's own accounting.

Each preset is trained a few steps on a tiny random model of its architecture (the builders of
tests/tiny_models.py) under ``torch.profiler`` with memory profiling; the profiler's memory
timeline splits what was live at the peak by category (parameters, optimizer state, gradients,
activations, temporaries...). These are the figures a memory plan of the same settings can be
checked against. Run: ``python benchmarks/tiny_train_memory.py [--presets phi-2 ...]``; prints
one JSON object per preset.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

ARCH = {"tinyllama-1.1b": "llama", "phi-2": "phi", "gemma-2b": "gemma", "gemma-2-2b": "gemma2"}


def measure(preset: str, steps: int = 2, batch_size: int = 3, four_bit: bool = True) -> dict:
    import torch
    from tiny_models import build_tiny_student, tiny_instances
    from torch.profiler import ProfilerActivity, profile
    from torch.profiler._memory_profiler import MemoryProfileTimeline

    from cec_distill.config import load_train_config
    from cec_distill.data import write_instances
    from cec_distill.train import train

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        model_dir = build_tiny_student(d / "model", ARCH[preset])
        write_instances(tiny_instances(batch_size * steps), d / "train.jsonl")
        cfg = load_train_config(
            {
                "preset": preset,
                "model": {"name_or_path": str(model_dir)},
                "quantization": {"load_in_4bit": four_bit},
                "train_file": str(d / "train.jsonl"),
                "output_dir": str(d / "run"),
                "epochs": 1,
                "batch_size": batch_size,
                "eval_generate_n": 0,
                "save_steps": 0,
            }
        )
        with profile(
            activities=[ProfilerActivity.CPU],
            profile_memory=True,
            record_shapes=True,
            with_stack=True,
        ) as prof:
            res = train(cfg)
        timeline = MemoryProfileTimeline(prof._memory_profile())
        times, sizes = timeline._coalesce_timeline(torch.device("cpu"))
        import numpy as np

        sizes = np.array(sizes)  # [time, category] bytes; categories as in the profiler
        totals = sizes.sum(axis=1)
        peak = int(totals.argmax())
        names = _category_names()
        at_peak = {names[i]: int(sizes[peak, i]) for i in range(sizes.shape[1]) if sizes[peak, i]}
        params = dict(_param_counts(model_dir))
        params["example_lengths"] = _lengths(cfg, d / "train.jsonl")
        return {
            "preset": preset,
            "architecture": ARCH[preset],
            "loaded_in_4bit": res.loaded_in_4bit,
            "steps": res.steps,
            "batch_size": batch_size,
            "n_examples": res.n_examples,
            "peak_bytes": int(totals[peak]),
            "at_peak_by_category_bytes": at_peak,
            "max_by_category_bytes": {
                names[i]: int(sizes[:, i].max()) for i in range(sizes.shape[1]) if sizes[:, i].max()
            },
            **params,
        }


def _category_names() -> list[str]:
    """Column names of the profiler's coalesced timeline (column 0 is never written)."""
    from torch.profiler._memory_profiler import _CATEGORY_TO_INDEX

    names = ["-"] * (len(_CATEGORY_TO_INDEX) + 1)
    for cat, i in _CATEGORY_TO_INDEX.items():
        names[i + 1] = cat.name.lower() if cat is not None else "uncategorized"
    return names


def _lengths(cfg, train_file: Path) -> list[int]:
    """Token lengths of the training examples (prompt + explanation + EOS), as trained."""
    from cec_distill.data import load_instances
    from cec_distill.formatting import use_chat_template
    from cec_distill.modeling import load_tokenizer
    from cec_distill.train import build_examples, targets_for

    tok = load_tokenizer(cfg.model)
    inst = load_instances(str(train_file))
    chat = use_chat_template(tok, cfg.model.chat_template)
    exs, _, _, _ = build_examples(inst, targets_for(inst, None), tok, cfg, chat, cfg.max_length)
    return [len(e.input_ids) for e in exs]


def _param_counts(model_dir: Path):
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(str(model_dir))
    yield "base_parameters", sum(p.numel() for p in m.parameters())
    yield (
        "config",
        {
            k: getattr(m.config, k)
            for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "vocab_size")
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=list(ARCH))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=3)
    ap.add_argument("--full-precision", action="store_true")
    a = ap.parse_args()
    for p in a.presets:
        print(json.dumps(measure(p, a.steps, a.batch_size, not a.full_precision)), flush=True)


if __name__ == "__main__":
    main()
