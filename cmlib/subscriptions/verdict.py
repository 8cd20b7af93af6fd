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

from .. import lazy_text as lazy
from ..audit_entry import OUTCOME_WORDS, Outcome
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
)
from ..errors import TimeoutError as CMTimeoutError
from ..i18n import N_, Language, t
from ..lazy_text import text_of
from ..states import SUBSCRIBED_STATES, SubscriberState
from .plan import Action, Step, action_text
from .snapshot import Snapshot, StateChange
from .wording import ARROW, parse_english, state_lazy, state_text

# How the dialog says each verdict (the audit log's shorter words are cmlib.audit.OUTCOME_WORDS).
VERDICT_WORDS = {
    Outcome.DONE: N_("done"),
    Outcome.ALREADY: N_("already so"),
    Outcome.QUEUED: N_("queued (Campaign Monitor has not shown the change yet)"),
    Outcome.FAILED: N_("failed"),
    Outcome.SENT: N_("sent, not verified"),
    Outcome.CONFLICT: N_("not written"),
    Outcome.UNKNOWN: N_("UNKNOWN whether it happened"),
    Outcome.NOT_SENT: N_("not sent"),
}
NOT_DONE = N_("not done")  # FAILED after a lost answer: the read-back shows the change did not happen
CONFLICT_RESULT = N_("conflict — not written")  # the whole result of a conflict row

# Every sentence a result's detail can hold (stored in English in the audit log): the Audit page
# reads them back with parse_english to show a row in the reader's language. Longest first, so a
# template that is the beginning of another never takes its text.
NOT_ON_LIST_SAYS_CM = N_("Campaign Monitor says the address is not on the list")
ALREADY_WAITING = N_("already waiting for the person's confirmation")
WAITING = N_("waiting for the person's confirmation")
UNREACHABLE = N_("API unreachable ({reason})")
NOT_READ_BACK = N_("the change could not be read back")
ADD_QUEUED = N_("adds go through Campaign Monitor's queue; refresh in a minute")
OLD_STATE = N_("Campaign Monitor still shows the old state; refresh in a minute")
CONFIRMED = N_("confirmed by the read-back ({lost})")
LOST_TIMEOUT = N_("no answer came back in time ({reason})")
LOST_DROPPED = N_("the connection dropped before an answer came back ({reason})")
LOST_SERVER = N_("Campaign Monitor answered {reason}, which does not say whether the change was applied")
LOST = N_("the answer was lost ({reason})")
READBACK_FAILED = N_("read-back failed: {reason}")
READBACK_FAILED_PLAIN = N_("read-back failed")
UNKNOWN_CHECK = N_("{lost} and the {readback}; check {list} for {email} (Lookup → Refresh, or in Campaign "
                   "Monitor): if it still shows {state}, the change did not happen")
UNKNOWN_QUEUE = N_("{lost} and the read-back still shows {state}, but adds go through Campaign Monitor's queue: "
                   "refresh {email} in a minute; if {list} still shows {again_state}, the add did not happen")
NOT_UNSUBSCRIBED = N_("{lost} and the read-back still shows {state}: not unsubscribed")
RECORDED: list[str] = [
    UNKNOWN_CHECK, UNKNOWN_QUEUE, NOT_UNSUBSCRIBED, CONFIRMED, LOST_SERVER, LOST_DROPPED, LOST_TIMEOUT, LOST,
    READBACK_FAILED, READBACK_FAILED_PLAIN, UNREACHABLE, NOT_ON_LIST_SAYS_CM, ALREADY_WAITING, WAITING,
    NOT_READ_BACK, ADD_QUEUED, OLD_STATE,
]  # cmlib.subscriptions.apply adds its own


def recorded(msgid: str) -> str:
    """Register a template whose English may be stored in a result's detail; returns it."""
    if msgid not in RECORDED:
        RECORDED.append(msgid)
    return msgid


