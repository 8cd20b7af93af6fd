"""The Lookup page: addresses in, one tab per address out (product.md cases 1-5).

State lives in ``st.session_state`` so that reruns caused by clicks elsewhere (a tab, a
dialog, the sidebar) never refetch: a lookup runs only when the set of addresses changes, on
"Try again" after a failure, or for one address when its Refresh button is pressed. Every
string that came from a person or the API goes through ``md_escape`` (or into a dataframe
cell) before Streamlit sees it, so a list name is never markup and an address in a tab label
is never a mailto: link that would swallow the click selecting the tab.

The address box is a chat-style input (``st.chat_input`` drawn inline): Enter looks the
addresses up, Shift+Enter starts a new line, and a pasted list of lines stays a list. What is
being looked up lives in :data:`TEXT_KEY`; after each lookup the box is given that text back,
so it can be edited and sent again. Every time on the page is in one zone, named beside it
(:class:`cmlib.presenters.TimeDisplay`).

Every word goes through :func:`cmlib.i18n.t` in the session's language (``ui.language``); the
presenters say the facts in it too, and values from Campaign Monitor are shown as they are.
"""
from __future__ import annotations

import contextlib
import importlib
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from datetime import UTC, datetime

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from cmlib.breaker import not_answering
from cmlib.emails import ParsedInput, parse_addresses
from cmlib.emails import linked_addresses as emails_in_link
from cmlib.errors import AuthenticationError, CMError, ConfigurationError, RateLimitedError, TransportError, describe
from cmlib.i18n import N_, nt, t
from cmlib.lookup import CASE_NO_CAMPAIGNS, CASE_NO_LISTS, ListStatus, Problem, Profile
from cmlib.presenters import (
    TimeDisplay,
    activity_figures,
    as_of,
    list_facts,
    state_reason,
    state_summary,
    suppression_notice,
)
from cmlib.redraw import DrawPacer
from cmlib.runtime import Connection
from cmlib.sandbox.demo import DEMO_CUSTOMERS
from cmlib.timezones import parse_cm_time_zone
from ui import a11y
from ui.badges import badge_md, state_badge_md
from ui.campaigns_html import TABLE_CSS, campaigns_table_html, figures_html
from ui.connection import get_connection
from ui.display_zone import browser_time_zone, zone_choice
from ui.prefetch import page_lookup
from ui.sidebar import settings_link
from ui.state import request_refresh, take_refresh
from ui.subscriptions import subscription_entry
from ui.text import md_escape

# A markdown hard line break: the lines of one caption.
LINE_BREAK = "  \n"

INPUT_KEY = "lookup.input"  # prefix of the chat-style input's widget key (Enter submits), see _box_key
BOX_KEY = "lookup.box"  # which drawing of the box this is (a new one after each lookup)
TEXT_KEY = "lookup.text"  # the addresses being looked up; survives visits to other pages (widget keys do not)
LINKED_KEY = "lookup.linked"  # the ?email= list last seen in, or written to, the URL
RESULTS_KEY = "lookup.results"
RETRY_KEY = "lookup.retry"  # "Try again" after a failed lookup (read once)
FOCUS_KEY = "lookup.focus"  # address whose tab the tab bar selects when its labels change
CAMPAIGNS_SHOWN = 3
MAX_ADDRESSES = 20  # one customer; a longer list belongs on the Bulk page
# What a first lookup imports: the address validator (~50 ms, cmlib.emails loads it on first use).
# (No pandas: the page draws no data grid, see ui.campaigns_html.)
WARM_MODULES = ("email_validator",)
_warm_lock = threading.Lock()
_warm_started = False


@dataclass
class Results:
    """What this session looked up last, for which connection."""

    connection: tuple
    keys: tuple[str, ...] = ()
    profiles: dict[str, Profile] = field(default_factory=dict)
    failure: BaseException | None = None


# --------------------------------------------------------------------------- callbacks
def _request_retry() -> None:
    st.session_state[RETRY_KEY] = True


# --------------------------------------------------------------------------- input
def linked_addresses() -> list[str]:
    """Addresses from this page's ``?email=`` link (:func:`cmlib.emails.linked_addresses`)."""
    return emails_in_link(st.query_params.get_all("email"))


