"""Teacher labelling: instance -> prompt -> explanation from any OpenAI-compatible endpoint.

The guarantee is **at-least-once requests, exactly-once records**: every answer that arrives is
kept, each labelled id gets exactly one label record, but a request can be paid for more than
once. What that means in practice:

* Each finished request is appended to an fsync'd JSONL :class:`~cec_distill.store.JsonlStore`
  before it counts as done; a re-run with the same output skips ids whose latest record is a
  label, so a run interrupted by Ctrl-C, ``kill -9`` or power loss loses at most the requests in
  flight (which the server may have billed: they are sent again by the next run).
* Retries with exponential backoff and full jitter on 429, 5xx, timeouts, dropped connections and
  malformed or empty answers; ``Retry-After`` (and ``retry-after-ms``) is honoured. A timeout or
  a dropped connection may come *after* the server did (and billed) the work: the retry is paid
  again. The ``openai`` client's own retries are off (``max_retries=0``), so this loop alone
  decides.
* A content-filtered answer (``finish_reason: "content_filter"``, or a 400 whose code is
  ``content_filter``) is recorded once as *refused* and never retried, neither in this run nor by
  the next one (unless ``retry_refused``).
* An answer cut by the token limit (``finish_reason: "length"``) is flagged ``"truncated": true``
  and counted; ``on_length`` keeps it (default, with a warning), asks again with a doubled limit
  (``retry-longer``) or records it as failed (``fail``).
* The server's own error text (JSON ``error.message`` or ``detail``, else the start of the body,
  with anything that looks like a key redacted) is kept in the record, the log and the summary.
* When the first requests of a run all fail with the same client error (a 400/422 such as an
  unknown model name or a bad parameter), the run stops as fatal without writing records for
  them (as it does at once on 401, 403 and 404): the error is about the run, not the items.
  A client error about one item (a content filter, a context-length error on one long prompt)
  is recorded for that item.
* A budget (requests sent, total tokens) stops the run cleanly: no new request starts, the
  requests in flight finish and are written, the run exits 0 saying the budget stopped it.
* A failed item is written with its error (``"error"`` field) and retried by the next run.
* The API key is read from an environment variable only, never printed, logged or stored; any
  text that could carry it (error messages, logs) passes through :class:`Redactor`.

Python use::

    from cec_distill.data import load_climate_fever
    from cec_distill.teacher import TeacherConfig, label_instances
    summary = label_instances(load_climate_fever("climate-fever.jsonl"), "labels.jsonl",
                              TeacherConfig(model="gpt-4"))
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import random
import re
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import typer

from cec_distill.data import SPLITS, Instance, load_instances, split
from cec_distill.prompts import PromptTemplate, load_template, prompt_hash
from cec_distill.store import JsonlStore

__all__ = [
    "TeacherConfig",
    "RetryPolicy",
    "Budget",
    "Redactor",
    "LabelSummary",
    "TeacherError",
    "MissingAPIKeyError",
    "make_client",
    "label_instances",
    "label_command",
    "LOCAL_PLACEHOLDER_KEY",
    "ON_LENGTH",
    "server_message",
    "redact_keylike",
]

log = logging.getLogger("cec_distill.teacher")

#: Sent as the API key to a local server (127.0.0.1, localhost, ::1) when the key variable is unset.
LOCAL_PLACEHOLDER_KEY = "local-no-key"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class TeacherError(RuntimeError):
    """A labelling run cannot go on (bad key, unknown model, missing configuration)."""


class MissingAPIKeyError(TeacherError):
    """The environment variable that should hold the API key is unset."""


class _BadResponse(Exception):
    """A 200 answer that is not a label (malformed, no choices, empty message)."""

    def __init__(self, message: str, usage: dict | None = None):
        super().__init__(message)
        self.usage = usage


class _Refused(_BadResponse):
    """The server's content filter stopped the answer: recorded once, never retried."""


#: What ``on_length`` may be: keep a cut answer, ask again with a doubled limit, or fail the item.
ON_LENGTH = ("keep", "retry-longer", "fail")
#: ``retry-longer`` doubles the limit at most this many times per item (x2, x4, x8).
MAX_LONGER_RETRIES = 3
#: Requests that must all fail with the same client error before a run calls it systematic.
SYSTEMATIC_AFTER = 3


# ----------------------------------------------------------------------------- configuration