@dataclass(frozen=True)
class StepResult:
    list_id: str
    list_name: str
    action: str  # audit wording: subscribe / resubscribe / unsubscribe / unsubscribe (via X)
    state_before: str
    state_after: str | None  # read-back state; None when the read-back failed (or nothing was read)
    status: Outcome  # done / already / queued / failed / sent / conflict / unknown / not sent
    detail: str = ""  # why (a lazy sentence: English as the str, any language with text_of)
    answer_lost: bool = False  # the write's answer never arrived intact: the read-back decided

    @property
    def audit_result(self) -> str:
        """The ``result`` column, in English (data): the verdict first, then why (the same words
        the dialog shows)."""
        if self.status == Outcome.CONFLICT:
            return CONFLICT_RESULT
        detail = str.__str__(self.detail)  # English, however the detail was made
        if detail and (self.status in (Outcome.FAILED, Outcome.SENT, Outcome.UNKNOWN, Outcome.NOT_SENT)
                       or self.answer_lost or self.status == Outcome.ALREADY):
            return f"{self.status}: {detail}"
        return str(self.status)

    def describe(self, lang: Language | str | None = None) -> str:
        """``Webinars — unsubscribe: done (subscribed → unsubscribed)``, with why after a colon."""
        before = state_text(self.state_before, lang=lang)
        after = t("unknown", lang=lang) if self.state_after is None else state_text(self.state_after, lang=lang)
        word = NOT_DONE if self.status == Outcome.FAILED and self.answer_lost else VERDICT_WORDS[self.status]
        if self.status == Outcome.NOT_SENT and self.state_after is None:
            states = t("{state}, untouched", lang=lang, state=before)
        else:
            states = ARROW.format(before=before, after=after)
        params = {"list": self.list_name, "action": action_text(self.action, lang=lang),
                  "outcome": t(word, lang=lang), "states": states}
        if not self.detail:
            return t("{list} — {action}: {outcome} ({states})", lang=lang, **params)
        return t("{list} — {action}: {outcome} ({states}): {detail}", lang=lang, detail=text_of(self.detail, lang),
                 **params)


# What may have changed at Campaign Monitor (the lookup must be refetched to show it).
MAYBE_WRITTEN = (Outcome.DONE, Outcome.QUEUED, Outcome.SENT, Outcome.UNKNOWN)