def _box_key() -> str:
    """The box's widget key. It changes with every lookup: a chat input given text after it
    was drawn keeps its one-line height (a pasted column would show only its first line),
    while a new box is drawn as tall as its text."""
    return f"{INPUT_KEY}.{st.session_state.get(BOX_KEY, 0)}"


def _set_text(text: str) -> None:
    """Look up ``text`` and show it in a new box (callbacks, or before the box is drawn)."""
    st.session_state[TEXT_KEY] = text
    st.session_state[BOX_KEY] = st.session_state.get(BOX_KEY, 0) + 1
    st.session_state[_box_key()] = text  # a chat input takes a str here as text to show, once


def _follow_link() -> None:
    """A new ?email= link becomes the lookup (before the box exists, as Streamlit requires); back
    from another page, the box shows the current lookup again."""
    linked = linked_addresses()
    if linked and linked != st.session_state.get(LINKED_KEY):
        st.session_state[LINKED_KEY] = linked
        _set_text("\n".join(linked))
    elif _box_key() not in st.session_state and st.session_state.get(TEXT_KEY):
        st.session_state[_box_key()] = st.session_state[TEXT_KEY]


def _update_link(emails: list[str]) -> None:
    """The URL follows the current lookup, so it can be pasted into a ticket."""
    if st.query_params.get_all("email") != emails:  # also rewrites "a,b" links as ?email=a&email=b
        if emails:
            st.query_params["email"] = emails
        elif "email" in st.query_params:
            del st.query_params["email"]
    st.session_state[LINKED_KEY] = emails


def _on_submit(key: str) -> None:
    """Enter (or the send arrow) in the box: its text is the new lookup, and stays in the box."""
    value = st.session_state.get(key)
    if isinstance(value, str):
        _set_text(value)


HELP = N_("Enter looks the addresses up; Shift+Enter starts a new line. Separate addresses with commas, "
           "spaces, semicolons or new lines (a pasted column works); “Name <address>” works too.")
PLACEHOLDER_EXAMPLE = "anna@example.com, Ivan <ivan@example.com>"
# What each demo customer shows, in the person's language (the sandbox's own descriptions, in
# cmlib.sandbox.demo, are the README's English and name the API's states).
DEMO_HELP = {
    "no_list": N_("On no list of the main client: the lookup offers to add them."),
    "never_mailed": N_("Joined a day ago: subscribed to one list, pending on another (confirmed opt-in); no "
                       "campaign received yet, so Lists only."),
    "with_campaigns": N_("Subscribed to three lists for over a year; many campaigns with opens and clicks; "
                         "has custom fields."),
    "three_addresses": N_("One person, three addresses: subscribed everywhere; unsubscribed from two lists; "
                          "bounced on three lists and deleted from one."),
    "plus_sign": N_("A “+” in the address: subscribed to two lists, with campaigns."),
    "all_lists_unsubscribed": N_("Unsubscribed via a campaign on a list set to “all client lists”, so "
                                 "unsubscribed from every list at the same moment."),
    "html_list_name": N_("On a list whose name holds HTML and markdown characters: shown as text."),
    "suppressed": N_("On the client's suppression list and on no list: subscribing needs Resubscribe."),
    "mixed_case": N_("Stored with capitals; any casing finds it."),
    "other_client_only": N_("Only on the other client's lists: on no list of the main client."),
}


def _input_form() -> ParsedInput:
    with st.container(key="lookup-box"):  # inside a container: drawn here, not pinned to the bottom
        with st.container(horizontal=True, vertical_alignment="bottom", gap="small"):
            st.markdown("**" + t("Email addresses") + "**", width="content")
            if st.session_state.get(TEXT_KEY):
                st.button(t("Clear"), key="lookup.clear", type="tertiary", icon=":material/close:",
                          on_click=_set_text, args=("",), help=t("Empty the box and the lookup."))
        st.chat_input(t("{example} — one or more addresses of one customer", example=PLACEHOLDER_EXAMPLE),
                      key=_box_key(), on_submit=_on_submit, args=(_box_key(),))
        st.caption(md_escape(t(HELP), links=False))
    return parse_addresses(st.session_state.get(TEXT_KEY) or "")