@dataclass
class TeacherConfig:
    """What to ask and how hard to try.

    Attributes:
        model: Model (or Azure deployment) name, e.g. ``"gpt-4"``.
        base_url: API root, e.g. ``http://localhost:8000/v1`` (vLLM), ``http://localhost:11434/v1``
            (Ollama); None means the ``openai`` default (``$OPENAI_BASE_URL`` or api.openai.com).
        api_key_env: Name of the environment variable holding the key.
        api_version: Azure OpenAI ``api-version``; when set, ``openai.AzureOpenAI`` is used with
            ``base_url`` as the deployment URL (``https://RES.openai.azure.com/openai/deployments/NAME``).
        temperature: Sampling temperature (0 for reproducible labels).
        seed: Sampling seed sent with each request (None: not sent).
        max_tokens: Limit on completion tokens per request (None: not sent).
        token_param: Request field for that limit: ``"max_tokens"`` or ``"max_completion_tokens"``
            (newer OpenAI reasoning models accept only the latter).
        timeout: Seconds before a request counts as hung (connect, read and write each).
        concurrency: Requests in flight at once.
        max_attempts: Attempts per item in one run (first try included).
        backoff_base: First backoff in seconds; attempt k waits uniform(0, min(cap, base * 2**(k-1))).
        backoff_max: Cap on one backoff.
        max_retry_after: Cap on a server's Retry-After.
        max_requests: Budget: requests sent in this run (retries count); None = unlimited.
        max_total_tokens: Budget: total tokens reported by the server in this run; None = unlimited.
            Checked before each request, so it can be overshot by the requests in flight.
        on_length: What to do with an answer cut by the token limit (``finish_reason:
            "length"``): ``"keep"`` it flagged ``"truncated": true`` (and warn), ``"retry-longer"``
            (ask again with the limit doubled, up to 3 times, then keep the last answer flagged),
            or ``"fail"`` (record the item as failed, kind ``"length"``, the cut text in
            ``truncated_explanation``).
        retry_refused: Ask again for items whose latest record is a content-filter refusal
            (by default they are recorded once and skipped by later runs).
    """

    model: str = "gpt-4"
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    api_version: str | None = None
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int | None = 512
    token_param: str = "max_tokens"
    timeout: float = 60.0
    concurrency: int = 4
    max_attempts: int = 8
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    max_retry_after: float = 300.0
    max_requests: int | None = None
    max_total_tokens: int | None = None
    on_length: str = "keep"
    retry_refused: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"model must be a non-empty string, got {self.model!r}")
        if not isinstance(self.api_key_env, str) or not self.api_key_env:
            raise ValueError("api_key_env must name an environment variable")
        if self.token_param not in ("max_tokens", "max_completion_tokens"):
            raise ValueError(
                f"token_param must be max_tokens or max_completion_tokens, got {self.token_param!r}"
            )
        for name in ("timeout", "backoff_max", "max_retry_after"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.backoff_base < 0:
            raise ValueError(f"backoff_base must be >= 0, got {self.backoff_base!r}")
        for name in ("concurrency", "max_attempts"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
        for name in ("max_requests", "max_total_tokens", "max_tokens"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name} must be None or an integer >= 1, got {v!r}")
        if self.on_length not in ON_LENGTH:
            raise ValueError(
                f"on_length must be one of {', '.join(ON_LENGTH)}, got {self.on_length!r}"
            )
        if not 0 <= self.temperature <= 2:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature!r}")

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(
            self.max_attempts, self.backoff_base, self.backoff_max, self.max_retry_after
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, never sooner than the server's Retry-After.

    Example:
        >>> p = RetryPolicy(max_attempts=5, base=1.0, cap=8.0)
        >>> rng = random.Random(0)
        >>> all(0 <= p.delay(k, None, rng) <= min(8.0, 2 ** (k - 1)) for k in range(1, 10))
        True
        >>> p.delay(1, 3.0, rng) >= 3.0
        True
    """

    max_attempts: int = 8
    base: float = 1.0
    cap: float = 60.0
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        backoff = rng.uniform(0.0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after is None:
            return backoff
        honoured = min(max(retry_after, 0.0), self.max_retry_after)
        # At least what the server asked, plus a little jitter so workers do not return in a herd.
        return max(honoured * (1.0 + rng.uniform(0.0, 0.1)), backoff)


class Budget:
    """Thread-safe counters of requests and tokens against optional limits."""

    def __init__(self, max_requests: int | None = None, max_total_tokens: int | None = None):
        self.max_requests = max_requests
        self.max_total_tokens = max_total_tokens
        self.requests = 0
        self.tokens = 0
        self._lock = threading.Lock()

    def reason(self) -> str | None:
        """Why the budget is spent, or None."""
        if self.max_requests is not None and self.requests >= self.max_requests:
            return f"max requests ({self.max_requests}) reached"
        if self.max_total_tokens is not None and self.tokens >= self.max_total_tokens:
            return f"max total tokens ({self.max_total_tokens}) reached: {self.tokens} tokens used"
        return None

    def acquire(self) -> bool:
        """Count one request if the budget allows it; False when spent."""
        with self._lock:
            if self.reason() is not None:
                return False
            self.requests += 1
            return True

    def add_tokens(self, n: int) -> None:
        with self._lock:
            self.tokens += int(n or 0)


class Redactor:
    """Replaces a secret (the API key) in any text; also a :class:`logging.Filter`.

    Example:
        >>> Redactor("sk-abcdef123456")("bad key: Bearer sk-abcdef123456")
        'bad key: Bearer [REDACTED]'
    """

    def __init__(self, secret: str | None):
        self.secrets = [s for s in {secret or ""} if len(s) >= 4]

    def __call__(self, text: object) -> str:
        out = str(text)
        for s in self.secrets:
            out = out.replace(s, "[REDACTED]")
        return out

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            msg = record.getMessage()
            clean = self(msg)
            if clean != msg or record.exc_info:
                record.msg, record.args = clean, None
                if record.exc_info:
                    import traceback

                    record.msg += "\n" + self("".join(traceback.format_exception(*record.exc_info)))
                    record.exc_info = None
                    record.exc_text = None
        return True


# Anything in a server's error text that looks like a credential (the server may echo headers).
_KEYLIKE = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}"), r"\1 [REDACTED]"),
    (re.compile(r"\b(?:sk|pk|rk|hf|gsk|xai|key)[-_][A-Za-z0-9_-]{8,}"), "[REDACTED]"),
    (
        re.compile(
            r"(?i)((?:api[_-]?key|access[_-]?key|token|secret|password|authorization)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;}\]]{6,}"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"\b[0-9a-fA-F]{32,}\b"), "[REDACTED]"),
)


def redact_keylike(text: str) -> str:
    """Replace what looks like an API key, bearer token or secret in ``text``.

    Example:
        >>> redact_keylike("Incorrect API key provided: sk-proj-abcdefgh1234. Bearer xyz.abc.123")
        'Incorrect API key provided: [REDACTED]. Bearer [REDACTED]'
    """
    for pattern, repl in _KEYLIKE:
        text = pattern.sub(repl, text)
    return text


def _message_from_json(obj: Any) -> str | None:
    """The human part of an error body: ``error.message``, ``error``, ``detail`` or ``message``."""
    if isinstance(obj, str):
        return obj.strip() or None
    if not isinstance(obj, dict):
        return None
    err = obj.get("error")
    if isinstance(err, dict):
        msg = err.get("message")
        if isinstance(msg, str) and msg.strip():
            return msg.strip()
    elif isinstance(err, str) and err.strip():
        return err.strip()
    detail = obj.get("detail")
    if isinstance(detail, str) and detail.strip():
        return detail.strip()
    if isinstance(detail, list) and detail:  # FastAPI validation errors: [{loc, msg, type}]
        parts = []
        for d in detail[:5]:
            if isinstance(d, dict):
                loc = ".".join(str(x) for x in d.get("loc", ()) if x != "body")
                parts.append(f"{loc}: {d.get('msg')}" if loc else str(d.get("msg")))
        if parts:
            return "; ".join(parts)
    msg = obj.get("message")
    if isinstance(msg, str) and msg.strip():
        return msg.strip()
    return None


def server_message(exc: BaseException) -> str | None:
    """What the server said about a failed request, redacted, on one line (None if nothing).

    The JSON ``error.message`` (OpenAI), ``detail`` (FastAPI servers such as ``transformers
    serve``) or ``message`` field, else the first 300 characters of the body.
    """
    resp = getattr(exc, "response", None)
    text: str | None = None
    if resp is not None:
        try:
            text = resp.text
        except Exception:  # a streamed or closed response: fall back to the parsed body
            text = None
    msg = None
    if text:
        try:
            msg = _message_from_json(json.loads(text))
        except ValueError:
            msg = None
        if msg is None:
            msg = text.strip()[:300] or None
    if msg is None:
        msg = _message_from_json(getattr(exc, "body", None))
    if msg is None:
        return None
    msg = " ".join(msg.split())  # one line
    return redact_keylike(msg)[:500]


def _is_content_filter(exc: BaseException) -> bool:
    """A 400 whose error code says the prompt was filtered (Azure OpenAI, some gateways)."""
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and code is None:
        code = body.get("code")
    return str(code or "").lower() in ("content_filter", "content_policy_violation")


# ----------------------------------------------------------------------------- client


def _is_local(base_url: str | None) -> bool:
    if not base_url:
        return False
    host = (urlsplit(base_url).hostname or "").lower()
    return host in _LOCAL_HOSTS or host.startswith("127.")


def _public_url(base_url: str | None) -> str | None:
    """base_url without user:password or query (which might carry credentials)."""
    if not base_url:
        return None
    u = urlsplit(base_url)
    netloc = u.hostname or ""
    if u.port:
        netloc += f":{u.port}"
    return urlunsplit((u.scheme, netloc, u.path, "", ""))


def resolve_api_key(config: TeacherConfig) -> str:
    """The key from ``$<api_key_env>``; a placeholder for a local server; else MissingAPIKeyError."""
    key = os.environ.get(config.api_key_env, "").strip()
    if key:
        return key
    if _is_local(config.base_url):
        return LOCAL_PLACEHOLDER_KEY
    raise MissingAPIKeyError(
        f"the environment variable {config.api_key_env} is not set: put the API key there "
        "(or name another variable with --api-key-env); keys are never taken on the command line"
    )


def make_client(config: TeacherConfig, api_key: str | None = None) -> Any:
    """An ``openai.OpenAI`` (or ``AzureOpenAI`` when ``api_version`` is set) with retries off."""
    import openai

    key = api_key if api_key is not None else resolve_api_key(config)
    common: dict[str, Any] = {"api_key": key, "max_retries": 0, "timeout": config.timeout}
    if config.api_version:
        if not config.base_url:
            raise TeacherError("--api-version (Azure) needs --base-url: the deployment URL")
        return openai.AzureOpenAI(
            base_url=config.base_url, api_version=config.api_version, **common
        )
    return openai.OpenAI(base_url=config.base_url, **common)


# ----------------------------------------------------------------------------- one request


def _retry_after(exc: Exception) -> float | None:
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return float(ra)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(ra)
            return max(0.0, when.timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _classify(exc: BaseException) -> tuple[str, bool, bool]:
    """(kind, retryable, fatal) for an exception raised by one request."""
    import openai

    if isinstance(exc, _Refused):
        return "refused", False, False
    if isinstance(exc, _BadResponse):
        return "bad_response", True, False
    if isinstance(exc, openai.APITimeoutError):
        return "timeout", True, False
    if isinstance(exc, openai.APIConnectionError):
        return "connection", True, False
    if isinstance(exc, openai.APIStatusError):
        code = exc.status_code
        if code == 429 or code >= 500 or code in (408, 409, 425):
            return f"http_{code}", True, False
        if code in (401, 403, 404):
            return f"http_{code}", False, True  # bad key, no access, unknown model: stop the run
        if code == 400 and _is_content_filter(exc):
            return "refused", False, False
        return f"http_{code}", False, False
    if isinstance(
        exc, (ValueError, openai.APIResponseValidationError)
    ):  # JSONDecodeError is a ValueError
        return "malformed", True, False
    return type(exc).__name__, False, False


def _usage_dict(usage: Any) -> dict[str, int] | None:
    if usage is None:
        return None
    out = {}
    for k in ("prompt_tokens", "completion_tokens", "total_tokens"):
        v = getattr(usage, k, None)
        if isinstance(v, int):
            out[k] = v
    return out or None


def _is_client_status(status: object) -> bool:
    """A non-retryable 4xx status (the request itself was wrong)."""
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 425, 429)


def _client_error_key(record: dict[str, Any]) -> tuple[int, str] | None:
    """(status, message) of a non-retryable 4xx error record (not a refusal), else None."""
    err = record.get("error") or {}
    if not _is_client_status(err.get("status")) or err.get("kind") == "refused":
        return None
    return err["status"], str(err.get("message"))


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
                    # Bad key, no access, unknown model: about the run, not this item. No record.
                    with self._lock:
                        if self.fatal is None:
                            self.fatal = message
                    # INFO: the CLI prints it once as "error: ..."; the summary carries it.
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


# ----------------------------------------------------------------------------- runner


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


# ----------------------------------------------------------------------------- CLI


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
    temperature: float = typer.Option(0.0, "--temperature", help="Sampling temperature of the teacher (stored with each label)."),
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
        typer.echo(f"error: {exc}", err=True)
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
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted; finished labels are in {out}; re-run the same command to resume",
            err=True,
        )
        raise typer.Exit(130) from None
    if summary.fatal:
        typer.echo(f"error: {summary.fatal}", err=True)
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
