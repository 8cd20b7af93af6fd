"""What the editor starts from: the client's lists with their settings, and one fresh snapshot of
the states of one address.

Every change is measured against the snapshot taken when the dialog opened (see
:mod:`cmlib.subscriptions.plan`), and the conflict check compares it with a re-read right before
writing (:func:`diff_states`). Because of that re-read, the first display may start from what
the lookup just read (:func:`snapshot_from_lookup`) while it is younger than the cache's
subscriber expiry: opening the dialog right after a lookup then sends no request for states.
Reads that can run side by side are handed to the caller's ``executor`` as single requests
only: the waiting happens in the caller's thread, so a small shared pool
(``Connection.executor``) can never fill up with tasks that wait on tasks queued behind them.
"""
from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import ParamSpec, TypeVar

from .. import lazy_text as lazy
from ..cache import DEFAULT_EXPIRY, CacheSettings
from ..client import CampaignMonitor
from ..concurrency import map_all
from ..errors import AuthenticationError, CMError
from ..i18n import N_, Language
from ..models import ListDetail, ListMembership, ListRef, SuppressedAddress
from ..profiles import Profile
from ..states import SUBSCRIBED_STATES
from .wording import ARROW, NOT_ON_LIST, state_text

__all__ = ["NOT_ON_LIST", "ListInfo", "LookupSeed", "Snapshot", "SnapshotSource", "StateChange", "diff_states",
           "list_infos", "load_lists", "read_for_editing", "seed_max_age", "snapshot_from_lookup", "state_text",
           "take_snapshot", "with_known"]

T = TypeVar("T")
P = ParamSpec("P")


# --------------------------------------------------------------------------- the lists
@dataclass(frozen=True)
class ListInfo:
    """A list of the client and the two settings that change what a write does."""

    list_id: str
    name: str
    confirmed_opt_in: bool | None = None  # None: the list's settings could not be read
    unsubscribes_from_all: bool | None = None
    problem: str = ""  # why the settings are unknown (a lazy sentence, see cmlib.lazy_text)


def load_lists(client: CampaignMonitor, client_id: str, *, executor: Executor | None = None,
               max_workers: int = 8, known: Mapping[str, ListInfo] | None = None) -> tuple[ListInfo, ...]:
    """Every list of the client with its opt-in and unsubscribe settings, details fetched concurrently
    (on ``executor`` when given, else on a pool of ``max_workers`` for this call).

    Lists and their settings are reference data (cached like any read); ``known`` settings (e.g.
    what the lookup just read for the address's own lists) are used as they are, not fetched.
    A list whose details fail still appears (settings unknown, ``problem`` says why): the plan
    then warns that an unsubscribe there might reach every list.
    """
    refs = client.lists(client_id)
    known = known or {}
    missing = [r for r in refs if r.list_id not in known]
    details = map_all(lambda r: client.list_details(r.list_id), missing, max_workers=max_workers, executor=executor)
    return list_infos(refs, known, ((o.item, o.result, o.error) for o in details))


def list_infos(refs: Sequence[ListRef], known: Mapping[str, ListInfo],
               details: Iterable[tuple[ListRef, ListDetail | None, BaseException | None]]) -> tuple[ListInfo, ...]:
    """The lists in the client's order: ``known`` settings as they are, the others from their
    details (``(ref, details, error)`` each); a wrong key is not a detail, it raises."""
    out: list[ListInfo] = []
    for ref in refs:
        have = known.get(ref.list_id)
        if have is not None:
            out.append(ListInfo(ref.list_id, ref.name or have.name, confirmed_opt_in=have.confirmed_opt_in,
                                unsubscribes_from_all=have.unsubscribes_from_all))
    for ref, detail, error in details:
        if error is not None:
            if isinstance(error, AuthenticationError):
                raise error
            out.append(ListInfo(ref.list_id, ref.name, problem=lazy.t(N_("list settings could not be read: {reason}"),
                                                                      reason=error)))
        elif detail is not None:
            out.append(ListInfo(ref.list_id, ref.name or detail.title, confirmed_opt_in=detail.confirmed_opt_in,
                                unsubscribes_from_all=detail.unsubscribes_from_all))
    order = {r.list_id: i for i, r in enumerate(refs)}
    return tuple(sorted(out, key=lambda li: order[li.list_id]))  # the client's order, known or fetched


# --------------------------------------------------------------------------- the snapshot
class SnapshotSource(StrEnum):
    """Where a snapshot's states came from (the dialog says it beside their time)."""

    FRESH = "fresh"  # read for the dialog, bypassing every cache
    LOOKUP = "lookup"  # what the lookup just read, young enough to show first


