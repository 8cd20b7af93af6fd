"""How fast one credential may call the API: a rate budget shared per credential, with two
lanes, and an in-flight cap per client.

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
* The pace is learned (:mod:`cmlib.pacing`): from X-RateLimit-* headers, else by probing
  (additive increase, multiplicative decrease on 429s), and remembered per credential for the
  life of the process, so a budget created again later starts where the last one ended.
* Two lanes (:class:`~cmlib.pacing.Lane`): when callers of both wait, an interactive one (a
  person's lookup or write) gets the next slot; bulk work gets what the interactive lane leaves.
  Bulk work never spends a saved-up burst: the burst is for a person's fan-out, and a run that
  started by spending it would overfill the API's window. When the API's headers say its
  window is full (less what is in flight), nobody is let through until the answers coming back
  say otherwise, or the window has reset. While bulk work keeps the budget
  busy, a person's fan-out may still go at once, ahead of the pace, when the API's headers say
  its window has room for it; the bulk lane repays it by waiting.
* The in-flight cap is each client's own: a bulk client with ``max_in_flight=16`` never holds
  more than 16 requests open, whatever the interactive client does.
* With ``CM_REDIS_URL`` the budget is one for every process (replicas, CLI runs, workers): its
  slots come from the credential's token bucket in Redis (:mod:`cmlib.shared_rate`), reserved
  by whoever is first in line in the process (interactive first) and slept until; a 429's pause
  is written there too, so every process waits for the announced reset. The lanes, the
  in-flight cap and the learning stay per process; what is learned is shared through the rate
  memory. A budget on an injected clock stays in the process.
* A client given a ``limiter`` explicitly uses it and nothing else (benchmarks, tests).
* A budget runs on one clock: clients on an injected clock (tests, simulations) share a budget
  only with clients on that same clock.

A budget lives as long as an open client uses it: ``client.close()`` gives its hold back, and
when the last one does, the registry forgets the budget, so a client opened afterwards starts
with a full burst (the registry also holds budgets only weakly, for clients never closed); the
learned pace stays in the memory.

The budget is a token bucket: ``burst`` requests may go at once (a lookup's fan-out), after
which requests are spaced at the pace. ``burst=1`` gives spacing, with one slot of catch-up so
a thread that wakes late does not lose its slot (at 150/s a slot is under 7 ms).
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import deployment
from .breaker import credential_fingerprint
from .pacing import (
    LEARN,
    Lane,
    LearnedRate,
    Pacer,
    PacingTuning,
    RateMemory,
    RateSetting,
    RateSignal,
    RateSource,
    current_lane,
    rate_memory,
)

if TYPE_CHECKING:
    from .shared_rate import SharedBucket

_NOTIFY_CHECK = 1.0  # seconds a queued caller waits for its turn before looking again (a safety net only)
_WINDOW_SPARE = 2  # requests left unborrowed in the API's window (answers may arrive out of order)
_CATCH_UP = 2.0  # tokens the bucket holds at least: a caller that wakes late takes the next slot at once


def _redis_errors() -> type[Exception]:
    """redis-py's base error (imported only once a shared bucket exists, so redis is loaded)."""
    import redis

    return redis.RedisError


@dataclass(frozen=True)
class Grant:
    """One request's slot: its lane and when (on the budget's clock) it was let through."""

    lane: Lane
    at: float
    seq: int


@dataclass(frozen=True)
class PaceStatus:
    """A budget at a glance (diagnostics, benchmarks)."""

    rate: float | None
    source: RateSource
    ceiling: float | None
    limit: int | None
    answers: int  # answers observed
    rate_limited: int  # of which 429
    waiting: dict[Lane, int]
    window_left: float | None = None  # requests the API's current window still takes (X-RateLimit-Remaining)


