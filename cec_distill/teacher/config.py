"""What a labelling run is told: the teacher configuration, the retry policy and the budget."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from cec._checks import check_positive_int

__all__ = [
    "ON_LENGTH",
    "MAX_LONGER_RETRIES",
    "SYSTEMATIC_AFTER",
    "TeacherConfig",
    "RetryPolicy",
    "Budget",
]


#: What ``on_length`` may be: keep a cut answer, ask again with a doubled limit, or fail the item.
ON_LENGTH = ("keep", "retry-longer", "fail")


#: ``retry-longer`` doubles the limit at most this many times per item (x2, x4, x8).
MAX_LONGER_RETRIES = 3


#: Requests that must all fail with the same client error before a run calls it systematic.
SYSTEMATIC_AFTER = 3


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
            _check_seconds(getattr(self, name), name)
        _check_seconds(self.backoff_base, "backoff_base", zero_ok=True)
        for name in ("concurrency", "max_attempts"):
            check_positive_int(getattr(self, name), name, what="an integer >= 1")
        for name in ("max_requests", "max_total_tokens", "max_tokens"):
            check_positive_int(
                getattr(self, name), name, none_ok=True, what="None or an integer >= 1"
            )
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


def _check_seconds(value: object, name: str, *, zero_ok: bool = False) -> None:
    """A duration: a real number > 0 (>= 0 with ``zero_ok``); bools and NaN refused."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (value >= 0 if zero_ok else value > 0):  # type: ignore[operator]
        raise ValueError(f"{name} must be {'>=' if zero_ok else '>'} 0, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, never sooner than the server's Retry-After.

    Examples:
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
