"""The Settings page's view: credentials, the HTTP cache, API health, and who may change them.

Only layout and callbacks live here: checks and computations live in ``cmlib.diagnostics`` (test connection,
health, cache info), ``cmlib.config`` (where credentials come from, the 0600 settings file)
and ``cmlib.access`` (the admin password). Buttons act in ``on_click`` callbacks because only
there may a widget's value be changed, and the password field must be empty after saving: a
saved key never goes back to the browser, only its last four characters. The credential fields
and their buttons are one ``st.form``, so a click carries exactly what the fields show however
focus moved before it, and the Tab order runs field to field (help is written out as captions:
help icons, heading anchors and the key's show-password eye would each be a Tab stop).

The saved key is only ever sent to the URL it was saved with (:func:`cmlib.config.choose_key`):
leaving the key field empty and pointing the URL elsewhere is refused before anything is sent,
and every URL goes through :mod:`cmlib.urls` first (no metadata addresses, no plain http to
other hosts, no 5,000-character traceback).
"""
from __future__ import annotations

import hashlib
import logging
import os

import streamlit as st

from cmlib import config, diagnostics, runtime, urls
from cmlib import lazy_text as later
from cmlib.cache import DEFAULT_EXPIRY
from cmlib.diagnostics import ConnectionReport, Problem
from cmlib.errors import CMError
from cmlib.i18n import N_, format_number, format_percent, t
from cmlib.lazy_text import text_of
from cmlib.timezones import format_time
from ui import access
from ui.connection import get_connection, reset_connections
from ui.display_zone import browser_time_zone, display_zone, zone_choice
from ui.identity import current_user
from ui.text import md_escape, plain

log = logging.getLogger("cmapp.settings")

K_KEY = "settings_api_key"
K_CLIENT_ID = "settings_client_id"
K_CLIENT_CHOICE = "settings_client_choice"
K_URL = "settings_api_url"
K_CLIENTS = "_settings_clients"  # {"fp": key fingerprint, "clients": [(id, name), ...]}
K_REPORT = "_settings_report"
K_FLASH = "_settings_flash"
K_CONFIRM_FORGET = "_settings_confirm_forget"
K_HEALTH = "_settings_health"
K_CACHE_FLASH = "_settings_cache_flash"
CREDENTIALS_FORM = "settings_credentials"
CHECKED_FORMAT = "%Y-%m-%d %H:%M:%S"

# Streamlit draws an eye button ("Show password") inside a password field. In the key field it
# would be the Tab stop between the key and the next field, and it would put a credential on
# screen that this page otherwise never shows again: Test connection is how a pasted key is
# checked. Hidden with CSS (display: none also takes it out of the Tab order); scoped to this one
# field by the class Streamlit derives from the widget key.
_HIDE_KEY_REVEAL = f"<style>.st-key-{K_KEY} button {{ display: none !important; }}</style>"

# A save is refused when the API said the credentials are wrong; it goes ahead (with a
# warning) when the API could not be asked, so an outage does not block fixing a setting.
REFUSE_SAVE = {Problem.MISSING_KEY, Problem.MISSING_CLIENT_ID, Problem.BAD_URL, Problem.KEY_NOT_FOR_URL,
               Problem.BAD_AUTH_HEADER,
               Problem.INVALID_KEY, Problem.CLIENT_NOT_FOUND, Problem.OAUTH, Problem.AUTH_OTHER,
               Problem.UNEXPECTED}

# Message ids, translated where shown.
SOURCE_LABELS: dict[config.CredentialSource, str] = {
    config.CredentialSource.ENV: N_("environment variables (CM_API_KEY, CM_CLIENT_ID, CM_API_URL)"),
    config.CredentialSource.SECRETS: N_("secrets.toml (the [campaign_monitor] section of .streamlit/secrets.toml)"),
}

