"""Which addresses are on a client's suppression list, read once and asked many times.

Campaign Monitor has no "is this address suppressed?" call: the only source is the client's
paged suppression list. Scanning it once per address (what ``Endpoints.is_suppressed`` does for
the subscription dialog's fresh check) costs every page for every address; a lookup of three
addresses, or a bulk run of thousands, should read the list **once** and then answer from memory.
:meth:`SuppressionIndex.for_client` is that one pass -- its pages go through the client, so they
are HTTP-cached like every other read (``suppressionlist``: two minutes by default) -- and
:meth:`SuppressionIndex.get` answers per address, case-insensitively.

Used by the Lookup page (through :class:`cmlib.lookup.LookupService`, which keeps one index per
client for as long as the HTTP cache would and drops it when an address is written to) and meant
for the bulk run: build one index per run, then ``index.get(email)`` per row.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .i18n import N_, Language, t
from .models import Page, SuppressedAddress

if TYPE_CHECKING:
    from .shared_generation import Generation

PAGE_SIZE = 1000  # the API's largest page
MAX_PAGES = 100  # 100,000 suppressed addresses; past that the index says it is incomplete


class SuppressionSource(Protocol):
    """What the index needs from a client (:class:`cmlib.client.CampaignMonitor` has it)."""

    def suppression_list(self, client_id: str, *, page: int = 1, page_size: int = 1000,
                         fresh: bool = False) -> Page[SuppressedAddress]: ...


# Campaign Monitor's suppression reasons, in the reader's words; a reason not here (the API may
# add some) is shown as the API names it.
_REASON_WORDS = {
    "unsubscribed": N_("Unsubscribed"),
    "bounced": N_("Bounced"),
    "spam complaint": N_("Spam Complaint"),
    "manually suppressed": N_("Manually Suppressed"),
}


def reason_word(reason: str, lang: Language | str | None = None) -> str:
    """A suppression reason (``Spam Complaint``…) in the reader's language (or ``lang``); in English,
    and for a reason not known here, as the API spells it."""
    text = reason.strip()
    known = _REASON_WORDS.get(" ".join(text.lower().split()))
    if known is None:
        return text
    word = t(known, lang=lang)
    return text if word == known else word


def email_key(email: str) -> str:
    """Campaign Monitor compares addresses case-insensitively; so does the index."""
    return email.strip().lower()


@dataclass(frozen=True)
class SuppressionIndex:
    """The suppression list of one client, by address.

    ``complete`` is False when the list had more than ``max_pages`` pages: an address the index
    does not know may then still be suppressed (say "unknown", not "not suppressed").
    """

    client_id: str
    entries: Mapping[str, SuppressedAddress] = field(default_factory=dict)
    complete: bool = True
    pages_read: int = 0

    def get(self, email: str) -> SuppressedAddress | None:
        """The entry of ``email`` (any casing), or None when it is not on the list."""
        return self.entries.get(email_key(email))

    def __contains__(self, email: object) -> bool:
        return isinstance(email, str) and email_key(email) in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[SuppressedAddress]:
        return iter(self.entries.values())

    @classmethod
    def for_client(cls, client: SuppressionSource, client_id: str, *, fresh: bool = False,
                   executor: Executor | None = None, page_size: int = PAGE_SIZE,
                   max_pages: int = MAX_PAGES) -> SuppressionIndex:
        """Read every page of the client's suppression list once and index it.

        Page 1 says how many pages there are; the others are read on ``executor`` when one is
        given (side by side, each under the client's rate limit), else one after the other.
        ``fresh`` bypasses the HTTP cache (after a write, or on an explicit refresh). Raises what
        the client raises (:class:`~cmlib.errors.CMError`): the caller decides what a missing
        answer means for it.
        """
        first = client.suppression_list(client_id, page=1, page_size=page_size, fresh=fresh)
        pages = [first]
        last = min(max(first.number_of_pages, 1), max_pages)
        rest = range(2, last + 1)
        if executor is not None and len(rest) > 1:
            futures = [executor.submit(client.suppression_list, client_id, page=n, page_size=page_size,
                                       fresh=fresh) for n in rest]
            pages += [f.result() for f in futures]
        else:
            pages += [client.suppression_list(client_id, page=n, page_size=page_size, fresh=fresh) for n in rest]
        entries: dict[str, SuppressedAddress] = {}
        for page in pages:
            for entry in page.results:
                key = email_key(entry.email)
                if key and key not in entries:
                    entries[key] = entry
        return cls(client_id=client_id, entries=entries, complete=first.number_of_pages <= max_pages,
                   pages_read=len(pages))


class SuppressionMemo:
    """One client's :class:`SuppressionIndex`, kept for ``ttl`` seconds and built once at a time.

    Concurrent lookups wait for the one build in progress instead of each reading every page.
    :meth:`invalidate` (called when any address of the client is written to) makes the next
    build bypass the HTTP cache: the cached pages still list an address that a Resubscribe has
    just taken off the suppression list. A build that an invalidation overtook is returned to
    its caller but not kept. ``ttl`` 0 keeps nothing (the HTTP cache is off).

    With several replicas (``shared``, :mod:`cmlib.shared_generation`), an invalidation also bumps
    a counter in Redis, and a copy built at another count is not used: a Resubscribe on one
    replica reaches every replica's next lookup, read fresh from the API.
    """

    def __init__(self, client: SuppressionSource, client_id: str, *, ttl: float,
                 clock: Callable[[], float] = time.monotonic, shared: Generation | None = None) -> None:
        self.client = client
        self.client_id = client_id
        self.ttl = float(ttl)
        self._clock = clock
        self._lock = threading.Lock()  # guards the fields below
        self._build = threading.Lock()  # one build at a time
        self._held: tuple[float, SuppressionIndex] | None = None
        self._stale = False  # an address was written to: the next build reads fresh pages
        self._generation = 0
        self._shared = shared
        self._held_at: int | None = None  # the shared count the held copy was built at

    @property
    def held(self) -> bool:
        return self._held is not None

    def invalidate(self) -> None:
        with self._lock:
            self._held = None
            self._stale = True
            self._generation += 1
        if self._shared is not None:
            self._shared.bump()

    def clear(self) -> None:
        with self._lock:
            self._held = None

    def _kept(self) -> SuppressionIndex | None:
        with self._lock:
            if self._held is None or self._clock() - self._held[0] >= self.ttl:
                return None
            held, held_at = self._held[1], self._held_at
        if self._shared is not None:
            now = self._shared.current()
            if now is not None and now != held_at:  # another replica wrote since: read it fresh
                with self._lock:
                    self._held = None
                    self._stale = True
                return None
        return held

    def get(self, *, fresh: bool = False) -> SuppressionIndex:
        """The index, from memory when it is young enough, else read (``fresh``: bypassing the cache)."""
        if not fresh and (kept := self._kept()) is not None:
            return kept
        with self._build:
            if not fresh and (kept := self._kept()) is not None:  # built while this caller waited
                return kept
            with self._lock:
                generation, stale = self._generation, self._stale
            shared_at = self._shared.current() if self._shared is not None else None  # before the read
            index = SuppressionIndex.for_client(self.client, self.client_id, fresh=fresh or stale)
            with self._lock:
                if generation == self._generation:
                    self._stale = False
                    if self.ttl > 0:
                        self._held = (self._clock(), index)
                        self._held_at = shared_at
            return index
