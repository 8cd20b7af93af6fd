"""What the Lookup page shows about a Profile, as plain values: the tab summary, the campaigns
table rows, the activity figures, the facts beside a list badge and the suppression notice.

Kept out of the Streamlit view so the wording and the numbers are unit-tested once and the
CLI or an export can reuse them; the view only escapes and lays them out. Every time goes
through one :class:`TimeDisplay`, so "as of", state dates, reasons, joined dates and the
campaigns' Sent column are in one zone, and each names it.

Every word is said in the current language (:mod:`cmlib.i18n`: the page's session, the CLI's
``--lang``), numbers and percentages in its format; values from Campaign Monitor (list names,
subjects, custom values) are passed through as they are.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from .i18n import N_, format_number, format_percent, nt, t
from .lookup import Activity, ListStatus, Profile
from .models import SuppressedAddress
from .profiles import stored_consent
from .states import STATE_STYLES, SubscriberState, state_word
from .suppression import reason_word
from .timezones import UTC_ZONE, DisplayZone, choose_zone, format_time, parse_cm_time_zone

# The campaigns table's columns: the keys of campaign_rows (stable, English), each shown under
# column_title(key) in the reader's language.
COL_SUBJECT = N_("Subject")
COL_SENT = N_("Sent")
COL_OPENED = N_("Opened")
COL_CLICKED = N_("Clicked")
COL_WEB = N_("Web version")
CAMPAIGN_COLUMNS = (COL_SUBJECT, COL_SENT, COL_OPENED, COL_CLICKED, COL_WEB)


def column_title(column: str) -> str:
    """A campaigns-table column's header in the reader's language."""
    return t(column)


@dataclass(frozen=True)
class TimeDisplay:
    """How every time a person reads is shown: converted to one display zone, its name beside it.

    ``zone`` is the browser's, else the client's, else UTC (:func:`cmlib.timezones.choose_zone`);
    ``cm_zone`` is the client's own zone, the one Campaign Monitor's zone-less dates are written
    in (UTC when unknown). Our own times (``fetched_at``) are aware UTC.
    """

    zone: DisplayZone = UTC_ZONE
    cm_zone: tzinfo | None = field(default=None)

    @classmethod
    def choose(cls, browser: str | None = None, client_time_zone: str | None = None) -> TimeDisplay:
        """From the browser's IANA zone (``st.context.timezone``) and the client's ``TimeZone``."""
        return cls(choose_zone(browser, client_time_zone), parse_cm_time_zone(client_time_zone))

    def show(self, value: datetime | None) -> str:
        """``"2026-11-25 16:00 MSK"``; ``""`` for no time."""
        return format_time(value, self.zone, cm_zone=self.cm_zone)

    def clock(self, value: datetime) -> str:
        """A time of day with seconds: ``"14:32:05 MSK"``."""
        return format_time(value, self.zone, cm_zone=self.cm_zone, fmt="%H:%M:%S")


UTC_TIMES = TimeDisplay()


def state_summary(profile: Profile) -> str:
    """A few words for the tab label: ``"3 subscribed"``, ``"2 subscribed, 1 pending"``, ``"on no list"``,
    and ``"suppressed"`` at the end for an address on the client's suppression list.

    The words and their order come from :data:`cmlib.states.STATE_STYLES`, so the tab says what the
    badges, the matrix and the exports say; a state the API invents later is shown by its own name.
    """
    if profile.failed:
        return t("lookup failed")
    suppressed = [t("suppressed")] if profile.suppression is not None else []
    if not profile.lists:
        return ", ".join([t("on no list"), *suppressed])
    counts = profile.state_counts()
    # "{count} {state}": English "3 subscribed", Russian "подписан: 3" (no plural agreement needed)
    parts = [t("{count} {state}", count=counts[s], state=state_word(s)) for s in STATE_STYLES if counts.get(s)]
    parts += [t("{count} {state}", count=n, state=state_word(s).lower()) for s, n in counts.items()
              if s not in STATE_STYLES]
    return ", ".join(parts + suppressed)


def format_when(value: datetime | None, times: TimeDisplay = UTC_TIMES) -> str:
    """A Campaign Monitor date (in the client's zone) in the display zone, with the zone named."""
    return times.show(value)


def as_of(fetched_at: datetime, times: TimeDisplay = UTC_TIMES) -> str:
    """Freshness line: ``"as of 14:32:05 UTC"`` (or ``MSK``, ``CET``, … in the display zone)."""
    return t("as of {time}", time=times.clock(fetched_at))


# The stored consent values Campaign Monitor documents, in the reader's words (English: as the API
# writes them); any other value is shown as it is.
_CONSENT_VALUES = {"yes": N_("Yes"), "no": N_("No")}


def _consent_word(value: str) -> str:
    known = _CONSENT_VALUES.get(value.lower())
    if known is None:
        return value
    word = t(known)
    return value if word == known else word


def consent_fact(value: str | None) -> str | None:
    """``"consent to track: Yes"``, or None when Campaign Monitor reported no stored value
    (``Unchanged`` is what a write sends to keep the stored value: never shown as one)."""
    consent = stored_consent(value)
    return t("consent to track: {value}", value=_consent_word(consent)) if consent else None


def list_facts(status: ListStatus, times: TimeDisplay = UTC_TIMES) -> list[str]:
    """The short facts shown beside a list's badge, most telling first."""
    facts = []
    if status.subscriber_name.strip():
        facts.append(t("name: {name}", name=status.subscriber_name.strip()))
    if status.state_changed:
        facts.append(t("state since {when}", when=format_when(status.state_changed, times)))
    joined = status.joined or status.date_added
    if joined:
        facts.append(t("joined {when}", when=format_when(joined, times)))
    consent = consent_fact(status.consent_to_track)
    if consent:
        facts.append(consent)
    if status.confirmed_opt_in:
        facts.append(t("confirmed opt-in list"))
    return facts


def state_reason(status: ListStatus, times: TimeDisplay = UTC_TIMES) -> str | None:
    """Why an unsubscribe or bounce happened, or a plain note that the history does not say."""
    if status.reason is not None:
        return status.reason.describe(times.show)
    if status.state in (SubscriberState.UNSUBSCRIBED, SubscriberState.BOUNCED):
        return t("{state}: no matching event in the email history (done via the API, an import or the Campaign "
                 "Monitor app)", state=state_word(status.state))
    return None


_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


def safe_web_link(url: str | None) -> str | None:
    """``url`` when it is an http(s) address with a host, else None (no link is drawn).

    The web version URL comes from the API, and a data grid's link column makes whatever it is
    given clickable: ``javascript:``, ``data:`` or ``vbscript:`` must never become a "view" link.
    Whitespace, control characters and backslashes are refused outright rather than cleaned,
    because browsers strip or reinterpret them (``java\tscript:``, ``https:\\evil``) in ways a
    parser here would not.
    """
    if not url:
        return None
    text = url.strip()
    if not text or _URL_FORBIDDEN.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return text


def campaign_rows(profile: Profile, n: int = 3, times: TimeDisplay = UTC_TIMES) -> list[dict[str, Any]]:
    """The last ``n`` received emails, newest first, keyed by :data:`CAMPAIGN_COLUMNS`.

    Sent is text in the display zone with the zone named, like every other time on the page.
    The web version is a link only when it is http(s) (:func:`safe_web_link`)."""
    return [
        {
            COL_SUBJECT: c.subject or c.name,
            COL_SENT: times.show(c.sent),
            COL_OPENED: c.opened,
            COL_CLICKED: c.clicked,
            COL_WEB: safe_web_link(c.web_version_url),
        }
        for c in profile.last_campaigns(n)
    ]


def suppression_summary(entry: SuppressedAddress, times: TimeDisplay = UTC_TIMES) -> str:
    """``"on this client's suppression list since 2026-01-02 10:00 MSK (reason: Unsubscribed)"``."""
    reason = entry.reason.strip()
    if entry.date and reason:
        return t("on this client's suppression list since {when} (reason: {reason})",
                 when=times.show(entry.date), reason=reason_word(reason))
    if entry.date:
        return t("on this client's suppression list since {when} (no reason recorded)", when=times.show(entry.date))
    if reason:
        return t("on this client's suppression list (reason: {reason})", reason=reason_word(reason))
    return t("on this client's suppression list (no reason recorded)")


def suppression_notice(email: str, entry: SuppressedAddress, times: TimeDisplay = UTC_TIMES) -> str:
    """What the tab says up front about an address on the client's suppression list: since when,
    why, and what subscribing it will take (the dialog's Resubscribe and explicit confirmation)."""
    return t("{email} is {summary}. Campaign Monitor sends it no email and refuses to add it to any list as it "
             "is. Subscribing it sends Resubscribe, which takes it off the suppression list: the subscription "
             "dialog asks you to confirm that explicitly, with a reason (the person's permission, e.g. the ticket "
             "number).", email=email, summary=suppression_summary(entry, times))


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    help: str


def activity_figures(activity: Activity) -> list[Figure]:
    """The Activity metrics. Rates are unique (share of emails opened at least once). Values in
    the current language's number format (``58%`` / ``58 %``, ``1.2`` / ``1,2``)."""
    return [
        Figure(t("Emails received"), format_number(activity.received),
               t("Every email in the subscriber's history across all lists, each counted once.")),
        Figure(t("Open rate"), format_percent(activity.open_rate),
               nt("{opened} of {n} email opened at least once.", "{opened} of {n} emails opened at least once.",
                  activity.received, opened=activity.opened)),
        Figure(t("Click rate"), format_percent(activity.click_rate),
               nt("{clicked} of {n} email clicked at least once.", "{clicked} of {n} emails clicked at least once.",
                  activity.received, clicked=activity.clicked)),
        Figure(t("Avg opens / email"), format_number(activity.avg_opens, digits=1),
               nt("{n} open in total.", "{n} opens in total.", activity.total_opens)),
        Figure(t("Avg clicks / email"), format_number(activity.avg_clicks, digits=1),
               nt("{n} click in total.", "{n} clicks in total.", activity.total_clicks)),
    ]