def _demo_examples(conn: Connection | None, expanded: bool) -> None:
    """In demo mode only: the sandbox's demo customers, each one click away (README's table)."""
    if conn is None or not conn.is_demo:
        return
    with (st.expander(t("Demo customers: one click looks one up"), expanded=expanded, icon=":material/science:"),
          st.container(horizontal=True, gap="small")):
        for case, addresses in DEMO_CUSTOMERS.items():
            first = md_escape(addresses[0], links=False)
            label = t("{address} + {count} more", address=first, count=len(addresses) - 1) if len(addresses) > 1 \
                else first
            about = t(DEMO_HELP[case]) if case in DEMO_HELP else addresses.description
            st.button(label, key=f"lookup.demo.{case}", on_click=_set_text, args=("\n".join(addresses),),
                      help=md_escape(about, links=False))


def _input_feedback(parsed: ParsedInput) -> None:
    if parsed.invalid:
        empty = t("(empty)")
        lines = [f"- **{md_escape(bad.text) or empty}**: {md_escape(bad.reason)}" for bad in parsed.invalid]
        head = nt("{n} address was skipped:", "{n} addresses were skipped:", len(parsed.invalid))
        st.warning(head + "\n\n" + "\n".join(lines), icon=":material/error:")
    if parsed.duplicates:
        st.caption(t("Looked up once (repeated): {addresses}",
                     addresses=", ".join(md_escape(d) for d in parsed.duplicates)))


# --------------------------------------------------------------------------- first paint
def _import_warm_modules() -> None:
    for name in WARM_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def warm_up(conn: Connection | None) -> None:
    """Import what a first lookup needs (:data:`WARM_MODULES`) on the connection's pool, once per
    process: after the first paint, or while a first lookup waits on the network, so neither the
    paint nor the lookup pays for it. Best effort: a closed connection just skips it.
    """
    global _warm_started
    if conn is None or all(name in sys.modules for name in WARM_MODULES):
        return
    with _warm_lock:
        if _warm_started:
            return
        _warm_started = True
    with contextlib.suppress(ConfigurationError, RuntimeError):  # closed connection / pool shut down
        conn.executor.submit(_import_warm_modules)


@dataclass
class Stage:
    """Where the page draws a lookup: its status line, and the body (tabs, or the failure) that
    is drawn at once with a placeholder per address and filled as each address arrives."""

    status: DeltaGenerator
    body: DeltaGenerator


def _draw_preview(stage: Stage, conn: Connection, emails: list[str], arrived: dict[str, Profile]) -> None:
    """The tabs while a lookup runs: the addresses that arrived, read-only (their buttons come
    with the finished page, drawn once), the others a placeholder."""
    times, zone_note = display_times(conn) if arrived else (TimeDisplay(), "")  # zone read in the first wave
    labels = [tab_label(arrived[e.lower()]) if e.lower() in arrived else f"{md_escape(e)} · …" for e in emails]
    with stage.body.container():
        for email, tab in zip(emails, st.tabs(labels), strict=True):
            with tab:
                profile = arrived.get(email.lower())
                if profile is None:
                    st.caption(":material/hourglass_top: " + t("Looking up {email}…", email=md_escape(email)))
                else:
                    render_profile(conn, profile, times, zone_note, interactive=False)


# --------------------------------------------------------------------------- fetching
def _connection_identity(conn: Connection) -> tuple:
    return (conn.credentials.source, conn.client_id, conn.credentials.api_url, id(conn))


