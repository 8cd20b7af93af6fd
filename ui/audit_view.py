"""The Audit page's table and its one-row detail view.

The table is for scanning: each column gets a width that fits what it holds, and the long ones
(Reason, Result) get the most room, but a cell still ends where its column does. Selecting a row
opens the detail view below it, which shows every field of that row whole (line breaks kept).

Times: rows are stored in UTC; they are shown in the session's one display zone
(:mod:`ui.display_zone`) with the zone named in every cell, and the UTC time again in the detail
view for matching against server logs. The day filters are days in that zone too, so "From
1 March" means what the person reading the times means by it.

State words: the "Before" column stores the API's value (``Active``); people read the product's
word (``subscribed``) from :mod:`cmlib.states`, and the detail view names the API value as well.

Language: rows are stored in English (data: the filters and the CSV read them). People read them
in the session's language: headings, the outcome and action words, where the name came from, and
the details our own templates wrote (``cmlib.subscriptions.localise_result``); Campaign Monitor's
messages, list names, addresses and reasons typed by operators are shown as stored.

Values are data: cells of a dataframe, or markdown escaped by :func:`ui.text.md_escape`.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st
from streamlit.elements.lib.column_types import ColumnConfig

from cmlib.audit import ACTOR_SOURCE_WORDS, ActorSource, AuditEntry
from cmlib.i18n import N_, t
from cmlib.states import STATE_STYLES, state_word
from cmlib.subscriptions import action_text, localise_result
from cmlib.timezones import UTC_ZONE, DisplayZone, ZoneSource, format_time, localise
from ui.display_zone import ZoneChoice
from ui.text import md_escape

TABLE_KEY = "audit_table"
NOT_ON_LIST = "—"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Column:
    """One column of the table: the entry field it shows, its heading (English: translate with
    :meth:`heading`) and its width in pixels."""

    field: str
    label: str
    width: int

    def heading(self) -> str:
        return t(self.label)


# In the order a reviewer reads a row, Result and Reason (the longest) within the first ~980 px of
# the wide layout beside the sidebar; the state before and where the name came from follow. Widths
# in pixels (st.column_config): the text columns widest. Cells wrap onto up to three lines
# (ROW_HEIGHT), and the detail view below shows a selected row whole.
COLUMNS: tuple[Column, ...] = (
    Column("at", N_("Time"), 95),
    Column("actor", N_("Who"), 105),
    Column("email", N_("Address"), 150),
    Column("list_name", N_("List"), 100),
    Column("action", N_("Action"), 90),
    Column("result", N_("Result"), 200),
    Column("reason", N_("Reason"), 200),
    Column("state_before", N_("Before"), 90),
    Column("actor_source", N_("Name from"), 95),
)
ROW_HEIGHT = 76  # px: above 4rem Streamlit lets text wrap in a cell; three lines of it

# The detail view: every field of a row, in reading order.
DETAIL_FIELDS: tuple[tuple[str, str], ...] = (
    ("at", N_("Time")),
    ("actor", N_("Who")),
    ("actor_source", N_("Name from")),
    ("email", N_("Address")),
    ("list_name", N_("List")),
    ("list_id", N_("List ID")),
    ("client_id", N_("Client ID")),
    ("state_before", N_("Before")),
    ("action", N_("Action")),
    ("reason", N_("Reason")),
    ("result", N_("Result")),
    ("plan_token", N_("Change ID")),
)


def zone_name(zone: DisplayZone) -> str:
    """What a day filter is in: the browser's IANA name, else the zone's label (``UTC+03:00``)."""
    if zone.source is ZoneSource.BROWSER and isinstance(zone.tz, ZoneInfo):
        return zone.tz.key
    return zone.label()


def stored_time(entry: AuditEntry) -> datetime | None:
    """The row's time as an aware UTC datetime (stored as ``2026-03-01T09:30:00Z``); None if unreadable."""
    try:
        value = datetime.fromisoformat(entry.at)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else None


def shown_time(entry: AuditEntry, zone: DisplayZone) -> str:
    """``2026-03-01 10:30:00 CET`` / ``01.03.2026 10:30:00 CET``; an unreadable stored value is shown as stored."""
    value = stored_time(entry)
    return format_time(value, zone, fmt=TIME_FORMAT) if value else entry.at


def before_word(state: str) -> str:
    """The product's word for the stored API state (``Active`` -> ``subscribed``); — when not on the list."""
    return state_word(state) if state else NOT_ON_LIST


def actor_source(entry: AuditEntry) -> str:
    """Where the name came from, in the reader's language; "" for an entry type that does not record it."""
    value = getattr(entry, "actor_source", None)
    if value is None:
        return ""
    word = ACTOR_SOURCE_WORDS.get(ActorSource.parse(value))
    return t(word) if word else str(value)