EXPIRY_LABELS = {
    "clients": N_("Clients and client details"),
    "lists": N_("Lists of the client"),
    "list_details": N_("List settings"),
    "campaigns": N_("Sent campaigns"),
    "suppressionlist": N_("Suppression list"),
    "listsforemail": N_("Lists of an address"),
    "subscriber": N_("Subscriber details"),
    "history": N_("Subscriber history"),
}


def _fingerprint(key: str) -> str:
    return hashlib.sha256(b"settings-clients\0" + key.encode("utf-8")).hexdigest()


def _saved() -> dict:
    return config.SettingsStore().load()


def _key_choice(url: str | None = None) -> config.KeyChoice:
    """The key typed in the field, else the saved one -- but only for the URL it was saved with."""
    return config.choose_key(st.session_state.get(K_KEY), _entered_url() if url is None else url,
                             config.SettingsStore().saved_credentials())


def _entered_key() -> str:
    """The key that may be sent to the entered URL ("" when none may)."""
    return _key_choice().api_key


def _known_clients(key: str) -> list[tuple[str, str]]:
    known = st.session_state.get(K_CLIENTS)
    if key and known and known.get("fp") == _fingerprint(key):
        return list(known["clients"])
    return []


def _entered_client(key: str) -> str:
    if _known_clients(key):
        return (st.session_state.get(K_CLIENT_CHOICE) or "").strip()
    return (st.session_state.get(K_CLIENT_ID) or "").strip()


def _entered_url() -> str:
    return (st.session_state.get(K_URL) or "").strip() or config.DEFAULT_API_URL


def _remember(report: ConnectionReport, key: str) -> None:
    """Keep what the check learnt: the clients the key sees (for the picker) and the result."""
    st.session_state[K_REPORT] = report
    if report.clients:
        ids = [c.client_id for c in report.clients]
        st.session_state[K_CLIENTS] = {"fp": _fingerprint(key),
                                       "clients": [(c.client_id, c.name) for c in report.clients]}
        wanted = report.client_id or (st.session_state.get(K_CLIENT_ID) or "").strip()
        if wanted in ids:
            st.session_state[K_CLIENT_CHOICE] = wanted
        else:
            st.session_state.pop(K_CLIENT_CHOICE, None)
    elif report.problem in (Problem.INVALID_KEY, Problem.BAD_AUTH_HEADER):
        st.session_state.pop(K_CLIENTS, None)
    if report.client_id:
        st.session_state[K_CLIENT_ID] = report.client_id


def _check_before_sending(url: str) -> config.KeyChoice | ConnectionReport:
    """The usable key to send to ``url``, or the report saying why nothing is sent at all.

    The URL is judged first (a refused URL gets its own message whatever the key), then the
    key: the saved key may only go back to the URL it was saved with.
    """
    check = urls.check_api_url(url)
    if not check.ok:
        return ConnectionReport(False, Problem.BAD_URL, check.message)
    choice = _key_choice(url)
    if choice.origin is config.KeyOrigin.OTHER_URL:
        return ConnectionReport(False, Problem.KEY_NOT_FOR_URL, choice.message)
    if not choice.usable:
        return ConnectionReport(False, Problem.MISSING_KEY, choice.message)
    return choice


def _on_test() -> None:
    url = _entered_url()
    st.session_state.pop(K_FLASH, None)
    choice = _check_before_sending(url)
    if isinstance(choice, ConnectionReport):
        st.session_state[K_REPORT] = choice
        return
    report = diagnostics.check_connection(choice.api_key, _entered_client(choice.api_key), url)
    _remember(report, choice.api_key)


def _on_test_managed() -> None:
    creds = config.resolve_credentials()
    if creds is None:
        return
    st.session_state[K_REPORT] = diagnostics.check_connection(creds.api_key, creds.client_id, creds.api_url)