def _fetch(conn: Connection, emails: list[str], fresh: list[str], stage: Stage,
           preview: Callable[[list[Profile]], None] | None = None) -> list[Profile]:
    """lookup_many on the connection's pool while the page says what it is waiting for, and
    hands each address to ``preview`` as it arrives (a new lookup; a refresh of one tab does not).

    The client retries 429s itself; when it does, the status line says so instead of looking
    stuck, and likewise when Campaign Monitor stops answering (the client's breaker opened; the
    lookup then ends within its deadline). Raises what lookup_many raises (AuthenticationError;
    anything else is unexpected).
    """
    looking = looking_up(emails)
    started = datetime.now(UTC)
    # On the connection's pool (which the connection owns and closes), not a thread per lookup.
    arrived: queue.SimpleQueue[Profile | None] = queue.SimpleQueue()  # None: the lookup ended
    # after a deep link's early lookup of the same addresses, if one runs (ui.prefetch)
    job = conn.executor.submit(page_lookup, conn, emails, fresh,
                               on_profile=arrived.put if preview is not None else None)
    job.add_done_callback(lambda _: arrived.put(None))  # so the wait below ends with it, not 50 ms later
    waiting_for = len(emails)
    warm_up(conn)  # while the lookup waits on the network
    # A plain line, not st.status: that element sleeps 50 ms when it opens and 50 ms when it
    # closes (a frontend workaround in Streamlit), a tenth of a second on every lookup.
    slot = stage.status
    _status_line(slot, looking)
    limited = silent = False
    breaker = getattr(conn.client, "breaker", None)
    pacer = DrawPacer()  # partial draws only once the wait is noticeable (cmlib.redraw says why)
    pending: list[Profile] = []  # arrived, not drawn yet
    while not job.done():
        if preview is None:
            wait_for([job], timeout=0.05)
        else:
            batch = _take(arrived, timeout=min(0.05, pacer.wait_left()) if pending else 0.05)
            pending += batch
            waiting_for -= len(batch)
            # when all are in, the finished page is drawn instead (at once: no preview of it first)
            if pending and waiting_for > 0 and not job.done() and pacer.due():
                preview(pending)
                pending = []
                pacer.drawn()
        last = conn.client.last_call
        if not limited and last is not None and last.status == 429 and last.at >= started:
            limited = True
            _status_line(slot, t("{looking} (Campaign Monitor is rate-limiting, retrying…)", looking=looking))
        if not silent and breaker is not None and breaker.status().is_open:
            silent = True
            _status_line(slot, f"{looking} ({not_answering(breaker.status().down_since).text()})")
    slot.empty()
    return job.result()  # raises what lookup_many raised


def _status_line(slot: DeltaGenerator, text: str) -> None:
    """What the page is waiting for, in the status slot (replacing what it said before)."""
    slot.caption(":material/progress_activity: " + text)


def looking_up(emails: list[str]) -> str:
    """``Looking up anna@example.com…`` / ``Looking up 3 addresses…`` (the address escaped)."""
    if len(emails) == 1:
        return t("Looking up {email}…", email=md_escape(emails[0]))
    return nt("Looking up {n} address…", "Looking up {n} addresses…", len(emails))


def _take(arrived: queue.SimpleQueue[Profile | None], timeout: float) -> list[Profile]:
    """What arrived: waits up to ``timeout`` for the first, then takes all that are there
    (``None``, the lookup's end, only ends the wait)."""
    try:
        got = [arrived.get(timeout=timeout)]
    except queue.Empty:
        return []
    while True:
        try:
            got.append(arrived.get_nowait())
        except queue.Empty:
            return [p for p in got if p is not None]


def _results_for(conn: Connection, emails: list[str], stage: Stage) -> Results:
    """The session's results for these addresses, fetching only what changed.

    A refresh also makes that address the tab bar's ``default``: the frontend falls back to the
    default tab when the selected tab's label changes (a new state summary), so this keeps the
    person on the tab they refreshed. The default then stays put on later reruns, because the
    frontend also re-selects when ``default`` itself changes.
    """
    ident = _connection_identity(conn)
    res: Results | None = st.session_state.get(RESULTS_KEY)
    if res is None or res.connection != ident:  # new session or new credentials
        res = Results(connection=ident)
        st.session_state[RESULTS_KEY] = res
    keys = tuple(e.lower() for e in emails)
    refresh = take_refresh(emails)  # Refresh buttons and the subscription dialog (ui.state)
    retry = st.session_state.pop(RETRY_KEY, False)

    if res.keys != keys or retry or (res.failure is None and any(k not in res.profiles for k in keys)):
        todo, fresh, refreshed = emails, [], None
    elif refresh and res.failure is None:
        todo, fresh, refreshed = refresh, refresh, refresh[0]
    else:
        return res

    res.keys = keys
    preview = None
    if refreshed is None:  # a new lookup: the tabs at once, each filled as its address arrives
        shown: dict[str, Profile] = {}

        def preview(batch: list[Profile]) -> None:
            shown.update((p.email.lower(), p) for p in batch)
            _draw_preview(stage, conn, emails, shown)

        _draw_preview(stage, conn, emails, shown)
    try:
        got = _fetch(conn, todo, fresh, stage, preview)
    except (CMError, OSError) as exc:  # OSError: the worker could not even reach the network stack
        res.failure = exc
        res.profiles = {}
        return res
    res.failure = None
    if refreshed:
        st.session_state[FOCUS_KEY] = refreshed.lower()
    else:  # a new lookup starts on its first tab
        res.profiles = {}
        st.session_state.pop(FOCUS_KEY, None)
    for p in got:
        res.profiles[p.email.lower()] = p
    return res


