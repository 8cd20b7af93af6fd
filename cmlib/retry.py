"""When to try a request again and how long to wait: exponential backoff with full jitter.

GETs are safe to repeat, so they retry on 429, 5xx and transport errors. Writes are not
idempotent in Campaign Monitor (no idempotency keys), so a write is retried only on 429,
where the API guarantees it did nothing. Nothing is retried while the circuit breaker is open
(:class:`~cmlib.errors.ApiUnavailableError`): the API is not answering, so waiting out a backoff
per call would only hide the outage; the breaker's probe finds out when it is back.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ApiUnavailableError, CMError, RateLimitedError, ServerError, TransportError, UnexpectedResponseError


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5  # total tries, first one included
    base_delay: float = 0.5
    max_delay: float = 20.0  # cap on one wait
    max_total_wait: float = 60.0  # cap on all waits for one call
    rate_limit_fallback: float = 2.0  # wait for a 429 that came without X-RateLimit-Reset

    def should_retry(self, method: str, error: CMError) -> bool:
        if isinstance(error, ApiUnavailableError):
            return False
        if isinstance(error, RateLimitedError):
            return True
        if method.upper() != "GET":
            return False
        if isinstance(error, (ServerError, TransportError)):
            return True
        # A 200 with a broken body (proxy glitch, truncated JSON) is worth one more GET.
        return isinstance(error, UnexpectedResponseError) and (error.status or 0) in (200, 502, 503, 504)

    def delay(self, attempt: int, error: CMError, rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1)."""
        if isinstance(error, RateLimitedError) and error.reset_seconds is not None:
            # The API told us when the window reopens: wait that long plus a little spread.
            return min(self.max_delay, max(0.0, error.reset_seconds) + rng() * self.base_delay)
        backoff = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        if isinstance(error, RateLimitedError):
            backoff = max(backoff, self.rate_limit_fallback)
            return backoff / 2 + rng() * backoff / 2  # equal jitter: never hammer right back
        return rng() * backoff  # full jitter


NO_RETRY = RetryPolicy(max_attempts=1)
