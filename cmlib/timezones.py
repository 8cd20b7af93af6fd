"""One display time zone for every timestamp a person reads, and its name beside each time.

Campaign Monitor's dates carry no zone: they are in the client's time zone, which the API names
as text such as ``"(GMT+03:00) Moscow, St. Petersburg"``. Our own timestamps (as of, audit
rows) are UTC. A support lead should never have to guess, so every time is converted to one
zone — the browser's when Streamlit knows it, else the client's, else UTC — and shown with the
zone's name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .i18n import Language, format_datetime, resolve

_CM_ZONE = re.compile(r"^\s*\(\s*(?:GMT|UTC)\s*(?:([+-])\s*(\d{1,2})(?::?(\d{2}))?)?\s*\)")


class ZoneSource(StrEnum):
    BROWSER = "browser"
    CLIENT = "client"
    UTC = "utc"


@dataclass(frozen=True)
class DisplayZone:
    tz: tzinfo
    source: ZoneSource

    def label(self, at: datetime | None = None) -> str:
        """The zone's name at a moment: ``MSK``, ``CET``/``CEST``, ``UTC``, or ``UTC+03:00``."""
        moment = (at or datetime.now(UTC)).astimezone(self.tz)
        abbrev = moment.tzname() or ""
        if abbrev.isalpha():
            return abbrev
        offset = moment.utcoffset() or timedelta(0)
        return offset_name(offset)


UTC_ZONE = DisplayZone(UTC, ZoneSource.UTC)


def offset_name(offset: timedelta) -> str:
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"UTC{sign}{h:02d}:{m:02d}"


def parse_cm_time_zone(text: str | None) -> tzinfo | None:
    """``"(GMT+03:00) Moscow"`` -> a fixed UTC+03:00 zone; ``"(GMT) Dublin"`` -> UTC; else None.

    Campaign Monitor names zones by their standard offset only, so daylight saving time is not
    known; the offset is what its dates are written in.
    """
    m = _CM_ZONE.match(text or "")
    if not m:
        return None
    if not m.group(1):
        return UTC
    minutes = int(m.group(2)) * 60 + int(m.group(3) or 0)
    if minutes >= 24 * 60:
        return None
    offset = timedelta(minutes=minutes if m.group(1) == "+" else -minutes)
    return timezone(offset, offset_name(offset)) if offset else UTC


def browser_zone(name: str | None) -> tzinfo | None:
    """An IANA name as the browser reports it (``st.context.timezone``), or None if unknown."""
    if not name or not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def choose_zone(browser: str | None = None, client_time_zone: str | None = None) -> DisplayZone:
    """The browser's zone, else the client's from Campaign Monitor, else UTC."""
    tz = browser_zone(browser)
    if tz is not None:
        return DisplayZone(tz, ZoneSource.BROWSER)
    tz = parse_cm_time_zone(client_time_zone)
    if tz is not None:
        return DisplayZone(tz, ZoneSource.CLIENT)
    return UTC_ZONE


def localise(value: datetime | None, zone: DisplayZone, *, cm_zone: tzinfo | None = None) -> datetime | None:
    """An aware time in the display zone. Naive values are Campaign Monitor's, in ``cm_zone``
    (the client's zone; UTC when unknown)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=cm_zone or UTC)
    return value.astimezone(zone.tz)


DEFAULT_FORMAT = "%Y-%m-%d %H:%M"
_DATE_DIRECTIVES = ("%Y", "%y", "%m", "%d", "%b", "%B", "%a", "%A", "%x", "%c", "%F", "%D")


def format_time(value: datetime | None, zone: DisplayZone, *, cm_zone: tzinfo | None = None,
                fmt: str = DEFAULT_FORMAT, lang: Language | str | None = None) -> str:
    """``"2026-11-25 16:00 MSK"`` / ``"25.11.2026 16:00 MSK"``: the time in the display zone, with
    the zone named, in ``lang`` (default: the current language).

    ``fmt`` is the English ``strftime`` pattern (English output is unchanged by translation: links,
    tests and habits rely on it). Another language writes the date its own way
    (:func:`cmlib.i18n.format_datetime`) with the precision ``fmt`` asks for: seconds when it shows
    them, the time alone when it has no date. The zone's name is the same in every language."""
    local = localise(value, zone, cm_zone=cm_zone)
    if local is None:
        return ""
    language = resolve(lang)
    if language is Language.EN or not any(d in fmt for d in _DATE_DIRECTIVES):
        shown = local.strftime(fmt)
    else:
        shown = format_datetime(local, lang=language, seconds="%S" in fmt or "%T" in fmt)
    return f"{shown} {zone.label(local)}"
