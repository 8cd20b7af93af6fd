"""A limiter shared by every thread of one client: requests per second and requests in flight.

Why one shared object: a lookup fans out over lists and a bulk run over thousands of
addresses; if each worker paced itself the sum would still hammer the API. A 429 also pauses
*everyone* until the reset the API announced, instead of every worker discovering it alone.

It is a token bucket: ``burst`` requests may go at once (a lookup's fan-out), after which
requests are spaced at ``rate`` per second. ``burst=1`` gives strict spacing (bulk runs).
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class RateLimiter:
    def __init__(
        self,
        rate: float | None = 10.0,
        max_in_flight: int = 8,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.max_in_flight = max(1, int(max_in_flight))
        self.burst = max(1, int(burst))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._last = clock()
        self._paused_until = 0.0
        self._sem = threading.BoundedSemaphore(self.max_in_flight)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429 told us when the window resets)."""
        with self._lock:
            until = self._clock() + max(0.0, seconds)
            if until > self._paused_until:
                self._paused_until = until
                # After the pause, restart gently: no burst straight into a fresh window.
                self._tokens = min(self._tokens, 0.0)
                self._last = max(self._last, until)

    def _reserve(self) -> float:
        """Take a token (possibly in advance) and return how long to wait before using it."""
        with self._lock:
            now = self._clock()
            wait = max(0.0, self._paused_until - now)
            if self.rate:
                if now > self._last:
                    self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                self._tokens -= 1.0
                if self._tokens < 0:
                    wait = max(wait, (self._last - now) + (-self._tokens) / self.rate)
            return wait

    def acquire(self) -> None:
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One request: waits for a rate slot and holds an in-flight place while it runs."""
        self._sem.acquire()
        try:
            self.acquire()
            yield
        finally:
            self._sem.release()
