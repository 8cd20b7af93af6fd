"""Everything the dashboard shows about one or more addresses, fetched concurrently.

Campaign Monitor has no "subscriber profile" call: a profile (:mod:`cmlib.profiles`) is
assembled from ``listsforemail`` (one call gives every list and state), then per list the
subscriber detail (state date, consent, custom fields) and history (one item per email sent
from that list), joined with the client's sent campaigns for subjects, sent dates and web
links. Calls run concurrently: memberships, campaigns (and the suppression list and zone when
asked) first, and each address's per-list detail + history + list settings as soon as its own
memberships are in, so a customer with three addresses costs about two round trips.
"""
from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from . import lazy_text as later
from .assembly import as_cm, assemble, lists_failed
from .cache import is_shared
from .client import CampaignMonitor
from .concurrency import Outcome, TaskStream
from .deadline import call_deadline
from .errors import AuthenticationError, CMError, ConfigurationError
from .models import Campaign, ListMembership
from .profiles import (
    CASCADE_TOLERANCE,
    CASE_FAILED,
    CASE_FULL,
    CASE_NO_CAMPAIGNS,
    CASE_NO_LISTS,
    Activity,
    ListStatus,
    Problem,
    Profile,
    ProfileCase,
    ReceivedCampaign,
    StateReason,
    find_reason,
    received_campaigns,
    with_suppression,
)
from .shared_generation import suppression_generation
from .suppression import SuppressionIndex, SuppressionMemo

# The profile types are re-exported: pages and tests import them from here.
__all__ = [
    "CASCADE_TOLERANCE", "CASE_FAILED", "CASE_FULL", "CASE_NO_CAMPAIGNS", "CASE_NO_LISTS", "MAX_MEMO", "Activity",
    "ListStatus", "LookupService", "Problem", "Profile", "ProfileCase", "ReceivedCampaign", "StateReason",
    "find_reason", "received_campaigns",
]

MAX_MEMO = 1000  # profiles kept in memory per service at most (the oldest go first)
CLIENT_DETAILS_TTL = 600.0  # seconds the client's time zone is kept (as the HTTP cache keeps its details)
CLIENT_DETAILS_RETRY = 60.0  # seconds before a zone that could not be read is asked for again

DEFAULT_CALLS_PER_ADDRESS = 8.0  # per-list calls per address expected before a lookup has shown otherwise

CLOSED_REASON = "the connection was replaced after a settings change; try again"


