"""TeacherConfig's argument checks: one message shape per kind of value, checked at construction."""

from __future__ import annotations

import math

import pytest

from cec_distill.teacher import TeacherConfig


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 0}, "concurrency must be an integer >= 1, got 0"),
        ({"concurrency": True}, "concurrency must be an integer >= 1, got True"),
        ({"max_attempts": 2.0}, "max_attempts must be an integer >= 1, got 2.0"),
        ({"max_requests": 0}, "max_requests must be None or an integer >= 1, got 0"),
        ({"max_tokens": False}, "max_tokens must be None or an integer >= 1, got False"),
        ({"max_total_tokens": "9"}, "max_total_tokens must be None or an integer >= 1, got '9'"),
        ({"timeout": 0}, "timeout must be > 0, got 0"),
        ({"timeout": math.nan}, "timeout must be > 0, got nan"),
        ({"timeout": "60"}, "timeout must be > 0, got '60'"),
        ({"backoff_max": True}, "backoff_max must be > 0, got True"),
        ({"max_retry_after": -1.0}, "max_retry_after must be > 0, got -1.0"),
        ({"backoff_base": -0.5}, "backoff_base must be >= 0, got -0.5"),
    ],
)
def test_bad_numbers_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError) as err:
        TeacherConfig(**kwargs)
    assert str(err.value) == message


def test_limits_at_their_bounds_are_accepted():
    cfg = TeacherConfig(
        concurrency=1, max_attempts=1, max_requests=None, max_tokens=1, backoff_base=0,
        timeout=0.5,
    )  # fmt: skip
    assert (cfg.concurrency, cfg.max_tokens, cfg.backoff_base, cfg.timeout) == (1, 1, 0, 0.5)
    assert cfg.retry.max_attempts == 1
