"""Changing an address's subscriptions without surprises: snapshot, plan, conflict check, apply.

The editor never sends "the form as it is now". It compares the ticks with a snapshot of the
states read when the dialog opened and turns the difference into a :class:`Plan` that says in
words what will happen, including Campaign Monitor's own surprises:

* unsubscribing from a list whose ``UnsubscribeSetting`` is ``AllClientLists`` removes the
  address from every list of the client;
* re-adding an address that is Unsubscribed, Bounced or Deleted needs ``Resubscribe: true``
  and, legally, the person's permission, so the plan asks for a reason (a ticket number);
* an address on the client's suppression list is refused (code 204) unless ``Resubscribe`` is
  sent. We treat that like a resubscribe: allowed only with a reason and an explicit
  confirmation, and then sent with ``Resubscribe`` on every list being added.

:func:`apply_plan` refuses a reason (or actor) that contains a configured secret before
anything is sent, then, holding the per-address write lock (:mod:`cmlib.write_locks`), re-reads
the states right before writing. It writes nothing if anything changed since the snapshot
against the plan (a stale form must never resubscribe someone who just left); a change that
already went the plan's way -- another session's identical change -- makes that step "already
so", not sent again. It sends each write once, reads the lists back and reports per list: done,
already so, queued (adds go through a queue, so an unchanged read-back is not a failure), failed
with the API's reason. A write whose answer was lost (5xx, timeout, dropped connection,
malformed body) is judged by the read-back alone: done, not done, or unknown with what to
check. When Campaign Monitor cannot be reached, every step is "not sent". Every attempted
change, including a refused or unsent one, becomes an audit row with the same verdict.
"""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from .audit import (
    RESULT_ALREADY,
    RESULT_CONFLICT,
    RESULT_DONE,
    RESULT_FAILED,
    RESULT_NOT_SENT,
    RESULT_QUEUED,
    RESULT_SENT,
    RESULT_UNKNOWN,
    AuditEntry,
    AuditLog,
    Outcome,
    SecretInTextError,
)
from .client import CONSENT_VALUES, CampaignMonitor
from .concurrency import map_all
from .errors import (
    APIError,
    ApiUnavailableError,
    AuthenticationError,
    CMError,
    ConfigurationError,
    NotInListError,
    RateLimitedError,
    ServerError,
    SubscriberStateError,
    TransportError,
)
from .errors import (
    TimeoutError as CMTimeoutError,
)
from .models import (
    BOUNCED,
    DELETED,
    SUBSCRIBED_STATES,
    UNCONFIRMED,
    UNSUBSCRIBED,
    ListMembership,
    SuppressedAddress,
)
from .write_locks import (
    DEFAULT_WAIT_SECONDS,
    WriteKey,
    WriteLocks,
    WriteLockTimeout,
    write_locks,
)

SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"

# Warning kinds.
W_CASCADE = "cascade"
W_MAYBE_CASCADE = "maybe_cascade"
W_RESUBSCRIBE = "resubscribe"
W_SUPPRESSED = "suppressed"

CONSENT_UNCHANGED = "Unchanged"

_STATE_WORDS = {
    UNSUBSCRIBED: "unsubscribed",
    BOUNCED: "bounced (mail to it could not be delivered)",
    DELETED: "deleted from the list",
}


class PlanNotReady(ValueError):
    """Apply was asked for a plan whose warnings are not confirmed or whose reason is missing."""


# --------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ListInfo:
    """A list of the client and the two settings that change what a write does."""

    list_id: str
    name: str
    confirmed_opt_in: bool | None = None  # None: the list's settings could not be read
    unsubscribes_from_all: bool | None = None
    problem: str = ""


