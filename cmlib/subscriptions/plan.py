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
from enum import StrEnum

from ..models import SuppressedAddress
from ..states import STATE_STYLES, SubscriberState, state_word
from .snapshot import ListInfo, Snapshot, state_text

CONSENT_UNCHANGED = "Unchanged"


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


def join_names(names: Sequence[str]) -> str:
    names = list(names)
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


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
        """The ``action`` column of the audit log."""
        if self.action == Action.SUBSCRIBE:
            return "resubscribe" if self.resubscribe else "subscribe"
        return "unsubscribe (all client lists)" if self.unsubscribes_from_all else "unsubscribe"

    def describe(self) -> str:
        if self.action == Action.SUBSCRIBE:
            if self.resubscribe and self.state_before:
                return f"resubscribe to {self.list_name} (now {state_text(self.state_before)})"
            if self.resubscribe:
                return f"subscribe to {self.list_name} (with Resubscribe)"
            return f"subscribe to {self.list_name}"
        text = f"unsubscribe from {self.list_name}"
        if self.unsubscribes_from_all:
            text += " — this list is set to unsubscribe from ALL client lists"
            if self.cascade:
                text += ", so the address will also leave " + join_names([n for _, n in self.cascade])
        return text


@dataclass(frozen=True)
class PlanWarning:
    """Something the user must read; ``needs_confirmation`` ones block Apply until ticked."""

    key: str  # stable per plan content, used for the confirmation widget's key
    kind: WarningKind
    message: str
    needs_confirmation: bool = True
    needs_reason: bool = False
    list_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    email: str
    snapshot: Snapshot = field(repr=False, compare=False)  # the baseline the steps were computed from
    steps: tuple[Step, ...] = ()
    warnings: tuple[PlanWarning, ...] = ()
    notes: tuple[str, ...] = ()  # informational, nothing to confirm
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

    def describe(self) -> str:
        """The plan in words: what is added, then what is left (steps run unsubscribes first)."""
        if not self.steps:
            return "no changes"
        return "; ".join(s.describe() for s in self.subscribes + self.unsubscribes)

    def missing(self, confirmed: Iterable[str] = (), reason: str = "") -> list[str]:
        """What still stands between this plan and Apply, in words (empty: ready)."""
        out: list[str] = []
        if not self.steps:
            out.append("there is nothing to change")
        done = set(confirmed)
        n = len(self.confirmation_keys - done)
        if n:
            out.append(f"{n} warning{'s' if n != 1 else ''} not confirmed")
        if self.needs_reason and not reason.strip():
            out.append("a reason is required (e.g. the ticket number)")
        return out

    def ready(self, confirmed: Iterable[str] = (), reason: str = "") -> bool:
        return not self.missing(confirmed, reason)


def _suppression_text(s: SuppressedAddress) -> str:
    bits = []
    if s.reason:
        bits.append(f"reason: {s.reason}")
    if s.date:
        bits.append(f"since {s.date.strftime('%Y-%m-%d')}")
    return f" ({', '.join(bits)})" if bits else ""


def _resubscribe_warning(s: Step, email: str) -> PlanWarning:
    known = s.state_before in STATE_STYLES
    word = state_word(s.state_before) if known else f"in state {s.state_before}"
    extra = (" Mail to it could not be delivered before and may bounce again."
             if s.state_before == SubscriberState.BOUNCED else "")
    return PlanWarning(
        key=f"resubscribe:{s.list_id}", kind=WarningKind.RESUBSCRIBE, needs_reason=True, list_ids=(s.list_id,),
        message=(f"{email} is {word} on {s.list_name}. Adding it again sends Resubscribe, which needs "
                 f"the person's permission: give the reason (e.g. the ticket number).{extra}"),
    )


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
                    message=(f"{s.list_name} is set to unsubscribe from ALL client lists: unsubscribing "
                             f"{email} there also removes it from {join_names(others)} — including "
                             f"{join_names([n for _, n in kept])}, which you left ticked."),
                ))
            elif others:
                notes.append(f"{s.list_name} is set to unsubscribe from ALL client lists, so one unsubscribe "
                             f"there already removes the address from {join_names(others)}; the plan still "
                             f"unsubscribes each list explicitly.")
            else:
                notes.append(f"{s.list_name} is set to unsubscribe from ALL client lists; the address is on "
                             f"no other list right now.")
        elif s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all is None:
            others = [name(o) for o in subscribed_now if o != s.list_id]
            if others:
                warnings.append(PlanWarning(
                    key=f"maybe_cascade:{s.list_id}", kind=WarningKind.MAYBE_CASCADE, list_ids=(s.list_id,),
                    message=(f"The settings of {s.list_name} could not be read, so it is unknown whether "
                             f"unsubscribing there also removes {email} from every other list "
                             f"({join_names(others)})."),
                ))
        elif s.action == Action.SUBSCRIBE and s.resubscribe and s.state_before:
            warnings.append(_resubscribe_warning(s, email))
        if s.action == Action.SUBSCRIBE and s.confirmed_opt_in:
            notes.append(f"{s.list_name} uses confirmed opt-in: the address stays "
                         f"{state_word(SubscriberState.UNCONFIRMED)} until the person clicks the confirmation "
                         f"email.")

    subs = [s for s in steps if s.action == Action.SUBSCRIBE]
    if subs and suppressed is not None:
        warnings.append(PlanWarning(
            key="suppressed", kind=WarningKind.SUPPRESSED, needs_reason=True, list_ids=tuple(s.list_id for s in subs),
            message=(f"{email} is on the client's suppression list{_suppression_text(suppressed)}, so Campaign "
                     f"Monitor will not add it to any list unless Resubscribe is sent. Adding it to "
                     f"{join_names([s.list_name for s in subs])} sends Resubscribe and needs the person's "
                     f"permission: give the reason (e.g. the ticket number)."),
        ))
    if subs and snapshot.suppression_problem:
        notes.append(f"The suppression list could not be checked ({snapshot.suppression_problem}); if the "
                     f"address is suppressed Campaign Monitor will refuse the add and the report will say so.")
    cascading = [s for s in steps if s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all]
    if subs and cascading:
        notes.append(
            f"Unsubscribing from {join_names([s.list_name for s in cascading])} removes the address from ALL "
            f"client lists, so the unsubscribes are sent first and {join_names([s.list_name for s in subs])} "
            f"after them; if Campaign Monitor then refuses an add (e.g. because the address went onto the "
            f"suppression list), the report says so."
        )
    # Unsubscribes first: an all-lists unsubscribe sent after an add would undo it.
    steps = [s for s in steps if s.action == Action.UNSUBSCRIBE] + [s for s in steps if s.action == Action.SUBSCRIBE]
    return Plan(email=email, snapshot=snapshot, steps=tuple(steps), warnings=tuple(warnings), notes=tuple(notes))


def unsubscribe_all_desired(snapshot: Snapshot, lists_info: Sequence[ListInfo]) -> dict[str, bool]:
    """The ticks of "Unsubscribe from all lists": nothing ticked."""
    return dict.fromkeys([li.list_id for li in lists_info] + [lid for lid, _ in snapshot.states], False)
