"""``cec-distill run``: the command line over :func:`cec_distill.pipeline.run`."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Annotated

import typer

from cec_distill.pipeline.config import STAGES
from cec_distill.pipeline.runner import run
from cec_distill.pipeline.status import StaleStageError
from cec_distill.train.cli import _parse_sets

__all__ = ["run_command"]


def run_command(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Study YAML (see docs/training.md).")
    ],
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Override a key, e.g. --set student.epochs=1.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Redo every stage whose outputs were made from other inputs."),
    ] = False,
    from_stage: Annotated[
        str | None,
        typer.Option("--from", help=f"Redo this stage and every later one: {', '.join(STAGES)}."),
    ] = None,
) -> None:
    """Run or resume the study: label -> train -> generate -> evaluate -> stats -> report."""

    if from_stage is not None and from_stage not in STAGES:
        raise typer.BadParameter(
            f"{from_stage!r} is not a stage; stages: {', '.join(STAGES)}", param_hint="--from"
        )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    t = time.perf_counter()
    try:
        md = run(config, overrides=_parse_sets(set_), force=force, from_stage=from_stage)
    except StaleStageError as exc:
        typer.echo(f"cec-distill: error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(md.read_text())
    typer.echo(f"report: {md} ({math.ceil(time.perf_counter() - t)} s)")