def _on_save() -> None:
    url = _entered_url()
    choice = _check_before_sending(url)
    # Flashes are kept as LazyTexts and said in the reader's language when shown.
    if isinstance(choice, ConnectionReport):
        refused = choice
        st.session_state.pop(K_REPORT, None)
        if refused.problem is Problem.MISSING_KEY:
            st.session_state[K_FLASH] = ("error", later.t("Not saved: enter an API key."))
        else:
            st.session_state[K_FLASH] = ("error", later.t("Not saved: {reason}", reason=refused.message))
        return
    key = choice.api_key
    client_id = _entered_client(key)
    report = diagnostics.check_connection(key, client_id, url)
    _remember(report, key)
    if report.problem in REFUSE_SAVE:
        st.session_state[K_FLASH] = ("error", later.t("Not saved. {reason}", reason=report.message))
        return
    client_id = report.client_id or client_id
    try:
        config.SettingsStore().save_credentials(key, client_id, url)  # the key and its one URL, together
    except CMError as err:
        st.session_state[K_FLASH] = ("error", later.t("Not saved: {reason}", reason=err))
        return
    st.session_state[K_KEY] = ""  # the key never goes back to the browser
    st.session_state[K_URL] = urls.normalize_api_url(url) or url
    st.session_state.pop(K_HEALTH, None)
    reset_connections()
    st.cache_data.clear()
    log.info("credentials saved by %s: client %s, key %s, %s", current_user(), client_id,
             config.mask_key(key), urls.display_url(url))
    masked = config.mask_key(key)
    if report.ok:
        st.session_state[K_FLASH] = ("success", later.t("Saved. Every user of this app now uses client {client} "
                                                        "with key {key}.", client=client_id, key=masked))
    else:
        st.session_state[K_FLASH] = ("warning", later.t("Saved, but the connection could not be verified: {reason}",
                                                        reason=report.message))


def _ask_forget() -> None:
    st.session_state[K_CONFIRM_FORGET] = True


def _cancel_forget() -> None:
    st.session_state.pop(K_CONFIRM_FORGET, None)


def _on_forget() -> None:
    config.SettingsStore().forget_credentials()
    for k in (K_CONFIRM_FORGET, K_CLIENTS, K_REPORT, K_CLIENT_CHOICE, K_HEALTH):
        st.session_state.pop(k, None)
    st.session_state[K_KEY] = ""
    st.session_state[K_CLIENT_ID] = ""
    reset_connections()
    st.cache_data.clear()
    log.info("saved credentials forgotten by %s", current_user())
    st.session_state[K_FLASH] = ("success", later.t("The saved credentials were removed."))


# ---------------------------------------------------------------------------- rendering


def _show(level: str, text: str) -> None:
    """``text`` (a LazyText from cmlib or a flash: said in the reader's language) escaped as markdown."""
    {"success": st.success, "warning": st.warning, "error": st.error, "info": st.info}[level](
        md_escape(text_of(text)))


def _show_report(report: ConnectionReport) -> None:
    if report.ok:
        _show("success", report.message)
        details = report.client
        rows = {
            t("Company"): details.company_name if details else "",
            t("Client ID"): report.client_id,
            t("Country"): details.country if details else "",
            t("Client's time zone (Campaign Monitor)"): details.time_zone if details else "",
            t("Times on this dashboard"): zone_choice(browser_time_zone(),
                                                      details.time_zone if details else None).explain(),
            t("Lists"): format_number(report.list_count) if report.list_count is not None else "",
            t("Latency"): _ms(report.latency_ms) if report.latency_ms is not None else "",
        }
        st.dataframe([{t("Detail"): k, t("Value"): plain(v)} for k, v in rows.items()], hide_index=True)
    elif report.problem is Problem.MISSING_CLIENT_ID and report.clients:
        _show("info", report.message)
    else:
        _show("error", report.message)


def _ms(value: float) -> str:
    return t("{ms} ms", ms=format_number(round(value)))


