"""What the Lookup page shows about a Profile, as plain values: the tab summary, the campaigns
table rows, the activity figures and the facts beside a list badge.

Kept out of the Streamlit view so the wording and the numbers are unit-tested once and the
CLI or an export can reuse them; the view only escapes and lays them out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from .lookup import Activity, ListStatus, Profile
from .states import STATE_STYLES, SubscriberState, state_word

COL_SUBJECT = "Subject"
COL_SENT = "Sent"
COL_OPENED = "Opened"
COL_CLICKED = "Clicked"
COL_WEB = "Web version"
CAMPAIGN_COLUMNS = (COL_SUBJECT, COL_SENT, COL_OPENED, COL_CLICKED, COL_WEB)


def state_summary(profile: Profile) -> str:
    """A few words for the tab label: ``"3 subscribed"``, ``"2 subscribed, 1 pending"``, ``"on no list"``.

    The words and their order come from :data:`cmlib.states.STATE_STYLES`, so the tab says what the
    badges, the matrix and the exports say; a state the API invents later is shown by its own name.
    """
    if profile.failed:
        return "lookup failed"
    if not profile.lists:
        return "on no list"
    counts = profile.state_counts()
    parts = [f"{counts[s]} {style.word}" for s, style in STATE_STYLES.items() if counts.get(s)]
    parts += [f"{n} {(s or 'unknown').lower()}" for s, n in counts.items() if s not in STATE_STYLES]
    return ", ".join(parts)


def format_when(value: datetime | None) -> str:
    """Campaign Monitor dates carry no zone (they are in the account's time zone): shown as given."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def as_of(fetched_at: datetime) -> str:
    """Freshness line: ``"as of 14:32:05 UTC"``."""
    utc = fetched_at.astimezone(UTC) if fetched_at.tzinfo else fetched_at
    return f"as of {utc:%H:%M:%S} UTC"


def list_facts(status: ListStatus) -> list[str]:
    """The short facts shown beside a list's badge, most telling first."""
    facts = []
    if status.subscriber_name.strip():
        facts.append(f"name: {status.subscriber_name.strip()}")
    if status.state_changed:
        facts.append(f"state since {format_when(status.state_changed)}")
    joined = status.joined or status.date_added
    if joined:
        facts.append(f"joined {format_when(joined)}")
    consent = (status.consent_to_track or "").strip()
    facts.append(f"consent to track: {consent}" if consent else "consent to track: not reported")
    if status.confirmed_opt_in:
        facts.append("confirmed opt-in list")
    return facts


def state_reason(status: ListStatus) -> str | None:
    """Why an unsubscribe or bounce happened, or a plain note that the history does not say."""
    if status.reason is not None:
        return status.reason.describe()
    if status.state in (SubscriberState.UNSUBSCRIBED, SubscriberState.BOUNCED):
        return (f"{state_word(status.state)}: no matching event in the email history (done via the API, an import "
                "or the Campaign Monitor app)")
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


def campaign_rows(profile: Profile, n: int = 3) -> list[dict[str, Any]]:
    """The last ``n`` received emails, newest first, keyed by :data:`CAMPAIGN_COLUMNS`.

    The web version is a link only when it is http(s) (:func:`safe_web_link`)."""
    return [
        {
            COL_SUBJECT: c.subject or c.name,
            COL_SENT: c.sent,
            COL_OPENED: c.opened,
            COL_CLICKED: c.clicked,
            COL_WEB: safe_web_link(c.web_version_url),
        }
        for c in profile.last_campaigns(n)
    ]


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    help: str


def activity_figures(activity: Activity) -> list[Figure]:
    """The Activity metrics. Rates are unique (share of emails opened at least once)."""
    return [
        Figure("Emails received", str(activity.received),
               "Every email in the subscriber's history across all lists, each counted once."),
        Figure("Open rate", f"{activity.open_rate:.0%}",
               f"{activity.opened} of {activity.received} emails opened at least once."),
        Figure("Click rate", f"{activity.click_rate:.0%}",
               f"{activity.clicked} of {activity.received} emails clicked at least once."),
        Figure("Avg opens / email", f"{activity.avg_opens:.1f}",
               f"{activity.total_opens} opens in total."),
        Figure("Avg clicks / email", f"{activity.avg_clicks:.1f}",
               f"{activity.total_clicks} clicks in total."),
    ]
