"""The helpdesk panel (``/panel``): one customer's Campaign Monitor card in a 360 px ticket sidebar.

A helpdesk builds the URL from a template: ``/panel?email=a@x.com&email=b@y.org`` (repeated or
comma-separated, exactly as the Lookup page reads it), usually with Streamlit's ``embed=true``
and ``operator=<agent name>``. The panel is the Lookup page's content cut to a narrow column,
not a second implementation: the same lookup (``Connection.lookup_service().lookup_many``), the
same presenters (``cmlib.presenters``) and the same subscription editor
(``ui.subscriptions.subscription_entry`` and its dialog). What differs is layout only:

* an address switcher (a radio: every address on its own line, its state summary beside it,
  wrapping instead of scrolling the way a tab bar does at 360 px);
* lists as one compact row each -- an expander whose label is the name and the coloured badge,
  the facts and the "why" (state date, unsubscribe/bounce event) inside, on demand;
* the last three campaigns as a plain HTML list a screen reader reads row by row (a data grid is
  a canvas, invisible to assistive technology), opened/clicked as icons with text alternatives,
  the web version linked only when it is http(s) (:func:`cmlib.presenters.safe_web_link`);
* activity as one line of text.

``embed=true`` hides what the app draws around every page (the sidebar and its arrow, the header,
the full demo notice -- app.py draws those before the page runs, so they are hidden with CSS
here) and the page's own title and address box; a small marker still says "demo" in demo mode.
Every string from a person or the API is escaped (``md_escape`` for markdown, ``html.escape``
for the campaigns' HTML) before Streamlit sees it. Every word of ours is in the session's language
(:func:`cmlib.i18n.t`, ``?lang=ru`` in the helpdesk's URL template), as on the Lookup page.
"""
from __future__ import annotations

import html
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from urllib.parse import urlencode

import streamlit as st

from cmlib.emails import parse_addresses
from cmlib.errors import AuthenticationError, CMError, describe
from cmlib.i18n import nt, t
from cmlib.lookup import CASE_NO_CAMPAIGNS, CASE_NO_LISTS, ListStatus, Profile
from cmlib.presenters import (
    TimeDisplay,
    activity_figures,
    as_of,
    list_facts,
    safe_web_link,
    state_reason,
    state_summary,
    suppression_summary,
)
from cmlib.runtime import Connection
from cmlib.states import state_style
from ui import a11y
from ui.campaigns_html import FLAG_CSS, flag_html, web_link_html
from ui.connection import get_connection
from ui.identity import use_link_operator
from ui.language import url_language
from ui.prefetch import page_lookup
from ui.profile import MAX_ADDRESSES, display_times, last_emails_caption, linked_addresses, looking_up
from ui.state import request_refresh, take_refresh
from ui.subscriptions import subscription_entry
from ui.text import md_escape

RESULTS_KEY = "panel.results"
ADDRESS_KEY = "panel.address"  # the switcher's widget key: the address shown
BOX_KEY = "panel.box"  # the address box (without embed=true only)
CAMPAIGNS_SHOWN = 3
DEMO_BADGE = ":orange-badge[:material/science: {label}]"