def load_lists(client: CampaignMonitor, client_id: str, *, max_workers: int = 8) -> tuple[ListInfo, ...]:
    """Every list of the client with its opt-in and unsubscribe settings, details fetched concurrently.

    A list whose details fail still appears (settings unknown, ``problem`` says why): the plan
    then warns that an unsubscribe there might reach every list.
    """
    refs = client.lists(client_id)
    out: list[ListInfo] = []
    for o in map_all(lambda r: client.list_details(r.list_id), refs, max_workers=max_workers):
        ref = o.item
        if o.error is not None:
            if isinstance(o.error, AuthenticationError):
                raise o.error
            reason = o.error.reason if isinstance(o.error, CMError) else f"{type(o.error).__name__}: {o.error}"
            out.append(ListInfo(ref.list_id, ref.name, problem=f"list settings could not be read: {reason}"))
        else:
            d = o.result
            out.append(ListInfo(ref.list_id, ref.name or d.title, confirmed_opt_in=d.confirmed_opt_in,
                                unsubscribes_from_all=d.unsubscribes_from_all))
    return tuple(out)


@dataclass(frozen=True)
class Snapshot:
    """The states of one address as read at one moment; the baseline every change is measured from."""

    email: str
    client_id: str
    states: tuple[tuple[str, str], ...]  # (list_id, state) for every list the address is on
    names: tuple[tuple[str, str], ...]  # (list_id, list name) as listsforemail named them
    taken_at: datetime
    suppressed: SuppressedAddress | None = None
    suppression_problem: str = ""  # the suppression list could not be read

    @classmethod
    def of(cls, email: str, client_id: str, memberships: Iterable[ListMembership], *,
           suppressed: SuppressedAddress | None = None, suppression_problem: str = "",
           taken_at: datetime | None = None) -> Snapshot:
        ms = list(memberships)
        return cls(
            email=email,
            client_id=client_id,
            states=tuple((m.list_id, m.state) for m in ms),
            names=tuple((m.list_id, m.list_name) for m in ms),
            taken_at=taken_at or datetime.now(timezone.utc),
            suppressed=suppressed,
            suppression_problem=suppression_problem,
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


def take_snapshot(client: CampaignMonitor, client_id: str, email: str, *,
                  check_suppression: bool = True) -> Snapshot:
    """Read the current states fresh (never from cache), and the suppression entry, in parallel."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="cm-snap") as pool:
        f_lists = pool.submit(client.lists_for_email, client_id, email, fresh=True)
        f_supp = pool.submit(client.is_suppressed, client_id, email, fresh=True) if check_suppression else None
        memberships = f_lists.result()  # raises: without states there is nothing to edit
        suppressed, problem = None, ""
        if f_supp is not None:
            try:
                suppressed = f_supp.result()
            except CMError as err:
                if isinstance(err, AuthenticationError):
                    raise
                problem = err.reason
    return Snapshot.of(email, client_id, memberships, suppressed=suppressed, suppression_problem=problem)


@dataclass(frozen=True)
class StateChange:
    list_id: str
    list_name: str
    before: str
    after: str

    def describe(self) -> str:
        return f"{self.list_name}: {self.before or 'not on the list'} → {self.after or 'not on the list'}"


def diff_states(before: Snapshot, after: Snapshot) -> list[StateChange]:
    """Lists whose state differs between two snapshots of the same address."""
    b, a = before.state_map, after.state_map
    out = []
    for lid in list(dict.fromkeys(list(b) + list(a))):
        if b.get(lid, "") != a.get(lid, ""):
            name = dict(after.names).get(lid) or before.name_of(lid)
            out.append(StateChange(lid, name, b.get(lid, ""), a.get(lid, "")))
    return out


# --------------------------------------------------------------------------- the plan
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
    action: str  # SUBSCRIBE / UNSUBSCRIBE
    state_before: str  # "" when not on the list
    resubscribe: bool = False
    confirmed_opt_in: bool | None = None
    unsubscribes_from_all: bool | None = None
    cascade: tuple[tuple[str, str], ...] = ()  # (list_id, name) the address also leaves

    @property
    def audit_action(self) -> str:
        if self.action == SUBSCRIBE:
            return "resubscribe" if self.resubscribe else "subscribe"
        return "unsubscribe (all client lists)" if self.unsubscribes_from_all else "unsubscribe"

    def describe(self) -> str:
        if self.action == SUBSCRIBE:
            if self.resubscribe and self.state_before:
                return f"resubscribe to {self.list_name} (now {self.state_before})"
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
    kind: str
    message: str
    needs_confirmation: bool = True
    needs_reason: bool = False
    list_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    email: str
    steps: tuple[Step, ...]
    warnings: tuple[PlanWarning, ...] = ()
    notes: tuple[str, ...] = ()  # informational, nothing to confirm
    token: str = field(default_factory=lambda: uuid.uuid4().hex, compare=False)

    @property
    def is_empty(self) -> bool:
        return not self.steps

    @property
    def needs_reason(self) -> bool:
        return any(w.needs_reason for w in self.warnings)

    @property
    def needs_consent(self) -> bool:
        """New subscriptions ask whether the person consented to tracking."""
        return any(s.action == SUBSCRIBE for s in self.steps)

    @property
    def confirmation_keys(self) -> frozenset[str]:
        return frozenset(w.key for w in self.warnings if w.needs_confirmation)

    @property
    def subscribes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == SUBSCRIBE)

    @property
    def unsubscribes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == UNSUBSCRIBE)

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
            steps.append(Step(lid, name(lid), SUBSCRIBE, state, resubscribe=resub,
                              confirmed_opt_in=li.confirmed_opt_in if li else None))
        else:
            all_lists = li.unsubscribes_from_all if li else None
            cascade: tuple[tuple[str, str], ...] = ()
            if all_lists:
                cascade = tuple((o, name(o)) for o in subscribed_now if o != lid)
            steps.append(Step(lid, name(lid), UNSUBSCRIBE, state,
                              confirmed_opt_in=li.confirmed_opt_in if li else None,
                              unsubscribes_from_all=all_lists, cascade=cascade))

    # Warnings, in the order the steps read.
    for s in steps:
        if s.action == UNSUBSCRIBE and s.unsubscribes_from_all:
            kept = [(o, n) for o, n in s.cascade if wanted.get(o)]
            others = [n for _, n in s.cascade]
            if kept:
                warnings.append(PlanWarning(
                    key=f"cascade:{s.list_id}", kind=W_CASCADE, list_ids=tuple(o for o, _ in kept),
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
        elif s.action == UNSUBSCRIBE and s.unsubscribes_from_all is None:
            others = [name(o) for o in subscribed_now if o != s.list_id]
            if others:
                warnings.append(PlanWarning(
                    key=f"maybe_cascade:{s.list_id}", kind=W_MAYBE_CASCADE, list_ids=(s.list_id,),
                    message=(f"The settings of {s.list_name} could not be read, so it is unknown whether "
                             f"unsubscribing there also removes {email} from every other list "
                             f"({join_names(others)})."),
                ))
        elif s.action == SUBSCRIBE and s.resubscribe and s.state_before:
            word = _STATE_WORDS.get(s.state_before, f"in state {s.state_before}")
            extra = " Mail to it may bounce again." if s.state_before == BOUNCED else ""
            warnings.append(PlanWarning(
                key=f"resubscribe:{s.list_id}", kind=W_RESUBSCRIBE, needs_reason=True, list_ids=(s.list_id,),
                message=(f"{email} is {word} on {s.list_name}. Adding it again sends Resubscribe, which needs "
                         f"the person's permission: give the reason (e.g. the ticket number).{extra}"),
            ))
        if s.action == SUBSCRIBE and s.confirmed_opt_in:
            notes.append(f"{s.list_name} uses confirmed opt-in: the address stays Unconfirmed until the person "
                         f"clicks the confirmation email.")

    subs = [s for s in steps if s.action == SUBSCRIBE]
    if subs and suppressed is not None:
        warnings.append(PlanWarning(
            key="suppressed", kind=W_SUPPRESSED, needs_reason=True, list_ids=tuple(s.list_id for s in subs),
            message=(f"{email} is on the client's suppression list{_suppression_text(suppressed)}, so Campaign "
                     f"Monitor will not add it to any list unless Resubscribe is sent. Adding it to "
                     f"{join_names([s.list_name for s in subs])} sends Resubscribe and needs the person's "
                     f"permission: give the reason (e.g. the ticket number)."),
        ))
    if subs and snapshot.suppression_problem:
        notes.append(f"The suppression list could not be checked ({snapshot.suppression_problem}); if the "
                     f"address is suppressed Campaign Monitor will refuse the add and the report will say so.")
    cascading = [s for s in steps if s.action == UNSUBSCRIBE and s.unsubscribes_from_all]
    if subs and cascading:
        notes.append(
            f"Unsubscribing from {join_names([s.list_name for s in cascading])} removes the address from ALL "
            f"client lists, so the unsubscribes are sent first and {join_names([s.list_name for s in subs])} "
            f"after them; if Campaign Monitor then refuses an add (e.g. because the address went onto the "
            f"suppression list), the report says so."
        )
    # Unsubscribes first: an all-lists unsubscribe sent after an add would undo it.
    steps = [s for s in steps if s.action == UNSUBSCRIBE] + [s for s in steps if s.action == SUBSCRIBE]
    return Plan(email=email, steps=tuple(steps), warnings=tuple(warnings), notes=tuple(notes))


def unsubscribe_all_desired(snapshot: Snapshot, lists_info: Sequence[ListInfo]) -> dict[str, bool]:
    """The ticks of "Unsubscribe from all lists": nothing ticked."""
    return {lid: False for lid in [li.list_id for li in lists_info] + [lid for lid, _ in snapshot.states]}


# --------------------------------------------------------------------------- apply
@dataclass(frozen=True)
class StepResult:
    list_id: str
    list_name: str
    action: str  # audit wording: subscribe / resubscribe / unsubscribe / unsubscribe (via X)
    state_before: str
    state_after: str | None  # read-back state; None when the read-back failed (or nothing was read)
    status: Outcome  # done / already / queued / failed / sent / conflict / unknown / not sent
    detail: str = ""
    answer_lost: bool = False  # the write's answer never arrived intact: the read-back decided

    @property
    def audit_result(self) -> str:
        """The ``result`` column: the verdict first, then why (the same words the dialog shows)."""
        if self.status == RESULT_CONFLICT:
            return "conflict — not written"
        if self.detail and (self.status in (RESULT_FAILED, RESULT_SENT, RESULT_UNKNOWN, RESULT_NOT_SENT)
                            or self.answer_lost or self.status == RESULT_ALREADY):
            return f"{self.status}: {self.detail}"
        return str(self.status)

    def describe(self) -> str:
        before = self.state_before or "not on the list"
        after = "unknown" if self.state_after is None else (self.state_after or "not on the list")
        words = {
            RESULT_DONE: "done",
            RESULT_ALREADY: "already so",
            RESULT_QUEUED: "queued (Campaign Monitor has not shown the change yet)",
            RESULT_FAILED: "not done" if self.answer_lost else "failed",
            RESULT_SENT: "sent, not verified",
            RESULT_CONFLICT: "not written",
            RESULT_UNKNOWN: "UNKNOWN whether it happened",
            RESULT_NOT_SENT: "not sent",
        }[self.status]
        states = f"{before} → {after}"
        if self.status == RESULT_NOT_SENT and self.state_after is None:
            states = f"{before}, untouched"
        text = f"{self.list_name} — {self.action}: {words} ({states})"
        return f"{text}: {self.detail}" if self.detail else text


# What may have changed at Campaign Monitor (the lookup must be refetched to show it).
_MAYBE_WRITTEN = (RESULT_DONE, RESULT_QUEUED, RESULT_SENT, RESULT_UNKNOWN)


@dataclass(frozen=True)
class ApplyReport:
    email: str
    token: str
    results: tuple[StepResult, ...] = ()
    conflict: tuple[StateChange, ...] = ()  # non-empty: nothing was written
    new_snapshot: Snapshot | None = None  # the read-back (or the re-read on conflict)
    problem: str = ""  # nothing was written for another reason (API unreachable, re-read failed, busy)
    audit_problem: str = ""  # the writes happened but the audit rows could not be stored
    unreachable: bool = False  # Campaign Monitor did not answer at all: nothing was sent

    @property
    def written(self) -> bool:
        """Something may have changed at Campaign Monitor (done, queued, unverified or unknown)."""
        return not self.conflict and not self.problem and any(r.status in _MAYBE_WRITTEN for r in self.results)

    @property
    def failed(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == RESULT_FAILED)

    @property
    def unknown(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == RESULT_UNKNOWN)

    @property
    def not_sent(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == RESULT_NOT_SENT)

    @property
    def ok(self) -> bool:
        return (not self.conflict and not self.problem and not self.failed and not self.unknown
                and not self.not_sent)

    def summary(self) -> str:
        if self.conflict:
            return ("Nothing was written: the subscriptions of " + self.email + " changed since the dialog "
                    "opened (" + "; ".join(c.describe() for c in self.conflict) + "). The form now shows "
                    "the current states; decide again.")
        if self.problem:
            text = f"Nothing was written for {self.email}: {self.problem}."
            if self.not_sent:
                text += " Not sent: " + "; ".join(f"{r.action} on {r.list_name}" for r in self.not_sent) + "."
            return text
        counts: dict[str, int] = {}
        for r in self.results:
            counts[str(r.status)] = counts.get(str(r.status), 0) + 1
        parts = [f"{n} {k}" for k, n in counts.items()]
        return f"{self.email}: " + (", ".join(parts) if parts else "nothing to do")


def _cm_reason(err: BaseException) -> str:
    return err.reason if isinstance(err, CMError) else f"{type(err).__name__}: {err}"


def _refused(err: BaseException) -> bool:
    """The API answered and said no: the write certainly did not happen (a 4xx with a Code, 401, 429)."""
    return isinstance(err, (APIError, AuthenticationError, RateLimitedError, ConfigurationError))


def _never_sent(err: BaseException) -> bool:
    """The request certainly never reached Campaign Monitor: no connection could be made.

    The client's circuit breaker says so with :class:`ApiUnavailableError`, any other client may
    with ``sent = False`` on the error; otherwise the transport exception the client replaced
    tells: a connect timeout or a refused/unresolvable connection. A dropped connection or a
    read timeout is *not* this: the request may have arrived.
    """
    if isinstance(err, ApiUnavailableError):  # the circuit breaker refused it before the wire
        return True
    flag = getattr(err, "sent", None)
    if flag is not None:
        return flag is False
    if not isinstance(err, TransportError):
        return False
    cause = err.__cause__ or err.__context__
    if isinstance(cause, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError):
        inner = cause.args[0] if cause.args else None
        reason = getattr(inner, "reason", inner)
        return isinstance(reason, (NewConnectionError, NameResolutionError))
    return False


def _lost_words(err: BaseException) -> str:
    """Why the write's own answer cannot be believed, in words."""
    reason = _cm_reason(err)
    if isinstance(err, CMTimeoutError):
        return f"no answer came back in time ({reason})"
    if isinstance(err, TransportError):
        return f"the connection dropped before an answer came back ({reason})"
    if isinstance(err, ServerError) and getattr(err, "code", None) is not None:
        return f"Campaign Monitor answered {reason}, which does not say whether the change was applied"
    return f"the answer was lost ({reason})"


def _wanted_subscribed(plan: Plan) -> dict[str, bool]:
    """Per list, whether the plan leaves the address subscribed (cascades included)."""
    out: dict[str, bool] = {}
    for s in plan.steps:
        if s.action == UNSUBSCRIBE and s.unsubscribes_from_all:
            for lid, _ in s.cascade:
                out.setdefault(lid, False)
    for s in plan.steps:
        out[s.list_id] = s.action == SUBSCRIBE
    return out


def _in_line_with(change: StateChange, wanted: Mapping[str, bool]) -> bool:
    """A change since the snapshot that already went where the plan goes (another session's
    identical change, or the person doing it themselves): not a conflict, just "already so"."""
    return change.list_id in wanted and (change.after in SUBSCRIBED_STATES) == wanted[change.list_id]


def _satisfied(step: Step, state: str) -> bool:
    return (state in SUBSCRIBED_STATES) == (step.action == SUBSCRIBE)


def apply_plan(
    client: CampaignMonitor,
    client_id: str,
    email: str,
    snapshot: Snapshot,
    plan: Plan,
    *,
    reason: str,
    consent: str,
    actor: str,
    audit: AuditLog,
    confirmed: Iterable[str] = (),
    locks: WriteLocks | None = None,
    lock_timeout: float = DEFAULT_WAIT_SECONDS,
) -> ApplyReport:
    """Check for conflicts, write each step once, read back, audit every attempt.

    Raises :class:`PlanNotReady` when a warning is not in ``confirmed``, a required reason is
    empty or an operator-supplied text (the reason, the actor) contains a configured secret;
    nothing is written or audited then (the UI never gets there: its Apply button stays
    disabled).

    Everything from the re-read to the read-back runs under the process-wide write lock of
    ``(client_id, email)`` (``locks``, see :mod:`cmlib.write_locks`), so a second session
    applying the same change waits, re-reads what the first one produced and reports "already
    so" instead of sending it again.
    """
    missing = plan.missing(confirmed, reason)
    if missing:
        raise PlanNotReady("; ".join(missing))
    if consent not in CONSENT_VALUES:
        raise PlanNotReady(f"consent to track must be one of {', '.join(CONSENT_VALUES)}")
    if snapshot.email.lower() != email.lower() or plan.email.lower() != email.lower():
        raise PlanNotReady("the plan and snapshot are for another address")
    reason = reason.strip()
    # Checked before anything is sent: a row the audit log would refuse must not describe a
    # change that already happened.
    try:
        audit.check_text(reason=reason, operator_name=actor, email=email)
    except SecretInTextError as exc:
        raise PlanNotReady(f"{exc}; nothing was sent") from None

    run = _Run(client, client_id, email, snapshot, plan, reason=reason, consent=consent, actor=actor, audit=audit)

    # The audit log must be able to take the rows before anything is changed.
    try:
        audit.ensure_writable()
    except Exception as exc:  # noqa: BLE001 - any storage failure means "do not write"
        return ApplyReport(email, plan.token, problem=f"the audit log cannot be written ({type(exc).__name__}: "
                                                      f"{exc}), so no change was sent")
    try:
        with (locks if locks is not None else write_locks()).hold(WriteKey.of(client_id, email), timeout=lock_timeout):
            return run.locked()
    except WriteLockTimeout as exc:
        return run.nothing_sent(f"{exc}", problem=f"{exc}, so no change was sent; try again in a moment")


class _Run:
    """One apply: the steps from the re-read to the audit rows (called with the write lock held)."""

    def __init__(self, client: CampaignMonitor, client_id: str, email: str, snapshot: Snapshot, plan: Plan, *,
                 reason: str, consent: str, actor: str, audit: AuditLog) -> None:
        self.client, self.client_id, self.email = client, client_id, email
        self.snapshot, self.plan = snapshot, plan
        self.reason, self.consent, self.actor, self.audit = reason, consent, actor, audit

    def record(self, results: Iterable[StepResult]) -> str:
        """Store one row per result; returns the storage problem ("" when stored)."""
        rows = [AuditEntry(actor=self.actor, client_id=self.client_id, email=self.email, list_id=r.list_id,
                           list_name=r.list_name, state_before=r.state_before, action=r.action,
                           reason=self.reason, result=r.audit_result, plan_token=self.plan.token) for r in results]
        try:
            self.audit.record_many(rows)
        except Exception as exc:  # noqa: BLE001 - the outcome stands: report, do not hide it
            return f"{type(exc).__name__}: {exc}"
        return ""

    def nothing_sent(self, detail: str, *, problem: str, unreachable: bool = False) -> ApplyReport:
        results = tuple(StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, None, RESULT_NOT_SENT,
                                   detail) for s in self.plan.steps)
        return ApplyReport(self.email, self.plan.token, results=results, problem=problem,
                           unreachable=unreachable, audit_problem=self.record(results))

    def reread(self) -> Snapshot:
        return Snapshot.of(self.email, self.client_id, self.client.lists_for_email(self.client_id, self.email,
                                                                                   fresh=True),
                           suppressed=self.snapshot.suppressed, suppression_problem=self.snapshot.suppression_problem)

    def locked(self) -> ApplyReport:
        email, plan, snapshot = self.email, self.plan, self.snapshot
        # Conflict check: re-read fresh right before writing.
        try:
            current = self.reread()
        except CMError as err:
            if isinstance(err, TransportError):
                why = f"Campaign Monitor could not be reached ({err.reason})"
                return self.nothing_sent(f"API unreachable ({err.reason})", problem=why, unreachable=True)
            why = f"the current states could not be re-read ({err.reason})"
            return self.nothing_sent(why, problem=f"{why}, so no change was sent")
        changes = diff_states(snapshot, current)
        wanted = _wanted_subscribed(plan)
        if any(not _in_line_with(c, wanted) for c in changes):
            conflicts = tuple(StepResult(s.list_id, s.list_name, s.audit_action, s.state_before,
                                         current.state_of(s.list_id), RESULT_CONFLICT,
                                         "changed since the dialog opened") for s in plan.steps)
            return ApplyReport(email, plan.token, results=conflicts, conflict=tuple(changes), new_snapshot=current,
                               audit_problem=self.record(conflicts))

        # Steps another change (another session, the person) already carried out: not sent again.
        already = {s.list_id for s in plan.steps if _satisfied(s, current.state_of(s.list_id))}
        todo = [s for s in plan.steps if s.list_id not in already]

        # Writes: each step exactly once; a refusal does not stop the others, a silent API does.
        errors: dict[str, BaseException] = {}
        skipped: dict[str, str] = {}  # list_id -> why it was not sent
        stop = ""
        for s in todo:
            if stop:
                skipped[s.list_id] = stop
                continue
            try:
                if s.action == SUBSCRIBE:
                    self.client.add_subscriber(s.list_id, email, resubscribe=s.resubscribe,
                                               consent_to_track=self.consent)
                else:
                    self.client.unsubscribe(s.list_id, email)
            except CMError as err:
                errors[s.list_id] = err
                if isinstance(err, TransportError):  # no answer at all: do not pile up more writes
                    stop = (f"Campaign Monitor stopped answering during the change to {s.list_name} "
                            f"({err.reason}), so this one was not sent")

        # Read back once (listsforemail gives every list), fresh, bypassing every cache.
        after: Snapshot | None = current if not todo else None
        readback_problem = ""
        if todo:
            try:
                after = self.reread()
            except CMError as err:
                readback_problem = f"read-back failed: {err.reason}"

        results: list[StepResult] = []
        by_step: dict[str, StepResult] = {}
        for s in plan.steps:
            now = after.state_of(s.list_id) if after else None
            if s.list_id in already:
                was = current.state_of(s.list_id)
                r = StepResult(s.list_id, s.list_name, s.audit_action, was, was, RESULT_ALREADY,
                               "already so when re-checked just before writing (changed since the dialog "
                               "opened, e.g. by another session); nothing sent")
            elif s.list_id in skipped:
                r = StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, now, RESULT_NOT_SENT,
                               skipped[s.list_id])
            else:
                r = _judge(s, errors.get(s.list_id), now, readback_problem, email=email)
            by_step[s.list_id] = r
            results.append(r)
        # The lists an AllClientLists unsubscribe took along (and that were not steps themselves).
        stepped = {s.list_id for s in plan.steps}
        for s in plan.steps:
            main = by_step[s.list_id]
            if s.action != UNSUBSCRIBE or not s.unsubscribes_from_all or main.status not in _MAYBE_WRITTEN:
                continue
            for lid, lname in s.cascade:
                if lid in stepped:
                    continue
                stepped.add(lid)
                now = after.state_of(lid) if after else None
                before = current.state_of(lid)
                action = f"unsubscribe (via {s.list_name})"
                if before not in SUBSCRIBED_STATES:
                    results.append(StepResult(lid, lname, action, before, now if now is not None else before,
                                              RESULT_ALREADY))
                elif now is None:
                    status = RESULT_UNKNOWN if main.status == RESULT_UNKNOWN else RESULT_SENT
                    results.append(StepResult(lid, lname, action, before, None, status,
                                              main.detail if status == RESULT_UNKNOWN else readback_problem))
                elif now in SUBSCRIBED_STATES:
                    results.append(StepResult(lid, lname, action, before, now, RESULT_QUEUED))
                else:
                    results.append(StepResult(lid, lname, action, before, now, RESULT_DONE))

        if todo:
            self.client.invalidate_email(email)
        return ApplyReport(email, plan.token, results=tuple(results), new_snapshot=after,
                           audit_problem=self.record(results))


