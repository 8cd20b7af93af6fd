"""How fast one credential may call the API: a rate budget shared per credential, and an
in-flight cap per client.

Why one shared budget: a lookup fans out over lists and a bulk run over thousands of
addresses; if each worker -- or each client object -- paced itself, the sum would still hammer
the API, whose limit is per API key. A 429 also pauses *everyone* using the key until the reset
the API announced, instead of every worker discovering it alone.

The rule (see :func:`limiter_for`):

* Every :class:`~cmlib.client.CampaignMonitor` of the same credential (API URL + key) in the
  process draws from one :class:`RateBudget`, found by a hash of the credential (never the key
  itself), like the circuit breaker. The first client of a credential creates the budget with
  its ``rate`` and ``burst``; later clients share it as it is. In the app that is the
  interactive connection, so a bulk run started from the Bulk page (its own client, its own
  options) spends the same budget as the Lookup page instead of adding its own on top.
* The in-flight cap is each client's own: a bulk client with ``max_in_flight=16`` never holds
  more than 16 requests open, whatever the interactive client does.
* A client given a ``limiter`` explicitly uses it and nothing else (benchmarks, tests).
* A budget runs on one clock: clients on an injected clock (tests, simulations) share a budget
  only with clients on that same clock.

A budget lives as long as an open client uses it: ``client.close()`` gives its hold back, and
when the last one does, the registry forgets the budget, so a client opened afterwards starts
with a full burst (the registry also holds budgets only weakly, for clients never closed).

The budget is a token bucket: ``burst`` requests may go at once (a lookup's fan-out), after
which requests are spaced at ``rate`` per second. ``burst=1`` gives strict spacing.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from .breaker import credential_fingerprint


class RateBudget:
    """Requests per second for everyone sharing it: a token bucket plus a shared pause."""

    def __init__(
        self,
        rate: float | None = 10.0,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate if rate and rate > 0 else None
        self.burst = max(1, int(burst))
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = float(self.burst)
        self._last = clock()
        self._paused_until = 0.0
        self.holders = 0  # open clients holding it through the registry (guarded by the registry's lock)

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


class RateLimiter:
    """What one client's requests go through: its own in-flight cap in front of a rate budget.

    Without ``budget`` it has a budget of its own (``rate``, ``burst``); with one, ``rate`` and
    ``burst`` are the shared budget's and only ``max_in_flight`` is this limiter's.
    """

    def __init__(
        self,
        rate: float | None = 10.0,
        max_in_flight: int = 8,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: RateBudget | None = None,
    ) -> None:
        self.budget = budget or RateBudget(rate, burst=burst, clock=clock, sleep=sleep)
        self.max_in_flight = max(1, int(max_in_flight))
        self._sem = threading.BoundedSemaphore(self.max_in_flight)
        self._registry_key: tuple[object, ...] | None = None  # set by limiter_for: a hold to give back

    def close(self) -> None:
        """Give back this limiter's hold on a shared budget (its client closed). Idempotent."""
        with _budgets_lock:
            key, self._registry_key = self._registry_key, None
            if key is None:
                return
            self.budget.holders -= 1
            if self.budget.holders <= 0 and _budgets.get(key) is self.budget:
                del _budgets[key]

    @property
    def rate(self) -> float | None:
        return self.budget.rate

    @property
    def burst(self) -> int:
        return self.budget.burst

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of the budget back for ``seconds`` (every client of the credential)."""
        self.budget.pause_for(seconds)

    def acquire(self) -> None:
        self.budget.acquire()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One request: holds an in-flight place of this client while it waits for a rate slot
        of the budget and runs."""
        self._sem.acquire()
        try:
            self.budget.acquire()
            yield
        finally:
            self._sem.release()


# --------------------------------------------------------------------------- one budget per credential
_budgets: weakref.WeakValueDictionary[tuple[object, ...], RateBudget] = weakref.WeakValueDictionary()
_budgets_lock = threading.Lock()


def _key(api_url: str, api_key: str, clock: Callable[[], float],
         sleep: Callable[[float], None]) -> tuple[object, ...]:
    return (credential_fingerprint(api_url, api_key), clock, sleep)


def limiter_for(api_url: str, api_key: str, *, rate: float | None, max_in_flight: int, burst: int = 1,
                clock: Callable[[], float] = time.monotonic,
                sleep: Callable[[float], None] = time.sleep) -> RateLimiter:
    """A client's limiter: its own in-flight cap over the credential's shared budget, which it
    holds until :meth:`RateLimiter.close`."""
    key = _key(api_url, api_key, clock, sleep)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            budget = RateBudget(rate, burst=burst, clock=clock, sleep=sleep)
            _budgets[key] = budget
        budget.holders += 1
    limiter = RateLimiter(max_in_flight=max_in_flight, budget=budget)
    limiter._registry_key = key
    return limiter


def budget_count() -> int:
    """Budgets alive in the process (one per credential in use; for lifetime tests)."""
    with _budgets_lock:
        return len(_budgets)


def reset_rate_budgets() -> None:
    """Forget every budget (tests: a later test must not inherit an earlier one's pacing)."""
    with _budgets_lock:
        _budgets.clear()