# --------------------------------------------------------------------------- page
def render_lookup_page() -> None:
    st.title(t("Customer lookup"))
    a11y.install()  # accessible names, focus back to the dialog's opener, the review announced
    st.html(TABLE_CSS)  # the campaigns tables' and figures' style, once (a style-only block takes no room)
    _follow_link()
    conn: Connection | None = None
    conn_error = ""
    try:
        conn = get_connection()
    except CMError as err:  # e.g. a configured API URL that cannot be used at all
        conn_error = describe(err)
    except OSError as err:  # the demo sandbox could not bind its loopback port
        conn_error = t("the demo sandbox could not start ({error})", error=type(err).__name__)
    parsed = _input_form()
    _input_feedback(parsed)
    emails = [a.email for a in parsed.valid]
    if len(emails) > MAX_ADDRESSES:
        st.warning(t("This page looks up one customer: the first {shown} of {total} addresses are shown. Use "
                     "**Bulk lookup** for a whole list of addresses.", shown=MAX_ADDRESSES, total=len(emails)),
                   icon=":material/group:")
        emails = emails[:MAX_ADDRESSES]
    _update_link(emails)
    _demo_examples(conn, expanded=not emails)
    if not emails:
        st.info(t("Enter one or more email addresses of a customer to see every list they are on, the last "
                  "emails they received and how they engage."), icon=":material/person_search:")
        warm_up(conn)  # after the first paint, for the first lookup
        return

    if conn is None:
        st.error(t("Cannot connect to Campaign Monitor: {reason}", reason=md_escape(conn_error)),
                 icon=":material/link_off:")
        settings_link()
        return

    stage = Stage(status=st.empty(), body=st.empty())
    res = _results_for(conn, emails, stage)
    with stage.body.container():  # replaces the placeholders a new lookup drew
        if res.failure is not None:
            _render_failure(res.failure)
            return
        profiles = [res.profiles[e.lower()] for e in emails]
        _outage_notice(conn, profiles)
        times, zone_note = display_times(conn)
        labels = [tab_label(p) for p in profiles]
        focus = st.session_state.get(FOCUS_KEY)
        default = next((lbl for p, lbl in zip(profiles, labels, strict=True) if p.email.lower() == focus), None)
        for tab, profile in zip(st.tabs(labels, default=default), profiles, strict=True):
            with tab:
                render_profile(conn, profile, times, zone_note)


def display_times(conn: Connection) -> tuple[TimeDisplay, str]:
    """One zone for every time on the page -- the browser's, else the client's, else UTC, as on
    every page (``ui.display_zone``) -- and the sentence saying which. The client's zone is read
    even when the browser names one: Campaign Monitor's zone-less dates are written in it
    (memoised by the lookup service, HTTP-cached underneath)."""
    browser = browser_time_zone()
    client_tz = conn.lookup_service().client_time_zone()
    choice = zone_choice(browser, client_tz)
    return TimeDisplay(choice.zone, parse_cm_time_zone(client_tz)), choice.explain()


