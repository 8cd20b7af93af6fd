"""A circuit breaker per credential: when Campaign Monitor stops answering, stop asking.

Why: retries are right for one flaky call and wrong for a dead API. Without a breaker a bulk
run of 2,000 rows against a killed server retried for 13 minutes (15,321 calls), the Bulk page
sat on "197 / 902" for minutes without a word, and a lookup whose every request hung took
212 s to fail. With it, a few failures in a row are enough to say "Campaign Monitor is not
answering since 14:02 UTC" at once, send nothing more except one probe now and then, and
resume by itself when a probe is answered.

What counts as a failure: only *no HTTP answer* -- a refused or reset connection, a connect or
read timeout. Any HTTP answer, even a 5xx, an HTML 502 from a proxy, a 429 or a malformed
body, proves the API is reachable: 429s are the rate limiter's business and 5xx are retried
per call, so neither ever trips the breaker (the benchmarks depend on that).

States (:class:`BreakerState`):

* ``closed``: calls go through; ``threshold`` failures in a row open it.
* ``open``: calls fail at once with :class:`~cmlib.errors.ApiUnavailableError` -- nothing is
  sent, which also tells a write that it certainly did not happen -- until ``probe_interval``
  seconds have passed since the last failure.
* ``half_open``: exactly one call (the probe) goes through; everyone else still fails fast.
  An answer closes the breaker, a failure re-opens it for another interval.

One breaker is shared by every client object of the same credential in the process
(:func:`breaker_for`, keyed by a hash of the API URL and key, never the key itself), so the
Lookup page, the Bulk page and a health check all learn about an outage together.
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from . import lazy_text as later
from .lazy_text import LazyText

DEFAULT_THRESHOLD = 5
DEFAULT_PROBE_INTERVAL = 10.0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def not_answering(since: datetime | None) -> LazyText:
    """The one sentence every surface uses for an outage, in the reader's language when shown
    (a bulk run's pause is written on a worker thread and read by whoever watches)."""
    if since is None:
        return later.t("Campaign Monitor is not answering")
    return later.t("Campaign Monitor is not answering since {time} UTC", time=since.astimezone(UTC).strftime("%H:%M"))


@dataclass(frozen=True)
class BreakerStatus:
    """A consistent copy of the breaker for display and decisions."""

    state: BreakerState
    consecutive_failures: int
    down_since: datetime | None  # UTC: first failure of the run of failures that opened it
    next_probe_in: float | None  # seconds until a probe may go (open only)
    last_failure: str | None  # e.g. "read timeout after 20s", "connection failed: ConnectionError"

    @property
    def is_open(self) -> bool:
        """True while calls are refused (open, or half-open with its probe in flight)."""
        return self.state is not BreakerState.CLOSED

    def describe(self) -> LazyText:
        text = not_answering(self.down_since)
        if self.last_failure:
            return later.t("{outage} ({detail})", outage=text, detail=self.last_failure)
        return text


@dataclass(frozen=True)
class Permit:
    """The breaker's answer to "may I send?". ``probe`` marks the one call let through while open."""

    granted: bool
    probe: bool = False
    status: BreakerStatus | None = None  # set when refused


class CircuitBreaker:
    """Thread-safe; ``clock`` (monotonic seconds) and ``now`` (UTC wall time) are injectable for tests."""

    def __init__(
        self,
        threshold: int = DEFAULT_THRESHOLD,
        probe_interval: float = DEFAULT_PROBE_INTERVAL,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.threshold = max(1, int(threshold))
        self.probe_interval = max(0.0, float(probe_interval))
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._first_failure_at: datetime | None = None
        self._last_failure: str | None = None
        self._retry_at = 0.0  # clock time from which a probe may go (open)
        self._probe_out = False

    # ------------------------------------------------------------------ decisions
    def _status(self) -> BreakerStatus:
        if self._state is BreakerState.CLOSED:
            return BreakerStatus(self._state, self._failures, None, None, None)
        wait = max(0.0, self._retry_at - self._clock()) if self._state is BreakerState.OPEN else None
        return BreakerStatus(self._state, self._failures, self._first_failure_at, wait, self._last_failure)

    def status(self) -> BreakerStatus:
        with self._lock:
            return self._status()

    @property
    def state(self) -> BreakerState:
        return self._state

    def check(self) -> BreakerStatus | None:
        """A cheap look before queueing for a rate slot: the status when a call would be refused."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return None
            if self._state is BreakerState.OPEN and self._clock() >= self._retry_at:
                return None  # a probe may go: let the caller queue for it
            return self._status()

    def acquire(self) -> Permit:
        """Right before sending: granted (maybe as the probe), or refused with the status."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return Permit(True)
            if self._state is BreakerState.OPEN and self._clock() >= self._retry_at and not self._probe_out:
                self._state = BreakerState.HALF_OPEN
                self._probe_out = True
                return Permit(True, probe=True)
            return Permit(False, status=self._status())

    def seconds_until_probe(self) -> float | None:
        """None when closed; else how long until a call could go (0: now). While a probe is in
        flight, the interval: its outcome will decide, and a waiter polls again before then."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return None
            if self._state is BreakerState.HALF_OPEN:
                return self.probe_interval
            return max(0.0, self._retry_at - self._clock())

    # ------------------------------------------------------------------ outcomes
    def record_answer(self, permit: Permit | None = None) -> None:
        """An HTTP answer of any status: the API is reachable."""
        with self._lock:
            self._probe_out = False  # closed: a late probe's outcome no longer matters
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._first_failure_at = None
            self._last_failure = None

    def record_failure(self, reason: str, permit: Permit | None = None) -> None:
        """No HTTP answer (refused, reset, timed out)."""
        with self._lock:
            if permit is not None and permit.probe:
                self._probe_out = False
            if self._failures == 0:
                self._first_failure_at = self._now()
            self._failures += 1
            self._last_failure = reason
            if self._state is BreakerState.HALF_OPEN and self._probe_out:
                return  # an older call failing while a probe is out: the probe decides
            if self._state is not BreakerState.CLOSED or self._failures >= self.threshold:
                self._state = BreakerState.OPEN
                self._retry_at = self._clock() + self.probe_interval

    def release(self, permit: Permit | None) -> None:
        """The call ended without telling anything about the API (an exception of ours): hand
        the probe back so the next caller may probe at once."""
        with self._lock:
            if permit is not None and permit.probe and self._probe_out:
                self._probe_out = False
                if self._state is BreakerState.HALF_OPEN:
                    self._state = BreakerState.OPEN
                    self._retry_at = self._clock()

    def reset(self) -> None:
        self.record_answer()


# --------------------------------------------------------------------------- one per credential
_registry: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def credential_fingerprint(api_url: str, api_key: str) -> str:
    """A stable id for (API URL, key) that reveals neither."""
    return hashlib.sha256(f"{api_url.rstrip('/')}\x00{api_key}".encode("utf-8", "surrogatepass")).hexdigest()


def breaker_for(api_url: str, api_key: str, *, threshold: int = DEFAULT_THRESHOLD,
                probe_interval: float = DEFAULT_PROBE_INTERVAL) -> CircuitBreaker:
    """The process-wide breaker of a credential; created with these settings on first use."""
    key = credential_fingerprint(api_url, api_key)
    with _registry_lock:
        b = _registry.get(key)
        if b is None:
            b = _registry[key] = CircuitBreaker(threshold, probe_interval)
        return b


def reset_breakers() -> None:
    """Forget every breaker (tests: a later sandbox may reuse a port an earlier one killed)."""
    with _registry_lock:
        _registry.clear()
