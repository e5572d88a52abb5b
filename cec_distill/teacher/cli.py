"""``cec-distill label``: the command line of teacher labelling."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import typer

from cec_distill.data import SPLITS, load_instances, split
from cec_distill.prompts import load_template, prompt_hash
from cec_distill.store import JsonlStore
from cec_distill.teacher.config import TeacherConfig
from cec_distill.teacher.errors import TeacherError
from cec_distill.teacher.runner import label_instances

__all__ = ["label_command"]

log = logging.getLogger("cec_distill.teacher")


def label_command(
    data: str = typer.Option(
        ...,
        "--data",
        help="Climate-FEVER/e-SNLI file or directory, an instances JSONL, or 'climate-fever' (Hugging Face).",
    ),
    out: Path = typer.Option(  # noqa: B008
        ..., "--out", help="Labels JSONL (append-only; re-running resumes it)."
    ),
    model: str = typer.Option("gpt-4", "--model", help="Model or deployment name."),
    base_url: str | None = typer.Option(
        None, "--base-url", help="OpenAI-compatible API root, e.g. http://localhost:8000/v1."
    ),
    api_key_env: str = typer.Option(
        "OPENAI_API_KEY", "--api-key-env", help="Environment variable holding the API key."
    ),
    api_version: str | None = typer.Option(
        None, "--api-version", help="Azure OpenAI api-version (base-url = deployment URL)."
    ),
    template: str | None = typer.Option(
        None, "--template", help="Prompt template file (default: built-in per dataset)."
    ),
    split_name: str = typer.Option("all", "--split", help="all, train, validation or test."),
    split_seed: int = typer.Option(
        0, "--split-seed", help="Seed of the stratified 80/10/10 split."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Only the first N instances (after --split)."
    ),
    temperature: float = typer.Option(
        0.0, "--temperature", help="Sampling temperature of the teacher (stored with each label)."
    ),
    seed: int | None = typer.Option(0, "--seed", help="Sampling seed sent with each request."),
    max_tokens: int | None = typer.Option(
        512, "--max-tokens", min=1, help="Completion-token limit per request."
    ),
    token_param: str = typer.Option(
        "max_tokens", "--token-param", help="max_tokens or max_completion_tokens."
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", help="Seconds before a request counts as hung."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", "-j", min=1, help="Requests in flight at once."
    ),
    max_attempts: int = typer.Option(8, "--max-attempts", min=1, help="Attempts per item per run."),
    backoff_base: float = typer.Option(
        1.0, "--backoff-base", help="First backoff (s); doubles per attempt."
    ),
    backoff_max: float = typer.Option(60.0, "--backoff-max", help="Cap on one backoff (s)."),
    max_requests: int | None = typer.Option(
        None, "--max-requests", min=1, help="Budget: requests in this run."
    ),
    max_total_tokens: int | None = typer.Option(
        None, "--max-total-tokens", min=1, help="Budget: tokens in this run."
    ),
    on_length: str = typer.Option(
        "keep",
        "--on-length",
        help="An answer cut by --max-tokens (finish_reason length): keep (flagged, with a "
        "warning), retry-longer (double the limit, up to 3 times) or fail (record as failed).",
    ),
    retry_refused: bool = typer.Option(
        False,
        "--retry-refused",
        help="Ask again for items an earlier run recorded as refused by the content filter.",
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    log_file: Path | None = typer.Option(  # noqa: B008
        None, "--log-file", help="Also write the log (retries, errors) here."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every retry on stderr."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the first prompt and the counts; send nothing."
    ),
) -> None:
    """Label instances with teacher explanations (resumable, retrying, budgeted).

    Exit status: 0 when every instance is labelled (or refused by the content filter) or the
    budget stopped the run cleanly; 1 when some items failed (re-run to retry them); 2 on a fatal
    error (bad arguments, 401/403/404, or the same client error on the first requests, such as a
    model the server does not serve), with the server's message on stderr; 130 when interrupted.
    """
    _setup_logging(verbose, log_file)
    try:
        config = TeacherConfig(
            model=model,
            base_url=base_url,
            api_key_env=api_key_env,
            api_version=api_version,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            token_param=token_param,
            timeout=timeout,
            concurrency=concurrency,
            max_attempts=max_attempts,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            max_requests=max_requests,
            max_total_tokens=max_total_tokens,
            on_length=on_length,
            retry_refused=retry_refused,
        )
        if split_name not in ("all", *SPLITS):
            raise ValueError(f"--split must be all, train, validation or test, got {split_name!r}")
        instances = load_instances(data)
        if split_name != "all":
            instances = split(instances, seed=split_seed)[split_name]
        if limit is not None:
            instances = instances[:limit]
        tmpl = load_template(template) if template is not None else None
    except (ValueError, TypeError, FileNotFoundError, ImportError, RuntimeError) as exc:
        typer.echo(f"cec-distill: error: {exc}", err=True)
        raise typer.Exit(2) from None
    if dry_run:
        done = JsonlStore.open(out, mode="r").done_ids() if out.exists() else set()
        todo = [i for i in instances if i.id not in done]
        typer.echo(
            f"{len(instances)} instances, {len(instances) - len(todo)} already labelled, {len(todo)} to label"
        )
        if todo:
            msgs = (tmpl or load_template(None, todo[0].dataset)).render(todo[0])
            typer.echo(json.dumps(msgs, ensure_ascii=False, indent=2))
            typer.echo(f"prompt hash: {prompt_hash(msgs)}")
        return
    try:
        summary = label_instances(instances, out, config, template=tmpl, progress=progress)
    except TeacherError as exc:
        typer.echo(f"cec-distill: error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted; finished labels are in {out}; re-run the same command to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    if summary.fatal:
        typer.echo(f"cec-distill: error: {summary.fatal}", err=True)
        typer.echo(
            f"stopped: nothing was written for the items not labelled; {summary.labelled} "
            f"labelled, {summary.remaining} remaining of {summary.total} -> {summary.out}",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(summary.format(), err=True)
    if summary.stopped and summary.stopped.startswith("max "):
        typer.echo(f"budget stopped the run ({summary.stopped}); re-run to continue", err=True)
    if summary.failed:
        typer.echo(
            f"{summary.failed} item(s) failed and are recorded with their error; re-run to retry them",
            err=True,
        )
        raise typer.Exit(1)


def _setup_logging(verbose: bool, log_file: Path | None) -> None:
    handlers: list[logging.Handler] = []
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.INFO if verbose else logging.WARNING)
    handlers.append(err)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, encoding="utf-8")
        fh.setLevel(logging.INFO)
        handlers.append(fh)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in handlers:
        h.setFormatter(fmt)
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
