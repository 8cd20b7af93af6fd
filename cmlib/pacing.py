"""How fast a credential may go, learned from the API's answers; and which lane a call is in.

Users do not know their account's rate limit, and Campaign Monitor does not publish one for
the lookup endpoints, so a fixed pace is either too slow (a sixth of what a 150/s account
allows) or a 429 storm. The :class:`Pacer` learns it instead:

* **Headers first.** An answer carrying ``X-RateLimit-Limit`` (and ``-Remaining``,
  ``-Reset`` = seconds until the window resets) says the budget outright: the pace becomes
  ``header_share`` of ``Limit`` per window (the window being the longest ``Reset`` seen, at
  least a second), and lower when what ``Remaining`` leaves for the rest of the window is less
  (someone else spends the same key). A header can lower the pace as well as raise it.
* **Probing otherwise.** Without headers the pace is found by additive increase,
  multiplicative decrease: while the pace holds callers back and no 429 comes, it goes up a
  step per ``epoch`` (at least two round trips, so a step shows its effect before the next); a
  429 halves it (or halves what the API let through over the last second, when that was less:
  a window of a fixed size refuses the excess whatever the pace). Before the first 429 the
  steps double the pace (no ceiling is known yet, so a high one is found in a second, not
  minutes); after one, the pace climbs quickly back to ``recover_to`` of the rate the API let
  through before refusing, then a ``step`` at a time. A 429 for a request sent before the last
  cut, or within ``hold`` of it (a window we overfilled refuses everything until it resets,
  whatever our new pace), is the same congestion and is not punished twice.
* **Remembered.** What was learned is kept per credential in a :class:`RateMemory` for the life
  of the process, so the next client of the credential (the next bulk run, the next page)
  starts at the learned pace instead of learning again. The memory is an interface: the
  in-process :class:`ProcessRateMemory`, or Redis (:class:`cmlib.shared_rate.RedisRateMemory`)
  when ``CM_REDIS_URL`` makes every replica start from what any of them learned.

The pace is only raised while it is what holds callers back: an idle client never "learns" a
pace it has not tried, which a sudden bulk run would then hammer the API with.

An explicit rate (``--rate 40``) is a cap: the pace starts there and never goes above it, but
headers and 429s still lower it. ``None`` switches pacing off (only announced pauses hold).

:class:`Lane` says whose call it is: a person waiting (lookups, writes) or a bulk run. The budget
serves the interactive lane first whenever both wait (:mod:`cmlib.ratelimit`).
"""
from __future__ import annotations

import contextvars
import math
import sys
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

from .responses import float_header, int_header


class Lane(StrEnum):
    """Whose request it is, for the order in which a shared budget serves waiting callers."""

    INTERACTIVE = "interactive"  # a person is waiting: lookups, the dialog, writes
    BULK = "bulk"  # a bulk run: gets what the interactive lane leaves


class Pace(StrEnum):
    """A rate setting that is not a number."""

    LEARN = "learn"  # discover the credential's budget from headers, else by probing


LEARN = Pace.LEARN
RateSetting: TypeAlias = float | Pace | None
"""``LEARN`` (the default), a number of requests per second (a cap), or ``None`` (no pacing)."""


class RateSource(StrEnum):
    """Where the current pace comes from."""

    UNPACED = "unpaced"  # pacing switched off
    CONFIGURED = "configured"  # the explicit rate, nothing learned yet
    START = "start"  # the starting guess for a credential never seen
    HEADERS = "headers"  # X-RateLimit-* headers
    PROBED = "probed"  # additive increase / multiplicative decrease on 429s


@dataclass(frozen=True)
class LearnedRate:
    """What a credential's budget learned, kept in a :class:`RateMemory` between its clients.

    Plain numbers only (no clock readings), so a store shared between processes can hold it.
    """

    rate: float  # requests per second
    source: RateSource
    ceiling: float | None = None  # the pace at which the last 429 came (probing)
    limit: int | None = None  # X-RateLimit-Limit last seen
    window: float | None = None  # seconds per rate-limit window, estimated from X-RateLimit-Reset


@dataclass(frozen=True)
class RateSignal:
    """What one answer says about the budget: its status and X-RateLimit-* headers."""

    status: int
    limit: int | None = None
    remaining: int | None = None
    reset: float | None = None

    @classmethod
    def from_headers(cls, status: int, headers: Mapping[str, Any]) -> RateSignal:
        return cls(status, int_header(headers, "X-RateLimit-Limit"), int_header(headers, "X-RateLimit-Remaining"),
                   float_header(headers, "X-RateLimit-Reset"))

    @property
    def rate_limited(self) -> bool:
        return self.status == 429


class RateMemory(Protocol):
    """Where learned rates are kept, by credential fingerprint (a hash; never the key)."""

    def recall(self, credential: str) -> LearnedRate | None: ...

    def remember(self, credential: str, learned: LearnedRate) -> None: ...

    def clear(self) -> None: ...