class LookupService:
    """Lookups for one client. Thread-safe; share one per client.

    Assembled profiles are kept in memory for as long as the HTTP cache would keep a
    subscriber's state (``memo_ttl``), so a repeated lookup costs no request and no cache
    deserialisation; any invalidation of the address (a write, a refresh) drops it. The memo
    is bounded: expired profiles are dropped as new ones come, and at most ``MAX_MEMO`` stay.
    With the shared Redis cache there is no memo: another replica's write never reaches it.

    A lookup is interactive: someone is waiting. Every call it makes, retries included, ends
    within the client's ``interactive_deadline`` (25 s by default) of the start
    (:func:`cmlib.deadline.call_deadline`), so a hung API is reported with its reason in under
    30 s instead of read timeout × attempts (212 s with every request hanging).

    Lifetime: whoever creates a service closes it (a Connection, a bulk run). It starts its
    pool and starts listening to the client's invalidations only when first needed, so one made
    just for :meth:`campaign_index` holds nothing. ``close()`` lets lookups already running
    finish (the last one shuts the pool down); a lookup started after it raises a
    :class:`~cmlib.errors.ConfigurationError`.
    """

    def __init__(self, client: CampaignMonitor, client_id: str, *, max_workers: int = 32,
                 memo_ttl: float | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.client_id = client_id
        self.max_workers = max_workers
        self.deadline: float | None = getattr(getattr(client, "options", None), "interactive_deadline", None)
        self._lock = threading.Lock()
        self._clock = clock
        cs = getattr(client, "cache_settings", None)
        expiry: dict[str, int] = cs.expiry if cs is not None and cs.enabled else {}
        if memo_ttl is None:
            # A write made through another replica reaches the shared (Redis) cache, never this
            # process's memory: with a shared cache there is no memo, or this replica would show
            # the old state until it expired.
            session = getattr(client, "session", None)  # test doubles may have none
            shared = session is not None and is_shared(session)
            memo_ttl = 0 if shared else min(expiry.get(k, 0) for k in ("listsforemail", "subscriber", "history"))
        self.memo_ttl = float(memo_ttl)
        # The client's suppression list, read once and kept as long as the HTTP cache keeps its pages.
        self.suppression = SuppressionMemo(client, client_id, ttl=expiry.get("suppressionlist", 0), clock=clock,
                                           shared=suppression_generation(client_id))
        self._time_zone: tuple[float, str | None] | None = None
        self._memo: OrderedDict[str, tuple[float, Profile]] = OrderedDict()  # oldest first
        self._pool: ThreadPoolExecutor | None = None
        self._active = 0  # lookups running now
        self._listening = False
        self._closed = False
        # Per-list calls (and list settings) per address in the last lookup: how many connections
        # the next one opens ahead. Before any, an address on three or four lists.
        self._calls_per_address = DEFAULT_CALLS_PER_ADDRESS

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Stop listening to the client and release the pool (at once, or when the lookups
        still running end). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._memo.clear()
            self.suppression.clear()
            if self._listening:
                self._listening = False
                self.client.remove_invalidation_listener(self._forget)
            pool = self._take_pool_if_idle()
        if pool is not None:
            pool.shutdown(wait=False)

    def __enter__(self) -> LookupService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take_pool_if_idle(self) -> ThreadPoolExecutor | None:
        """Under the lock: the pool, detached, when closed and no lookup needs it any more."""
        if not self._closed or self._active:
            return None
        pool, self._pool = self._pool, None
        return pool

    def _executor(self) -> ThreadPoolExecutor:
        """A long-lived pool: starting 30 threads per lookup costs more than the lookup's CPU work."""
        with self._lock:
            if self._pool is None:  # a lookup running when close() came still gets its pool
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="cm-lookup")
            return self._pool

    def _forget(self, key: str) -> None:
        with self._lock:
            if key:
                self._memo.pop(key, None)
            else:
                self._memo.clear()
        self.suppression.invalidate()  # a write may have taken the address off the suppression list

    def _listen(self) -> None:
        """Under the lock: from now on a write must drop what we keep."""
        if not self._listening and not self._closed:
            self._listening = True
            self.client.add_invalidation_listener(self._forget)

    def _remembered(self, email: str) -> Profile | None:
        if self.memo_ttl <= 0:
            return None
        with self._lock:
            hit = self._memo.get(email.lower())
        if hit and self._clock() - hit[0] < self.memo_ttl and hit[1].email == email:
            return hit[1]
        return None

    def _remember(self, profiles: Iterable[Profile]) -> None:
        if self.memo_ttl <= 0:
            return
        now = self._clock()
        with self._lock:
            if self._closed:
                return
            for p in profiles:
                if not p.failed and not p.all_problems():  # failures are retried next time
                    key = p.email.lower()
                    self._memo.pop(key, None)
                    self._memo[key] = (now, p)
            while self._memo and (now - next(iter(self._memo.values()))[0] >= self.memo_ttl
                                  or len(self._memo) > MAX_MEMO):
                self._memo.popitem(last=False)
            if self._memo:
                self._listen()

    @property
    def memo_size(self) -> int:
        return len(self._memo)

    # -- shared reference data (HTTP-cached for minutes by the client)
    def campaign_index(self, fresh: bool = False) -> dict[str, Campaign]:
        return {c.campaign_id: c for c in self.client.iter_campaigns(self.client_id, fresh=fresh)}

    def suppression_index(self, *, fresh: bool = False) -> SuppressionIndex:
        """The client's suppression list by address: one pass over its (HTTP-cached) pages, kept
        as long as the cache keeps them; ``fresh``, or a write to any address, reads it anew."""
        index = self.suppression.get(fresh=fresh)
        if self.suppression.held:
            with self._lock:
                self._listen()
        return index

    def client_time_zone(self) -> str | None:
        """The client's time zone as Campaign Monitor names it (``"(GMT+03:00) Moscow"``), which its
        dates are written in; None when it cannot be read (the caller shows UTC, named). Kept as
        long as the HTTP cache keeps the client's details; a failure for a minute, so reruns of
        a page do not wait on it again."""
        held = self._time_zone
        if held is not None and self._clock() - held[0] < (CLIENT_DETAILS_TTL if held[1] else CLIENT_DETAILS_RETRY):
            return held[1]
        try:
            with call_deadline(self.deadline):
                zone: str | None = self.client.client_details(self.client_id).time_zone or None
        except CMError:
            zone = None
        self._time_zone = (self._clock(), zone)
        return zone

    def lookup(self, email: str, *, fresh: bool = False) -> Profile:
        return self.lookup_many([email], fresh=[email] if fresh else ())[0]

    def lookup_many(self, emails: Sequence[str], *, fresh: Iterable[str] = (), suppression: bool = False,
                    time_zone: bool = False, on_profile: Callable[[Profile], None] | None = None) -> list[Profile]:
        """One Profile per email, in input order. Raises AuthenticationError, and ConfigurationError
        once the service is closed; anything else is a Problem.

        ``suppression``: also say which addresses are on the client's suppression list
        (:attr:`Profile.suppression`), from one index for all of them, read alongside the
        memberships (fresh when any address is looked up fresh). ``time_zone``: read the client's
        zone alongside too, so :meth:`client_time_zone` answers from memory afterwards.
        ``on_profile``: called (in this thread) with each address's finished profile as soon as it
        is complete, before the others are, so a page can show each address as it arrives."""
        with self._lock:
            if self._closed:
                raise ConfigurationError(CLOSED_REASON)
            self._active += 1
        try:
            fresh_keys = {e.lower() for e in fresh}
            emails = list(emails)
            known = {e: self._remembered(e) for e in emails if e.lower() not in fresh_keys}
            missing = [e for e in emails if known.get(e) is None]
            fetched: dict[str, Profile] = {}
            index: SuppressionIndex | BaseException | None = None

            def ready(p: Profile, idx: SuppressionIndex | BaseException | None) -> None:
                if on_profile is not None:
                    on_profile(with_suppression(p, idx) if suppression else p)

            with call_deadline(self.deadline):
                if missing:
                    got, index = self._fetch(missing, fresh_keys, suppression, time_zone,
                                             on_ready=ready if on_profile is not None else None,
                                             known=[p for p in known.values() if p is not None])
                    fetched = {p.email: p for p in got}
                else:
                    index = self._read_suppression(bool(fresh_keys)) if suppression else None
                    if time_zone:
                        self.client_time_zone()
                    for p in known.values():
                        if p is not None:
                            ready(p, index)
            self._remember(fetched.values())  # without the suppression entry: the index has its own memo
            profiles = [known.get(e) or fetched[e] for e in emails]
            return [with_suppression(p, index) for p in profiles] if suppression else profiles
        finally:
            with self._lock:
                self._active -= 1
                pool = self._take_pool_if_idle()
            if pool is not None:
                pool.shutdown(wait=False)

    def _read_suppression(self, fresh: bool) -> SuppressionIndex | BaseException:
        """The index, or why it could not be read (never raised: it is one part of a lookup)."""
        try:
            return self.suppression_index(fresh=fresh)
        except (CMError, OSError) as exc:
            return exc

    def _fetch(self, emails: list[str], fresh_keys: set[str], suppression: bool = False,
               time_zone: bool = False, *,
               on_ready: Callable[[Profile, SuppressionIndex | BaseException | None], None] | None = None,
               known: Sequence[Profile] = ()) -> tuple[list[Profile], SuppressionIndex | BaseException | None]:
        """Profiles of ``emails`` (input order) and the suppression index (or why it is missing).

        Pipelined rather than in two waves: an address's per-list calls start the moment its own
        memberships are in, not when every first call (the slowest address, the campaigns, the
        suppression list, the zone) is, so one slow answer delays only what needs it. While the
        first calls wait, the pool opens the connections the per-list calls will use."""
        executor = self._executor()
        gather = _Gather(list(dict.fromkeys(emails)), suppression, on_ready, known)
        tasks: TaskStream[Task, Any] = TaskStream(self._call_for(fresh_keys), executor)
        for task in gather.first_tasks(time_zone):
            tasks.add(task)
        self._open_connections(len(gather.emails), executor)
        try:
            for outcome in tasks:
                if isinstance(outcome.error, AuthenticationError):
                    raise outcome.error
                for task in gather.take(outcome):
                    tasks.add(task)
        except BaseException:
            tasks.cancel()  # nobody will read them
            raise
        finally:
            self._open_connections(0, executor)  # withdrawn if no request went out
        if gather.asked:  # addresses on no list say nothing about the next lookup
            self._calls_per_address = len(gather.asked) / len(gather.emails)
        return [gather.done[e] for e in emails], gather.suppression_index

    def _call_for(self, fresh_keys: set[str]) -> Callable[[Task], Any]:
        """What each task of a lookup calls (``fresh`` for the addresses asked fresh)."""
        def call(task: Task) -> Any:
            kind, email, list_id = task
            f = email.lower() in fresh_keys
            if kind == "campaigns":
                return self.campaign_index()
            if kind == "suppression":
                return self._read_suppression(bool(fresh_keys))
            if kind == "time_zone":
                return self.client_time_zone()
            if kind == "memberships":
                return self.client.lists_for_email(self.client_id, email, fresh=f)
            if kind == "subscriber":
                return self.client.subscriber(list_id, email, fresh=f)
            if kind == "history":
                return self.client.history(list_id, email, fresh=f)
            return self.client.list_details(list_id)
        return call

    def _open_connections(self, addresses: int, executor: ThreadPoolExecutor) -> None:
        """Have the connections the per-list calls will need opened while the first calls wait
        (as many as the last lookup made per address), once a first call goes to the API."""
        opener = getattr(self.client, "open_connections", None)  # test doubles may have none
        if opener is not None:
            opener(math.ceil(addresses * self._calls_per_address), submit=executor.submit)


