"""``cec-distill train``: the command line over :func:`cec_distill.train.train`."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from cec_distill.config import PRESETS, load_train_config
from cec_distill.train.loop import train

__all__ = ["train_command"]


def _parse_sets(sets: list[str] | None) -> dict:
    import yaml

    out: dict = {}
    for s in sets or []:
        if "=" not in s:
            raise typer.BadParameter(f"--set expects KEY=VALUE, got {s!r}", param_hint="--set")
        key, val = s.split("=", 1)
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(val)
    return out


def train_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config",
            "-c",
            help=(
                "Training YAML (see docs/training.md); `preset:` starts it from a built-in "
                f"preset: {', '.join(PRESETS)}."
            ),
        ),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a key, e.g. --set learning_rate=2e-4 --set lora.r=8."),
    ] = None,
    kill_after_step: Annotated[
        int | None,
        typer.Option(hidden=True, help="Testing aid: SIGKILL after this step's checkpoint."),
    ] = None,
    dump_rank_state: Annotated[
        Path | None,
        typer.Option(hidden=True, help="Testing aid: each process writes its weights here."),
    ] = None,
) -> None:
    """Fine-tune a student (QLoRA) on claim + evidence + label -> explanation; resumes."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    cfg = load_train_config(config, _parse_sets(set_))
    res = train(cfg, kill_after_step=kill_after_step, dump_rank_state=dump_rank_state)
    typer.echo(json.dumps(asdict(res), indent=2))