class ProcessRateMemory:
    """Learned rates for the life of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, LearnedRate] = {}

    def recall(self, credential: str) -> LearnedRate | None:
        with self._lock:
            return self._rates.get(credential)

    def remember(self, credential: str, learned: LearnedRate) -> None:
        with self._lock:
            self._rates[credential] = learned

    def clear(self) -> None:
        with self._lock:
            self._rates.clear()


@dataclass(frozen=True)
class PacingTuning:
    """The learning's constants (tests pass their own; the defaults are for the real API)."""

    start: float = 20.0  # requests/s for a credential never seen: the old interactive pace, known safe
    step: float = 0.5  # additive increase per epoch, requests/s at least...
    step_share: float = 0.01  # ...or this share of the rate the API let through, when more
    epoch: float = 0.25  # seconds between two increases at least (and two round trips)
    decrease: float = 0.5  # a 429 multiplies the pace by this
    recover_to: float = 0.9  # after a cut, quick steps back up to this share of the rate the API let through
    recover_speed: float = 0.75  # share of the way back to it taken per epoch
    hold: float = 1.0  # seconds after a cut in which further 429s are the same congestion
    used: float = 0.8  # share of the pace an epoch must have used for an increase
    floor: float = 0.5  # never slower than this
    ceiling: float = 1000.0  # learning never goes above this (an explicit rate caps it lower)
    header_share: float = 0.95  # of what the headers allow: a steady pace never fills a window to the brim


class Pacer:
    """The learned pace of one budget. Not thread-safe: the budget calls it under its lock."""

    def __init__(self, setting: RateSetting = LEARN, tuning: PacingTuning | None = None,
                 learned: LearnedRate | None = None) -> None:
        self.tuning = t = tuning or PacingTuning()
        self.cap: float | None = None
        self.learns = setting is not None
        self.ceiling: float | None = None  # the rate the API let through when the last 429 came
        self.limit: int | None = None
        self.window: float | None = None
        self._last_change = -math.inf  # clock reading of the last change
        self._last_cut = -math.inf
        self._throttled = False  # a caller waited for the pace since the last change
        self._saturated = False  # a shared budget (other processes too) was full since the last change
        self._grants = 0  # slots given since the last change
        self._round_trip = 0.0  # seconds from a slot to its answer, smoothed
        self._accepted: deque[float] = deque()  # when answers other than 429 came, over the last second
        self._since: float | None = None  # when the first answer came
        if setting is None:
            self.rate: float | None = None
            self.source = RateSource.UNPACED
            return
        if isinstance(setting, Pace):
            self.rate, self.source = t.start, RateSource.START
        else:
            self.cap = max(t.floor, float(setting))
            self.rate, self.source = self.cap, RateSource.CONFIGURED
        if learned is not None:
            self.rate = self._clamp(learned.rate)
            self.source, self.ceiling = learned.source, learned.ceiling
            self.limit, self.window = learned.limit, learned.window

    @property
    def max_rate(self) -> float:
        return self.cap if self.cap is not None else self.tuning.ceiling

    def _clamp(self, rate: float) -> float:
        return min(self.max_rate, max(self.tuning.floor, rate))

    def learned(self) -> LearnedRate | None:
        if self.rate is None:
            return None
        return LearnedRate(self.rate, self.source, self.ceiling, self.limit, self.window)

    @property
    def round_trip(self) -> float:
        """Seconds from a slot to its answer, smoothed (0 before any answer)."""
        return self._round_trip

    def note_grant(self) -> None:
        self._grants += 1

    def note_throttled(self) -> None:
        """A caller had to wait for the pace: it, not the in-flight cap or the demand, is the limit."""
        self._throttled = True

    def note_saturated(self) -> None:
        """A caller waited for a slot of a budget shared with other processes: the pace was used
        in full, by all of them together (this process's own grants are only its share)."""
        self._throttled = True
        self._saturated = True

    def observe(self, signal: RateSignal, sent_at: float, now: float) -> bool:
        """Learn from one answer to a request granted at ``sent_at``; True when the pace changed."""
        if not self.learns:
            return False
        self._round_trip += (max(0.0, now - sent_at) - self._round_trip) * 0.2
        if self._since is None:
            self._since = now
        if not signal.rate_limited:
            self._accepted.append(now)
        while self._accepted and self._accepted[0] < now - 1.0:
            self._accepted.popleft()
        if signal.limit is not None:
            return self._from_headers(signal, now)
        if signal.rate_limited:
            return self._cut(sent_at, now)
        return self._maybe_raise(now)

    def _set(self, rate: float, source: RateSource, now: float) -> bool:
        rate = self._clamp(rate)
        changed = rate != self.rate or source != self.source
        self.rate, self.source = rate, source
        self._restart_epoch(now)
        return changed

    def _restart_epoch(self, now: float) -> None:
        self._last_change = now
        self._throttled = False
        self._saturated = False
        self._grants = 0

    def _from_headers(self, signal: RateSignal, now: float) -> bool:
        assert signal.limit is not None
        reset = signal.reset if signal.reset is not None and signal.reset >= 0 else None
        self.window = max(self.window or 1.0, reset or 0.0, 1.0)  # Reset counts down from the window's length
        self.limit = signal.limit
        pace = signal.limit / self.window
        # What is left of this window, over the time left, when Reset is coarse enough to trust
        # (it is rounded to whole seconds): lower when someone else spends the same key.
        if reset is not None and reset >= 2 and signal.remaining is not None:
            pace = min(pace, max(0, signal.remaining) / reset)
        return self._set(pace * self.tuning.header_share, RateSource.HEADERS, now)

    def _cut(self, sent_at: float, now: float) -> bool:
        if self.rate is None or sent_at <= self._last_cut or now - self._last_cut < self.tuning.hold:
            # Sent at the old pace, or refused while the window we overfilled lasts: the same congestion.
            return False
        # What the API let through over the last second, when that is below the pace (a window of
        # a fixed size refuses the excess, whatever our pace was): halve that, and climb back to it.
        accepted = self._accepted_rate(now)
        self.ceiling = min(self.rate, accepted) if accepted else self.rate
        self._last_cut = now
        return self._set(self.ceiling * self.tuning.decrease, RateSource.PROBED, now)

    def _accepted_rate(self, now: float) -> float | None:
        """Answers other than 429 per second over the last second (None: too soon to say)."""
        span = min(1.0, now - self._since) if self._since is not None else 0.0
        return len(self._accepted) / span if span >= 0.25 else None

    def _maybe_raise(self, now: float) -> bool:
        t = self.tuning
        elapsed = now - self._last_change
        if self.rate is None or self.source == RateSource.HEADERS or elapsed < max(t.epoch, 2 * self._round_trip):
            return False
        # Only a pace that held callers back *and* was used is worth raising: an idle client (or
        # one held by its in-flight cap) would otherwise "learn" a pace it never tried.
        used = self._saturated or self._grants >= t.used * self.rate * elapsed
        if not (self._throttled and used) or self.rate >= self.max_rate:
            self._restart_epoch(now)
            return False
        if self.ceiling is None:
            step = max(t.step, self.rate)  # no 429 yet: double, to find the ceiling in seconds
        else:
            step = max(t.step, t.step_share * self.ceiling)
            if self.rate < t.recover_to * self.ceiling:  # quickly back near where the 429 came
                step = max(step, (t.recover_to * self.ceiling - self.rate) * t.recover_speed)
        source = RateSource.PROBED if self.source in (RateSource.START, RateSource.PROBED) else self.source
        return self._set(self.rate + step, source, now)


