"""The client's lists with their settings, read in the background so the dialog opens without a request.

The subscription dialog needs every list of the client and each list's two settings (confirmed
opt-in, unsubscribe scope); a lookup reads only the address's own lists. Opening the dialog used
to read the rest then (one request for the lists and one per list), on the click. A
:class:`ListCatalog` reads them once, in the background, as soon as the button that opens the
dialog is drawn, and hands them to the dialog while they are as fresh as the HTTP cache would
keep them (the shorter of its ``lists`` and ``list_details`` expiries; nothing is kept when
caching is off, so the dialog then reads as before). Lists and their settings are reference data:
nothing the dialog writes changes them, and every write re-reads the address's states anyway.

Nobody waits for these reads, so they go in the bulk lane of the credential's budget
(:func:`cmlib.pacing.call_lane`): a lookup a person waits for is served first, also while the
budget is paused after a 429.

No thread waits on another task here: the lists request is one task on the connection's pool,
and its completion submits one task per list (callbacks, not a task that blocks on the others),
so the small shared pool can never fill up with waiting tasks. Only the dialog's own thread may
wait, briefly, for a read already in flight rather than start the same one again.

Owned by its :class:`~cmlib.runtime.Connection`, closed with it: a read still running then
finishes into nothing, and nothing is kept.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, InvalidStateError
from typing import TYPE_CHECKING, TypeVar

from ..cache import CacheSettings
from ..models import ListDetail, ListRef
from ..pacing import Lane, call_lane
from .snapshot import ListInfo, list_infos

if TYPE_CHECKING:
    from ..client import CampaignMonitor

__all__ = ["WAIT_SECONDS", "ListCatalog", "catalog_max_age"]

T = TypeVar("T")
WAIT_SECONDS = 5.0  # how long the dialog waits for a read in flight before reading itself
REFRESH_AFTER = 0.5  # of the max age: a prefetch then reads again, so an opening rarely finds it stale


def catalog_max_age(settings: CacheSettings | None) -> float:
    """Seconds the lists may be kept: the shorter of the cache's ``lists`` and ``list_details``
    expiries; 0 (keep nothing) when caching is off."""
    if settings is None or not settings.enabled:
        return 0.0
    return float(min(settings.expiry.get(name, 0) for name in ("lists", "list_details")))


def _behind_people(call: Callable[[str], T], arg: str) -> T:
    """One read in the bulk lane: served after whatever a person is waiting for."""
    with call_lane(Lane.BULK):
        return call(arg)


class ListCatalog:
    """One client's lists with their settings, kept for ``max_age`` seconds after they were read."""

    def __init__(self, client: CampaignMonitor, client_id: str, *, max_age: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._client_id = client_id
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._lists: tuple[ListInfo, ...] | None = None
        self._read_at = 0.0  # when the kept read started (its age is counted from there)
        self._pending: Future[tuple[ListInfo, ...]] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def _age(self) -> float:
        return self._clock() - self._read_at

    def prefetch(self, executor: Executor) -> None:
        """Start reading the lists on ``executor`` unless a read is running or the kept one is
        young. Never blocks and never raises: a pool that was shut down just means no prefetch."""
        with self._lock:
            if self._closed or self.max_age <= 0 or self._pending is not None:
                return
            if self._lists is not None and self._age() < self.max_age * REFRESH_AFTER:
                return
            done: Future[tuple[ListInfo, ...]] = Future()
            self._pending = done
            started = self._clock()
        try:
            refs = executor.submit(_behind_people, self._client.lists, self._client_id)
        except RuntimeError as exc:  # the connection's pool was shut down meanwhile
            self._finish(done, started, None, exc)
            return
        refs.add_done_callback(lambda f: self._got_refs(f, executor, done, started))

    def _got_refs(self, f: Future[list[ListRef]], executor: Executor, done: Future[tuple[ListInfo, ...]],
                  started: float) -> None:
        try:
            refs = f.result()
        except Exception as exc:
            self._finish(done, started, None, exc)
            return
        if not refs:
            self._finish(done, started, (), None)
            return
        lock = threading.Lock()
        details: dict[str, tuple[ListRef, ListDetail | None, BaseException | None]] = {}

        def got_detail(ref: ListRef, g: Future[ListDetail]) -> None:
            try:
                entry: tuple[ListRef, ListDetail | None, BaseException | None] = (ref, g.result(), None)
            except Exception as exc:
                entry = (ref, None, exc)
            with lock:
                details[ref.list_id] = entry
                complete = len(details) == len(refs)
            if complete:
                self._assemble(done, started, refs, list(details.values()))

        for ref in refs:
            try:
                g = executor.submit(_behind_people, self._client.list_details, ref.list_id)
            except RuntimeError as exc:  # shut down between two submissions: the read is abandoned
                self._finish(done, started, None, exc)
                return
            g.add_done_callback(functools.partial(got_detail, ref))

    def _assemble(self, done: Future[tuple[ListInfo, ...]], started: float, refs: Sequence[ListRef],
                  details: list[tuple[ListRef, ListDetail | None, BaseException | None]]) -> None:
        failed = next((error for _, _, error in details if error is not None), None)
        if failed is not None:  # kept only complete: the dialog reads (and reports) a failing list itself
            self._finish(done, started, None, failed)
            return
        try:
            lists = list_infos(refs, {}, details)
        except Exception as exc:
            self._finish(done, started, None, exc)
            return
        self._finish(done, started, lists, None)

    def _finish(self, done: Future[tuple[ListInfo, ...]], started: float, lists: tuple[ListInfo, ...] | None,
                error: BaseException | None) -> None:
        with self._lock:
            if self._pending is done:
                self._pending = None
            if lists is not None and not self._closed:
                self._lists, self._read_at = lists, started
        with contextlib.suppress(InvalidStateError):  # already settled: a second failure changes nothing
            if lists is not None:
                done.set_result(lists)
            else:
                done.set_exception(error or RuntimeError("the lists were not read"))

    def lists(self, wait: float = WAIT_SECONDS) -> tuple[ListInfo, ...] | None:
        """The kept lists while younger than ``max_age``; else the read in flight, waited for up
        to ``wait`` seconds; else None (the caller reads them itself)."""
        with self._lock:
            if self._closed:
                return None
            if self._lists is not None and self._age() < self.max_age:
                return self._lists
            pending = self._pending
        if pending is None:
            return None
        try:
            return pending.result(timeout=wait)
        except Exception:  # a failed or slow read: the caller's own read says what is wrong
            return None

    def close(self) -> None:
        """Forget the lists; a read still running finishes into nothing. Idempotent."""
        with self._lock:
            self._closed = True
            self._lists = None
