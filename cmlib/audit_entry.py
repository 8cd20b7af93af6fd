"""What one row of the audit log says -- the entry, its outcomes and where its actor's name came
from -- without the database that stores it.

Split from :mod:`cmlib.audit` (which re-exports every name here): the Lookup page and the
subscription dialog build entries and name outcomes on every run, and importing the log itself
would load SQLAlchemy (~0.15 s) before the page's first paint; the log is imported where a row
is written or read.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .i18n import N_
from .utc import as_utc

__all__ = ["ACTOR_SOURCE_WORDS", "OUTCOME_WORDS", "RESULTS", "ActorSource", "AuditEntry", "Outcome"]


class Outcome(StrEnum):
    """What happened to one attempted change: the head of the ``result`` column (details after ": ").

    A write whose answer was lost (5xx, timeout, dropped connection, malformed answer) is never
    reported from the answer: the read-back decides between DONE, FAILED (not done) and UNKNOWN.
    """

    DONE = "done"  # the read-back shows the change (or the API confirmed it and the read-back agrees)
    ALREADY = "already"  # nothing to send: the address was already so
    QUEUED = "queued"  # the API accepted it but the read-back does not show it yet (adds are queued)
    FAILED = "failed"  # not done: the API refused, or the answer was lost and the read-back shows no change
    CONFLICT = "conflict"  # not written: the states changed since the dialog opened
    SENT = "sent"  # the API accepted the write but the read-back failed
    UNKNOWN = "unknown"  # the answer was lost and the read-back could not tell: someone must check
    NOT_SENT = "not sent"  # never reached Campaign Monitor (API unreachable, another change in progress)


RESULTS = tuple(o.value for o in Outcome)  # the Audit page's filter choices, as stored
# How each outcome is shown to people (translate with cmlib.i18n.t where shown; stored values stay English).
OUTCOME_WORDS: dict[Outcome, str] = {
    Outcome.DONE: N_("done"), Outcome.ALREADY: N_("already"), Outcome.QUEUED: N_("queued"),
    Outcome.FAILED: N_("failed"), Outcome.CONFLICT: N_("conflict"), Outcome.SENT: N_("sent"),
    Outcome.UNKNOWN: N_("unknown"), Outcome.NOT_SENT: N_("not sent"),
}


class ActorSource(StrEnum):
    """Where the ``actor`` of a row came from, stored as its value in ``actor_source``.

    A reviewer weighs "signed-in user" (the login vouches for it) differently from "typed" (the
    operator wrote a name into the dashboard) and "helpdesk link" (the ``operator=`` parameter
    of the helpdesk panel's URL: whoever can edit a link can write any name there). Readers treat
    an unknown stored value as NOT_RECORDED.
    """

    SIGNED_IN = "signed-in user"  # the login (OIDC) names the person
    TYPED = "typed"  # typed by the operator in this browser (the sidebar, or when asked before a change)
    HELPDESK_LINK = "helpdesk link"  # ``operator=`` in the panel URL the helpdesk built (not authenticated)
    NOT_RECORDED = "not recorded"  # rows written before the source was recorded, or by code that did not say

    @classmethod
    def parse(cls, value: object) -> ActorSource:
        """The member stored as ``value``; NOT_RECORDED for anything else (old rows, empty cells)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.NOT_RECORDED


# How each source is shown to people (translate with cmlib.i18n.t where shown).
ACTOR_SOURCE_WORDS: dict[ActorSource, str] = {
    ActorSource.SIGNED_IN: N_("signed-in user"), ActorSource.TYPED: N_("typed"),
    ActorSource.HELPDESK_LINK: N_("helpdesk link"), ActorSource.NOT_RECORDED: N_("not recorded"),
}


@dataclass(frozen=True)
class AuditEntry:
    """One attempted change of one address on one list."""

    actor: str
    client_id: str
    email: str
    list_id: str
    list_name: str
    state_before: str  # "" when the address was not on the list
    action: str  # "subscribe", "resubscribe", "unsubscribe", "unsubscribe (via …)"
    reason: str
    result: str  # "done", "already", "queued", "failed: <reason>", "conflict — not written", ...
    at: str = ""  # UTC ISO 8601 (``2026-03-01T09:30:00Z``); filled by record() when empty
    plan_token: str = ""
    actor_source: ActorSource = ActorSource.NOT_RECORDED
    id: int | None = None

    @property
    def result_kind(self) -> str:
        """The :class:`Outcome` value the result starts with (``done``, ``not sent``, …)."""
        text = self.result.strip().lower()
        for kind in sorted(RESULTS, key=len, reverse=True):
            if text == kind or text.startswith((kind + ":", kind + " ")):
                return kind
        return text.split(":", 1)[0].split(" ", 1)[0]

    @property
    def timestamp(self) -> datetime | None:
        """``at`` as an aware UTC datetime; None when empty or unreadable."""
        try:
            return as_utc(self.at) if self.at else None
        except ValueError:
            return None
