"""Applying a plan: refuse what must not be sent, re-check, write each step once, read back, audit.

:func:`apply_plan` refuses a reason (or actor) that contains a configured secret before anything
is sent, then, holding the per-address write lock (:mod:`cmlib.write_locks`), re-reads the states
right before writing. It writes nothing if anything changed since the plan's snapshot against the
plan (a stale form must never resubscribe someone who just left); a change that already went the
plan's way -- another session's identical change -- makes that step "already so", not sent again.
It sends each write once, reads the lists back and reports per list
(:mod:`cmlib.subscriptions.verdict`). When Campaign Monitor cannot be reached, every step is "not
sent". Every attempted change, including a refused or unsent one, becomes an audit row with the
same verdict.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import lazy_text as lazy
from ..audit_entry import ActorSource, AuditEntry, Outcome
from ..audit_secrets import SecretInTextError
from ..client import CONSENT_VALUES, CampaignMonitor
from ..errors import CMError, TransportError, describe
from ..i18n import N_, t
from ..states import SUBSCRIBED_STATES
from ..write_locks import BUSY_MESSAGE, DEFAULT_WAIT_SECONDS, WriteKey, WriteLocks, WriteLockTimeout, write_locks
from .plan import ACTION_VIA, CONSENT_UNCHANGED, Action, Plan, PlanNotReady, Step
from .snapshot import Snapshot, StateChange, diff_states
from .verdict import MAYBE_WRITTEN, READBACK_FAILED, UNREACHABLE, ApplyReport, StepResult, judge, recorded

if TYPE_CHECKING:  # the log is passed in: a lookup page that never writes does not load SQLAlchemy
    from ..audit import AuditLog

# The details this module puts into results (stored in English, read back by the Audit page).
CHANGED_MEANWHILE = recorded(N_("changed since the dialog opened"))
ALREADY_WHEN_RECHECKED = recorded(N_("already so when re-checked just before writing (changed since the dialog "
                                     "opened, e.g. by another session); nothing sent"))
STOPPED_ANSWERING = recorded(N_("Campaign Monitor stopped answering during the change to {list} ({reason}), so "
                                "this one was not sent"))
NOT_REREAD = recorded(N_("the current states could not be re-read ({reason})"))
recorded(BUSY_MESSAGE)  # another change of the address held the write lock: the steps' detail


@dataclass(frozen=True)
class ApplyOptions:
    """What the person decided in the review, and how long to wait for another writer.

    ``actor`` names who is acting and ``actor_source`` where that name came from (both go into
    every audit row; a change with no name is refused, so no row reads "anonymous");
    ``confirmed`` holds the keys of the warnings ticked; ``reason`` goes into every audit row and
    is required when the plan says so; ``consent`` is sent as ConsentToTrack with each add.
    """

    actor: str
    actor_source: ActorSource = ActorSource.NOT_RECORDED
    reason: str = ""
    consent: str = CONSENT_UNCHANGED
    confirmed: frozenset[str] = frozenset()
    lock_timeout: float = DEFAULT_WAIT_SECONDS

    @classmethod
    def confirming_all(cls, plan: Plan, *, actor: str, actor_source: ActorSource = ActorSource.NOT_RECORDED,
                       reason: str = "", consent: str = CONSENT_UNCHANGED,
                       lock_timeout: float = DEFAULT_WAIT_SECONDS) -> ApplyOptions:
        """Every warning of ``plan`` confirmed: for callers without a review step (the CLI, tests)."""
        return cls(actor=actor, actor_source=actor_source, reason=reason, consent=consent,
                   confirmed=plan.confirmation_keys, lock_timeout=lock_timeout)


def _wanted_subscribed(plan: Plan) -> dict[str, bool]:
    """Per list, whether the plan leaves the address subscribed (cascades included)."""
    out: dict[str, bool] = {}
    for s in plan.steps:
        if s.action == Action.UNSUBSCRIBE and s.unsubscribes_from_all:
            for lid, _ in s.cascade:
                out.setdefault(lid, False)
    for s in plan.steps:
        out[s.list_id] = s.action == Action.SUBSCRIBE
    return out


def _in_line_with(change: StateChange, wanted: Mapping[str, bool]) -> bool:
    """A change since the snapshot that already went where the plan goes (another session's
    identical change, or the person doing it themselves): not a conflict, just "already so"."""
    return change.list_id in wanted and (change.after in SUBSCRIBED_STATES) == wanted[change.list_id]


def _satisfied(step: Step, state: str) -> bool:
    return (state in SUBSCRIBED_STATES) == (step.action == Action.SUBSCRIBE)


def apply_plan(client: CampaignMonitor, plan: Plan, options: ApplyOptions, *, audit: AuditLog,
               locks: WriteLocks | None = None) -> ApplyReport:
    """Check for conflicts against the plan's snapshot, write each step once, read back, audit
    every attempt. The address and the client come from the plan.

    Raises :class:`PlanNotReady` when nobody is named as acting, a warning is not in
    ``options.confirmed``, a required reason is empty or an operator-supplied text (the reason,
    the actor) contains a configured secret; nothing is written or audited then (the UI never
    gets there: its Apply button stays disabled).

    Everything from the re-read to the read-back runs under the process-wide write lock of
    ``(client_id, email)`` (``locks``, see :mod:`cmlib.write_locks`), so a second session
    applying the same change waits, re-reads what the first one produced and reports "already
    so" instead of sending it again.
    """
    missing = plan.missing(options.confirmed, options.reason)
    if not options.actor.strip():
        missing.insert(0, t("who is acting is not known (give an operator name for the audit log)"))
    if missing:
        raise PlanNotReady("; ".join(missing))
    if options.consent not in CONSENT_VALUES:
        raise PlanNotReady(t("consent to track must be one of {values}", values=", ".join(CONSENT_VALUES)))
    if plan.snapshot.email.lower() != plan.email.lower():
        raise PlanNotReady(t("the plan and its snapshot are for different addresses"))
    reason = options.reason.strip()
    # Checked before anything is sent: a row the audit log would refuse must not describe a
    # change that already happened.
    try:
        audit.check_text(reason=reason, operator_name=options.actor, email=plan.email)
    except SecretInTextError as exc:
        raise PlanNotReady(t("{problem}; nothing was sent", problem=describe(exc))) from None

    run = _Run(client, plan, reason=reason, consent=options.consent, actor=options.actor.strip(),
               actor_source=options.actor_source, audit=audit)

    # The audit log must be able to take the rows before anything is changed.
    try:
        audit.ensure_writable()
    except Exception as exc:  # any storage failure means "do not write"
        return ApplyReport(plan.email, plan.token, problem=lazy.t(
            N_("the audit log cannot be written ({reason}), so no change was sent"), reason=exc))
    key = WriteKey.of(plan.client_id, plan.email)
    try:
        with (locks if locks is not None else write_locks()).hold(key, timeout=options.lock_timeout):
            return run.locked()
    except WriteLockTimeout as exc:
        busy = lazy.error_text(exc)
        return run.nothing_sent(busy, problem=lazy.t(N_("{reason}, so no change was sent; try again in a moment"),
                                                     reason=busy))


class _Run:
    """One apply: the steps from the re-read to the audit rows (called with the write lock held)."""

    def __init__(self, client: CampaignMonitor, plan: Plan, *, reason: str, consent: str, actor: str,
                 actor_source: ActorSource, audit: AuditLog) -> None:
        self.client, self.plan = client, plan
        self.client_id, self.email, self.snapshot = plan.client_id, plan.email, plan.snapshot
        self.reason, self.consent, self.actor, self.audit = reason, consent, actor, audit
        self.actor_source = actor_source

    def record(self, results: Iterable[StepResult]) -> str:
        """Store one row per result; returns the storage problem ("" when stored)."""
        rows = [AuditEntry(actor=self.actor, client_id=self.client_id, email=self.email, list_id=r.list_id,
                           list_name=r.list_name, state_before=r.state_before, action=r.action,
                           reason=self.reason, result=r.audit_result, plan_token=self.plan.token,
                           actor_source=self.actor_source) for r in results]
        try:
            self.audit.record_many(rows)
        except Exception as exc:  # the outcome stands: report, do not hide it
            return lazy.error_text(exc)
        return ""

    def nothing_sent(self, detail: str, *, problem: str, unreachable: bool = False) -> ApplyReport:
        results = tuple(StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, None, Outcome.NOT_SENT,
                                   detail) for s in self.plan.steps)
        return ApplyReport(self.email, self.plan.token, results=results, problem=problem,
                           unreachable=unreachable, audit_problem=self.record(results))

    def reread(self) -> Snapshot:
        fresh = self.client.lists_for_email(self.client_id, self.email, fresh=True)
        return Snapshot.of(self.email, self.client_id, fresh, suppressed=self.snapshot.suppressed,
                           suppression_problem=self.snapshot.suppression_problem)

    def locked(self) -> ApplyReport:
        plan = self.plan
        # Conflict check: re-read fresh right before writing.
        try:
            current = self.reread()
        except CMError as err:
            reason = lazy.error_text(err)
            if isinstance(err, TransportError):
                return self.nothing_sent(lazy.t(UNREACHABLE, reason=reason), unreachable=True,
                                         problem=lazy.t(N_("Campaign Monitor could not be reached ({reason})"),
                                                        reason=reason))
            why = lazy.t(NOT_REREAD, reason=reason)
            return self.nothing_sent(why, problem=lazy.t(N_("{problem}, so no change was sent"), problem=why))
        changes = diff_states(self.snapshot, current)
        wanted = _wanted_subscribed(plan)
        if any(not _in_line_with(c, wanted) for c in changes):
            conflicts = tuple(StepResult(s.list_id, s.list_name, s.audit_action, s.state_before,
                                         current.state_of(s.list_id), Outcome.CONFLICT,
                                         lazy.t(CHANGED_MEANWHILE)) for s in plan.steps)
            return ApplyReport(self.email, plan.token, results=conflicts, conflict=tuple(changes),
                               new_snapshot=current, audit_problem=self.record(conflicts))

        # Steps another change (another session, the person) already carried out: not sent again.
        already = {s.list_id for s in plan.steps if _satisfied(s, current.state_of(s.list_id))}
        todo = [s for s in plan.steps if s.list_id not in already]
        errors, skipped = self.write(todo)

        # Read back once (listsforemail gives every list), fresh, bypassing every cache.
        after: Snapshot | None = current if not todo else None
        readback_problem = ""
        if todo:
            try:
                after = self.reread()
            except CMError as err:
                readback_problem = lazy.t(READBACK_FAILED, reason=err)

        results: list[StepResult] = []
        by_step: dict[str, StepResult] = {}
        for s in plan.steps:
            now = after.state_of(s.list_id) if after else None
            if s.list_id in already:
                was = current.state_of(s.list_id)
                r = StepResult(s.list_id, s.list_name, s.audit_action, was, was, Outcome.ALREADY,
                               lazy.t(ALREADY_WHEN_RECHECKED))
            elif s.list_id in skipped:
                r = StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, now, Outcome.NOT_SENT,
                               skipped[s.list_id])
            else:
                r = judge(s, errors.get(s.list_id), now, readback_problem, email=self.email)
            by_step[s.list_id] = r
            results.append(r)
        results += self.cascaded(by_step, current, after, readback_problem)

        if todo:
            self.client.invalidate_email(self.email)
        return ApplyReport(self.email, plan.token, results=tuple(results), new_snapshot=after,
                           audit_problem=self.record(results))

    def write(self, todo: list[Step]) -> tuple[dict[str, BaseException], dict[str, str]]:
        """Send each step exactly once; a refusal does not stop the others, a silent API does.

        Returns the error per list and, per list not sent, why."""
        errors: dict[str, BaseException] = {}
        skipped: dict[str, str] = {}
        stop = ""
        for s in todo:
            if stop:
                skipped[s.list_id] = stop
                continue
            try:
                if s.action == Action.SUBSCRIBE:
                    self.client.add_subscriber(s.list_id, self.email, resubscribe=s.resubscribe,
                                               consent_to_track=self.consent)
                else:
                    self.client.unsubscribe(s.list_id, self.email)
            except CMError as err:
                errors[s.list_id] = err
                if isinstance(err, TransportError):  # no answer at all: do not pile up more writes
                    stop = lazy.t(STOPPED_ANSWERING, list=s.list_name, reason=err)
        return errors, skipped

    def cascaded(self, by_step: Mapping[str, StepResult], current: Snapshot, after: Snapshot | None,
                 readback_problem: str) -> list[StepResult]:
        """The lists an AllClientLists unsubscribe took along (and that were not steps themselves)."""
        out: list[StepResult] = []
        stepped = {s.list_id for s in self.plan.steps}
        for s in self.plan.steps:
            main = by_step[s.list_id]
            if s.action != Action.UNSUBSCRIBE or not s.unsubscribes_from_all or main.status not in MAYBE_WRITTEN:
                continue
            for lid, lname in s.cascade:
                if lid in stepped:
                    continue
                stepped.add(lid)
                now = after.state_of(lid) if after else None
                before = current.state_of(lid)
                action = ACTION_VIA.format(list=s.list_name)  # English: the audit log's action column
                if before not in SUBSCRIBED_STATES:
                    out.append(StepResult(lid, lname, action, before, now if now is not None else before,
                                          Outcome.ALREADY))
                elif now is None:
                    status = Outcome.UNKNOWN if main.status == Outcome.UNKNOWN else Outcome.SENT
                    out.append(StepResult(lid, lname, action, before, None, status,
                                          main.detail if status == Outcome.UNKNOWN else readback_problem))
                elif now in SUBSCRIBED_STATES:
                    out.append(StepResult(lid, lname, action, before, now, Outcome.QUEUED))
                else:
                    out.append(StepResult(lid, lname, action, before, now, Outcome.DONE))
        return out
