"""A labelling run: the items to do, a pool of concurrent requests, and the summary."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from cec_distill.data import Instance
from cec_distill.prompts import PromptTemplate, load_template
from cec_distill.store import JsonlStore
from cec_distill.teacher.client import make_client, resolve_api_key
from cec_distill.teacher.config import SYSTEMATIC_AFTER, TeacherConfig
from cec_distill.teacher.labeller import _Labeller
from cec_distill.teacher.redact import Redactor

__all__ = ["LabelSummary", "label_instances"]

log = logging.getLogger("cec_distill.teacher")


@dataclass
class LabelSummary:
    """What a run did.

    Attributes:
        total: Instances given.
        already_done: Skipped because the output already held their label.
        labelled: Labels written by this run.
        failed: Error records written by this run (retried by the next run); refusals excluded.
        refused: Items the content filter refused in this run (recorded, not retried).
        refused_before: Items skipped because an earlier run recorded them as refused.
        truncated: Labels written by this run that the token limit cut (``"truncated": true``).
        errors: Each distinct error message of this run's failed items, with how many items.
        remaining: Instances still to ask for: neither labelled nor refused by the content
            filter (refused ones are not asked again unless ``retry_refused``).
        requests: Requests sent by this run (retries included).
        tokens: Total tokens the server reported for this run.
        retries: Retries made.
        stopped: Why the run stopped early (budget, interrupt, fatal error), or None.
        fatal: The fatal error message (bad key, unknown model), or None.
    """

    total: int = 0
    already_done: int = 0
    labelled: int = 0
    failed: int = 0
    refused: int = 0
    refused_before: int = 0
    truncated: int = 0
    errors: dict = field(default_factory=dict)
    remaining: int = 0
    requests: int = 0
    tokens: int = 0
    retries: int = 0
    stopped: str | None = None
    fatal: str | None = None
    out: str = ""
    config: dict = field(default_factory=dict)

    def format(self) -> str:
        text = (
            f"labelled {self.labelled}, failed {self.failed}, already done {self.already_done}, "
            f"remaining {self.remaining} of {self.total}; {self.requests} requests "
            f"({self.retries} retries), {self.tokens} tokens -> {self.out}"
        )
        if self.refused or self.refused_before:
            text += (
                f"\nrefused by the content filter: {self.refused} in this run, "
                f"{self.refused_before} skipped as refused before (not retried; --retry-refused "
                "asks again)"
            )
        if self.truncated:
            limit = self.config.get("max_tokens")
            text += (
                f"\n{self.truncated} of {self.labelled} explanations hit the token limit "
                f"(max_tokens {limit}, finish_reason length) and are cut: kept, flagged "
                '"truncated": true (--on-length retry-longer or fail to change this; training can '
                "drop them with truncated_labels: drop)"
            )
        for msg, n in sorted(self.errors.items(), key=lambda kv: -kv[1])[:5]:
            text += f"\nfailed ({n} item{'s' if n != 1 else ''}): {msg}"
        if self.stopped:
            text += f"\nstopped: {self.stopped}"
        return text


def label_instances(
    instances: Sequence[Instance],
    out: str | os.PathLike,
    config: TeacherConfig | None = None,
    *,
    template: str | os.PathLike | PromptTemplate | None = None,
    client: Any = None,
    progress: bool = False,
    rng_seed: int | None = None,
) -> LabelSummary:
    """Label every instance whose id has no label in ``out`` yet; append each result to ``out``.

    Args:
        instances: Instances with unique ids.
        out: The labels JSONL (created if absent; resumed if present).
        config: Model, endpoint, retries, budget (default :class:`TeacherConfig`).
        template: Prompt template (path, built-in name or object); default per dataset.
        client: An ``openai`` client to use instead of :func:`make_client` (for custom transports).
        progress: Show a progress bar on stderr (done/failed/remaining, tokens).
        rng_seed: Seed of the backoff jitter (None: random).

    Returns:
        A :class:`LabelSummary`. Raises :class:`KeyboardInterrupt` after writing what finished,
        when interrupted.
    """
    config = config or TeacherConfig()
    if isinstance(instances, (str, bytes)) or not isinstance(instances, Sequence):
        raise TypeError("instances must be a sequence of Instance")
    seen: set[str] = set()
    for inst in instances:
        if not isinstance(inst, Instance):
            raise TypeError(f"instances must hold Instance objects, got {type(inst).__name__}")
        if inst.id in seen:
            raise ValueError(f"instances: duplicate id {inst.id!r}")
        seen.add(inst.id)
    tmpl = load_template(template) if template is not None else None
    api_key = None
    if client is None:
        api_key = resolve_api_key(config)
    redact = Redactor(api_key if api_key is not None else os.environ.get(config.api_key_env))
    if client is None:
        client = make_client(config, api_key)  # imports openai, which may add its own log handler
    handler_filter_targets = [h for h in logging.getLogger().handlers] + list(log.handlers)
    for h in handler_filter_targets:
        h.addFilter(redact)

    store = JsonlStore.open(out)
    try:
        latest = store.latest()
        done = {k for k, r in latest.items() if not r.get("error")}
        failed_before = set(latest) - done
        refused_before = set()
        if not config.retry_refused:
            refused_before = {
                k for k in failed_before if latest[k]["error"].get("kind") == "refused"
            }
        todo = [i for i in instances if i.id not in done and i.id not in refused_before]
        summary = LabelSummary(
            total=len(instances),
            already_done=sum(1 for i in instances if i.id in done),
            refused_before=sum(1 for i in instances if i.id in refused_before),
            out=str(out),
            config={k: v for k, v in asdict(config).items() if k != "api_key_env"},
        )
        retrying = sum(1 for i in todo if i.id in failed_before)
        if summary.refused_before:
            log.info("%d refused before: not asked again", summary.refused_before)
        log.info(
            "%d instances: %d already labelled, %d to label (%d failed before)",
            len(instances),
            summary.already_done,
            len(todo),
            retrying,
        )
        run = _Labeller(client, config, tmpl, store, redact, rng_seed)
        _run_pool(run, todo, summary, progress)
    finally:
        store.close()
        for h in handler_filter_targets:
            h.removeFilter(redact)
    return summary


def _run_pool(run: _Labeller, todo: list[Instance], summary: LabelSummary, progress: bool) -> None:
    it: Iterator[Instance] = iter(todo)
    it_lock = threading.Lock()
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(
            total=len(todo), desc="labelling", unit="item", file=sys.stderr, dynamic_ncols=True
        )

    def show() -> None:
        if bar is not None:
            bar.set_postfix(
                done=run.done,
                failed=run.failed,
                remaining=len(todo) - run.done,
                tokens=run.budget.tokens,
                refresh=False,
            )

    show()
    errors: list[BaseException] = []
    run.probe_n = min(SYSTEMATIC_AFTER, len(todo))
    run.probing = run.probe_n >= 2

    def write(record: dict[str, Any] | None) -> None:
        if record is None:
            return
        for rec in run.deliver(record):
            run.store.append(rec)  # fsync'd before the item counts as done
            run.count(rec)
            if bar is not None:
                with run._lock:
                    show()
                    bar.update(1)

    def worker() -> None:
        try:
            while not run.stop.is_set():
                with it_lock:
                    inst = next(it, None)
                if inst is None:
                    return
                if run.probing:  # one request at a time until the run is known not to be broken
                    with run.probe_lock:
                        write(run.label(inst))
                else:
                    write(run.label(inst))
        except BaseException as exc:  # a bug or a disk error: stop everyone, re-raise below
            errors.append(exc)
            run._stop_for(f"error: {type(exc).__name__}")

    n = min(run.config.concurrency, len(todo))
    threads = [threading.Thread(target=worker, name=f"teacher-{k}", daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    interrupted = False
    try:
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        run._stop_for("interrupted (Ctrl-C): finishing the requests in flight")
        print(
            "\ninterrupted: waiting for the requests in flight to finish and be written "
            "(Ctrl-C again to abandon them)",
            file=sys.stderr,
        )
        for t in threads:
            while t.is_alive():
                t.join(0.2)
    finally:
        if not errors:
            for rec in run.flush_held():  # too few alike to call it systematic: per-item errors
                run.store.append(rec)
                run.count(rec)
        if bar is not None:
            bar.close()
        summary.labelled = run.done
        summary.failed = run.failed
        summary.refused = run.refused
        summary.truncated = run.truncated
        summary.errors = dict(run.errors)
        summary.remaining = (
            summary.total - summary.already_done - summary.refused_before - run.done - run.refused
        )
        summary.requests = run.budget.requests
        summary.tokens = run.budget.tokens
        summary.retries = run.retries
        summary.stopped = run.stop_reason
        summary.fatal = run.fatal
    if errors:
        raise errors[0]
    if interrupted:
        raise KeyboardInterrupt
