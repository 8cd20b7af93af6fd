"""One time limit for everything an interactive call makes, retries included.

A person waiting on a page must be told within about 30 s, instead of after read timeout ×
attempts (212 s with every request hanging). The limit is a context variable, so it follows the
work into the workers of :func:`cmlib.concurrency.run_many`, which copy the submitter's context.
"""
from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

INTERACTIVE_DEADLINE = 25.0
"""Seconds an interactive call may take across all its retries: a person waiting on a page is
told within 30 s, instead of after read timeout × attempts (212 s with every request hanging)."""


@dataclass(frozen=True)
class Deadline:
    """An absolute time by which every call made under it must have ended, retries included."""

    at: float
    seconds: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        return self.at - self.clock()


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("cm_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline the calls made here must meet, if any."""
    return _DEADLINE.get()


@contextmanager
def call_deadline(seconds: float | None, *,
                  clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline | None]:
    """Every request made inside (in this thread, and in workers started through
    :func:`cmlib.concurrency.run_many`, which carry the context along) ends by ``seconds`` from
    now: read timeouts are shortened and retries stop when the time is up. ``None``: no limit.
    An enclosing, earlier deadline wins."""
    if seconds is None:
        yield _DEADLINE.get()
        return
    mine = Deadline(clock() + max(0.0, seconds), float(seconds), clock)
    outer = _DEADLINE.get()
    if outer is not None and outer.remaining() <= mine.remaining():
        yield outer
        return
    token = _DEADLINE.set(mine)
    try:
        yield mine
    finally:
        _DEADLINE.reset(token)
