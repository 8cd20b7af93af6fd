"""What a bulk run and whoever watches it share: its state, cancel, the pause while Campaign
Monitor is not answering, and the words for rows the run never reached.

Kept apart from the engine so the page's job (:mod:`.jobs`), the CLI and the engine all use the
same states and the same sentences: "Not looked up: the run was cancelled" is written in one
place, whichever of them stopped.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .. import lazy_text as later
from ..breaker import CircuitBreaker, not_answering
from ..i18n import Language
from ..lazy_text import LazyText, text_of


class JobState(StrEnum):
    """Where a run is (a ``StrEnum``: ``JobState.DONE == "done"``)."""

    PENDING = "pending"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINISHED_STATES = frozenset({JobState.DONE, JobState.CANCELLED, JobState.FAILED})

DEFAULT_PATIENCE = 300.0
PATIENCE_ENV = "CM_BULK_PATIENCE"
CANCELLED_REASON = later.t("Not looked up: the run was cancelled")


def patience_from_env(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds a run waits for a silent API before it stops (``CM_BULK_PATIENCE``); ``off`` or
    ``none``: wait for as long as it takes (someone can still cancel). Unreadable: the default."""
    raw = (environ.get(PATIENCE_ENV) or "").strip().lower()
    if not raw:
        return DEFAULT_PATIENCE
    if raw in ("off", "none", "forever", "inf"):
        return None
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_PATIENCE
    return max(0.0, value) if value == value else DEFAULT_PATIENCE  # NaN: default


def duration_text(seconds: float | None) -> LazyText:
    """``5 min 00 s`` / ``5 мин 00 с``, said in the reader's language when shown."""
    if seconds is None:
        return later.t("unknown")
    s = round(max(0.0, seconds))
    if s < 60:
        return later.t("{s} s", s=str(s))
    m, s = divmod(s, 60)
    if m < 60:
        return later.t("{m} min {s} s", m=str(m), s=str(s).zfill(2))
    h, m = divmod(m, 60)
    return later.t("{h} h {m} min", h=str(h), m=str(m).zfill(2))


def format_duration(seconds: float | None, *, lang: Language | str | None = None) -> str:
    """A duration in ``lang`` (default: the current language)."""
    return duration_text(seconds).text(lang)


def not_looked_up_reason(state: JobState, *, fatal: str | None, gave_up: str | None,
                         cancelled: str = CANCELLED_REASON) -> str:
    """The reason written for rows a run has not reached (the page's matrix, the CLI's file): a
    :class:`~cmlib.lazy_text.LazyText`, so each reader reads it in their language.

    ``cancelled`` lets the CLI say how it was cancelled ("… (Ctrl-C)").
    """
    if fatal:
        return later.t("Not looked up: the run stopped because authentication failed ({reason})", reason=fatal)
    if gave_up:
        return later.t("Not looked up: {reason}", reason=gave_up)
    if state in (JobState.CANCELLED, JobState.CANCELLING):
        return cancelled
    if state == JobState.FAILED:
        return later.t("Not looked up: the run stopped")
    return later.t("Not looked up yet")


@dataclass(frozen=True)
class Pause:
    """The run is waiting for Campaign Monitor to answer again."""

    since: datetime | None  # when the API stopped answering (UTC)
    started: float  # RunControl.clock() when the run paused
    patience: float | None  # seconds it waits before stopping; None: until cancelled

    def message(self, waiting: int, noun: str = "addresses", *, lang: Language | str | None = None) -> str:
        """"Campaign Monitor is not answering since 14:02 UTC — paused, 705 addresses waiting; …"
        in ``lang``; ``noun`` is ``"addresses"`` (the page) or ``"rows"`` (the CLI)."""
        outage = not_answering(self.since)
        if noun == "rows":
            text = later.nt("{outage} — paused, {n} row waiting", "{outage} — paused, {n} rows waiting", waiting,
                            outage=outage)
        else:
            text = later.nt("{outage} — paused, {n} address waiting", "{outage} — paused, {n} addresses waiting",
                            waiting, outage=outage)
        if self.patience is not None:
            text = later.t("{paused}; the run stops if it does not answer within {duration}", paused=text,
                           duration=duration_text(self.patience))
        return text_of(text, lang)


@dataclass
class RunControl:
    """Shared between a run and whoever watches it: cancel it, learn why it stopped, or see
    that it is paused because Campaign Monitor is not answering.

    ``clock`` and ``sleep`` are injectable so tests drive a pause with a fake clock; ``sleep``
    defaults to a wait that a cancel cuts short. ``on_pause``/``on_resume`` are called (from a
    worker thread) when a pause begins and ends -- the CLI prints them on stderr, the page's
    job wakes whoever waits on it.
    """

    cancel: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None  # set when authentication failed mid-run
    patience: float | None = DEFAULT_PATIENCE
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] | None = None
    poll: float = 1.0  # longest single wait while paused: a cancel or a closed breaker is seen this fast
    on_pause: Callable[[Pause], None] | None = None
    on_resume: Callable[[], None] | None = None
    gave_up: str | None = None  # set when the run stopped because the API stayed silent too long
    _pause: Pause | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def stopped(self) -> bool:
        return self.cancel.is_set()

    @property
    def pause(self) -> Pause | None:
        return self._pause

    def _wait(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.cancel.wait(seconds)

    def wait_for_api(self, breaker: CircuitBreaker) -> bool:
        """Hold a worker while the breaker refuses calls. True: try the address again now
        (the breaker closed, or a probe may go); False: stop (cancelled, or out of patience)."""
        with self._lock:
            pause = self._pause
            began = pause is None
            if pause is None:
                pause = self._pause = Pause(breaker.status().down_since, self.clock(), self.patience)
        if began and self.on_pause is not None:
            self.on_pause(pause)
        while True:
            if self.cancel.is_set():
                return False
            if self.patience is not None and self.clock() - pause.started >= self.patience:
                self._give_up(pause)
                return False
            delay = breaker.seconds_until_probe()
            if delay is None or delay <= 0:
                return True
            if self.patience is not None:
                delay = min(delay, max(0.0, pause.started + self.patience - self.clock()))
            self._wait(max(0.0, min(delay, self.poll)))

    def api_answered(self) -> None:
        """A lookup succeeded: a pause, if any, is over."""
        if self._pause is None:
            return
        with self._lock:
            ended, self._pause = self._pause is not None, None
        if ended and self.on_resume is not None and not self.cancel.is_set():
            self.on_resume()

    def _give_up(self, pause: Pause) -> None:
        with self._lock:
            if self.gave_up is None:
                self.gave_up = later.t("{outage}; the run stopped after waiting {waited} for it to answer again",
                                       outage=not_answering(pause.since), waited=duration_text(self.patience))
        self.cancel.set()

    def end_state(self) -> JobState:
        """How a run that has returned ended: failed (credentials, or the API stayed silent),
        cancelled, or done."""
        if self.fatal or self.gave_up:
            return JobState.FAILED
        return JobState.CANCELLED if self.cancel.is_set() else JobState.DONE

    def not_looked_up(self, cancelled: str = CANCELLED_REASON) -> str:
        """The reason written for rows the run never reached."""
        state = JobState.CANCELLING if self.stopped else JobState.RUNNING
        return not_looked_up_reason(state, fatal=self.fatal, gave_up=self.gave_up, cancelled=cancelled)
