"""Keeping the API key (and anything that looks like a key) out of records, logs and errors."""

from __future__ import annotations

import logging
import re

__all__ = ["Redactor", "redact_keylike"]


class Redactor:
    """Replaces a secret (the API key) in any text; also a :class:`logging.Filter`.

    Examples:
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

    Examples:
        >>> redact_keylike("Incorrect API key provided: sk-proj-abcdefgh1234. Bearer xyz.abc.123")
        'Incorrect API key provided: [REDACTED]. Bearer [REDACTED]'
    """
    for pattern, repl in _KEYLIKE:
        text = pattern.sub(repl, text)
    return text
