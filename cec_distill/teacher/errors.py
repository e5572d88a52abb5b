"""Errors of teacher labelling and how a failed request is classified (retry, fatal, refused) and
described (the server's own words)."""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any

from cec_distill.teacher.redact import redact_keylike

__all__ = ["TeacherError", "MissingAPIKeyError", "server_message"]


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


_WINDOW_CODES = ("context_length_exceeded", "string_above_max_length", "prompt_too_long")
_WINDOW_WORDS = re.compile(
    r"context length|context window|maximum context|max[-_ ]model[-_ ]len|prompt is too long"
    r"|prompt has \d+ tokens|input is too long|too many input tokens",
    re.IGNORECASE,
)


def _is_window_error(exc: BaseException) -> bool:
    """A 400/413 saying the prompt does not fit the model's window (OpenAI's
    ``context_length_exceeded``, vLLM's and ``transformers serve``'s words)."""
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and code is None:
        code = body.get("code")
    if str(code or "").lower() in _WINDOW_CODES:
        return True
    return bool(_WINDOW_WORDS.search(server_message(exc) or ""))


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
        if code in (400, 413) and _is_window_error(exc):
            return "context_length", False, True  # the prompt is the user's to fix: stop now
        return f"http_{code}", False, False
    if isinstance(
        exc, (ValueError, openai.APIResponseValidationError)
    ):  # JSONDecodeError is a ValueError
        return "malformed", True, False
    return type(exc).__name__, False, False


def _is_client_status(status: object) -> bool:
    """A non-retryable 4xx status (the request itself was wrong)."""
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 425, 429)


def _client_error_key(record: dict[str, Any]) -> tuple[int, str] | None:
    """(status, message) of a non-retryable 4xx error record (not a refusal), else None."""
    err = record.get("error") or {}
    if not _is_client_status(err.get("status")) or err.get("kind") == "refused":
        return None
    return err["status"], str(err.get("message"))
