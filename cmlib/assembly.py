"""One address's profile put together from the calls a lookup made (:mod:`cmlib.lookup`).

Kept apart from the fetching so the lookup can assemble each address the moment its own calls
are in (a page shows it while the others are still loading), and so the rules for which failure
becomes which :class:`~cmlib.profiles.Problem` live in one place. A problem's sentence is a
:class:`~cmlib.lazy_text.LazyText`: it is made here, on a worker thread that knows no reader, and
said in the reader's language where it is shown.
"""
from __future__ import annotations

from datetime import datetime

from . import lazy_text as later
from .errors import CMError, NotInListError
from .lazy_text import LazyText
from .models import Campaign, HistoryItem, ListDetail, ListMembership, SubscriberDetail
from .profiles import Activity, ListStatus, Problem, Profile, find_reason, received_campaigns


def lists_failed(err: BaseException, email: str) -> LazyText:
    """The address itself could not be looked up (its lists)."""
    return later.t("Looking up the lists for {email} failed: {reason}", email=email, reason=later.error_text(err))


def history_failed(err: BaseException, email: str, list_name: str) -> LazyText:
    return later.t("Loading the history for {email} on list “{list}” failed: {reason}",
                   email=email, list=list_name, reason=later.error_text(err))


def details_failed(err: BaseException, email: str, list_name: str) -> LazyText:
    return later.t("Loading the subscriber details for {email} on list “{list}” failed: {reason}",
                   email=email, list=list_name, reason=later.error_text(err))


def settings_failed(err: BaseException, list_name: str) -> LazyText:
    return later.t("Loading the settings of list “{list}” failed: {reason}", list=list_name,
                   reason=later.error_text(err))


def as_cm(err: BaseException | None) -> CMError | None:
    return err if isinstance(err, CMError) else None


def assemble(email: str, memberships: list[ListMembership], got: dict, index: dict[str, Campaign],
             campaign_problem: Problem | None, now: datetime) -> Profile:
    """The profile of ``email`` from its memberships and the outcomes in ``got`` (keyed by
    ``(kind, email, list_id)``); a failed part becomes a Problem where it belongs, never an error."""
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
                "list", history_failed(h.error, email, m.list_name),
                m.list_id, m.list_name, as_cm(h.error)))
        s = got.get(("subscriber", email, m.list_id))
        if s is not None and s.error is None:
            details[m.list_id] = s.result
        elif s is not None and not isinstance(s.error, NotInListError):
            list_problems[m.list_id].append(Problem(
                "list", details_failed(s.error, email, m.list_name),
                m.list_id, m.list_name, as_cm(s.error)))
    statuses = []
    for m in memberships:
        d = details.get(m.list_id)
        ld_o = got.get(("list", "", m.list_id))
        ld: ListDetail | None = ld_o.result if ld_o is not None and ld_o.error is None else None
        if ld_o is not None and ld_o.error is not None:
            list_problems[m.list_id].append(Problem(
                "list", settings_failed(ld_o.error, m.list_name),
                m.list_id, m.list_name, as_cm(ld_o.error)))
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