def _judge(s: Step, err: BaseException | None, now: str | None, readback_problem: str, *,
           email: str = "the address") -> StepResult:
    """The verdict for one sent step, from the write's answer and the read-back.

    An answer that says something (success, or a refusal with a Code) is believed. An answer
    that was lost (5xx, timeout, dropped connection, malformed body) is not: the read-back
    decides done / not done, and when it cannot (it failed too, or an add may still be in
    Campaign Monitor's queue) the verdict is UNKNOWN with what to check.
    """

    def res(status: Outcome, detail: str = "", *, lost: bool = False) -> StepResult:
        return StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, now, status, detail,
                          answer_lost=lost)

    if err is not None and _refused(err):
        if s.action == UNSUBSCRIBE and isinstance(err, NotInListError) and (now is None or now not in SUBSCRIBED_STATES):
            return res(RESULT_ALREADY, "Campaign Monitor says the address is not on the list")
        if s.action == SUBSCRIBE and isinstance(err, SubscriberStateError) and err.state == UNCONFIRMED:
            return res(RESULT_ALREADY, "already waiting for the person's confirmation")
        return res(RESULT_FAILED, _cm_reason(err))
    if err is not None and _never_sent(err):
        return res(RESULT_NOT_SENT, f"API unreachable ({_cm_reason(err)})")
    if err is not None:
        lost = _lost_words(err)
        before = s.state_before or "not on the list"
        if now is None:
            return res(RESULT_UNKNOWN, f"{lost} and the {readback_problem or 'read-back failed'}; check {s.list_name} "
                                       f"for {email} (Lookup → Refresh, or in Campaign Monitor): if it still shows "
                                       f"{before}, the change did not happen", lost=True)
        shown = now or "not on the list"
        if s.action == SUBSCRIBE:
            if now in SUBSCRIBED_STATES:
                return res(RESULT_DONE, f"confirmed by the read-back ({lost})", lost=True)
            return res(RESULT_UNKNOWN, f"{lost} and the read-back still shows {shown}, but adds go through "
                                       f"Campaign Monitor's queue: refresh {email} in a minute; if {s.list_name} "
                                       f"still shows {shown}, the add did not happen", lost=True)
        if now not in SUBSCRIBED_STATES:
            return res(RESULT_DONE, f"confirmed by the read-back ({lost})", lost=True)
        return res(RESULT_FAILED, f"{lost} and the read-back still shows {shown}: not unsubscribed", lost=True)
    if now is None:
        return res(RESULT_SENT, readback_problem or "the change could not be read back")
    if s.action == SUBSCRIBE:
        if now in SUBSCRIBED_STATES:
            return res(RESULT_DONE, "waiting for the person's confirmation" if now == UNCONFIRMED else "")
        return res(RESULT_QUEUED, "adds go through Campaign Monitor's queue; refresh in a minute")
    if now not in SUBSCRIBED_STATES:
        return res(RESULT_DONE)
    return res(RESULT_QUEUED, "Campaign Monitor still shows the old state; refresh in a minute")