class SlotWaitTooLong(Exception):
    """The wait for a rate slot is longer than the caller has left; nothing was sent."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"the next request slot is {wait:.0f} s away")
        self.wait = wait


class RateBudget:
    """Requests per second for everyone sharing it: a token bucket with a learned pace, two
    lanes of waiting callers, and a shared pause."""

    def __init__(
        self,
        rate: RateSetting = LEARN,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        tuning: PacingTuning | None = None,
        learned: LearnedRate | None = None,
        memory: RateMemory | None = None,
        credential: str | None = None,
        shared: SharedBucket | None = None,
    ) -> None:
        """``memory`` and ``credential``: where to keep what is learned (a budget of the registry);
        ``learned``: where to start (what the memory held); ``shared``: the credential's bucket in
        Redis that every process reserves its slots from (``CM_REDIS_URL``), else the budget's own."""
        if isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate <= 0:
            rate = None
        self.pacer = Pacer(rate, tuning, learned)
        self.burst = max(1, int(burst))
        self._clock = clock
        self._sleep = sleep
        self._memory = memory
        self._credential = credential
        self.shared = shared
        self._cond = threading.Condition(threading.Lock())
        self._tokens = float(self.burst)
        self._last = clock()
        self._paused_until = 0.0
        self._queues: dict[Lane, deque[object]] = {lane: deque() for lane in Lane}
        self._seq = 0
        # The API's current window, from X-RateLimit-Remaining/-Reset: what it still takes, and
        # when it resets at the latest (Reset is rounded up to whole seconds).
        self._window_left: float | None = None
        self._window_ends = 0.0
        self._window_limit = 0
        self._answers = 0
        self._rate_limited = 0
        self.holders = 0  # open clients holding it through the registry (guarded by the registry's lock)

    @property
    def rate(self) -> float | None:
        """The current pace in requests per second (None: not paced)."""
        return self.pacer.rate

    @property
    def learns(self) -> bool:
        return self.pacer.learns

    def now(self) -> float:
        return self._clock()

    def status(self) -> PaceStatus:
        with self._cond:
            p = self.pacer
            return PaceStatus(p.rate, p.source, p.ceiling, p.limit, self._answers, self._rate_limited,
                              {lane: len(q) for lane, q in self._queues.items()}, self._window_left)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller back for ``seconds`` (a 429 told us when the window resets): every
        process's callers, with a shared bucket."""
        with self._cond:
            self._pause_locally(self._clock() + max(0.0, seconds))
        self._pause_shared(seconds)

    def _pause_locally(self, until: float) -> None:
        if until > self._paused_until:
            self._paused_until = until
            # After the pause, restart gently: no burst straight into a fresh window.
            self._tokens = min(self._tokens, 0.0)
            self._last = max(self._last, until)

    def _pause_shared(self, seconds: float) -> None:
        shared = self.shared
        if shared is not None and shared.available():
            try:
                shared.pause(max(0.0, seconds))
            except _redis_errors() as exc:
                shared.failed(exc)

    def paused_for(self) -> float:
        """Seconds every caller is still held back by an announced reset (0 when not paused)."""
        with self._cond:
            local = max(0.0, self._paused_until - self._clock())
        shared = self.shared
        if shared is not None and shared.available():
            try:
                return max(local, shared.paused_for())
            except _redis_errors() as exc:
                shared.failed(exc)
        return local

    def observe(self, grant: Grant, signal: RateSignal) -> None:
        """Learn from the answer to a request this budget let through."""
        learned: LearnedRate | None = None
        with self._cond:
            self._answers += 1
            if signal.rate_limited:
                self._rate_limited += 1
            now = self._clock()
            if signal.rate_limited and signal.reset is not None:
                # The API said when the window reopens: everyone waits for it.
                self._pause_locally(now + max(0.0, signal.reset))
            if signal.remaining is not None and self.pacer.rate is not None:
                # Requests let through after this one may not be counted in its Remaining yet.
                self._window_left = max(0.0, signal.remaining - (self._seq - grant.seq))
                self._window_ends = now + (signal.reset if signal.reset is not None else 1.0)
                self._window_limit = signal.limit or 0
            if self.pacer.observe(signal, grant.at, now):
                learned = self.pacer.learned()
        if signal.rate_limited and signal.reset is not None:
            self._pause_shared(signal.reset)  # ...every process using the credential
        if learned is not None and self._memory is not None and self._credential is not None:
            self._memory.remember(self._credential, learned)

    def _next_in_line(self) -> object | None:
        for lane in Lane:  # interactive first
            q = self._queues[lane]
            if q:
                return q[0]
        return None

    def _gate(self, now: float) -> float:
        """How long the first in line must wait whatever the bucket holds: an announced pause,
        or the API's window full by its own headers (0.0: nothing holds it back)."""
        pause = self._paused_until - now
        if pause > 0:
            return pause
        if self.pacer.rate is None:
            return 0.0
        if self._window_left is not None:
            if now >= self._window_ends:
                self._window_left = float(self._window_limit)  # the API's window has reset by now
            elif self._window_left < 1.0:
                # Full by the API's own count (less what is in flight): the answers coming back say
                # more within a round trip -- sooner than a 429 would, and without one.
                return max(1e-3, min(self._window_ends - now, max(self.pacer.round_trip, 0.005)))
        return 0.0

    def _take(self, now: float, lane: Lane) -> float:
        """Take a slot now (0.0) or say how long the first in line must wait for one."""
        gate = self._gate(now)
        rate = self.pacer.rate
        if gate > 0 or rate is None:
            return gate
        if now > self._last:
            self._tokens = min(max(float(self.burst), _CATCH_UP), self._tokens + (now - self._last) * rate)
            self._last = now
        if self._tokens >= 1.0 - 1e-9 or (lane is Lane.INTERACTIVE and self._may_borrow()):
            self._tokens -= 1.0
            if self._window_left is not None:
                self._window_left -= 1.0
            self.pacer.note_grant()
            if lane is Lane.BULK:
                self._tokens = min(self._tokens, 1.0)  # bulk work never spends a saved-up burst
            return 0.0
        self.pacer.note_throttled()
        return max((self._last - now) + (1.0 - self._tokens) / rate, 1e-6)

    def _grant(self, queue: deque[object], lane: Lane, now: float) -> Grant:
        """Let the first in line through (called with the lock held)."""
        queue.popleft()
        self._seq += 1
        self._cond.notify_all()
        return Grant(lane, now, self._seq)

    def _reserve_shared(self, shared: SharedBucket, queue: deque[object], lane: Lane,
                        time_left: Callable[[], float] | None) -> Grant | None:
        """First in line: reserve the next slot of the credential's bucket in Redis and sleep
        until it (still first in line, so this process's next caller -- interactive first --
        reserves after). None when Redis failed: the caller looks again, on the local bucket."""
        rate = self.pacer.rate
        with self._cond:
            interval = 1.0 / rate if rate else 0.0
            if lane is Lane.BULK or not interval:
                tau = 0.0  # bulk work never spends a saved-up burst
            else:
                # A person's fan-out may go ahead of the pace by the burst, and by another burst
                # while the API's window has room for it (repaid by everyone's later slots).
                ahead = max(float(self.burst), _CATCH_UP) - 1.0
                tau = (ahead + (self.burst - 1 if self._may_borrow() else 0)) * interval
        try:
            slot = shared.reserve(interval, tau, time_left() if time_left is not None else None)
        except _redis_errors() as exc:
            shared.failed(exc)
            return None
        if not slot.granted:
            raise SlotWaitTooLong(slot.wait)
        if slot.wait > 0:
            self._sleep(slot.wait)
        with self._cond:
            if rate is not None:
                self.pacer.note_grant()
                if slot.wait > 0 and not slot.paused:  # held back by the pace (of every process), not a 429
                    self.pacer.note_saturated()
                if self._window_left is not None:
                    self._window_left -= 1.0
            return self._grant(queue, lane, self._clock())

    def _may_borrow(self) -> bool:
        """Whether a person's request may go ahead of the pace, to be repaid by the bulk lane:
        up to a burst, and only while the API's window (known from its headers) has room for it,
        so the burst never overfills the window whenever it ends."""
        return (self._window_left is not None and self._window_left >= 1 + _WINDOW_SPARE
                and self._tokens >= 2.0 - self.burst - 1e-9)

    def acquire(self, lane: Lane = Lane.INTERACTIVE, *, time_left: Callable[[], float] | None = None) -> Grant:
        """Wait for a slot: in line behind callers of the same lane, after every waiting
        interactive caller if ``lane`` is bulk.

        ``time_left`` (seconds the caller may still wait, e.g. an interactive deadline's) makes a
        wait that cannot end in time raise :class:`SlotWaitTooLong` at once instead of sleeping
        through it: a person is not kept waiting 60 s for a window that reopens after they gave up.
        """
        ticket = object()
        queue = self._queues[lane]
        with self._cond:
            queue.append(ticket)
        try:
            while True:
                shared = self.shared if self.shared is not None and self.shared.available() else None
                with self._cond:
                    if self._next_in_line() is not ticket:
                        self._cond.wait(_NOTIFY_CHECK)
                        continue
                    now = self._clock()
                    wait = self._take(now, lane) if shared is None else self._gate(now)
                    if wait <= 0 and shared is None:
                        return self._grant(queue, lane, now)
                if wait > 0:
                    if time_left is not None and wait > time_left():
                        raise SlotWaitTooLong(wait)
                    # First in line, waiting for the pace or a pause: sleep outside the lock, then look
                    # again (an interactive caller that came meanwhile goes first).
                    self._sleep(wait)
                    continue
                assert shared is not None
                grant = self._reserve_shared(shared, queue, lane, time_left)
                if grant is not None:
                    return grant
        except BaseException:
            with self._cond:
                if ticket in queue:
                    queue.remove(ticket)
                self._cond.notify_all()
            raise


