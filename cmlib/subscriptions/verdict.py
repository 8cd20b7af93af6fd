"""The verdict on each attempted change, and the report the dialog shows and the audit log stores.

An answer that says something (success, or a refusal with a Code) is believed. An answer that
was lost (5xx, timeout, dropped connection, malformed body) is not: the read-back decides done /
not done, and when it cannot (it failed too, or an add may still be in Campaign Monitor's queue)
the verdict is UNKNOWN with what to check. A request that certainly never left (no connection
could be made, or the circuit breaker refused it) is NOT SENT.
"""
from __future__ import annotations

from dataclasses import dataclass

import requests
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ..audit import Outcome
from ..errors import (
    APIError,
    ApiUnavailableError,
    AuthenticationError,
    ConfigurationError,
    NotInListError,
    RateLimitedError,
    ServerError,
    SubscriberStateError,
    TransportError,
    describe,
)
from ..errors import TimeoutError as CMTimeoutError
from ..states import SUBSCRIBED_STATES, SubscriberState
from .plan import Action, Step
from .snapshot import Snapshot, StateChange, state_text


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
        if self.status == Outcome.CONFLICT:
            return "conflict — not written"
        if self.detail and (self.status in (Outcome.FAILED, Outcome.SENT, Outcome.UNKNOWN, Outcome.NOT_SENT)
                            or self.answer_lost or self.status == Outcome.ALREADY):
            return f"{self.status}: {self.detail}"
        return str(self.status)

    def describe(self) -> str:
        before = state_text(self.state_before)
        after = "unknown" if self.state_after is None else state_text(self.state_after)
        words = {
            Outcome.DONE: "done",
            Outcome.ALREADY: "already so",
            Outcome.QUEUED: "queued (Campaign Monitor has not shown the change yet)",
            Outcome.FAILED: "not done" if self.answer_lost else "failed",
            Outcome.SENT: "sent, not verified",
            Outcome.CONFLICT: "not written",
            Outcome.UNKNOWN: "UNKNOWN whether it happened",
            Outcome.NOT_SENT: "not sent",
        }[self.status]
        states = f"{before} → {after}"
        if self.status == Outcome.NOT_SENT and self.state_after is None:
            states = f"{before}, untouched"
        text = f"{self.list_name} — {self.action}: {words} ({states})"
        return f"{text}: {self.detail}" if self.detail else text


# What may have changed at Campaign Monitor (the lookup must be refetched to show it).
MAYBE_WRITTEN = (Outcome.DONE, Outcome.QUEUED, Outcome.SENT, Outcome.UNKNOWN)


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
        return not self.conflict and not self.problem and any(r.status in MAYBE_WRITTEN for r in self.results)

    @property
    def failed(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == Outcome.FAILED)

    @property
    def unknown(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == Outcome.UNKNOWN)

    @property
    def not_sent(self) -> tuple[StepResult, ...]:
        return tuple(r for r in self.results if r.status == Outcome.NOT_SENT)

    @property
    def ok(self) -> bool:
        return (not self.conflict and not self.problem and not self.failed and not self.unknown
                and not self.not_sent)

    def summary(self) -> str:
        if self.conflict:
            return ("Nothing was written: the subscriptions of " + self.email + " changed since the dialog "
                    "opened (" + "; ".join(c.describe() for c in self.conflict) + ").")
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


# --------------------------------------------------------------------------- what an error means
def refused(err: BaseException) -> bool:
    """The API answered and said no: the write certainly did not happen (a 4xx with a Code, 401, 429)."""
    return isinstance(err, (APIError, AuthenticationError, RateLimitedError, ConfigurationError))


def never_sent(err: BaseException) -> bool:
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
    reason = describe(err)
    if isinstance(err, CMTimeoutError):
        return f"no answer came back in time ({reason})"
    if isinstance(err, TransportError):
        return f"the connection dropped before an answer came back ({reason})"
    if isinstance(err, ServerError) and getattr(err, "code", None) is not None:
        return f"Campaign Monitor answered {reason}, which does not say whether the change was applied"
    return f"the answer was lost ({reason})"


def _lost_verdict(s: Step, err: BaseException, now: str | None, readback_problem: str,
                  email: str) -> tuple[Outcome, str]:
    """The verdict on a write whose answer was lost: what the read-back shows decides."""
    lost = _lost_words(err)
    if now is None:
        return Outcome.UNKNOWN, (f"{lost} and the {readback_problem or 'read-back failed'}; check {s.list_name} "
                                 f"for {email} (Lookup → Refresh, or in Campaign Monitor): if it still shows "
                                 f"{state_text(s.state_before)}, the change did not happen")
    shown = state_text(now)
    if s.action == Action.SUBSCRIBE:
        if now in SUBSCRIBED_STATES:
            return Outcome.DONE, f"confirmed by the read-back ({lost})"
        return Outcome.UNKNOWN, (f"{lost} and the read-back still shows {shown}, but adds go through "
                                 f"Campaign Monitor's queue: refresh {email} in a minute; if {s.list_name} "
                                 f"still shows {shown}, the add did not happen")
    if now not in SUBSCRIBED_STATES:
        return Outcome.DONE, f"confirmed by the read-back ({lost})"
    return Outcome.FAILED, f"{lost} and the read-back still shows {shown}: not unsubscribed"


def judge(s: Step, err: BaseException | None, now: str | None, readback_problem: str, *,
          email: str = "the address") -> StepResult:
    """The verdict for one sent step, from the write's answer (``err``, None for success) and
    the read-back (``now``, None when it failed)."""

    def res(status: Outcome, detail: str = "", *, lost: bool = False) -> StepResult:
        return StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, now, status, detail,
                          answer_lost=lost)

    if err is not None and refused(err):
        if (s.action == Action.UNSUBSCRIBE and isinstance(err, NotInListError)
                and (now is None or now not in SUBSCRIBED_STATES)):
            return res(Outcome.ALREADY, "Campaign Monitor says the address is not on the list")
        if (s.action == Action.SUBSCRIBE and isinstance(err, SubscriberStateError)
                and err.state == SubscriberState.UNCONFIRMED):
            return res(Outcome.ALREADY, "already waiting for the person's confirmation")
        return res(Outcome.FAILED, describe(err))
    if err is not None and never_sent(err):
        return res(Outcome.NOT_SENT, f"API unreachable ({describe(err)})")
    if err is not None:
        status, detail = _lost_verdict(s, err, now, readback_problem, email)
        return res(status, detail, lost=True)
    if now is None:
        return res(Outcome.SENT, readback_problem or "the change could not be read back")
    if s.action == Action.SUBSCRIBE:
        if now in SUBSCRIBED_STATES:
            return res(Outcome.DONE, "waiting for the person's confirmation"
                       if now == SubscriberState.UNCONFIRMED else "")
        return res(Outcome.QUEUED, "adds go through Campaign Monitor's queue; refresh in a minute")
    if now not in SUBSCRIBED_STATES:
        return res(Outcome.DONE)
    return res(Outcome.QUEUED, "Campaign Monitor still shows the old state; refresh in a minute")
