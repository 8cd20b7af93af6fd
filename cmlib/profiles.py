"""What one address's profile is made of, and the pure joins that build it.

Campaign Monitor has no "subscriber profile" call: :class:`cmlib.lookup.LookupService` fetches
the pieces, and this module says what they become -- the lists and states, the reason behind
an unsubscribed or bounced state, every email received (per-list histories joined with the
client's sent campaigns) and the activity figures. No I/O here, so every rule is testable alone.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum
from typing import Any

from . import lazy_text as later
from .errors import CMError
from .i18n import N_, t
from .lazy_text import LazyText, text_of
from .models import (
    BOUNCED,
    UNSUBSCRIBED,
    Campaign,
    CustomField,
    HistoryAction,
    HistoryItem,
    SuppressedAddress,
)
from .suppression import SuppressionIndex

# Consent values that are instructions to a write, never a stored value: "Unchanged" means
# "keep what is stored", so a read that says it tells nothing about the person's consent.
_NOT_A_CONSENT = frozenset({"", "unchanged"})


def stored_consent(value: str | None) -> str | None:
    """The consent to track Campaign Monitor holds (``Yes``/``No``/...), or None when it reported
    none -- including the write-only word ``Unchanged``, which is never shown as if it were a value."""
    text = (value or "").strip()
    return None if text.lower() in _NOT_A_CONSENT else text


def iso_time(value: datetime | None, cm_zone: tzinfo | None = None) -> str | None:
    """A machine-readable ISO 8601 time with its offset.

    Campaign Monitor's dates carry no zone: they are in the client's time zone (``cm_zone``),
    which turns them into ``2026-03-01T10:00:00+03:00``. When that zone is unknown the value
    is given without an offset rather than with a guessed one.
    """
    if value is None:
        return None
    if value.tzinfo is None and cm_zone is not None:
        value = value.replace(tzinfo=cm_zone)
    return value.isoformat(timespec="seconds")


def _plain_time(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else t("unknown date")


class ProfileCase(StrEnum):
    """Which of product.md's cases a profile is (the values are what the page compares)."""

    NO_LISTS = "no_lists"  # product.md case 1
    NO_CAMPAIGNS = "no_campaigns"  # case 2
    FULL = "full"  # case 3
    FAILED = "failed"  # the address itself could not be looked up


CASE_NO_LISTS = ProfileCase.NO_LISTS
CASE_NO_CAMPAIGNS = ProfileCase.NO_CAMPAIGNS
CASE_FULL = ProfileCase.FULL
CASE_FAILED = ProfileCase.FAILED

_REASON_EVENTS: dict[str, tuple[str, ...]] = {
    UNSUBSCRIBED: ("unsubscribe", "unsubscribed"),
    BOUNCED: ("bounce", "bounced", "hardbounce", "softbounce"),
}
# The history events a reason names, in the reader's words (keyed as Campaign Monitor spells
# them, without spaces, lower-case); an event not here is shown as the API names it.
_EVENT_WORDS = {
    "unsubscribe": N_("Unsubscribe"),
    "unsubscribed": N_("Unsubscribed"),
    "bounce": N_("Bounce"),
    "bounced": N_("Bounced"),
    "hardbounce": N_("Hard bounce"),
    "softbounce": N_("Soft bounce"),
}


def event_word(event: str) -> str:
    """A history event (``Unsubscribe``, ``Bounce``…) in the reader's language; in English, and for
    an event not known here, as the API spells it."""
    known = _EVENT_WORDS.get(event.lower().replace(" ", ""))
    if known is None:
        return event
    word = t(known)
    return event if word == known else word


