"""The plan: the writes that turn a snapshot into the ticks, and what the user must know first.

The editor never sends "the form as it is now". :func:`plan_changes` compares the ticks with the
:class:`~cmlib.subscriptions.snapshot.Snapshot` read when the dialog opened and says in words
what will happen, including Campaign Monitor's own surprises:

* unsubscribing from a list whose ``UnsubscribeSetting`` is ``AllClientLists`` removes the
  address from every list of the client;
* re-adding an address that is Unsubscribed, Bounced or Deleted needs ``Resubscribe: true``
  and, legally, the person's permission, so the plan asks for a reason (a ticket number);
* an address on the client's suppression list is refused (code 204) unless ``Resubscribe`` is
  sent. We treat that like a resubscribe: allowed only with a reason and an explicit
  confirmation, and then sent with ``Resubscribe`` on every list being added.

A plan carries the snapshot it was made from: applying it checks for conflicts against exactly
that baseline (:mod:`cmlib.subscriptions.apply`).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import cast

from .. import lazy_text as lazy
from ..i18n import N_, Language, format_date, nt, t, use_language
from ..lazy_text import text_of
from ..models import SuppressedAddress
from ..states import STATE_STYLES, SubscriberState
from ..suppression import reason_word
from .snapshot import ListInfo, Snapshot
from .wording import join_names, names_lazy, state_lazy

CONSENT_UNCHANGED = "Unchanged"

__all__ = ["CONSENT_UNCHANGED", "Action", "Plan", "PlanNotReady", "PlanWarning", "Step", "WarningKind",
           "action_text", "join_names", "plan_changes", "unsubscribe_all_desired"]


class Action(StrEnum):
    """What one step asks Campaign Monitor to do on one list."""

    SUBSCRIBE = "subscribe"
    UNSUBSCRIBE = "unsubscribe"


class WarningKind(StrEnum):
    """Why the user must read (and usually confirm) something before Apply."""

    CASCADE = "cascade"  # an all-client-lists unsubscribe also removes lists left ticked
    MAYBE_CASCADE = "maybe_cascade"  # the list's unsubscribe setting could not be read
    RESUBSCRIBE = "resubscribe"  # re-adding someone who left, bounced or was deleted
    SUPPRESSED = "suppressed"  # adding an address on the client's suppression list


class PlanNotReady(ValueError):
    """Apply was asked for a plan whose warnings are not confirmed or whose reason is missing."""


# The ``action`` column of the audit log (stored in English) and how a person reads it.
ACTION_WORDS = {
    "subscribe": N_("subscribe"),
    "resubscribe": N_("resubscribe"),
    "unsubscribe": N_("unsubscribe"),
    "unsubscribe (all client lists)": N_("unsubscribe (all client lists)"),
}
ACTION_VIA = N_("unsubscribe (via {list})")  # a list an all-client-lists unsubscribe took along
_VIA_HEAD, _VIA_TAIL = ACTION_VIA.split("{list}")


def action_text(action: str, *, lang: Language | str | None = None) -> str:
    """A stored action (``unsubscribe (via Offers)``) in the reader's language; one we do not
    know is shown as stored."""
    word = ACTION_WORDS.get(action)
    if word is not None:
        return t(word, lang=lang)
    if action.startswith(_VIA_HEAD) and action.endswith(_VIA_TAIL) and len(action) > len(ACTION_VIA) - 6:
        return t(ACTION_VIA, lang=lang, list=action[len(_VIA_HEAD):len(action) - len(_VIA_TAIL)])
    return action


@dataclass(frozen=True)
class Step:
    list_id: str
    list_name: str
    action: Action
    state_before: str  # "" when not on the list
    resubscribe: bool = False
    confirmed_opt_in: bool | None = None
    unsubscribes_from_all: bool | None = None
    cascade: tuple[tuple[str, str], ...] = ()  # (list_id, name) the address also leaves

    @property
    def audit_action(self) -> str:
        """The ``action`` column of the audit log (English: it is data)."""
        if self.action == Action.SUBSCRIBE:
            return "resubscribe" if self.resubscribe else "subscribe"
        return "unsubscribe (all client lists)" if self.unsubscribes_from_all else "unsubscribe"

    def text(self) -> str:
        """The step in words (a lazy sentence: English as the ``str``, any language with ``text_of``)."""
        name = self.list_name
        if self.action == Action.SUBSCRIBE:
            if self.resubscribe and self.state_before:
                return lazy.t(N_("resubscribe to {list} (now {state})"), list=name,
                              state=state_lazy(self.state_before))
            if self.resubscribe:
                return lazy.t(N_("subscribe to {list} (with Resubscribe)"), list=name)
            return lazy.t(N_("subscribe to {list}"), list=name)
        if self.unsubscribes_from_all and self.cascade:
            return lazy.t(N_("unsubscribe from {list} — this list is set to unsubscribe from ALL client lists, "
                             "so the address will also leave {names}"),
                          list=name, names=names_lazy(n for _, n in self.cascade))
        if self.unsubscribes_from_all:
            return lazy.t(N_("unsubscribe from {list} — this list is set to unsubscribe from ALL client lists"),
                          list=name)
        return lazy.t(N_("unsubscribe from {list}"), list=name)

    def describe(self, lang: Language | str | None = None) -> str:
        return text_of(self.text(), lang)


@dataclass(frozen=True)
class PlanWarning:
    """Something the user must read; ``needs_confirmation`` ones block Apply until ticked."""

    key: str  # stable per plan content, used for the confirmation widget's key
    kind: WarningKind
    message: str  # a lazy sentence: English as the str, the reader's language with text_of
    needs_confirmation: bool = True
    needs_reason: bool = False
    list_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    email: str
    snapshot: Snapshot = field(repr=False, compare=False)  # the baseline the steps were computed from
    steps: tuple[Step, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    notes: tuple[str, ...] = ()  # informational, nothing to confirm (lazy sentences)
    token: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)

    @property
    def client_id(self) -> str:
        return self.snapshot.client_id

    @property
    def is_empty(self) -> bool:
        return not self.steps

    @property
    def needs_reason(self) -> bool:
        return any(w.needs_reason for w in self.warnings)

    @property
    def needs_consent(self) -> bool:
        """New subscriptions ask whether the person consented to tracking."""
        return any(s.action == Action.SUBSCRIBE for s in self.steps)

    @property
    def confirmation_keys(self) -> frozenset[str]:
        return frozenset(w.key for w in self.warnings if w.needs_confirmation)

    @property
    def subscribes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == Action.SUBSCRIBE)

    @property
    def unsubscribes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == Action.UNSUBSCRIBE)

    def describe(self, lang: Language | str | None = None) -> str:
        """The plan in words: what is added, then what is left (steps run unsubscribes first)."""
        if not self.steps:
            return t("no changes", lang=lang)
        return text_of(lazy.join("; ", (s.text() for s in self.subscribes + self.unsubscribes)), lang)

    def missing(self, confirmed: Iterable[str] = (), reason: str = "", *,
                lang: Language | str | None = None) -> list[str]:
        """What still stands between this plan and Apply, in words (empty: ready)."""
        out: list[str] = []
        if not self.steps:
            out.append(t("there is nothing to change", lang=lang))
        done = set(confirmed)
        n = len(self.confirmation_keys - done)
        if n:
            out.append(nt("{n} warning not confirmed", "{n} warnings not confirmed", n, lang=lang))
        if self.needs_reason and not reason.strip():
            out.append(t("a reason is required (e.g. the ticket number)", lang=lang))
        return out

    def ready(self, confirmed: Iterable[str] = (), reason: str = "") -> bool:
        return not self.missing(confirmed, reason)


_PERMISSION = N_("Adding it again sends Resubscribe, which needs the person's permission: give the reason "
                 "(e.g. the ticket number).")
_MAY_BOUNCE = N_("Mail to it could not be delivered before and may bounce again.")


def _suppression_details(s: SuppressedAddress) -> str:
    """``reason: …, since …`` of a suppression entry (the reason is Campaign Monitor's word, the
    day in the reader's format); "" when the entry says neither."""
    bits: list[str] = []
    if s.reason:
        bits.append(lazy.t(N_("reason: {reason}"), reason=_SuppressionReason(s.reason)))
    if s.date:
        bits.append(_since(s.date.date() if isinstance(s.date, datetime) else s.date))
    return lazy.join(", ", bits) if bits else ""


class _Since(lazy.LazyText):
    """``since 2 Jan 2024`` / ``с 02.01.2024``: the day is formatted in the language it is read in."""

    day: date

    def __new__(cls, day: date) -> _Since:
        obj = cast("_Since", super().__new__(cls, N_("since {date}"),
                                             params={"date": format_date(day, lang=Language.EN)}))
        obj.day = day
        return obj

    def text(self, lang: Language | str | None = None) -> str:
        return t(self.msgid, lang=lang, date=format_date(self.day, lang=lang))


def _since(day: date) -> str:
    return _Since(day)


class _SuppressionReason(lazy.LazyText):
    """Campaign Monitor's suppression reason (``Unsubscribed``, ``Spam Complaint``): in the reader's
    words where :mod:`cmlib.suppression` knows it, else as the API spells it."""

    raw: str

    def __new__(cls, raw: str) -> _SuppressionReason:
        obj = cast("_SuppressionReason", super().__new__(cls, "{reason}", params={"reason": raw}))
        obj.raw = raw
        return obj

    def text(self, lang: Language | str | None = None) -> str:
        with use_language(lang):
            return reason_word(self.raw)


def _resubscribe_warning(s: Step, email: str) -> PlanWarning:
    if s.state_before in STATE_STYLES:
        head = lazy.t(N_("{email} is {state} on {list}."), email=email, state=state_lazy(s.state_before),
                      list=s.list_name)
    else:
        head = lazy.t(N_("{email} is in state {api_state} on {list}."), email=email, api_state=s.state_before,
                      list=s.list_name)
    parts = [head, lazy.t(_PERMISSION)]
    if s.state_before == SubscriberState.BOUNCED:
        parts.append(lazy.t(_MAY_BOUNCE))
    return PlanWarning(key=f"resubscribe:{s.list_id}", kind=WarningKind.RESUBSCRIBE, needs_reason=True,
                       list_ids=(s.list_id,), message=lazy.join(" ", parts))


def plan_changes(snapshot: Snapshot, desired: Mapping[str, bool], lists_info: Sequence[ListInfo]) -> Plan:
    """The writes that turn the snapshot into the ticks, and everything the user must know first.

    ``desired`` maps list_id → ticked; a list missing from it keeps its snapshot state. Only
    differences become steps, so an untouched form plans nothing.
    """
    info = {li.list_id: li for li in lists_info}
    order = [li.list_id for li in lists_info] + [lid for lid, _ in snapshot.states if lid not in info]
    order = list(dict.fromkeys(order))

    def name(lid: str) -> str:
        li = info.get(lid)
        return (li.name if li and li.name else None) or snapshot.name_of(lid)

    wanted = {lid: bool(desired.get(lid, snapshot.is_subscribed(lid))) for lid in order}
    subscribed_now = [lid for lid in order if snapshot.is_subscribed(lid)]
    suppressed = snapshot.suppressed

    steps: list[Step] = []
    warnings: list[PlanWarning] = []
    notes: list[str] = []
    email = snapshot.email

    for lid in order:
        was, want = snapshot.is_subscribed(lid), wanted[lid]
        if was == want:
            continue
        li = info.get(lid)
        state = snapshot.state_of(lid)
        if want:
            # Any existing non-subscribed state (Unsubscribed, Bounced, Deleted, or one we do not
            # know) is refused by the API without Resubscribe; so is a suppressed address.
            resub = bool(state) or suppressed is not None
            steps.append(Step(lid, name(lid), Action.SUBSCRIBE, state, resubscribe=resub,
                              confirmed_opt_in=li.confirmed_opt_in if li else None))
        else:
            all_lists = li.unsubscribes_from_all if li else None
            cascade: tuple[tuple[str, str], ...] = ()
            if all_lists:
                cascade = tuple((o, name(o)) for o in subscribed_now if o != lid)
            steps.append(Step(lid, name(lid), Action.UNSUBSCRIBE, state,
                              confirmed_opt_in=li.confirmed_opt_in if li else None,
                              unsubscribes_from_all=all_lists, cascade=cascade))

    # Warnings, in the order the steps read.
    for s in steps:
        if s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all:
            kept = [(o, n) for o, n in s.cascade if wanted.get(o)]
            others = [n for _, n in s.cascade]
            if kept:
                warnings.append(PlanWarning(
                    key=f"cascade:{s.list_id}", kind=WarningKind.CASCADE, list_ids=tuple(o for o, _ in kept),
                    message=lazy.t(N_("{list} is set to unsubscribe from ALL client lists: unsubscribing {email} "
                                      "there also removes it from {names} — including {kept_names}, which you left "
                                      "ticked."),
                                   list=s.list_name, email=email, names=names_lazy(others),
                                   kept_names=names_lazy(n for _, n in kept)),
                ))
            elif others:
                notes.append(lazy.t(N_("{list} is set to unsubscribe from ALL client lists, so one unsubscribe there "
                                       "already removes the address from {names}; the plan still unsubscribes each "
                                       "list explicitly."), list=s.list_name, names=names_lazy(others)))
            else:
                notes.append(lazy.t(N_("{list} is set to unsubscribe from ALL client lists; the address is on no "
                                       "other list right now."), list=s.list_name))
        elif s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all is None:
            maybe = [name(o) for o in subscribed_now if o != s.list_id]
            if maybe:
                warnings.append(PlanWarning(
                    key=f"maybe_cascade:{s.list_id}", kind=WarningKind.MAYBE_CASCADE, list_ids=(s.list_id,),
                    message=lazy.t(N_("The settings of {list} could not be read, so it is unknown whether "
                                      "unsubscribing there also removes {email} from every other list ({names})."),
                                   list=s.list_name, email=email, names=names_lazy(maybe)),
                ))
        elif s.action == Action.SUBSCRIBE and s.resubscribe and s.state_before:
            warnings.append(_resubscribe_warning(s, email))
        if s.action == Action.SUBSCRIBE and s.confirmed_opt_in:
            notes.append(lazy.t(N_("{list} uses confirmed opt-in: the address stays {state} until the person clicks "
                                   "the confirmation email."),
                                list=s.list_name, state=state_lazy(SubscriberState.UNCONFIRMED)))

    subs = [s for s in steps if s.action == Action.SUBSCRIBE]
    if subs and suppressed is not None:
        details = _suppression_details(suppressed)
        adding = names_lazy(s.list_name for s in subs)
        text = (lazy.t(N_("{email} is on the client's suppression list ({details}), so Campaign Monitor will not "
                          "add it to any list unless Resubscribe is sent. Adding it to {names} sends Resubscribe "
                          "and needs the person's permission: give the reason (e.g. the ticket number)."),
                       email=email, details=details, names=adding) if details else
                lazy.t(N_("{email} is on the client's suppression list, so Campaign Monitor will not add it to any "
                          "list unless Resubscribe is sent. Adding it to {names} sends Resubscribe and needs the "
                          "person's permission: give the reason (e.g. the ticket number)."),
                       email=email, names=adding))
        warnings.append(PlanWarning(
            key="suppressed", kind=WarningKind.SUPPRESSED, needs_reason=True, list_ids=tuple(s.list_id for s in subs),
            message=text,
        ))
    if subs and snapshot.suppression_problem:
        notes.append(lazy.t(N_("The suppression list could not be checked ({problem}); if the address is suppressed "
                               "Campaign Monitor will refuse the add and the report will say so."),
                            problem=snapshot.suppression_problem))
    cascading = [s for s in steps if s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all]
    if subs and cascading:
        notes.append(lazy.t(
            N_("Unsubscribing from {names} removes the address from ALL client lists, so the unsubscribes are sent "
               "first and {add_names} after them; if Campaign Monitor then refuses an add (e.g. because the address "
               "went onto the suppression list), the report says so."),
            names=names_lazy(s.list_name for s in cascading), add_names=names_lazy(s.list_name for s in subs)))
    # Unsubscribes first: an all-lists unsubscribe sent after an add would undo it.
    steps = [s for s in steps if s.action == Action.UNSUBSCRIBE] + [s for s in steps if s.action == Action.SUBSCRIBE]
    return Plan(email=email, snapshot=snapshot, steps=tuple(steps), warnings=tuple(warnings), notes=tuple(notes))


def unsubscribe_all_desired(snapshot: Snapshot, lists_info: Sequence[ListInfo]) -> dict[str, bool]:
    """The ticks of "Unsubscribe from all lists": nothing ticked."""
    return dict.fromkeys([li.list_id for li in lists_info] + [lid for lid, _ in snapshot.states], False)
