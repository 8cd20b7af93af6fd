"""How far a run has got, in one piece: the page's bar, its sentence and its counters all read
one :class:`Progress`, so "176 / 300" never stands beside "looked up 133".

The time left comes from the *recent* rate (:class:`RateMeter`: the last few seconds, not the
whole run), capped by the rate budget the run spends. A run starts with a burst (the budget's
bucket is full) and then settles at the budget's pace; an estimate over the whole run, or over
a long window, keeps counting the burst and promises an end that is seconds too early. No run
can go faster than its budget, so the cap makes the first seconds honest too.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ..i18n import Language, format_number, nt, t
from .control import FINISHED_STATES, JobState, Pause, format_duration

__all__ = ["RECENT_WINDOW", "Progress", "RateMeter"]

RECENT_WINDOW = 3.0  # seconds of completions the rate is measured over


class RateMeter:
    """Recent throughput: completions over the last ``window`` seconds (overall before that),
    never above ``max_rate`` (the rate budget, when there is one).

    ``max_rate`` may be a callable: a learned pace (:mod:`cmlib.pacing`) changes during a run,
    so the cap is read when the rate is.
    """

    def __init__(self, window: float = RECENT_WINDOW, clock: Callable[[], float] = time.monotonic,
                 max_rate: float | Callable[[], float | None] | None = None) -> None:
        self.window = window
        self.clock = clock
        self.max_rate = max_rate
        self.started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def record(self, done: int) -> None:
        now = self.clock()
        with self._lock:
            if self._samples and now - self._samples[-1][0] < 0.1:
                return
            self._samples.append((now, done))
            # keep one sample at least `window` old: the rate spans the whole window
            while len(self._samples) > 2 and now - self._samples[1][0] >= self.window:
                self._samples.popleft()

    def rate(self, done: int) -> float:
        """Completions per second lately (0.0 while nothing is known yet)."""
        now = self.clock()
        measured: float | None = None
        with self._lock:
            if self._samples and now - self._samples[0][0] >= 1.0:
                t0, d0 = self._samples[0]
                measured = max(0.0, (done - d0) / (now - t0))
        if measured is None:
            elapsed = now - self.started
            measured = done / elapsed if elapsed > 0.5 else 0.0
        cap = self.max_rate() if callable(self.max_rate) else self.max_rate
        return min(measured, cap) if cap is not None and cap > 0 else measured

    def eta(self, done: int, total: int) -> float | None:
        """Seconds left at the recent rate: 0 when done, None while the rate is unknown."""
        left = total - done
        if left <= 0:
            return 0.0
        rate = self.rate(done)
        return left / rate if rate > 0 else None


@dataclass(frozen=True)
class Progress:
    """One consistent reading of a run: every number here was taken at the same moment.

    ``done`` is ``looked_up + errors`` (distinct addresses with a result); ``suppressed`` counts
    the run's distinct valid addresses that are on the client's suppression list.
    """

    state: JobState
    done: int
    total: int
    errors: int  # distinct addresses whose lookup failed
    elapsed: float
    rate: float  # addresses per second, recent
    eta: float | None  # seconds left, None while unknown
    paused: Pause | None = None  # set while the run waits for Campaign Monitor to answer
    looked_up: int = 0  # distinct addresses with their memberships
    on_no_list: int = 0
    suppressed: int = 0
    preparing: bool = False  # loading the client's lists and suppression list, before any lookup

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    @property
    def waiting(self) -> int:
        """Addresses not looked up yet."""
        return max(0, self.total - self.done)

    @property
    def active(self) -> bool:
        return self.state in (JobState.RUNNING, JobState.CANCELLING)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def pause_message(self, *, lang: Language | str | None = None) -> str | None:
        """"Campaign Monitor is not answering since 14:02 UTC — paused, 705 addresses waiting"."""
        if self.paused is None or not self.active:
            return None
        return self.paused.message(self.waiting, lang=lang)

    def describe(self, *, lang: Language | str | None = None) -> str:
        """The bar's sentence, in ``lang`` (default: the current language)."""
        parts = [nt("{done} / {n} address", "{done} / {n} addresses", self.total, lang=lang, done=self.done)]
        if self.preparing and self.active:
            parts.append(t("preparing: loading the client's lists and suppression list", lang=lang))
        elif self.paused is not None and self.active:
            parts.append(t("paused: Campaign Monitor is not answering", lang=lang))
        elif self.rate > 0:
            parts.append(t("{rate}/s", lang=lang, rate=format_number(self.rate, digits=1, lang=lang)))
        if self.state == JobState.CANCELLING:
            parts.append(t("cancelling: the lookups in flight finish", lang=lang))
        elif self.paused is None and not self.preparing and self.active and self.done < self.total:
            parts.append(t("about {duration} left", lang=lang, duration=format_duration(self.eta, lang=lang))
                         if self.eta is not None else t("estimating time left", lang=lang))
        if self.errors:
            parts.append(nt("{n} failed", "{n} failed", self.errors, lang=lang))
        return " · ".join(parts)