Task = tuple[str, str, str]  # (kind, email, list_id); email and list_id "" where they do not apply


class _Gather:
    """One lookup's answers as they arrive: which calls each one makes possible, and which
    addresses are complete. Used by the one thread that drives the lookup.

    An address is complete when its memberships, per-list calls and its lists' settings are in,
    and so are the campaigns (subjects and dates) and, when asked, the suppression list -- which
    every address needs. Remembered (``known``) addresses are handed over first, as soon as the
    suppression list is in. A list's settings are asked for once, for every address on it."""

    def __init__(self, emails: list[str], suppression: bool,
                 on_ready: Callable[[Profile, SuppressionIndex | BaseException | None], None] | None,
                 known: Sequence[Profile]) -> None:
        self.emails = emails
        self.suppression = suppression
        self.on_ready = on_ready
        self.known = known
        self.now = datetime.now(UTC)
        self.shared_left = {"campaigns", *(("suppression",) if suppression else ())}
        self.index: dict[str, Campaign] = {}
        self.campaign_problem: Problem | None = None
        self.suppression_index: SuppressionIndex | BaseException | None = None
        self.memberships: dict[str, list[ListMembership] | BaseException] = {}
        self.waiting: dict[str, set[Task]] = {}  # per address: calls not yet in
        self.asked: set[Task] = set()  # per-list calls and list settings sent
        self.got: dict[Task, Outcome] = {}
        self.done: dict[str, Profile] = {}
        self.known_told = False

    def first_tasks(self, time_zone: bool) -> list[Task]:
        extras = [k for k, wanted in (("suppression", self.suppression), ("time_zone", time_zone)) if wanted]
        return [("campaigns", "", ""), *(("memberships", e, "") for e in self.emails), *((k, "", "") for k in extras)]

    def take(self, outcome: Outcome) -> list[Task]:
        """Record one answer; returns the calls it makes possible (an address's per-list calls)."""
        kind, email, _ = outcome.item
        new: list[Task] = []
        if kind == "campaigns":
            self._campaigns(outcome)
        elif kind == "suppression":
            self.suppression_index = outcome.result if outcome.error is None else outcome.error
        elif kind == "memberships":
            new = self._memberships(email, outcome)
        elif kind != "time_zone":  # the zone is kept by the service: nothing waits for it
            self.got[outcome.item] = outcome
            for left in self.waiting.values():
                left.discard(outcome.item)
        self.shared_left.discard(kind)
        self._finish_complete()
        return new

    def _campaigns(self, outcome: Outcome) -> None:
        self.index = outcome.result or {}
        if outcome.error is not None:
            self.campaign_problem = Problem(
                "campaigns", later.t("Could not load the client's sent campaigns, so subjects and dates may be "
                                     "missing: {reason}", reason=later.error_text(outcome.error)),
                error=as_cm(outcome.error))

    def _memberships(self, email: str, outcome: Outcome) -> list[Task]:
        found = outcome.error if outcome.error is not None else list(outcome.result or ())
        self.memberships[email] = found
        left = self.waiting[email] = set()
        new: list[Task] = []
        for ms in found if isinstance(found, list) else ():
            for task in (("subscriber", email, ms.list_id), ("history", email, ms.list_id), ("list", "", ms.list_id)):
                if task not in self.got:
                    left.add(task)
                if task not in self.asked:
                    self.asked.add(task)
                    new.append(task)
        return new

    def _finish_complete(self) -> None:
        if self.shared_left:
            return
        if not self.known_told and self.on_ready is not None:
            for p in self.known:  # remembered addresses first: they cost nothing
                self.on_ready(p, self.suppression_index)
        self.known_told = True
        for email in self.emails:
            if email not in self.done and email in self.memberships and not self.waiting[email]:
                self._finish(email)

    def _finish(self, email: str) -> None:
        found = self.memberships[email]
        if isinstance(found, list):
            profile = assemble(email, found, self.got, self.index, self.campaign_problem, self.now)
        else:
            profile = Profile(email=email, lists=(), campaigns=(), activity=Activity.of(()), fetched_at=self.now,
                              problems=(Problem("address", lists_failed(found, email), error=as_cm(found)),),
                              failed=True)
        self.done[email] = profile
        if self.on_ready is not None:
            self.on_ready(profile, self.suppression_index)
