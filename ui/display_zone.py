"""The one time zone this session's pages show times in, and a sentence saying which and why.

The choice itself is :func:`cmlib.timezones.choose_zone`: the browser's zone when Streamlit knows
it (``st.context.timezone``), else the Campaign Monitor client's zone, else UTC. This module
only gathers those two inputs for a page. The client's zone costs an API call (usually answered
from the HTTP cache), so it is asked for only when the browser did not name a zone, and a
failure to ask is no error: times are then shown in UTC, still named.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import streamlit as st

from cmlib.errors import logged
from cmlib.i18n import t
from cmlib.runtime import Connection
from cmlib.timezones import DisplayZone, ZoneSource, choose_zone

log = logging.getLogger("ui.display_zone")


@dataclass(frozen=True)
class ZoneChoice:
    """The display zone and what it was chosen from (for the sentence that explains it)."""

    zone: DisplayZone
    browser: str | None  # the IANA name the browser reported, if any
    client_time_zone: str | None  # Campaign Monitor's text, e.g. "(GMT+03:00) Moscow", if asked

    def explain(self) -> str:
        """"Times are shown in Europe/Berlin (CET), your browser's time zone." and the like, in the
        current language (the zone's and Campaign Monitor's names as they are)."""
        zone = self.zone
        label = zone.label()
        if zone.source is ZoneSource.BROWSER:
            name = zone.tz.key if isinstance(zone.tz, ZoneInfo) else (self.browser or label)
            shown = name if name == label else f"{name} ({label})"
            return t("Times are shown in {zone}, your browser's time zone.", zone=shown)
        if zone.source is ZoneSource.CLIENT:
            return t("Times are shown in {zone}, the Campaign Monitor client's time zone “{client_zone}” "
                     "(your browser did not report one).", zone=label, client_zone=self.client_time_zone)
        return t("Times are shown in UTC (neither your browser nor Campaign Monitor named a time zone).")


def browser_time_zone() -> str | None:
    """The IANA name the browser reported to Streamlit, or None (no request context, old browser)."""
    try:
        name = st.context.timezone
    except Exception:  # no script run context (a bare import) must not break a page
        return None
    return name if isinstance(name, str) and name.strip() else None


def client_time_zone(conn: Connection | None) -> str | None:
    """The client's zone as Campaign Monitor names it, or None when it cannot be had right now.

    Read through the connection's lookup service, the one place that keeps it (under a deadline,
    memoised, HTTP-cached underneath), so every page uses the same answer."""
    if conn is None or not conn.client_id:
        return None
    try:
        return conn.lookup_service().client_time_zone() or None
    except Exception as exc:  # an outage only costs the fallback: times are then shown in UTC, named
        log.info("client time zone unavailable: %s", logged(exc))
        return None


def zone_choice(browser: str | None, client_tz: str | None) -> ZoneChoice:
    """The choice for known inputs (e.g. a client just tested on the Settings page)."""
    zone = choose_zone(browser=browser, client_time_zone=client_tz)
    return ZoneChoice(zone, browser, client_tz if zone.source is ZoneSource.CLIENT else None)


def display_zone(conn: Connection | None) -> ZoneChoice:
    """The zone to show this session's times in: the browser's, else the client's, else UTC."""
    browser = browser_time_zone()
    if choose_zone(browser=browser).source is ZoneSource.BROWSER:
        return zone_choice(browser, None)  # the client's zone is not needed: no API call
    return zone_choice(browser, client_time_zone(conn))