def cell(entry: AuditEntry, field: str, zone: DisplayZone) -> str:
    if field == "at":
        return shown_time(entry, zone)
    if field == "state_before":
        return before_word(entry.state_before)
    if field == "actor_source":
        return actor_source(entry)
    if field == "action":
        return action_text(entry.action)
    if field == "result":
        return localise_result(entry.result)
    return str(getattr(entry, field, "") or "")


def has_actor_source(entries: Sequence[AuditEntry]) -> bool:
    return bool(entries) and hasattr(entries[0], "actor_source")


def table(entries: Sequence[AuditEntry], zone: DisplayZone) -> pd.DataFrame:
    """The rows as people read them, in the columns of :data:`COLUMNS`."""
    columns = [c for c in COLUMNS if c.field != "actor_source" or has_actor_source(entries)]
    return pd.DataFrame([{c.heading(): cell(e, c.field, zone) for c in columns} for e in entries],
                        columns=[c.heading() for c in columns])


def column_config(frame: pd.DataFrame) -> dict[str, ColumnConfig]:
    widths = {c.heading(): c.width for c in COLUMNS}
    return {label: st.column_config.TextColumn(label, width=widths[label]) for label in frame.columns}


def query_days(since: date | None, until: date | None) -> tuple[date | None, date | None]:
    """The UTC days to ask the log for: one more each side, so every row of the display zone's days
    is among them (zones are at most 14 hours from UTC); :func:`in_days` then keeps the right ones."""
    return (since - timedelta(days=1) if since else None, until + timedelta(days=1) if until else None)


def in_days(entry: AuditEntry, since: date | None, until: date | None, zone: DisplayZone) -> bool:
    """Is the row's time on a day from ``since`` to ``until`` (inclusive) in the display zone?"""
    if since is None and until is None:
        return True
    local = localise(stored_time(entry), zone)
    if local is None:
        return True  # an unreadable time is kept: the UTC query already matched it
    day = local.date()
    return (since is None or day >= since) and (until is None or day <= until)


def selected_index(rows: Sequence[object], count: int) -> int | None:
    """The row the person selected in the table (a position in the rows shown), or None."""
    if not rows:
        return None
    index = rows[0]
    return index if isinstance(index, int) and 0 <= index < count else None


def _value_markdown(text: str) -> str:
    """A value as literal markdown, its own line breaks kept (each line escaped)."""
    lines = [md_escape(line) for line in text.splitlines()] or [""]
    return "  \n".join(lines) if any(lines) else "*" + t("(empty)") + "*"


def detail_values(entry: AuditEntry, zone: DisplayZone) -> list[tuple[str, str]]:
    """(label, text) of every field of the row, as the detail view shows them."""
    out: list[tuple[str, str]] = []
    for field, label in DETAIL_FIELDS:
        if field == "actor_source" and not hasattr(entry, "actor_source"):
            continue
        if field == "at":
            value = stored_time(entry)
            text = shown_time(entry, zone)
            if value is not None and zone.source is not ZoneSource.UTC:
                text = t("{time} ({utc_time}, as stored)", time=text,
                         utc_time=format_time(value, UTC_ZONE, fmt=TIME_FORMAT))
        elif field == "state_before":
            text = before_word(entry.state_before)
            if entry.state_before in STATE_STYLES:
                text = t("{word} (API state: {api_state})", word=text, api_state=entry.state_before)
            elif not entry.state_before:
                text = t("{word} (not on the list)", word=text)
        elif field == "plan_token" and not entry.plan_token:
            continue
        else:
            text = cell(entry, field, zone)
        out.append((t(label), text))
    return out


def render_detail(entry: AuditEntry, zone: DisplayZone) -> None:
    with st.container(border=True, key="audit_detail"):
        st.markdown("**" + t("The whole row: {email}, {list}", email=md_escape(entry.email),
                             list=md_escape(entry.list_name)) + "**")
        for label, text in detail_values(entry, zone):
            left, right = st.columns([1, 5])
            left.markdown(f"**{label}**")
            right.markdown(_value_markdown(text))


def render_rows(entries: Sequence[AuditEntry], choice: ZoneChoice) -> None:
    """The table (one row selectable) and, when a row is selected, the whole of it."""
    frame = table(entries, choice.zone)
    event = st.dataframe(frame, hide_index=True, key=TABLE_KEY, on_select="rerun", selection_mode="single-row",
                         column_config=column_config(frame), row_height=ROW_HEIGHT)
    index = selected_index(list(event.selection.rows), len(entries))
    if index is None:
        st.caption(t("Select a row (the box at its left) to read it whole."))
        return
    render_detail(entries[index], choice.zone)


def filter_days(entries: Iterable[AuditEntry], since: date | None, until: date | None,
                zone: DisplayZone) -> list[AuditEntry]:
    return [e for e in entries if in_days(e, since, until, zone)]