@dataclass(frozen=True)
class ApplyReport:
    email: str
    token: str
    results: tuple[StepResult, ...] = ()
    conflict: tuple[StateChange, ...] = ()  # non-empty: nothing was written
    new_snapshot: Snapshot | None = None  # the read-back (or the re-read on conflict)
    problem: str = ""  # nothing was written for another reason (API unreachable, busy); a lazy sentence
    audit_problem: str = ""  # the writes happened but the audit rows could not be stored (a lazy sentence)
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

    def summary(self, lang: Language | str | None = None) -> str:
        if self.conflict:
            return t("Nothing was written: the subscriptions of {email} changed since the dialog opened ({changes}).",
                     lang=lang, email=self.email, changes="; ".join(c.describe(lang) for c in self.conflict))
        if self.problem:
            problem = text_of(self.problem, lang)
            if not self.not_sent:
                return t("Nothing was written for {email}: {problem}.", lang=lang, email=self.email, problem=problem)
            steps = "; ".join(t("{action} on {list}", lang=lang, action=action_text(r.action, lang=lang),
                                list=r.list_name) for r in self.not_sent)
            return t("Nothing was written for {email}: {problem}. Not sent: {steps}.", lang=lang, email=self.email,
                     problem=problem, steps=steps)
        counts: dict[Outcome, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        if not counts:
            return t("{email}: nothing to do", lang=lang, email=self.email)
        parts = ", ".join(t("{n} {outcome}", lang=lang, n=n, outcome=t(OUTCOME_WORDS[k], lang=lang))
                          for k, n in counts.items())
        return t("{email}: {counts}", lang=lang, email=self.email, counts=parts)


def localise_result(result: str, *, lang: Language | str | None = None) -> str:
    """A stored ``result`` (English: ``failed: Code 204: …``) in the reader's language, as far as
    its words are ours: the outcome, and a detail one of our templates made. Campaign Monitor's
    messages stay as they are; a text we cannot read back is shown as stored."""
    text = result.strip()
    if text == CONFLICT_RESULT:
        return t(CONFLICT_RESULT, lang=lang)
    head, sep, detail = text.partition(": ")
    try:
        outcome = Outcome(head)
    except ValueError:
        return result
    word = t(OUTCOME_WORDS[outcome], lang=lang)
    if not sep:
        return word
    parsed = parse_english(detail, RECORDED)
    return t("{outcome}: {detail}", lang=lang, outcome=word, detail=text_of(parsed, lang) if parsed else detail)


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
    if isinstance(err, CMTimeoutError):
        return lazy.t(LOST_TIMEOUT, reason=err)
    if isinstance(err, TransportError):
        return lazy.t(LOST_DROPPED, reason=err)
    if isinstance(err, ServerError) and getattr(err, "code", None) is not None:
        return lazy.t(LOST_SERVER, reason=err)
    return lazy.t(LOST, reason=err)


def _lost_verdict(s: Step, err: BaseException, now: str | None, readback_problem: str,
                  email: str) -> tuple[Outcome, str]:
    """The verdict on a write whose answer was lost: what the read-back shows decides."""
    lost = _lost_words(err)
    if now is None:
        return Outcome.UNKNOWN, lazy.t(UNKNOWN_CHECK, lost=lost, readback=readback_problem or lazy.t(
            READBACK_FAILED_PLAIN), list=s.list_name, email=email, state=state_lazy(s.state_before))
    if s.action == Action.SUBSCRIBE:
        if now in SUBSCRIBED_STATES:
            return Outcome.DONE, lazy.t(CONFIRMED, lost=lost)
        return Outcome.UNKNOWN, lazy.t(UNKNOWN_QUEUE, lost=lost, state=state_lazy(now), email=email,
                                       list=s.list_name, again_state=state_lazy(now))
    if now not in SUBSCRIBED_STATES:
        return Outcome.DONE, lazy.t(CONFIRMED, lost=lost)
    return Outcome.FAILED, lazy.t(NOT_UNSUBSCRIBED, lost=lost, state=state_lazy(now))


def judge(s: Step, err: BaseException | None, now: str | None, readback_problem: str = "", *,
          email: str = "the address") -> StepResult:
    """The verdict for one sent step, from the write's answer (``err``, None for success) and
    the read-back (``now``, None when it failed, ``readback_problem`` then says why)."""

    def res(status: Outcome, why: str = "", *, lost: bool = False) -> StepResult:
        return StepResult(s.list_id, s.list_name, s.audit_action, s.state_before, now, status, why,
                          answer_lost=lost)

    if err is not None and refused(err):
        if (s.action == Action.UNSUBSCRIBE and isinstance(err, NotInListError)
                and (now is None or now not in SUBSCRIBED_STATES)):
            return res(Outcome.ALREADY, lazy.t(NOT_ON_LIST_SAYS_CM))
        if (s.action == Action.SUBSCRIBE and isinstance(err, SubscriberStateError)
                and err.state == SubscriberState.UNCONFIRMED):
            return res(Outcome.ALREADY, lazy.t(ALREADY_WAITING))
        return res(Outcome.FAILED, lazy.error_text(err))
    if err is not None and never_sent(err):
        return res(Outcome.NOT_SENT, lazy.t(UNREACHABLE, reason=lazy.error_text(err)))
    if err is not None:
        status, detail = _lost_verdict(s, err, now, readback_problem, email)
        return res(status, detail, lost=True)
    if now is None:
        return res(Outcome.SENT, readback_problem or lazy.t(NOT_READ_BACK))
    if s.action == Action.SUBSCRIBE:
        if now in SUBSCRIBED_STATES:
            return res(Outcome.DONE, lazy.t(WAITING) if now == SubscriberState.UNCONFIRMED else "")
        return res(Outcome.QUEUED, lazy.t(ADD_QUEUED))
    if now not in SUBSCRIBED_STATES:
        return res(Outcome.DONE)
    return res(Outcome.QUEUED, lazy.t(OLD_STATE))