class RateLimiter:
    """What one client's requests go through: its own in-flight cap and lane in front of a
    rate budget.

    Without ``budget`` it has a budget of its own (``rate``, ``burst``); with one, ``rate`` and
    ``burst`` are the shared budget's and only ``max_in_flight`` and ``lane`` are this limiter's.
    """

    def __init__(
        self,
        rate: RateSetting = 10.0,
        max_in_flight: int = 8,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: RateBudget | None = None,
        lane: Lane = Lane.INTERACTIVE,
        tuning: PacingTuning | None = None,
    ) -> None:
        self.budget = budget or RateBudget(rate, burst=burst, clock=clock, sleep=sleep, tuning=tuning)
        self.max_in_flight = max(1, int(max_in_flight))
        self.lane = lane
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

    @property
    def learns(self) -> bool:
        """Whether the budget learns from 429s (else a 429 without a reset pauses everyone)."""
        return self.budget.learns

    def pause_for(self, seconds: float) -> None:
        """Hold every caller of the budget back for ``seconds`` (every client of the credential)."""
        self.budget.pause_for(seconds)

    def lane_of_call(self) -> Lane:
        """The lane of a call made here: :func:`~cmlib.pacing.call_lane`'s, else this client's."""
        return current_lane() or self.lane

    def acquire(self, lane: Lane | None = None, *, time_left: Callable[[], float] | None = None) -> Grant:
        return self.budget.acquire(lane or self.lane_of_call(), time_left=time_left)

    def observe(self, grant: Grant, signal: RateSignal) -> None:
        self.budget.observe(grant, signal)

    @contextmanager
    def slot(self, lane: Lane | None = None, *, time_left: Callable[[], float] | None = None) -> Iterator[Grant]:
        """One request: holds an in-flight place of this client while it waits for a rate slot
        of the budget and runs."""
        self._sem.acquire()
        try:
            yield self.budget.acquire(lane or self.lane_of_call(), time_left=time_left)
        finally:
            self._sem.release()