# --------------------------------------------------------------------------- the memory in use
_process_memory = ProcessRateMemory()
_chosen: RateMemory | None = None  # set by use_rate_memory


def rate_memory() -> RateMemory:
    """Where learned rates are kept: the memory given to :func:`use_rate_memory`, else Redis
    when ``CM_REDIS_URL`` is set (every replica starts from what any learned), else the process."""
    if _chosen is not None:
        return _chosen
    from . import deployment

    if deployment.redis_url() is None:
        return _process_memory
    from .shared_rate import shared_rate_memory  # imports redis: only in the deployment mode

    return shared_rate_memory() or _process_memory


def use_rate_memory(memory: RateMemory) -> RateMemory:
    """Keep learned rates in ``memory`` from now on; returns the one used before, so it can be
    put back. Putting back an automatic one (the process's, or Redis's) goes back to choosing
    by the environment."""
    global _chosen
    previous = rate_memory()
    automatic = memory is _process_memory
    if not automatic and "cmlib.shared_rate" in sys.modules:
        from .shared_rate import is_shared_memory

        automatic = is_shared_memory(memory)
    _chosen = None if automatic else memory
    return previous


# --------------------------------------------------------------------------- the lane of a call
_LANE: contextvars.ContextVar[Lane | None] = contextvars.ContextVar("cm_lane", default=None)


def current_lane() -> Lane | None:
    """The lane the calls made here were put in by :func:`call_lane`, if any."""
    return _LANE.get()


@contextmanager
def call_lane(lane: Lane) -> Iterator[Lane]:
    """Every request made inside (in this thread and in :func:`cmlib.concurrency.run_many`'s
    workers, which carry the context) goes in ``lane``, whatever its client's own lane."""
    token = _LANE.set(lane)
    try:
        yield lane
    finally:
        _LANE.reset(token)


__all__ = ["LEARN", "Lane", "LearnedRate", "Pace", "Pacer", "PacingTuning", "ProcessRateMemory", "RateMemory",
           "RateSetting", "RateSignal", "RateSource", "call_lane", "current_lane", "rate_memory", "use_rate_memory"]