@dataclass(frozen=True)
class Snapshot:
    """The states of one address as read at one moment; the baseline every change is measured from."""

    email: str
    client_id: str
    states: tuple[tuple[str, str], ...]  # (list_id, state) for every list the address is on
    names: tuple[tuple[str, str], ...]  # (list_id, list name) as listsforemail named them
    taken_at: datetime
    suppressed: SuppressedAddress | None = None
    suppression_problem: str = ""  # why the suppression list could not be read (a lazy sentence)
    source: SnapshotSource = SnapshotSource.FRESH

    @classmethod
    def of(cls, email: str, client_id: str, memberships: Iterable[ListMembership], *,
           suppressed: SuppressedAddress | None = None, suppression_problem: str = "",
           taken_at: datetime | None = None, source: SnapshotSource = SnapshotSource.FRESH) -> Snapshot:
        ms = list(memberships)
        return cls(
            email=email,
            client_id=client_id,
            states=tuple((m.list_id, m.state) for m in ms),
            names=tuple((m.list_id, m.list_name) for m in ms),
            taken_at=taken_at or datetime.now(UTC),
            suppressed=suppressed,
            suppression_problem=suppression_problem,
            source=source,
        )

    @property
    def state_map(self) -> dict[str, str]:
        return dict(self.states)

    def state_of(self, list_id: str) -> str:
        """The state on that list, ``""`` when the address is not on it."""
        return self.state_map.get(list_id, "")

    def is_subscribed(self, list_id: str) -> bool:
        return self.state_of(list_id) in SUBSCRIBED_STATES

    def ticks(self) -> dict[str, bool]:
        """What the checkboxes show at open: ticked where Active or Unconfirmed."""
        return {lid: st in SUBSCRIBED_STATES for lid, st in self.states}

    def name_of(self, list_id: str) -> str:
        return dict(self.names).get(list_id, list_id)


