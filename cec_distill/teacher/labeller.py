"""One item at a time: prompt, request with retries, and the record written for it."""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime, timezone
from typing import Any

from cec_distill.data import Instance
from cec_distill.prompts import PromptTemplate, load_template, prompt_hash
from cec_distill.store import JsonlStore
from cec_distill.teacher.client import _public_url
from cec_distill.teacher.config import MAX_LONGER_RETRIES, Budget, TeacherConfig
from cec_distill.teacher.errors import (
    _BadResponse,
    _classify,
    _client_error_key,
    _is_client_status,
    _Refused,
    _retry_after,
    server_message,
)
from cec_distill.teacher.redact import Redactor

__all__ = []

log = logging.getLogger("cec_distill.teacher")


def _usage_dict(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    out = {}
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        v = getattr(usage, k, None)
        if isinstance(v, int):
            out[k] = v
    return out or None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class _Labeller:
    """Shared state of one run: client, template, budget, store, counters."""

    def __init__(
        self,
        client: Any,
        config: TeacherConfig,
        template: PromptTemplate | None,
        store: JsonlStore,
        redact: Redactor,
        rng_seed: int | None = None,
    ):
        self.client = client
        self.config = config
        self.template = template
        self.store = store
        self.redact = redact
        self.policy = config.retry
        self.budget = Budget(config.max_requests, config.max_total_tokens)
        self.stop = threading.Event()
        self.stop_reason: str | None = None
        self.fatal: str | None = None
        self._rng = random.Random(rng_seed)
        self._lock = threading.Lock()
        self.done = 0
        self.failed = 0
        self.retries = 0
        self.truncated = 0  # labels kept although cut by the token limit
        self.refused = 0  # items the content filter refused (recorded, not retried)
        self.errors: dict[str, int] = {}  # error message -> items that failed with it
        # Until the first result that is not a client error, requests go one at a time and
        # client-error records are held: if the first SYSTEMATIC_AFTER all fail alike, the error
        # is about the run (unknown model, bad parameter), not the items.
        self.probing = False
        self.probe_n = 0
        self.probe_lock = threading.Lock()
        self.held: list[dict[str, Any]] = []

    def _sleep(self, seconds: float) -> bool:
        """Wait, unless the run is stopping; True if the wait ran its course."""
        return not self.stop.wait(seconds)

    def _request_kwargs(self, messages: list[dict], max_tokens: int | None) -> dict[str, Any]:
        c = self.config
        kw: dict[str, Any] = {"model": c.model, "messages": messages, "temperature": c.temperature}
        if c.seed is not None:
            kw["seed"] = c.seed
        if max_tokens is not None:
            kw[c.token_param] = max_tokens
        return kw

    def label(self, inst: Instance) -> dict[str, Any] | None:
        """Label one instance; returns the record to store, or None if stopped before any answer."""
        c = self.config
        template = self.template or load_template(None, inst.dataset)
        messages = template.render(inst)
        base: dict[str, Any] = {
            "id": inst.id,
            "dataset": inst.dataset,
            "label": inst.label,
            "model": c.model,
            "base_url": _public_url(c.base_url),
            "temperature": c.temperature,
            "seed": c.seed,
            "max_tokens": c.max_tokens,
            "prompt_hash": prompt_hash(messages),
            "template": template.name,
            "template_hash": template.hash,
            "started_at": _now(),
        }
        history: list[dict[str, Any]] = []
        spent: dict[str, int] = {}
        t_start = time.monotonic()
        stopped = False  # the run stopped this item between attempts (not a failure of its own)
        limit = c.max_tokens
        longer = 0  # retry-longer requests made for this item
        for attempt in range(1, c.max_attempts + 1):
            if self.stop.is_set():
                stopped = True
                break
            if not self.budget.acquire():
                self._stop_for(self.budget.reason() or "budget spent")
                stopped = True
                break
            t0 = time.monotonic()
            try:
                raw = self.client.chat.completions.with_raw_response.create(
                    **self._request_kwargs(messages, limit)
                )
                completion = raw.parse()
                usage = _usage_dict(getattr(completion, "usage", None))
                if usage:
                    self.budget.add_tokens(usage.get("total_tokens", 0))
                    for k, v in usage.items():
                        spent[k] = spent.get(k, 0) + v
                choices = getattr(completion, "choices", None)
                if not choices:
                    raise _BadResponse("response has no choices", usage)
                choice = choices[0]
                content = getattr(getattr(choice, "message", None), "content", None)
                finish = getattr(choice, "finish_reason", None)
                if finish == "content_filter":
                    raise _Refused("the server's content filter stopped the answer", usage)
                if not isinstance(content, str) or not content.strip():
                    raise _BadResponse("response message is empty", usage)
            except Exception as exc:  # classify, record, maybe retry
                kind, retryable, fatal = _classify(exc)
                message = self._message(exc)
                entry: dict[str, Any] = {"attempt": attempt, "kind": kind, "message": message}
                status = getattr(exc, "status_code", None)
                if status is not None:
                    entry["status"] = status
                if fatal:
                    # Bad key, no access, unknown model, a prompt past the teacher's window:
                    # about the run (every item's prompt is built alike), not this item.
                    if kind == "context_length":
                        message = (
                            f"the prompt of item {inst.id} does not fit the teacher's context "
                            f"window (the server said: {message}); shorten the prompt template "
                            "or the evidence, lower --max-tokens, or use a model with a longer "
                            "window"
                        )
                    with self._lock:
                        if self.fatal is None:
                            self.fatal = message
                    # INFO: the CLI prints it once as "cec-distill: error: ..."; the summary carries it.
                    log.info("%s: fatal: %s", inst.id, message)
                    self._stop_for(f"fatal error: {message}")
                    return None
                if retryable and self.stop.is_set():
                    stopped = True
                    break
                if retryable and attempt < c.max_attempts:
                    ra = _retry_after(exc)
                    with self._lock:
                        delay = self.policy.delay(attempt, ra, self._rng)
                        self.retries += 1
                    entry["retry_after"] = ra
                    entry["delay_s"] = round(delay, 3)
                    history.append(entry)
                    log.info(
                        "%s: attempt %d failed (%s), retrying in %.2fs",
                        inst.id,
                        attempt,
                        message,
                        delay,
                    )
                    if not self._sleep(delay):
                        stopped = True
                        break
                    continue
                history.append(entry)
                if kind == "refused":
                    log.warning("%s: refused by the content filter: %s", inst.id, message)
                elif not _is_client_status(status):  # client errors: warned once written
                    log.warning("%s: failed after %d attempt(s): %s", inst.id, attempt, message)
                break
            # an answer
            truncated = finish == "length"
            if (
                truncated
                and c.on_length == "retry-longer"
                and attempt < c.max_attempts
                and longer < MAX_LONGER_RETRIES
            ):
                longer += 1
                new_limit = 2 * (limit or (usage or {}).get("completion_tokens") or 512)
                history.append(
                    {
                        "attempt": attempt,
                        "kind": "length",
                        "message": f"cut at the token limit ({limit}); asking again with "
                        f"{new_limit}",
                        "usage": usage,
                    }
                )
                with self._lock:
                    self.retries += 1
                log.info("%s: answer cut at %s tokens, asking for %d", inst.id, limit, new_limit)
                limit = new_limit
                continue
            record = {
                **base,
                "max_tokens": limit,
                "explanation": content.strip(),
                "truncated": truncated,
                "error": None,
                "response_model": getattr(completion, "model", None),
                "system_fingerprint": getattr(completion, "system_fingerprint", None),
                "finish_reason": finish,
                "response_id": getattr(completion, "id", None),
                "request_id": raw.headers.get("x-request-id"),
                "usage": usage,
                "usage_all_attempts": spent or None,
                "attempts": attempt,
                "retries": history,
                "finished_at": _now(),
                "latency_s": round(time.monotonic() - t0, 3),
                "elapsed_s": round(time.monotonic() - t_start, 3),
            }
            if truncated and c.on_length == "fail":
                message = (
                    f"the answer was cut by the token limit ({limit}; finish_reason length); "
                    "raise --max-tokens or use --on-length keep/retry-longer"
                )
                record["explanation"] = None
                record["truncated_explanation"] = content.strip()
                record["error"] = {"kind": "length", "message": message, "status": None}
                log.warning("%s: %s", inst.id, message)
            elif truncated:
                log.info("%s: kept an answer cut at the token limit (%s)", inst.id, limit)
            return record
        if stopped or not history:
            # Stopped (budget, Ctrl-C, another item's fatal error) before an answer: no record,
            # so the next run asks again; failed attempts bought nothing worth keeping.
            return None
        last = history[-1]
        error = {"kind": last["kind"], "message": last["message"], "status": last.get("status")}
        return {
            **base,
            "max_tokens": limit,
            "explanation": None,
            "error": error,
            "usage": None,
            "usage_all_attempts": spent or None,
            "attempts": len(history),
            "retries": history,
            "finished_at": _now(),
            "elapsed_s": round(time.monotonic() - t_start, 3),
        }

    def _message(self, exc: BaseException) -> str:
        """One line for the record and the log: the error's class, status and the server's words."""
        import openai

        said = server_message(exc) if isinstance(exc, openai.APIStatusError) else None
        status = getattr(exc, "status_code", None)
        if isinstance(exc, _Refused):
            text = f"refused: {exc}"
        elif isinstance(exc, _BadResponse):
            text = f"bad response: {exc}"
        elif said is not None:
            text = f"HTTP {status} {type(exc).__name__}: {said}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        return self.redact(" ".join(text.split()))[:500]

    def deliver(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The records to write now, given one finished item (holds client errors while probing)."""
        with self._lock:
            if not self.probing:
                return [record]
            key = _client_error_key(record)
            if key is not None and (not self.held or _client_error_key(self.held[0]) == key):
                self.held.append(record)
                if len(self.held) < self.probe_n:
                    return []
                n, message = len(self.held), record["error"]["message"]
                self.held = []
                self.probing = False
                if self.fatal is None:
                    self.fatal = message
            else:
                self.probing = False
                out, self.held = [*self.held, record], []
                return out
        log.info(
            "the first %d requests all failed with the same client error, so the others would "
            "too; stopping without writing them: %s",
            n,
            message,
        )
        self._stop_for(f"fatal error: the first {n} requests all failed alike: {message}")
        return []

    def flush_held(self) -> list[dict[str, Any]]:
        """Client-error records still held when the run ended (too few to call systematic)."""
        with self._lock:
            out, self.held = self.held, []
            self.probing = False
            return out

    def count(self, record: dict[str, Any]) -> None:
        """Update the counters for a record just written."""
        if _client_error_key(record) is not None:
            log.warning("%s: failed: %s", record["id"], record["error"]["message"])
        with self._lock:
            err = record.get("error")
            if not err:
                self.done += 1
                self.truncated += bool(record.get("truncated"))
            elif err.get("kind") == "refused":
                self.refused += 1
            else:
                self.failed += 1
                msg = str(err.get("message"))
                self.errors[msg] = self.errors.get(msg, 0) + 1

    def _stop_for(self, reason: str) -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.stop.set()
