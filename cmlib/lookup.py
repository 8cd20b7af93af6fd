"""Everything the dashboard shows about one or more addresses, fetched concurrently.

Campaign Monitor has no "subscriber profile" call: a profile is assembled from
``listsforemail`` (one call gives every list and state), then per list the subscriber detail
(state date, consent, custom fields) and history (one item per email sent from that list),
joined with the client's sent campaigns for subjects, sent dates and web links. Calls run in
two concurrent waves (memberships + campaigns, then per-list detail + history + list settings),
so a customer with three addresses costs about two round trips, not dozens.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

from .client import CampaignMonitor, call_deadline
from .concurrency import map_all
from .errors import AuthenticationError, CMError, NotInListError
from .models import (
    BOUNCED,
    UNSUBSCRIBED,
    Campaign,
    CustomField,
    HistoryAction,
    HistoryItem,
    ListDetail,
    ListMembership,
    SubscriberDetail,
    format_date,
)

CASE_NO_LISTS = "no_lists"  # product.md case 1
CASE_NO_CAMPAIGNS = "no_campaigns"  # case 2
CASE_FULL = "full"  # case 3
CASE_FAILED = "failed"  # the address itself could not be looked up

_REASON_EVENTS = {
    UNSUBSCRIBED: ("unsubscribe", "unsubscribed"),
    BOUNCED: ("bounce", "bounced", "hardbounce", "softbounce"),
}
_REASON_EVENTS_ANY = ("unsubscribe", "unsubscribed", "bounce", "bounced", "hardbounce", "softbounce",
                      "spam", "complaint", "spamcomplaint", "markedasspam")


@dataclass(frozen=True)
class StateReason:
    """Why a badge says what it says, as far as the API tells: an event, its email and date."""

    event: str
    date: datetime | None
    campaign_id: str
    campaign_name: str
    via_list_name: str | None = None  # the event was recorded in another list's history

    def describe(self) -> str:
        when = self.date.strftime("%Y-%m-%d %H:%M") if self.date else "unknown date"
        text = f"{self.event} on {when} from “{self.campaign_name}”"
        if self.via_list_name:
            text += f" (recorded on list “{self.via_list_name}”)"
        return text


@dataclass(frozen=True)
class Problem:
    """One part of a lookup that failed; the rest still renders."""

    where: str  # "address", "list", "campaigns"
    message: str
    list_id: str | None = None
    list_name: str | None = None
    error: CMError | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ListStatus:
    list_id: str
    list_name: str
    state: str
    date_added: datetime | None  # from listsforemail
    state_changed: datetime | None = None  # subscriber "Date"
    joined: datetime | None = None  # subscriber "ListJoinedDate"
    consent_to_track: str | None = None
    subscriber_name: str = ""
    custom_fields: tuple[CustomField, ...] = ()
    unsubscribes_from_all: bool | None = None  # list's UnsubscribeSetting == AllClientLists
    confirmed_opt_in: bool | None = None
    reason: StateReason | None = None
    history: tuple[HistoryItem, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class ReceivedCampaign:
    campaign_id: str
    name: str
    subject: str
    sent: datetime | None
    web_version_url: str
    opens: int
    clicks: int
    list_ids: tuple[str, ...] = ()

    @property
    def opened(self) -> bool:
        return self.opens > 0

    @property
    def clicked(self) -> bool:
        return self.clicks > 0


@dataclass(frozen=True)
class Activity:
    received: int
    opened: int
    clicked: int
    total_opens: int
    total_clicks: int

    @property
    def open_rate(self) -> float:
        """Unique open rate: share of received emails opened at least once."""
        return self.opened / self.received if self.received else 0.0

    @property
    def click_rate(self) -> float:
        return self.clicked / self.received if self.received else 0.0

    @property
    def avg_opens(self) -> float:
        return self.total_opens / self.received if self.received else 0.0

    @property
    def avg_clicks(self) -> float:
        return self.total_clicks / self.received if self.received else 0.0

    @classmethod
    def of(cls, campaigns: Sequence[ReceivedCampaign]) -> "Activity":
        return cls(
            received=len(campaigns),
            opened=sum(1 for c in campaigns if c.opened),
            clicked=sum(1 for c in campaigns if c.clicked),
            total_opens=sum(c.opens for c in campaigns),
            total_clicks=sum(c.clicks for c in campaigns),
        )


@dataclass(frozen=True)
class Profile:
    email: str
    lists: tuple[ListStatus, ...]
    campaigns: tuple[ReceivedCampaign, ...]  # every received email, newest first
    activity: Activity
    fetched_at: datetime
    problems: tuple[Problem, ...] = ()
    failed: bool = False

    @property
    def case(self) -> str:
        if self.failed:
            return CASE_FAILED
        if not self.lists:
            return CASE_NO_LISTS
        if not self.campaigns:
            return CASE_NO_CAMPAIGNS
        return CASE_FULL

    def last_campaigns(self, n: int = 3) -> tuple[ReceivedCampaign, ...]:
        return self.campaigns[:n]

    def state_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.lists:
            out[s.state] = out.get(s.state, 0) + 1
        return out

    def all_problems(self) -> list[Problem]:
        return list(self.problems) + [p for s in self.lists for p in s.problems]

    def to_json(self) -> dict[str, Any]:
        """The stable document of ``python -m cmlib lookup --json``."""
        return {
            "email": self.email,
            "fetched_at": self.fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lists": [
                {
                    "list_id": s.list_id,
                    "list_name": s.list_name,
                    "state": s.state,
                    "state_changed": format_date(s.state_changed) or None,
                    "joined": format_date(s.joined or s.date_added) or None,
                    "consent_to_track": s.consent_to_track,
                    "unsubscribes_from_all": s.unsubscribes_from_all,
                    "reason": s.reason.describe() if s.reason else None,
                }
                for s in self.lists
            ],
            "campaigns": [
                {
                    "id": c.campaign_id,
                    "name": c.name,
                    "subject": c.subject,
                    "sent": format_date(c.sent) or None,
                    "opened": c.opened,
                    "clicked": c.clicked,
                    "web_version_url": c.web_version_url,
                }
                for c in self.last_campaigns()
            ],
            "activity": {
                "received": self.activity.received,
                "open_rate": round(self.activity.open_rate, 4),
                "click_rate": round(self.activity.click_rate, 4),
                "avg_opens": round(self.activity.avg_opens, 4),
                "avg_clicks": round(self.activity.avg_clicks, 4),
            },
            "errors": [
                {"where": p.where, "list_id": p.list_id, "list_name": p.list_name, "message": p.message}
                for p in self.all_problems()
            ],
        }


def _describe_error(err: BaseException, what: str, email: str, list_name: str | None = None) -> str:
    reason = err.reason if isinstance(err, CMError) else f"{type(err).__name__}: {err}"
    where = f" on list “{list_name}”" if list_name else ""
    return f"{what} for {email}{where} failed: {reason}"


def _merge_actions(items: Iterable[HistoryItem]) -> tuple[HistoryAction, ...]:
    """Union of actions of one campaign reported by several lists, each counted once."""
    seen: set = set()
    out: list[HistoryAction] = []
    for it in items:
        for a in it.actions:
            k = (a.event, a.date, a.detail, a.ip_address)
            if k not in seen:
                seen.add(k)
                out.append(a)
    return tuple(out)


def received_campaigns(
    histories: dict[str, Sequence[HistoryItem]], index: dict[str, Campaign]
) -> tuple[ReceivedCampaign, ...]:
    """Join per-list histories with sent campaigns; one entry per campaign, newest first."""
    by_id: dict[str, list[tuple[str, HistoryItem]]] = {}
    for list_id, items in histories.items():
        for it in items:
            by_id.setdefault(it.id, []).append((list_id, it))
    out: list[ReceivedCampaign] = []
    for cid, pairs in by_id.items():
        items = [it for _, it in pairs]
        actions = _merge_actions(items)
        camp = index.get(cid)
        sent = camp.sent_date if camp else None
        if sent is None:  # not a campaign we know (journey/automation): date it by its first action
            dates = [a.date for a in actions if a.date]
            sent = min(dates) if dates else None
        out.append(
            ReceivedCampaign(
                campaign_id=cid,
                name=camp.name if camp else items[0].name,
                subject=(camp.subject if camp and camp.subject else items[0].name),
                sent=sent,
                web_version_url=camp.web_version_url if camp else "",
                opens=sum(1 for a in actions if a.event.lower() == "open"),
                clicks=sum(1 for a in actions if a.event.lower() == "click"),
                list_ids=tuple(dict.fromkeys(lid for lid, _ in pairs)),
            )
        )
    out.sort(key=lambda c: (c.sent is not None, c.sent or datetime.min), reverse=True)
    return tuple(out)


CASCADE_TOLERANCE = timedelta(hours=1)


def find_reason(
    state: str, list_id: str, histories: dict[str, Sequence[HistoryItem]], list_names: dict[str, str],
    state_changed: datetime | None = None,
) -> StateReason | None:
    """The latest unsubscribe/bounce event behind a state, looking in this list's history first.

    An event found only in another list's history (an AllClientLists cascade) is used only
    when it happened when this list's state changed; otherwise it would explain the wrong thing.
    """
    wanted = _REASON_EVENTS.get(state)
    if not wanted:
        return None

    def latest(items: Sequence[HistoryItem], events: Sequence[str]) -> tuple[HistoryItem, HistoryAction] | None:
        best = None
        for it in items:
            for a in it.actions:
                if a.event.lower().replace(" ", "") in events:
                    if best is None or (a.date or datetime.min) > (best[1].date or datetime.min):
                        best = (it, a)
        return best

    hit = latest(histories.get(list_id, ()), wanted)
    via = None
    if hit is None:  # e.g. unsubscribed here by an AllClientLists cascade from another list
        for other_id, items in histories.items():
            if other_id == list_id:
                continue
            cand = latest(items, wanted)
            if cand and state_changed is not None and (
                cand[1].date is None or abs(cand[1].date - state_changed) > CASCADE_TOLERANCE
            ):
                continue
            if cand and (hit is None or (cand[1].date or datetime.min) > (hit[1].date or datetime.min)):
                hit, via = cand, list_names.get(other_id, other_id)
    if hit is None:
        return None
    item, action = hit
    return StateReason(event=action.event, date=action.date, campaign_id=item.id,
                       campaign_name=item.name, via_list_name=via)


class LookupService:
    """Lookups for one client. Thread-safe; share one per client.

    Assembled profiles are kept in memory for as long as the HTTP cache would keep a
    subscriber's state (``memo_ttl``), so a repeated lookup costs no request and no cache
    deserialisation; any invalidation of the address (a write, a refresh) drops it.

    A lookup is interactive: someone is waiting. Every call it makes, retries included, ends
    within the client's ``interactive_deadline`` (25 s by default) of the start
    (:func:`cmlib.client.call_deadline`), so a hung API is reported with its reason in under
    30 s instead of read timeout × attempts (212 s with every request hanging).
    """

    def __init__(self, client: CampaignMonitor, client_id: str, *, max_workers: int = 32,
                 memo_ttl: float | None = None, clock: Any = time.monotonic) -> None:
        self.client = client
        self.client_id = client_id
        self.max_workers = max_workers
        self.deadline: float | None = getattr(getattr(client, "options", None), "interactive_deadline", None)
        self._lock = threading.Lock()
        self._clock = clock
        if memo_ttl is None:
            cs = getattr(client, "cache_settings", None)
            memo_ttl = (min(cs.expiry.get(k, 0) for k in ("listsforemail", "subscriber", "history"))
                        if cs is not None and cs.enabled else 0)
        self.memo_ttl = float(memo_ttl)
        self._memo: dict[str, tuple[float, Profile]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False
        client.add_invalidation_listener(self._forget)

    def close(self) -> None:
        """Stop the pool and stop listening to the client; the owner (a Connection, a bulk run) calls it."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            self._memo.clear()
        self.client.remove_invalidation_listener(self._forget)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> LookupService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _executor(self) -> ThreadPoolExecutor:
        """A long-lived pool: starting 30 threads per lookup costs more than the lookup's CPU work."""
        with self._lock:
            if self._closed:
                raise RuntimeError("LookupService is closed")
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="cm-lookup")
            return self._pool

    def _forget(self, key: str) -> None:
        with self._lock:
            if key:
                self._memo.pop(key, None)
            else:
                self._memo.clear()

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
            for p in profiles:
                if not p.failed and not p.all_problems():  # failures are retried next time
                    self._memo[p.email.lower()] = (now, p)

    # -- shared reference data (HTTP-cached for minutes by the client)
    def campaign_index(self, fresh: bool = False) -> dict[str, Campaign]:
        return {c.campaign_id: c for c in self.client.iter_campaigns(self.client_id, fresh=fresh)}

    def lookup(self, email: str, *, fresh: bool = False) -> Profile:
        return self.lookup_many([email], fresh=[email] if fresh else ())[0]

    def lookup_many(self, emails: Sequence[str], *, fresh: Iterable[str] = ()) -> list[Profile]:
        """One Profile per email, in input order. Raises AuthenticationError; anything else is a Problem."""
        fresh_keys = {e.lower() for e in fresh}
        emails = list(emails)
        known = {e: self._remembered(e) for e in emails if e.lower() not in fresh_keys}
        missing = [e for e in emails if known.get(e) is None]
        fetched: dict[str, Profile] = {}
        if missing:
            with call_deadline(self.deadline):
                fetched = {p.email: p for p in self._fetch(missing, fresh_keys)}
        self._remember(fetched.values())
        return [known.get(e) or fetched[e] for e in emails]

    def _fetch(self, emails: list[str], fresh_keys: set[str]) -> list[Profile]:

        # Wave 1: memberships of every address, and the client's campaigns, concurrently.
        tasks: list[tuple[str, str]] = [("campaigns", "")] + [("memberships", e) for e in emails]

        def wave1(task: tuple[str, str]) -> Any:
            kind, email = task
            if kind == "campaigns":
                return self.campaign_index()
            return self.client.lists_for_email(self.client_id, email, fresh=email.lower() in fresh_keys)

        results1 = map_all(wave1, tasks, executor=self._executor())
        for o in results1:
            if isinstance(o.error, AuthenticationError):
                raise o.error
        camp_outcome = results1[0]
        index: dict[str, Campaign] = camp_outcome.result or {}
        campaign_problem = None
        if camp_outcome.error is not None:
            campaign_problem = Problem("campaigns", "Could not load the client's sent campaigns, so subjects and "
                                       f"dates may be missing: {_reason(camp_outcome.error)}",
                                       error=_cm(camp_outcome.error))
        memberships: dict[str, list[ListMembership] | BaseException] = {}
        for o in results1[1:]:
            memberships[o.item[1]] = o.error if o.error is not None else o.result

        # Wave 2: per (email, list): subscriber detail and history; per list: its settings.
        per_list: list[tuple[str, str, str]] = []
        list_ids: dict[str, None] = {}
        for email, m in memberships.items():
            if isinstance(m, list):
                for ms in m:
                    per_list.append(("subscriber", email, ms.list_id))
                    per_list.append(("history", email, ms.list_id))
                    list_ids[ms.list_id] = None
        per_list += [("list", "", lid) for lid in list_ids]

        def wave2(task: tuple[str, str, str]) -> Any:
            kind, email, list_id = task
            f = email.lower() in fresh_keys
            if kind == "subscriber":
                return self.client.subscriber(list_id, email, fresh=f)
            if kind == "history":
                return self.client.history(list_id, email, fresh=f)
            return self.client.list_details(list_id)

        got = {o.item: o for o in map_all(wave2, per_list, executor=self._executor())}
        for o in got.values():
            if isinstance(o.error, AuthenticationError):
                raise o.error

        now = datetime.now(timezone.utc)
        profiles = []
        for email in emails:
            m = memberships[email]
            if not isinstance(m, list):
                profiles.append(Profile(
                    email=email, lists=(), campaigns=(), activity=Activity.of(()), fetched_at=now,
                    problems=(Problem("address", _describe_error(m, "Looking up the lists", email), error=_cm(m)),),
                    failed=True,
                ))
                continue
            profiles.append(self._assemble(email, m, got, index, campaign_problem, now))
        return profiles

    def _assemble(self, email: str, memberships: list[ListMembership], got: dict, index: dict[str, Campaign],
                  campaign_problem: Problem | None, now: datetime) -> Profile:
        names = {m.list_id: m.list_name for m in memberships}
        histories: dict[str, tuple[HistoryItem, ...]] = {}
        details: dict[str, SubscriberDetail | None] = {}
        list_problems: dict[str, list[Problem]] = {m.list_id: [] for m in memberships}
        for m in memberships:
            h = got.get(("history", email, m.list_id))
            if h is not None and h.error is None:
                histories[m.list_id] = tuple(h.result or ())
            elif h is not None and not isinstance(h.error, NotInListError):
                list_problems[m.list_id].append(Problem(
                    "list", _describe_error(h.error, "Loading the history", email, m.list_name),
                    m.list_id, m.list_name, _cm(h.error)))
            s = got.get(("subscriber", email, m.list_id))
            if s is not None and s.error is None:
                details[m.list_id] = s.result
            elif s is not None and not isinstance(s.error, NotInListError):
                list_problems[m.list_id].append(Problem(
                    "list", _describe_error(s.error, "Loading the subscriber details", email, m.list_name),
                    m.list_id, m.list_name, _cm(s.error)))
        statuses = []
        for m in memberships:
            d = details.get(m.list_id)
            ld_o = got.get(("list", "", m.list_id))
            ld: ListDetail | None = ld_o.result if ld_o is not None and ld_o.error is None else None
            if ld_o is not None and ld_o.error is not None:
                list_problems[m.list_id].append(Problem(
                    "list", f"Loading the settings of list “{m.list_name}” failed: {_reason(ld_o.error)}",
                    m.list_id, m.list_name, _cm(ld_o.error)))
            state = m.state or (d.state if d else "")
            statuses.append(ListStatus(
                list_id=m.list_id,
                list_name=m.list_name,
                state=state,
                date_added=m.date_added,
                state_changed=d.state_changed if d else None,
                joined=(d.joined if d and d.joined else m.date_added),
                consent_to_track=d.consent_to_track if d else None,
                subscriber_name=d.name if d else "",
                custom_fields=d.custom_fields if d else (),
                unsubscribes_from_all=ld.unsubscribes_from_all if ld else None,
                confirmed_opt_in=ld.confirmed_opt_in if ld else None,
                reason=find_reason(state, m.list_id, histories, names, d.state_changed if d else None),
                history=histories.get(m.list_id, ()),
                problems=tuple(list_problems[m.list_id]),
            ))
        campaigns = received_campaigns(histories, index)
        problems = (campaign_problem,) if campaign_problem and campaigns else ()
        return Profile(email=email, lists=tuple(statuses), campaigns=campaigns,
                       activity=Activity.of(campaigns), fetched_at=now, problems=problems)


def _cm(err: BaseException | None) -> CMError | None:
    return err if isinstance(err, CMError) else None


def _reason(err: BaseException) -> str:
    return err.reason if isinstance(err, CMError) else f"{type(err).__name__}: {err}"
