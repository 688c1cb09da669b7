"""When to try a request again, and how long to wait first. Pure: no I/O, no clock.

    retried on                 which requests
    429 rate-limited           all (the gateway did nothing)
    503 unavailable            all (commands carry an Idempotency-Key, so a repeat is safe)
    409 with Retry-After       requests with an Idempotency-Key: the first request with that
                               key is still in progress (a 409 without Retry-After is a key
                               reused with another body, and final)
    connection error/timeout   idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) and any
                               request that carries an Idempotency-Key
    any other status           never: a 4xx will not change by asking again

The wait before retry n (0-based) is exponential with jitter, `backoff * 2**n` capped at
`max_backoff`, drawn from [half of it, all of it]; a `Retry-After` from the gateway is a
floor. A `Retry-After` longer than `max_retry_after` is not waited for: the error goes to the
caller, whose business it is to wait that long.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 503})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds from now: delta-seconds or an HTTP-date; None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def may_retry_transport(method: str, headers: Mapping[str, str]) -> bool:
    """Whether a request that got no answer may be sent again without doing its work twice."""
    return method.upper() in IDEMPOTENT_METHODS or "idempotency-key" in {
        k.lower() for k in headers
    }


@dataclass(frozen=True)
class RetryPolicy:
    """How many times to retry and how long to back off; `rng` is injectable for tests."""

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    rng: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (0 for the first retry)."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** attempt))
        wait = ceiling / 2 + self.rng() * ceiling / 2
        return max(wait, retry_after) if retry_after is not None else wait

    def retry_status(self, attempt: int, status: int, retry_after: float | None, *,
                     idempotency_key: bool = False) -> float | None:
        """The wait before retrying an answer with `status`, or None to give up now."""
        in_progress = status == 409 and retry_after is not None and idempotency_key
        if attempt >= self.retries or not (status in RETRY_STATUSES or in_progress):
            return None
        if retry_after is not None and retry_after > self.max_retry_after:
            return None
        return self.delay(attempt, retry_after)

    def retry_transport(self, attempt: int, method: str,
                        headers: Mapping[str, str]) -> float | None:
        """The wait before resending a request that got no answer, or None to give up now."""
        if attempt >= self.retries or not may_retry_transport(method, headers):
            return None
        return self.delay(attempt)
