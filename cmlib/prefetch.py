"""Lookups started when a deep link's page is requested, before the page's script asks for them.

A helpdesk link (``/?email=a&email=b``) names its addresses in the first request the browser
sends, for the page's HTML. Streamlit runs the page's script only once the browser has loaded
its JavaScript and opened a session: ~0.6 s later on a 2-core machine. Started at the first
request, the lookup's round trips to Campaign Monitor (~2.5 of them, 100-300 ms each against the
real API) overlap that load instead of following it.

The page must not send the same requests again while the early lookup is still answering, so
the two meet here: :meth:`Prefetches.start` registers the early lookup under the connection and
the addresses, and the page's own lookup first :meth:`Prefetches.wait`\\ s for one under the same
key. The page then runs its lookup as always; what the early one fetched is answered from the
HTTP cache, so the page shows what the cache rules allow, as it would have anyway.

Pure: no Streamlit. The web-server side (which requests qualify, who may trigger one) is
``ui/prefetch.py``.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs

from .emails import linked_addresses, parse_addresses

T = TypeVar("T")


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
    job: Future[object] | None = None
    arrived: list[Any] = field(default_factory=list)
    listeners: list[Arrival] = field(default_factory=list)


class Prefetches:
    """The early lookups still running, by key. A finished one is forgotten at once: its answers
    live in the HTTP cache, whose expiry rules then apply as to any other answer.

    Each early lookup is also a feed of the profiles it has finished, so a page waiting for it
    still fills each address as it arrives instead of all at the end."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[PrefetchKey, _Early] = {}

    def start(self, key: PrefetchKey, submit: Callable[[Arrival], Future[object]]) -> bool:
        """Run ``submit(on_profile)`` unless a lookup under ``key`` is running; True when it
        started one. ``on_profile`` is what the lookup must call with each finished profile."""
        with self._lock:
            if key in self._running:
                return False
            early = self._running[key] = _Early()
            try:
                early.job = job = submit(lambda profile: self._arrive(early, profile))
            except BaseException:
                del self._running[key]
                raise
        job.add_done_callback(lambda _: self._forget(key, early))
        return True

    def _arrive(self, early: _Early, profile: Any) -> None:
        with self._lock:
            early.arrived.append(profile)
            listeners = list(early.listeners)
        for listener in listeners:
            listener(profile)

    def _forget(self, key: PrefetchKey, early: _Early) -> None:
        with self._lock:
            if self._running.get(key) is early:
                del self._running[key]

    def running(self, key: PrefetchKey) -> bool:
        with self._lock:
            return key in self._running

    def wait(self, key: PrefetchKey, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the early lookup under ``key``; True when none is running
        (any more). Its failure is not raised here: the page's own lookup meets it again and says so."""
        self._join(key, timeout, None)
        return self._done(key)

    def _done(self, key: PrefetchKey) -> bool:
        with self._lock:
            early = self._running.get(key)
            return early is None or early.job is None or early.job.done()

    def _join(self, key: PrefetchKey, timeout: float, on_profile: Arrival | None) -> bool:
        """Wait as :meth:`wait` does, handing ``on_profile`` every profile the early lookup has
        finished and finishes meanwhile; True when there was an early lookup to hear."""
        with self._lock:
            early = self._running.get(key)
            if early is None or early.job is None:
                return False
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
        return True

    def after(self, key: PrefetchKey, timeout: float, fn: Callable[..., T], *args: Any,
              on_profile: Arrival | None = None, **kwargs: Any) -> T:
        """``fn(*args, on_profile=…, **kwargs)`` once no early lookup under ``key`` runs, or after
        ``timeout``: the page's own lookup, submitted to its pool as this so the page keeps
        drawing meanwhile. ``on_profile`` hears the early lookup's profiles while it waits, and
        ``fn``'s only if there was none to hear (the same addresses are not announced twice).
        An early lookup is always queued ahead of the page's, so never behind it."""
        heard = self._join(key, timeout, on_profile)
        return fn(*args, on_profile=None if heard and on_profile is not None else on_profile, **kwargs)


PREFETCHES = Prefetches()  # the process's one registry (the web server and the pages share it)