def _identity_section() -> bool:
    """Who is signed in (Streamlit OIDC). False when login is configured but nobody is signed in."""
    if not access.auth_configured():
        return True
    st.subheader(t("Signed in"), anchor=False)
    if access.is_logged_in():
        st.markdown(t("Signed in as {user}", user=md_escape(current_user())))
        st.button(t("Log out"), key="settings_logout", on_click=st.logout, icon=":material/logout:")
        return True
    access.login_prompt(t("This deployment uses single sign-on. Log in to change settings, so changes carry "
                          "your name."), "settings")
    return False


def _demo_notice() -> None:
    st.info(t(
        "The app is showing **demo data** from the local sandbox: no Campaign Monitor account is "
        "connected. To connect a real account, do one of these:\n"
        "- set the environment variables `CM_API_KEY` and `CM_CLIENT_ID` (and `CM_API_URL` if needed);\n"
        "- add `api_key` and `client_id` to a `[campaign_monitor]` section in `.streamlit/secrets.toml`;\n"
        "- or enter them in the form below (an admin does this once, for every user of this app)."
    ))


def _managed_section(creds: config.Credentials) -> None:
    st.info(t("Managed by the environment: the credentials come from {source}. They are read-only here; change "
              "them where they are set and restart the app.", source=t(SOURCE_LABELS[creds.source])))
    st.text_input(t("API key"), value=creds.masked_key, disabled=True, key="settings_managed_key")
    st.text_input(t("Client ID"), value=creds.client_id, disabled=True, key="settings_managed_client")
    st.text_input(t("API URL"), value=creds.api_url, disabled=True, key="settings_managed_url")
    note = config.ignored_env_url(creds)
    if note:
        st.caption(md_escape(text_of(note)))
    if config.SettingsStore().load().get("api_key"):
        st.caption(t("Credentials saved earlier on this page are ignored while the environment provides them."))
    st.button(t("Test connection"), key="settings_test_managed", on_click=_on_test_managed,
              icon=":material/network_check:")


def _editable_section(saved: dict) -> None:
    pair = config.SettingsStore().saved_credentials()
    saved_key = pair.api_key if pair else ""
    if pair:
        st.markdown(t("Using the credentials saved on this page: key `{key}`, client `{client}`, for the API URL "
                      "{url} only.", key=md_escape(pair.masked_key), client=md_escape(pair.client_id),
                      url=md_escape(urls.display_url(pair.api_url, 80))))
        note = config.ignored_env_url(pair)
        if note:
            st.caption(md_escape(text_of(note)))
    else:
        _demo_notice()

    st.session_state.setdefault(K_CLIENT_ID, str(saved.get("client_id") or ""))
    st.session_state.setdefault(K_URL, pair.api_url if pair else (os.environ.get("CM_API_URL") or
                                                                  config.DEFAULT_API_URL))
    _hide_key_reveal()
    # One form: the fields and the buttons reach the server together, so Test and Save always use
    # what the fields show, whether the last keystroke was followed by Tab, Enter or a click (outside
    # a form a text field commits on blur, and a click right after typing could arrive before it).
    # Enter in a field presses the form's first button, Test connection: it saves nothing.
    with st.form(CREDENTIALS_FORM, enter_to_submit=True):
        st.text_input(
            t("API key"), type="password", key=K_KEY, autocomplete="off",
            placeholder=(t("Saved key {key}: leave empty to keep it (for its own API URL only)",
                           key=config.mask_key(saved_key))
                         if saved_key
                         else t("Paste the API key")),
        )
        # Help as captions, not help icons: each icon is a stop in the Tab order before its field.
        st.caption(t("Campaign Monitor → Account settings → API keys. Stored on the server only; never shown "
                     "again."))
        key = _entered_key()
        clients = _known_clients(key)
        if clients:
            names = dict(clients)
            st.selectbox(t("Client"), options=[cid for cid, _ in clients], index=None, key=K_CLIENT_CHOICE,
                         format_func=lambda cid: f"{plain(names.get(cid, ''))} ({cid})",
                         placeholder=t("Choose a client"))
            st.caption(t("The clients this key can see."))
        else:
            st.text_input(t("Client ID"), key=K_CLIENT_ID)
            st.caption(t("Campaign Monitor → client → Client settings → API keys. Leave empty and press Test "
                         "connection to choose from the clients an account-level key sees."))
        with st.expander(t("API URL (advanced)")):
            st.text_input(t("API URL"), key=K_URL)
            # the URL as code, not an autolink: a link would be a Tab stop between the field and the buttons
            st.caption(t("Default `{url}`. The saved key is only sent to the URL it was saved with: to test or save "
                         "another URL, type the key again.", url=config.DEFAULT_API_URL))
        st.caption(t("Enter tests the connection; nothing is saved until you press Save."))
        c1, c2, c3 = st.columns(3)
        c1.form_submit_button(t("Test connection"), key="settings_test", on_click=_on_test,
                              icon=":material/network_check:")
        c2.form_submit_button(t("Save"), key="settings_save", on_click=_on_save, type="primary",
                              icon=":material/save:")
        c3.form_submit_button(t("Forget credentials"), key="settings_forget", on_click=_ask_forget,
                              disabled=not saved_key, icon=":material/delete:")
    if st.session_state.get(K_CONFIRM_FORGET) and saved_key:
        st.warning(t("Remove the saved key and client ID for every user of this app? "
                     "The app goes back to demo data unless the environment provides credentials."))
        d1, d2 = st.columns(2)
        d1.button(t("Yes, forget them"), key="settings_forget_confirm", on_click=_on_forget, type="primary")
        d2.button(t("Cancel"), key="settings_forget_cancel", on_click=_cancel_forget)