def _outage_notice(conn: Connection, profiles: list[Profile]) -> None:
    """Said once above the tabs when parts failed because Campaign Monitor is not answering
    (the client's breaker is open), so nobody reads the failures as facts about the address."""
    breaker = getattr(conn.client, "breaker", None)
    if breaker is None:
        return
    status = breaker.status()
    hit = any(isinstance(pr.error, TransportError) for p in profiles for pr in p.all_problems())
    if not (status.is_open and hit):
        return
    st.error(md_escape(t("{outage}: the failures below are the outage's, not the address's. Nothing more is sent "
                         "until it answers a check again (every {seconds} s); press Refresh in a moment.",
                         outage=not_answering(status.down_since), seconds=float(breaker.probe_interval))),
             icon=":material/cloud_off:")


def tab_label(profile: Profile) -> str:
    """``anna@example.com · 3 active``, escaped so the address is text, not a mailto: link."""
    return f"{md_escape(profile.email)} · {md_escape(state_summary(profile))}"


def _render_failure(err: BaseException) -> None:
    """A failure of the whole lookup, said once, with the way out."""
    if isinstance(err, AuthenticationError):
        st.error(t("Campaign Monitor rejected the API key or client ID ({reason}). Check the connection in "
                   "Settings.", reason=md_escape(describe(err))), icon=":material/key_off:")
        settings_link(t("Open Settings"))
    elif isinstance(err, RateLimitedError):
        if err.reset_seconds:
            text = t("Campaign Monitor is rate-limiting requests right now and kept doing so after several "
                     "retries. Wait for about {seconds} s, then try again.", seconds=round(err.reset_seconds))
        else:
            text = t("Campaign Monitor is rate-limiting requests right now and kept doing so after several "
                     "retries. Wait for a moment, then try again.")
        st.warning(text, icon=":material/hourglass_top:")
    elif isinstance(err, CMError):
        st.error(t("The lookup failed: {reason}", reason=md_escape(describe(err))), icon=":material/error:")
    else:
        st.error(t("The lookup failed: {reason}", reason=md_escape(type(err).__name__)), icon=":material/error:")
    st.button(t("Try again"), key="lookup.try_again", icon=":material/refresh:", on_click=_request_retry)


# --------------------------------------------------------------------------- one address
def render_profile(conn: Connection, profile: Profile, times: TimeDisplay | None = None,
                   zone_note: str = "", *, interactive: bool = True) -> None:
    """One tab: what must be known before acting (suppression), actions and freshness, then the
    sections product.md asks for in this case. ``interactive=False`` while the lookup's other
    addresses still load: the same tab without its buttons (widgets are drawn once per run)."""
    times = times or TimeDisplay()
    if profile.suppression is not None and not profile.failed:
        st.warning(md_escape(suppression_notice(profile.email, profile.suppression, times)), icon=":material/block:")
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        if interactive:
            if not profile.failed:
                subscription_entry(conn, profile)  # "Manage subscriptions" / "Subscribe…" + its dialog
            st.button(t("Refresh"), key=f"lookup.refresh.{profile.email.lower()}", icon=":material/refresh:",
                      on_click=request_refresh, args=(profile.email,),
                      help=t("Fetch this address again from Campaign Monitor, bypassing the cache."))
        st.caption(md_escape(as_of(profile.fetched_at, times)), width="content", help=md_escape(zone_note) or None)

    _rate_limit_notice(profile, interactive)
    if profile.failed:
        for problem in profile.problems:
            _problem(problem)
        return
    for problem in profile.problems:  # e.g. the client's campaigns could not be loaded
        _problem(problem)

    if profile.case == CASE_NO_LISTS:
        if profile.suppression:
            text = t("**Not on any list.** {email} is not on any list of this client. Use **Subscribe to lists…** "
                     "above to add them (with Resubscribe: it is suppressed, see above).",
                     email=md_escape(profile.email))
        else:
            text = t("**Not on any list.** {email} is not on any list of this client. Use **Subscribe to lists…** "
                     "above to add them.", email=md_escape(profile.email))
        st.info(text, icon=":material/person_off:")
        return

    _lists_section(profile, times)
    if profile.case == CASE_NO_CAMPAIGNS:
        st.subheader(t("Campaigns"))
        st.info(t("No campaigns received yet."), icon=":material/mail:")
        return
    _campaigns_section(profile, times, zone_note)
    _activity_section(profile)