@dataclass(frozen=True)
class StateReason:
    """Why a badge says what it says, as far as the API tells: an event, its email and date."""

    event: str
    date: datetime | None
    campaign_id: str
    campaign_name: str
    via_list_name: str | None = None  # the event was recorded in another list's history

    def describe(self, show_time: Callable[[datetime | None], str] | None = None) -> str:
        """``Unsubscribe on 2026-03-01 10:00 MSK from “Spring”`` in the current language;
        ``show_time`` formats the date (with its zone named, :class:`cmlib.presenters.TimeDisplay`);
        without it, as the API gave it."""
        when = (show_time(self.date) if show_time is not None and self.date else "") or _plain_time(self.date)
        event = event_word(self.event)
        if self.via_list_name:
            return t("{event} on {when} from “{campaign}” (recorded on list “{list}”)", event=event, when=when,
                     campaign=self.campaign_name, list=self.via_list_name)
        return t("{event} on {when} from “{campaign}”", event=event, when=when, campaign=self.campaign_name)


@dataclass(frozen=True)
class Problem:
    """One part of a lookup that failed; the rest still renders.

    ``text`` is made on a lookup's worker thread, which does not know the reader's language, so
    it is usually a :class:`~cmlib.lazy_text.LazyText`: :attr:`message` says it in the current
    language wherever it is read (the page's session, the CLI's ``--lang``)."""

    where: str  # "address", "list", "campaigns", "suppression"
    text: str | LazyText
    list_id: str | None = None
    list_name: str | None = None
    error: CMError | None = field(default=None, compare=False, repr=False)

    @property
    def message(self) -> str:
        return text_of(self.text)


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
    def of(cls, campaigns: Sequence[ReceivedCampaign]) -> Activity:
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
    # The client's suppression-list entry for the address, when the lookup checked it and found one.
    suppression: SuppressedAddress | None = None

    @property
    def case(self) -> ProfileCase:
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

    def to_json(self, cm_zone: tzinfo | None = None) -> dict[str, Any]:
        """The stable document of ``python -m cmlib lookup --json``.

        Times are ISO 8601 with their offset: ``fetched_at`` in UTC, Campaign Monitor's dates in
        the client's zone ``cm_zone`` (without an offset when it is unknown, see :func:`iso_time`).
        """
        supp = self.suppression
        return {
            "email": self.email,
            "fetched_at": self.fetched_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "suppressed": ({"reason": supp.reason or None, "since": iso_time(supp.date, cm_zone)}
                           if supp is not None else None),
            "lists": [
                {
                    "list_id": s.list_id,
                    "list_name": s.list_name,
                    "state": s.state,
                    "state_changed": iso_time(s.state_changed, cm_zone),
                    "joined": iso_time(s.joined or s.date_added, cm_zone),
                    "consent_to_track": stored_consent(s.consent_to_track),
                    "unsubscribes_from_all": s.unsubscribes_from_all,
                    "reason": s.reason.describe(lambda d: iso_time(d, cm_zone) or "") if s.reason else None,
                }
                for s in self.lists
            ],
            "campaigns": [
                {
                    "id": c.campaign_id,
                    "name": c.name,
                    "subject": c.subject,
                    "sent": iso_time(c.sent, cm_zone),
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
    histories: Mapping[str, Sequence[HistoryItem]], index: Mapping[str, Campaign]
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
    state: str, list_id: str, histories: Mapping[str, Sequence[HistoryItem]], list_names: Mapping[str, str],
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
                if a.event.lower().replace(" ", "") in events and (
                        best is None or (a.date or datetime.min) > (best[1].date or datetime.min)):
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


def with_suppression(profile: Profile, index: SuppressionIndex | BaseException | None) -> Profile:
    """The profile with its suppression entry from ``index``, or with a problem saying why it is
    unknown (``index`` is then the error that kept the list from being read)."""
    if profile.failed or index is None:
        return profile
    if isinstance(index, SuppressionIndex):
        entry = index.get(profile.email)
        if entry is not None:
            return replace(profile, suppression=entry)
        if index.complete:
            return profile
        why = later.nt("it has more than {n} entry and only those were read",
                       "it has more than {n} entries and only those were read", len(index))
    else:
        why = later.error_text(index)
    problem = Problem("suppression", later.t("Could not check whether {email} is on the client's suppression "
                                             "list: {why}", email=profile.email, why=why),
                      error=index if isinstance(index, CMError) else None)
    return replace(profile, problems=(*profile.problems, problem))
