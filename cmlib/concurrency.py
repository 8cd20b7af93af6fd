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
import queue
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


class TaskStream(Generic[T, R]):
    """Tasks that may be added while earlier ones run, each outcome taken as it completes.

    Why: a lookup's later calls depend on each address's first answer, and waiting for every
    first answer before sending any later call makes the slowest one everyone's delay. Here
    whoever iterates adds the next tasks as each outcome arrives, and they start at once.
    Outcomes are captured as in :func:`run_many` (never raised) and each task runs in a copy of
    the adder's context. Not thread-safe: one thread adds and iterates; workers only report.
    """

    def __init__(self, fn: Callable[[T], R], executor: Executor) -> None:
        self._fn = fn
        self._executor = executor
        self._pending: dict[Future[R], T] = {}
        self._finished: queue.SimpleQueue[Future[R]] = queue.SimpleQueue()

    def add(self, item: T) -> None:
        # A fresh copy per task: one Context cannot be entered by two threads at once.
        future = self._executor.submit(contextvars.copy_context().run, self._fn, item)
        self._pending[future] = item
        future.add_done_callback(self._finished.put)

    def __len__(self) -> int:
        """Tasks added whose outcome has not been taken yet."""
        return len(self._pending)

    def __iter__(self) -> Iterator[Outcome[T, R]]:
        """Until every task added (before or during the iteration) is taken; cancelled ones are skipped."""
        while self._pending:
            future = self._finished.get()
            item = self._pending.pop(future)
            if future.cancelled():
                continue
            exc = future.exception()
            yield Outcome(item, None, exc) if exc is not None else Outcome(item, future.result(), None)

    def cancel(self) -> None:
        """Drop the tasks not started yet (when nobody will take their outcome); running ones finish."""
        for future in list(self._pending):
            future.cancel()