def _hide_key_reveal() -> None:
    st.html(_HIDE_KEY_REVEAL)


def _credentials_section() -> None:
    st.header(t("Credentials"), anchor=False)
    creds = config.resolve_credentials()
    if creds is not None and creds.source in SOURCE_LABELS:
        _managed_section(creds)
    else:
        _editable_section(_saved())
    flash = st.session_state.pop(K_FLASH, None)
    if flash:
        _show(*flash)
    report = st.session_state.get(K_REPORT)
    if report is not None and (not flash or flash[0] != "error"):
        _show_report(report)


def _cache_section(conn: runtime.Connection) -> None:
    st.header(t("Cache"), anchor=False)
    info = diagnostics.cache_info(conn.client)
    c1, c2 = st.columns(2)
    c1.metric(t("Backend"), info.backend if info.enabled else t("off"))
    c2.metric(t("Size on disk"), info.describe_size())
    if os.environ.get("CM_CACHE_BACKEND"):
        st.caption(t("The backend is set by the CM_CACHE_BACKEND environment variable."))

    current = runtime.cache_settings().expiry
    with st.form("settings_cache_expiry"):
        st.markdown(t("**How long answers are reused** (seconds; 0 = always ask the API)"))
        cols = st.columns(2)
        for i, name in enumerate(DEFAULT_EXPIRY):  # the default in the label: a help icon is a Tab stop
            cols[i % 2].number_input(t("{what} (default {seconds} s)", what=t(EXPIRY_LABELS.get(name, name)),
                                       seconds=str(DEFAULT_EXPIRY[name])),
                                     min_value=0, max_value=86400, step=10,
                                     value=int(current.get(name, DEFAULT_EXPIRY[name])),
                                     key=f"settings_expiry_{name}")
        saved_expiry = st.form_submit_button(t("Save expiry times"))
    if saved_expiry:
        values = {name: st.session_state.get(f"settings_expiry_{name}") for name in DEFAULT_EXPIRY}
        clean, errors = diagnostics.validate_expiry(values)
        if errors:
            st.error(md_escape(t("Not saved: {reasons}", reasons="; ".join(text_of(e) for e in errors))))
        else:
            config.SettingsStore().update(cache_expiry=clean)
            reset_connections()
            st.session_state[K_CACHE_FLASH] = later.t("Expiry times saved; they apply from the next request.")
            st.rerun()

    b1, b2 = st.columns(2)
    if b1.button(t("Clear cache"), key="settings_clear_cache", disabled=not info.enabled, icon=":material/mop:"):
        conn.client.clear_cache()
        st.cache_data.clear()
        log.info("HTTP cache cleared by %s", current_user())
        st.session_state[K_CACHE_FLASH] = later.t("Cache cleared: the next lookups ask the API.")
        st.rerun()
    if b2.button(t("Reset expiry times to defaults"), key="settings_reset_expiry"):
        config.SettingsStore().update(cache_expiry=None)
        for name in DEFAULT_EXPIRY:
            st.session_state.pop(f"settings_expiry_{name}", None)
        reset_connections()
        st.session_state[K_CACHE_FLASH] = later.t("Expiry times reset to the defaults.")
        st.rerun()
    flash = st.session_state.pop(K_CACHE_FLASH, None)
    if flash:
        st.success(text_of(flash))


