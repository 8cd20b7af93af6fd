"""Lookups started when a deep link's page is requested, before the page's script asks for them.

A helpdesk link (``/?email=a&email=b``) names its addresses in the first request the browser
sends, for the page's HTML. Streamlit runs the page's script only once the browser has loaded
its JavaScript and opened a session: ~0.6 s later on a 2-core machine. Started at the first
request, the lookup's round trips to Campaign Monitor (~2.5 of them, 100-300 ms each against the
real API) overlap that load instead of following it.

The page must not send the same requests again, so the two meet here: :meth:`Prefetches.start`
registers the early lookup under the connection and the addresses, and the page's lookup
(:meth:`Prefetches.after`) waits for one under the same key (running, or ended moments ago)
and takes its outcome -- its
profiles, or the error it ended with -- as its own: it is the same call with the same arguments,
started a moment earlier. Only an early lookup still running after the wait leaves the page to
look up itself. Nothing depends on the HTTP cache, so this holds with caching off too.

A process runs at most :data:`MAX_RUNNING` early lookups at once: a request for a page costs far
less than opening a session, and without a bound a loop of requests could spend the account's
API budget ahead of the people using the app.

Pure: no Streamlit. The web-server side (which requests qualify, who may trigger one) is
``ui/prefetch.py``.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from .emails import linked_addresses, parse_addresses

T = TypeVar("T")

MAX_RUNNING = 4  # early lookups at once per process; beyond it a page looks up for itself
KEEP_S = 10.0  # how long an ended early lookup's outcome waits for its page
MAX_KEPT = 64  # ended ones kept at most


@dataclass(frozen=True)
class PrefetchKey:
    """One early lookup: which connection, which addresses (lower-cased, in the page's order)."""

    connection: Hashable
    emails: tuple[str, ...]

    @classmethod
    def of(cls, connection: Hashable, emails: Sequence[str]) -> PrefetchKey:
        return cls(connection, tuple(e.lower() for e in emails))


def emails_in_query(query: str, limit: int) -> list[str]:
    """The valid addresses a page would look up for this query string (``email=…``), in its order
    and with its cap; an empty list when there is nothing to look up."""
    values = parse_qs(query, keep_blank_values=False).get("email", [])
    return [a.email for a in parse_addresses(linked_addresses(values)).valid][:limit]


Arrival = Callable[[Any], None]  # what lookup_many calls with each address's finished profile


@dataclass
class _Early:
    owner: object  # kept alive with the entry, so an id() in its key is not reused meanwhile
    job: Future[object] | None = None
    ended_at: float | None = None  # the registry's clock
    arrived: list[Any] = field(default_factory=list)
    listeners: list[Arrival] = field(default_factory=list)


class Prefetches:
    """The early lookups, by key: running, or ended less than :data:`KEEP_S` ago. The page asks
    for its lookup ~0.6 s after the request that started the early one, and against a quick API
    (the demo sandbox) that one has usually ended by then; kept a little, its outcome is still
    the page's. A new request for the same page starts a new early lookup.

    Each early lookup is also a feed of the profiles it has finished, so a page waiting for it
    still fills each address as it arrives instead of all at the end."""

    def __init__(self, limit: int = MAX_RUNNING, clock: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._entries: dict[PrefetchKey, _Early] = {}
        self.limit = limit
        self._clock = clock

    def _prune(self) -> None:
        """Drop what ended over KEEP_S ago, and the oldest ended beyond MAX_KEPT (under the lock)."""
        now = self._clock()
        ended = sorted((e.ended_at, k) for k, e in self._entries.items() if e.ended_at is not None)
        excess = len(ended) - MAX_KEPT
        for i, (at, key) in enumerate(ended):
            if i < excess or now - at > KEEP_S:
                del self._entries[key]

    def start(self, key: PrefetchKey, submit: Callable[[Arrival], Future[object]], owner: object = None) -> bool:
        """Run ``submit(on_profile)`` unless a lookup under ``key`` is running or :attr:`limit`
        are; True when it started one. ``on_profile`` is what the lookup must call with each
        finished profile; ``owner`` (the connection) is kept alive as long as the entry."""
        with self._lock:
            self._prune()
            running = [k for k, e in self._entries.items() if e.ended_at is None]
            if key in running or len(running) >= self.limit:
                return False
            early = self._entries[key] = _Early(owner)
            try:
                early.job = job = submit(lambda profile: self._arrive(early, profile))
            except BaseException:
                del self._entries[key]
                raise
        job.add_done_callback(lambda _: self._ended(early))
        return True

    def _arrive(self, early: _Early, profile: Any) -> None:
        with self._lock:
            early.arrived.append(profile)
            listeners = list(early.listeners)
        for listener in listeners:
            listener(profile)

    def _ended(self, early: _Early) -> None:
        with self._lock:
            early.ended_at = self._clock()

    def running(self, key: PrefetchKey) -> bool:
        with self._lock:
            early = self._entries.get(key)
            return early is not None and early.ended_at is None

    def _join(self, key: PrefetchKey, timeout: float, on_profile: Arrival | None) -> Future[object] | None:
        """Wait up to ``timeout`` s for the early lookup under ``key``, handing ``on_profile``
        every profile it has finished and finishes meanwhile; that lookup's job, None if none ran."""
        with self._lock:
            self._prune()
            early = self._entries.get(key)
            if early is None or early.job is None:
                return None
            job = early.job
            replay = list(early.arrived)
            if on_profile is not None:
                early.listeners.append(on_profile)
        try:
            if on_profile is not None:
                for profile in replay:
                    on_profile(profile)
            wait_for([job], timeout=timeout)
        finally:
            if on_profile is not None:
                with self._lock:
                    early.listeners.remove(on_profile)
        return job

    def after(self, key: PrefetchKey, timeout: float, fn: Callable[..., T], *args: Any,
              on_profile: Arrival | None = None, **kwargs: Any) -> T:
        """The outcome of the early lookup under ``key`` once it ends (its result, or the error it
        raised), waiting up to ``timeout`` s; else -- none running, or still running after the
        wait -- ``fn(*args, on_profile=…, **kwargs)``, the page's own lookup. ``on_profile`` hears
        every address once: from the early lookup while it waits, from ``fn`` otherwise (an early
        lookup that overran hands on what it has, and ``fn`` announces the rest again).

        The page submits this to its pool, so it keeps drawing meanwhile. An early lookup is
        queued on that pool ahead of the page's, so it is never stuck behind the page's wait."""
        job = self._join(key, timeout, on_profile)
        if job is not None and job.done():
            return job.result()  # type: ignore[return-value]  # raises what the early lookup raised
        return fn(*args, on_profile=on_profile, **kwargs)


PREFETCHES = Prefetches()  # the process's one registry (the web server and the pages share it)
