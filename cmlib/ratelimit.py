"""A limiter shared by every thread of one client: requests per second and requests in flight.

Why one shared object: a lookup fans out over lists and a bulk run over thousands of
addresses; if each worker paced itself the sum would still hammer the API. A 429 also pauses
*everyone* until the reset the API announced, instead of every worker discovering it alone.
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.max_in_flight = max(1, int(max_in_flight))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._paused_until = 0.0
        self._sem = threading.BoundedSemaphore(self.max_in_flight)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429 told us when the window resets)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def _reserve(self) -> float:
        """Reserve the next send slot and return how long to wait for it."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until, self._next_slot)
            if self.rate:
                self._next_slot = start + 1.0 / self.rate
            return start - now

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