# embed=true: nothing of the app's frame. Streamlit's own embed mode already drops the toolbar;
# the sidebar, its arrow and the app's demo line are drawn by app.py, so they are hidden here.
_EMBED_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"], [class*="st-key-demo-banner"] {display: none !important;}
[data-testid="stMainBlockContainer"] {padding: 0.5rem 0.75rem 1rem !important;}
</style>"""
# Both modes: the campaigns list and long words (addresses, list names) wrap instead of overflowing.
_PANEL_CSS = """<style>
[class*="st-key-panel"] {overflow-wrap: anywhere;}
.cm-campaigns {list-style: none; margin: 0; padding: 0 !important;}
.cm-campaigns li {padding: 0.35rem 0; border-bottom: 1px solid #e2e8f0;}
.cm-campaigns .cm-subject {font-weight: 600; display: block;}
.cm-campaigns .cm-meta {font-size: 0.85rem; color: #475569;}
""" + FLAG_CSS + """
</style>"""


@dataclass
class PanelResults:
    """What this session's panel looked up last, for which connection."""

    connection: tuple
    keys: tuple[str, ...] = ()
    profiles: dict[str, Profile] = field(default_factory=dict)
    failure: BaseException | None = None


def is_embedded() -> bool:
    """Streamlit's ``embed=true``, as the helpdesk's iframe URL carries it. Streamlit keeps it out
    of ``st.query_params``; ``st.context.is_embedded`` is the one place that says it."""
    try:
        return bool(st.context.is_embedded)
    except Exception:  # no browser context (a bare run): not embedded
        return False


def dashboard_link(emails: list[str], lang: str | None = None) -> str:
    """The Lookup page with the same addresses, relative to the panel (works under a base path),
    in the language the panel's link asked for (``lang``: the helpdesk's ``?lang=``).

    Lookup is the default page, so a running server serves it at the app's root: ``/lookup``
    would answer "page not found" there."""
    return "./?" + urlencode([("email", e) for e in emails] + ([("lang", str(lang))] if lang else []))


# --------------------------------------------------------------------------- fetching
def _fetch(conn: Connection, emails: list[str], fresh: list[str]) -> list[Profile]:
    """The Lookup page's lookup, on the connection's pool, while a spinner says what it waits for."""
    job = conn.executor.submit(page_lookup, conn, emails, fresh)  # after a deep link's early lookup (ui.prefetch)
    with st.spinner(looking_up(emails)):
        while not job.done():
            wait_for([job], timeout=0.05)
    return job.result()


def _results_for(conn: Connection, emails: list[str]) -> PanelResults:
    """Fetch only when the addresses change, on "Refresh", or after the dialog wrote something."""
    ident = (conn.credentials.source, conn.client_id, conn.credentials.api_url, id(conn))
    res = st.session_state.get(RESULTS_KEY)
    if not isinstance(res, PanelResults) or res.connection != ident:
        res = PanelResults(connection=ident)
        st.session_state[RESULTS_KEY] = res
    keys = tuple(e.lower() for e in emails)
    refresh = take_refresh(emails)
    if res.keys != keys or res.failure is not None or any(k not in res.profiles for k in keys):
        todo, fresh = emails, []
    elif refresh:
        todo, fresh = refresh, refresh
    else:
        return res
    res.keys = keys
    try:
        got = _fetch(conn, todo, fresh)
    except (CMError, OSError) as exc:
        res.failure, res.profiles = exc, {}
        return res
    res.failure = None
    for p in got:
        res.profiles[p.email.lower()] = p
    return res


# --------------------------------------------------------------------------- page
def render_panel_page() -> None:
    """The whole panel: identity from the link, chrome, addresses, the active address's card."""
    use_link_operator(st.query_params.get("operator"))
    embedded = is_embedded()
    st.html(_PANEL_CSS + (_EMBED_CSS if embedded else ""))
    a11y.install()  # accessible names, focus back to the dialog's opener, the review announced
    conn: Connection | None = None
    conn_error = ""
    try:
        conn = get_connection()
    except CMError as err:
        conn_error = describe(err)
    except OSError as err:
        conn_error = t("the demo sandbox could not start ({error})", error=type(err).__name__)
    if embedded and conn is not None and conn.is_demo:
        st.markdown(demo_marker(), width="content")
    if not embedded:
        st.subheader(t("Helpdesk panel"))
        _address_box()

    parsed = parse_addresses("\n".join(linked_addresses()))
    emails = [a.email for a in parsed.valid][:MAX_ADDRESSES]
    for bad in parsed.invalid:
        st.caption(t("Skipped {text}: {reason}", text=md_escape(bad.text) or t("(empty)"),
                     reason=md_escape(bad.reason)))
    if not emails:
        st.info(t("No email address in the link: the helpdesk passes the requester's address as `?email=…`."),
                icon=":material/person_search:")
        return
    if conn is None:
        st.error(t("Cannot connect to Campaign Monitor: {reason}", reason=md_escape(conn_error)),
                 icon=":material/link_off:")
        return
    res = _results_for(conn, emails)
    if res.failure is not None:
        _failure(res.failure)
        return
    profiles = [res.profiles[e.lower()] for e in emails]
    times, zone_note = display_times(conn)
    profile = _switcher(profiles)
    with st.container(key="panel-card"):
        render_card(conn, profile, times, zone_note)
    link_text = md_escape(t("Open in the full dashboard"), brackets=True)
    st.markdown(f"[{link_text}]({dashboard_link(emails, url_language())})", width="content")


def demo_marker() -> str:
    """The small "Demo data" badge an embedded panel shows instead of the app's demo notice."""
    return DEMO_BADGE.format(label=t("Demo data")) + " " + t("sandbox customers")


def _on_box_change() -> None:
    text = st.session_state.get(BOX_KEY) or ""
    emails = [a.email for a in parse_addresses(text).valid]
    if emails:
        st.query_params["email"] = emails
    elif "email" in st.query_params:
        del st.query_params["email"]


def _address_box() -> None:
    """Outside a helpdesk only: type the addresses (the URL follows, to paste into a template)."""
    if BOX_KEY not in st.session_state:
        st.session_state[BOX_KEY] = ", ".join(linked_addresses())
    st.text_input(t("Email addresses"), key=BOX_KEY, on_change=_on_box_change,
                  placeholder="anna@example.com, ivan@example.com")


def _failure(err: BaseException) -> None:
    if isinstance(err, AuthenticationError):
        st.error(t("Campaign Monitor rejected the API key or client ID ({reason}).", reason=md_escape(describe(err))),
                 icon=":material/key_off:")
    else:
        st.error(t("The lookup failed: {reason}", reason=md_escape(describe(err))), icon=":material/error:")
    st.button(t("Try again"), key="panel.retry", icon=":material/refresh:")


def switcher_label(profile: Profile) -> str:
    """``anna@example.com · 3 subscribed``, escaped so the address is text, not a mailto: link."""
    return f"{md_escape(profile.email)} · {md_escape(state_summary(profile))}"


def _switcher(profiles: list[Profile]) -> Profile:
    """Every address on its own line with its short state summary; the chosen one is shown."""
    if len(profiles) == 1:
        st.markdown(f"**{switcher_label(profiles[0])}**")
        return profiles[0]
    by_key = {p.email.lower(): p for p in profiles}
    if st.session_state.get(ADDRESS_KEY) not in by_key:
        st.session_state[ADDRESS_KEY] = profiles[0].email.lower()
    chosen = st.radio(t("Address"), list(by_key), key=ADDRESS_KEY, format_func=lambda k: switcher_label(by_key[k]),
                      label_visibility="collapsed")
    return by_key.get(str(chosen), profiles[0])


# --------------------------------------------------------------------------- one address
def render_card(conn: Connection, profile: Profile, times: TimeDisplay, zone_note: str = "") -> None:
    """One address: suppression first, the actions, then lists, campaigns and activity."""
    if profile.suppression is not None and not profile.failed:
        st.warning(md_escape(t("Suppressed: {summary}.", summary=suppression_summary(profile.suppression, times))),
                   icon=":material/block:")
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if not profile.failed:
            subscription_entry(conn, profile)
        st.button(t("Refresh"), key=f"panel.refresh.{profile.email.lower()}", icon=":material/refresh:",
                  on_click=request_refresh, args=(profile.email,), type="tertiary",
                  help=t("Fetch this address again from Campaign Monitor, bypassing the cache."))
        st.caption(md_escape(as_of(profile.fetched_at, times)), width="content", help=md_escape(zone_note) or None)
    for problem in profile.all_problems() if profile.failed else profile.problems:
        st.warning(md_escape(problem.message), icon=":material/warning:")
    if profile.failed:
        return
    if profile.case == CASE_NO_LISTS:
        st.info(t("Not on any list of this client. Use **Subscribe to lists…** to add {email}.",
                  email=md_escape(profile.email)), icon=":material/person_off:")
        return
    st.markdown("**" + t("Lists") + "**")
    for status in profile.lists:
        list_row(status, times)
    if profile.case == CASE_NO_CAMPAIGNS:
        st.caption(t("No campaigns received yet."))
        return
    st.markdown("**" + t("Last campaigns") + "**")
    st.html(campaigns_html(profile, times))
    st.caption(md_escape(activity_line(profile)))


def badge_markdown(state: str | None) -> str:
    """The coloured state badge as a markdown directive (usable inside a label)."""
    style = state_style(state)
    word = md_escape(style.label(), brackets=True)
    return f":{style.badge}-badge[{word}]"


def list_row(status: ListStatus, times: TimeDisplay) -> None:
    """One list on one line -- name and badge -- with the facts and the "why" on demand."""
    name = md_escape(status.list_name.strip()) or t("(unnamed list)")
    label = f"{name} {badge_markdown(status.state)}"
    if status.unsubscribes_from_all:
        label += " :orange-badge[" + md_escape(t("all lists"), brackets=True) + "]"
    with st.expander(label):
        facts = list_facts(status, times)
        if facts:
            st.caption(" · ".join(md_escape(f) for f in facts))
        reason = state_reason(status, times)
        if reason:
            st.caption(t("Why: {reason}", reason=md_escape(reason)))
        if status.unsubscribes_from_all:
            st.caption(t("Set to “all client lists”: an unsubscribe here removes the address from every list of "
                         "this client."))
        for problem in status.problems:
            st.warning(md_escape(problem.message), icon=":material/warning:")
        if not facts and not reason and not status.problems:
            st.caption(t("Nothing more is recorded for this list."))


def campaigns_html(profile: Profile, times: TimeDisplay) -> str:
    """The last campaigns as an ordered list: subject, sent date (zone named), opened, clicked and
    the web version (a link only when it is http(s)). Every API string is HTML-escaped, and every
    word of ours too (a translation is text, never markup)."""
    opened, clicked = html.escape(t("Opened")), html.escape(t("Clicked"))
    rows = []
    for c in profile.last_campaigns(CAMPAIGNS_SHOWN):
        raw_subject = c.subject or c.name or t("(no subject)")
        subject = html.escape(raw_subject)
        sent = html.escape(t("Sent {when}", when=times.show(c.sent) or t("date unknown")))
        url = safe_web_link(c.web_version_url)
        web = ""
        if url:
            web = " · " + web_link_html(url, raw_subject, t("web version"))
        rows.append(f'<li><span class="cm-subject">{subject}</span><span class="cm-meta">{sent} · '
                    f"{flag_html(c.opened, opened)} · {flag_html(c.clicked, clicked)}{web}</span></li>")
    label = last_emails_caption(profile).rstrip(".")
    return (f'<ol class="cm-campaigns" aria-label="{html.escape(label, quote=True)}">'
            + "".join(rows) + "</ol>")


def activity_line(profile: Profile) -> str:
    """``12 received · open rate 58% · click rate 25% · avg opens 1.2 · avg clicks 0.3``."""
    a = profile.activity
    _received, opens, clicks, avg_opens, avg_clicks = activity_figures(a)
    return nt("{n} received · open rate {open_rate} · click rate {click_rate} · avg opens {avg_opens} · "
              "avg clicks {avg_clicks}",
              "{n} received · open rate {open_rate} · click rate {click_rate} · avg opens {avg_opens} · "
              "avg clicks {avg_clicks}", a.received, open_rate=opens.value, click_rate=clicks.value,
              avg_opens=avg_opens.value, avg_clicks=avg_clicks.value)