def _health_section(conn: runtime.Connection) -> None:
    st.header(t("Health"), anchor=False)
    if st.button(t("Check the API now"), key="settings_health_check", icon=":material/monitor_heart:"):
        with st.spinner(t("Asking the API…")):
            st.session_state[K_HEALTH] = diagnostics.health(conn.client, conn.client_id, is_demo=conn.is_demo)
    report = st.session_state.get(K_HEALTH)
    last = conn.client.last_call
    headroom = report.rate_limit if report else None
    if headroom is None and conn.client.last_rate_limit is not None:
        s = conn.client.last_rate_limit
        headroom = diagnostics.RateLimitHeadroom(s.rate_limit_limit, s.rate_limit_remaining, s.rate_limit_reset, s.at)

    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    c1.metric(t("Account"), t("Demo (sandbox)") if conn.is_demo else t("Real account"))
    c2.metric(t("API"), t("not checked") if report is None
              else (t("reachable") if report.reachable else t("unreachable")))
    # What used to be help icons is written out: an icon is a Tab stop of its own.
    c3.metric(t("Last call"), _ms(last.latency_ms) if last else t("none yet"))
    if last:
        c3.caption(md_escape(t("{endpoint} (from cache)", endpoint=last.endpoint) if last.from_cache
                             else last.endpoint))
    fraction = headroom.fraction_left if headroom else None
    c4.metric(t("Rate-limit headroom"), format_percent(fraction) if fraction is not None else t("not reported"))
    c4.caption(t("From the API's X-RateLimit headers on the last response that had them."))
    if headroom is not None:
        st.caption(md_escape(t("Rate limit: {figures}", figures=headroom.describe())))
    choice = display_zone(conn)
    if report is not None:
        _show("success" if report.reachable else "error",
              t("{result} Checked at {time}.", result=text_of(report.message),
                time=format_time(report.checked_at, choice.zone, fmt=CHECKED_FORMAT)))
    st.caption(md_escape(choice.explain()))
    st.caption(t("Requests sent by this server's client so far: {n}.", n=conn.client.calls_made))


def render_settings_page() -> None:
    st.title(t("Settings"))
    if not _identity_section():
        st.stop()
    if not access.require_admin(t("the Settings page")):
        st.stop()
    if access.admin_configured():
        st.button(t("Lock admin actions"), key="settings_lock", on_click=access.lock, icon=":material/lock:",
                  help=t("Ask for the admin password again in this session."))
    _credentials_section()
    try:
        conn = get_connection()
    except CMError as err:  # e.g. an API URL in the environment that the key must not go to
        st.header(t("Health"), anchor=False)
        _show("error", t("Cannot connect to Campaign Monitor: {reason}", reason=err.describe()))
        return
    _health_section(conn)
    _cache_section(conn)