def _problem(problem: Problem) -> None:
    """A failed part, shown where it belongs: the address itself (error) or one piece (warning)."""
    if problem.where == "address":
        st.error(md_escape(problem.message), icon=":material/error:")
    else:
        st.warning(md_escape(problem.message), icon=":material/warning:")


def _rate_limit_notice(profile: Profile, interactive: bool = True) -> None:
    """Said once per tab when any part ran into 429s after the client's own retries."""
    limited = [p for p in profile.all_problems() if isinstance(p.error, RateLimitedError)]
    if not limited:
        return
    waits = [e.reset_seconds for p in limited if isinstance(e := p.error, RateLimitedError) and e.reset_seconds]
    wait = t("about {seconds} s", seconds=round(max(waits))) if waits else t("a few seconds")
    with st.container(horizontal=True, vertical_alignment="center"):
        st.warning(nt("Campaign Monitor is rate-limiting requests, so {n} part of this lookup could not be loaded "
                      "even after retrying. Wait {wait} and retry.",
                      "Campaign Monitor is rate-limiting requests, so {n} parts of this lookup could not be loaded "
                      "even after retrying. Wait {wait} and retry.", len(limited), wait=wait),
                   icon=":material/hourglass_top:")
        if interactive:
            st.button(t("Retry"), key=f"lookup.retry.{profile.email.lower()}", icon=":material/refresh:",
                      on_click=request_refresh, args=(profile.email,))


def _lists_section(profile: Profile, times: TimeDisplay) -> None:
    st.subheader(t("Lists"))
    for status in profile.lists:
        _list_card(status, times)


def _list_card(status: ListStatus, times: TimeDisplay) -> None:
    """One list: its name and badges as one line of markdown, its facts as one caption. Each
    Streamlit element is drawn by the browser on its own, and a card of a row, a name, badges and
    up to three captions was most of a three-address deep link's elements (issue 15)."""
    with st.container(border=True):
        st.markdown(list_heading(status))
        lines = [" · ".join(md_escape(f) for f in list_facts(status, times))]
        if status.unsubscribes_from_all:
            lines.append(t("This list is set to “all client lists”: an unsubscribe here removes the address from "
                           "every list of this client."))
        reason = state_reason(status, times)
        if reason:
            lines.append(t("Reason: {reason}", reason=md_escape(reason)))
        st.caption(LINE_BREAK.join(lines))
        for problem in status.problems:
            _problem(problem)


def list_heading(status: ListStatus) -> str:
    """``**Newsletter** :green-badge[subscribed]``, and the yellow warning badge on a list set to
    "all client lists". The name is escaped; stripped, since ``** name**`` would not be bold and
    an empty name would draw a rule (``****``)."""
    name = md_escape(status.list_name.strip()) or t("(unnamed list)")
    parts = [f"**{name}**", state_badge_md(status.state)]
    if status.unsubscribes_from_all:
        parts.append(badge_md(t("unsubscribes from ALL lists"), "yellow", ":material/warning:"))
    return " ".join(parts)


def _campaigns_section(profile: Profile, times: TimeDisplay, zone_note: str) -> None:
    st.subheader(t("Campaigns"))
    caption = last_emails_caption(profile)
    st.caption(caption)
    # A plain table, not a data grid: readable by a screen reader, copyable, and nothing for the
    # browser to load first (ui.campaigns_html). Its style is drawn once per page (TABLE_CSS).
    st.html(campaigns_table_html(profile, times, caption.rstrip("."), zone_note, CAMPAIGNS_SHOWN))


def last_emails_caption(profile: Profile) -> str:
    """``The last 3 of 12 emails received, newest first.`` (the panel says it too)."""
    shown = min(CAMPAIGNS_SHOWN, len(profile.campaigns))
    return nt("The last {shown} of {n} email received, newest first.",
              "The last {shown} of {n} emails received, newest first.", len(profile.campaigns), shown=shown)


def _activity_section(profile: Profile) -> None:
    st.subheader(t("Activity"))
    # One element, not five metrics in five columns (ui.campaigns_html says why).
    st.html(figures_html(activity_figures(profile.activity), t("Activity")))