def _start(executor: Executor | None, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """``fn`` as one leaf task on ``executor`` (with the caller's context, so a deadline set
    around the caller also bounds it), or run right here when there is no executor."""
    if executor is not None:
        context = contextvars.copy_context()
        return executor.submit(lambda: context.run(fn, *args, **kwargs))
    done: Future[T] = Future()
    try:
        done.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # handed over like a pool would: .result() raises it
        done.set_exception(exc)
    return done


def _suppression(f_supp: Future[SuppressedAddress | None] | None) -> tuple[SuppressedAddress | None, str]:
    """The suppression entry, or why it could not be read (a wrong key is not a detail: it raises)."""
    if f_supp is None:
        return None, ""
    try:
        return f_supp.result(), ""
    except CMError as err:
        if isinstance(err, AuthenticationError):
            raise
        return None, lazy.error_text(err)


def take_snapshot(client: CampaignMonitor, client_id: str, email: str, *, check_suppression: bool = True,
                  executor: Executor | None = None) -> Snapshot:
    """Read the current states fresh (never from cache), and the suppression entry -- side by
    side when an ``executor`` is given."""
    f_supp = _start(executor, client.is_suppressed, client_id, email, fresh=True) if check_suppression else None
    memberships = client.lists_for_email(client_id, email, fresh=True)  # raises: nothing to edit without it
    suppressed, problem = _suppression(f_supp)
    return Snapshot.of(email, client_id, memberships, suppressed=suppressed, suppression_problem=problem)


@dataclass(frozen=True)
class LookupSeed:
    """What a lookup just read about one address, for the dialog's first display."""

    snapshot: Snapshot
    lists: Mapping[str, ListInfo]  # the settings of the address's own lists, as the lookup read them


def seed_max_age(settings: CacheSettings | None) -> float:
    """How old a lookup's states may be to seed the dialog: the cache's subscriber expiry (the
    shorter of ``listsforemail`` and ``subscriber``), its defaults when no cache is configured."""
    expiry = settings.expiry if settings is not None and settings.enabled else DEFAULT_EXPIRY
    return float(min(expiry.get(n, DEFAULT_EXPIRY[n]) for n in ("listsforemail", "subscriber")))


def snapshot_from_lookup(profile: Profile, client_id: str, *, max_age: float,
                         now: datetime | None = None) -> LookupSeed | None:
    """The lookup's states as the dialog's first baseline, or ``None`` when they must be read fresh:
    the lookup failed or has a problem with the address itself or a list, its suppression check
    failed, or it is ``max_age`` seconds old or older (the cache's subscriber expiry: no older than
    what a cached read could show). Safe because every write re-reads first (the conflict check)."""
    now = now or datetime.now(UTC)
    if profile.failed or max_age <= 0 or now - profile.fetched_at >= timedelta(seconds=max_age):
        return None
    if any(p.where in ("address", "suppression") for p in profile.problems) or any(ls.problems for ls in profile.lists):
        return None
    memberships = [ListMembership(ls.list_id, ls.list_name, ls.state, ls.date_added) for ls in profile.lists]
    snapshot = Snapshot.of(profile.email, client_id, memberships, suppressed=profile.suppression,
                           taken_at=profile.fetched_at, source=SnapshotSource.LOOKUP)
    known = {ls.list_id: ListInfo(ls.list_id, ls.list_name, confirmed_opt_in=ls.confirmed_opt_in,
                                  unsubscribes_from_all=ls.unsubscribes_from_all)
             for ls in profile.lists if ls.confirmed_opt_in is not None and ls.unsubscribes_from_all is not None}
    return LookupSeed(snapshot, known)


def read_for_editing(client: CampaignMonitor, client_id: str, email: str, *,
                     executor: Executor | None = None,
                     seed: LookupSeed | None = None,
                     lists: Sequence[ListInfo] | None = None) -> tuple[tuple[ListInfo, ...], Snapshot]:
    """What the editor needs when it opens: the client's lists and a snapshot of ``email``.

    Without a ``seed`` the address's states and suppression entry are read fresh while the lists
    load; raises what the states read raises first (without them there is nothing to edit), then
    what the lists raise. With one (:func:`snapshot_from_lookup`) no state is read: only the
    lists and the settings the lookup did not read (reference data, from the cache when there).
    A seed without a suppression entry is checked against the (cached) suppression list.
    ``lists``: the client's lists already read (:class:`cmlib.subscriptions.catalog.ListCatalog`),
    used instead of reading them; a seed's settings for the address's own lists still win.
    """
    if seed is not None:
        f_supp = (_start(executor, client.is_suppressed, client_id, email)
                  if seed.snapshot.suppressed is None else None)
        infos = (with_known(lists, seed.lists) if lists is not None
                 else load_lists(client, client_id, executor=executor, known=seed.lists))
        snapshot = seed.snapshot
        if f_supp is not None:
            suppressed, problem = _suppression(f_supp)
            snapshot = replace(snapshot, suppressed=suppressed, suppression_problem=problem)
        return infos, snapshot
    f_states = _start(executor, client.lists_for_email, client_id, email, fresh=True)
    f_supp = _start(executor, client.is_suppressed, client_id, email, fresh=True)
    lists_error: BaseException | None = None
    infos = tuple(lists) if lists is not None else ()
    if lists is None:
        try:
            infos = load_lists(client, client_id, executor=executor)
        except BaseException as exc:  # raised below, after the states' own error if there is one
            lists_error = exc
    memberships = f_states.result()
    suppressed, problem = _suppression(f_supp)
    if lists_error is not None:
        raise lists_error
    return infos, Snapshot.of(email, client_id, memberships, suppressed=suppressed, suppression_problem=problem)


def with_known(lists: Sequence[ListInfo], known: Mapping[str, ListInfo]) -> tuple[ListInfo, ...]:
    """``lists`` with the settings in ``known`` (what the lookup just read) in place of their own."""
    out = []
    for li in lists:
        have = known.get(li.list_id)
        out.append(li if have is None else ListInfo(li.list_id, li.name or have.name,
                                                    confirmed_opt_in=have.confirmed_opt_in,
                                                    unsubscribes_from_all=have.unsubscribes_from_all))
    return tuple(out)


# --------------------------------------------------------------------------- what changed
@dataclass(frozen=True)
class StateChange:
    list_id: str
    list_name: str
    before: str
    after: str

    def describe(self, lang: Language | str | None = None) -> str:
        """``Newsletter: subscribed → unsubscribed`` (the name is data, the states in ``lang``)."""
        states = ARROW.format(before=state_text(self.before, lang=lang), after=state_text(self.after, lang=lang))
        return f"{self.list_name}: {states}"

    def render(self, lang: Language | str | None = None) -> str:
        return self.describe(lang)


def diff_states(before: Snapshot, after: Snapshot) -> list[StateChange]:
    """Lists whose state differs between two snapshots of the same address."""
    b, a = before.state_map, after.state_map
    out = []
    for lid in list(dict.fromkeys(list(b) + list(a))):
        if b.get(lid, "") != a.get(lid, ""):
            name = dict(after.names).get(lid) or before.name_of(lid)
            out.append(StateChange(lid, name, b.get(lid, ""), a.get(lid, "")))
    return out
