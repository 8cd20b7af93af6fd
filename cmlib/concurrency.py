"""Run many API calls on a bounded thread pool.

The pool only bounds threads; the client's limiter bounds requests in flight (its own cap) and
per second (the credential's shared budget, :mod:`cmlib.ratelimit`), so whoever calls this (a
lookup fanning out over lists, a bulk run over 100,000 addresses) cannot exceed the API budget.
Submission is windowed so memory stays flat however long the input is, and a cancel event
stops promptly while keeping what finished.
Each task runs in a copy of the submitter's context (``contextvars``), so a deadline set around
a lookup (:func:`cmlib.deadline.call_deadline`) also bounds the calls its workers make.
"""
from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    result: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def run_many(
    fn: Callable[[T], R],
    items: Iterable[T],
    *,
    max_workers: int = 8,
    cancel: threading.Event | None = None,
    window: int | None = None,
    executor: Executor | None = None,
) -> Iterator[Outcome[T, R]]:
    """Yield an Outcome per item as each completes (not in input order).

    Exceptions are captured per item, never raised, so one failure cannot lose the rest.
    When ``cancel`` is set, no new item starts (queued ones are dropped unstarted); those
    already running finish and are yielded.
    Pass a long-lived ``executor`` to skip starting threads per call (interactive lookups).
    """
    if executor is not None:
        yield from _drive(fn, items, executor, cancel, window or max_workers * 4)
        return
    with ThreadPoolExecutor(max_workers=max(1, max_workers), thread_name_prefix="cm") as pool:
        yield from _drive(fn, items, pool, cancel, window or max_workers * 4)


def _drive(fn: Callable[[T], R], items: Iterable[T], pool: Executor, cancel: threading.Event | None,
           window: int) -> Iterator[Outcome[T, R]]:
    it = iter(items)
    pending: dict[Future, T] = {}
    exhausted = False

    def fill() -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < window and not (cancel and cancel.is_set()):
            try:
                item = next(it)
            except StopIteration:
                exhausted = True
                return
            # A fresh copy per task: one Context cannot be entered by two threads at once.
            pending[pool.submit(contextvars.copy_context().run, fn, item)] = item

    fill()
    while pending:
        if cancel is not None and cancel.is_set():
            for fut in list(pending):
                if fut.cancel():  # queued in the window but not started: drop it, unstarted
                    pending.pop(fut)
            if not pending:
                break
        done, _ = wait(list(pending), return_when=FIRST_COMPLETED, timeout=0.5)
        for fut in done:
            item = pending.pop(fut)
            if fut.cancelled():
                continue
            exc = fut.exception()
            yield Outcome(item, None, exc) if exc is not None else Outcome(item, fut.result(), None)
        fill()


def map_all(fn: Callable[[T], R], items: Iterable[T], *, max_workers: int = 8,
            executor: Executor | None = None) -> list[Outcome[T, R]]:
    """All outcomes, in input order."""
    indexed = list(enumerate(items))
    out: list[Outcome[T, R] | None] = [None] * len(indexed)
    for o in run_many(lambda pair: fn(pair[1]), indexed, max_workers=max_workers, executor=executor,
                      window=max(len(indexed), 1)):
        i, item = o.item
        out[i] = Outcome(item, o.result, o.error)
    return [o for o in out if o is not None]