# --------------------------------------------------------------------------- one budget per credential
_budgets: weakref.WeakValueDictionary[tuple[object, ...], RateBudget] = weakref.WeakValueDictionary()
_budgets_lock = threading.Lock()


def _key(api_url: str, api_key: str, clock: Callable[[], float],
         sleep: Callable[[float], None]) -> tuple[object, ...]:
    return (credential_fingerprint(api_url, api_key), clock, sleep)


def limiter_for(api_url: str, api_key: str, *, rate: RateSetting = LEARN, max_in_flight: int, burst: int = 1,
                clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                lane: Lane = Lane.INTERACTIVE, tuning: PacingTuning | None = None) -> RateLimiter:
    """A client's limiter: its own in-flight cap and lane over the credential's shared budget,
    which it holds until :meth:`RateLimiter.close`. A budget made here starts from what the rate
    memory learned about the credential before."""
    fingerprint = credential_fingerprint(api_url, api_key)
    key = _key(api_url, api_key, clock, sleep)
    with _budgets_lock:
        budget = _budgets.get(key)
        if budget is None:
            memory = rate_memory()
            budget = RateBudget(rate, burst=burst, clock=clock, sleep=sleep, tuning=tuning,
                                learned=memory.recall(fingerprint), memory=memory, credential=fingerprint,
                                shared=_shared_bucket(fingerprint, clock))
            _budgets[key] = budget
        budget.holders += 1
    limiter = RateLimiter(max_in_flight=max_in_flight, budget=budget, lane=lane)
    limiter._registry_key = key
    return limiter


def _shared_bucket(fingerprint: str, clock: Callable[[], float]) -> SharedBucket | None:
    """The credential's bucket in Redis (``CM_REDIS_URL``) for a budget on the real clock; a
    budget on an injected clock (tests, simulations) stays in the process."""
    if clock is not time.monotonic or deployment.redis_url() is None:
        return None
    from .shared_rate import shared_bucket  # imports redis: only in the deployment mode

    return shared_bucket(fingerprint)


def budget_count() -> int:
    """Budgets alive in the process (one per credential in use; for lifetime tests)."""
    with _budgets_lock:
        return len(_budgets)


def reset_rate_budgets() -> None:
    """Forget every budget and every learned rate (tests: a later test must not inherit an
    earlier one's pacing)."""
    with _budgets_lock:
        _budgets.clear()
    rate_memory().clear()
