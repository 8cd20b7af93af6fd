"""What ``python -m cmlib bulk`` tells its user as it runs: the progress line on stderr and the
tally of row outcomes behind its closing summary. Kept out of the CLI's run so the run reads
as arguments → input → the shared run loop → the summary.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import TextIO

from ..i18n import Language, format_number, format_percent, nt
from .control import format_duration
from .matrix import RowOutcome, Status
from .progress import RateMeter


class ProgressLine:
    """``\\r``-rewritten status on stderr: rows done/total, addresses per second, time left."""

    def __init__(self, total: int, out: TextIO, enabled: bool = True, lang: Language | str = Language.EN) -> None:
        self.total = total
        self.lang = lang
        self.out = out
        self.enabled = enabled
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.interval = 0.25 if self.tty else 2.0
        self.meter = RateMeter()
        self.lookups = 0
        self.rows = 0
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()  # notes come from worker threads, updates from the main one

    def update(self, rows: int, lookups: int, force: bool = False) -> None:
        self.rows, self.lookups = rows, lookups
        self.meter.record(rows)
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        with self._lock:
            self._draw(now, rows, lookups)

    def _draw(self, now: float, rows: int, lookups: int) -> None:
        self._last = now
        rate = self.meter.rate(rows)
        elapsed = now - self.meter.started
        lookup_rate = lookups / elapsed if elapsed > 0 else 0.0
        left = self.total - rows
        lang = self.lang
        eta = format_duration(left / rate if left > 0 else 0, lang=lang) if rate > 0 or left <= 0 else "?"
        text = nt("{rows}/{n} row ({percent})  {rate} addresses/s  ETA {eta}",
                  "{rows}/{n} rows ({percent})  {rate} addresses/s  ETA {eta}", self.total, lang=lang, rows=rows,
                  percent=format_percent(rows / self.total if self.total else 1.0, lang=lang),
                  rate=format_number(lookup_rate, digits=1, lang=lang), eta=eta)
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.out.write("\r" + text + " " * pad)
        self.out.flush()

    def finish(self) -> None:
        with self._lock:
            if self.enabled and self._width:
                self.out.write("\n")
                self.out.flush()
                self._width = 0

    def note(self, text: str) -> None:
        """A line of its own on stderr, even with -q; the progress line is redrawn below it."""
        with self._lock:
            if self.enabled and self._width:
                self.out.write("\r" + " " * self._width + "\r")
                self._width = 0
            self.out.write(text + "\n")
            self.out.flush()


@dataclass
class Tally:
    rows: int = 0
    looked_up: int = 0
    on_no_list: int = 0
    invalid: int = 0
    duplicates: int = 0
    failed: int = 0
    not_run: int = 0
    partial: int = 0

    @property
    def errors(self) -> int:
        return self.invalid + self.failed + self.not_run + self.partial


def count_outcome(t: Tally, outcome: RowOutcome) -> None:
    t.rows += 1
    s = outcome.status
    if s == Status.DUPLICATE:
        t.duplicates += 1
        if outcome.result is None:  # its original failed or was not looked up
            t.failed += 1
    elif s == Status.INVALID:
        t.invalid += 1
    elif s == Status.ERROR:
        t.failed += 1
    elif s == Status.NOT_RUN:
        t.not_run += 1
    else:
        t.looked_up += 1
        if s == Status.PARTIAL:
            t.partial += 1
        if outcome.result is not None and not outcome.result.memberships:
            t.on_no_list += 1
