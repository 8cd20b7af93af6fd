"""The sidebar every page shares: which Campaign Monitor client this is, a loud demo notice,
the way to Settings, who is acting (for the audit log), and the language picker.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st
from streamlit.errors import StreamlitAPIException

from cmlib.audit_secrets import configured_secrets, find_secrets
from cmlib.errors import AuthenticationError, CMError
from cmlib.i18n import N_, t
from cmlib.runtime import Connection
from ui.identity import link_operator, oidc_user, operator_field, remember_in_browser
from ui.language import language_picker
from ui.text import md_escape

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_PAGE = "pages/settings.py"
DEMO_NOTICE = N_("**Demo data** — no Campaign Monitor account is configured, so this is the built-in "
                 "sandbox with made-up customers. Nothing you do here reaches a real list.")


def settings_link(label: str | None = None, container=None) -> None:
    """A link to the Settings page (``label`` already in the page's language; default
    "Settings"), or a plain pointer when that page is not part of this app run."""
    target = container if container is not None else st
    if (ROOT / SETTINGS_PAGE).exists():
        try:
            target.page_link(SETTINGS_PAGE, label=label or t("Settings"), icon=":material/settings:")
            return
        except (StreamlitAPIException, KeyError):
            pass  # e.g. a page rendered on its own in a test, outside st.navigation
    target.caption(t("Open **Settings** from the navigation to change the connection."))


@st.cache_data(ttl=600, show_spinner=False)
def _client_name(_conn: Connection, api_url: str, client_id: str, key_fingerprint: str) -> tuple[str, str]:
    """(company name, Campaign Monitor's reason for rejecting the credentials) for the connected
    client, keyed by a fingerprint, never by the key. Data, not a sentence: the cache is shared by
    sessions in different languages.

    A rejected key is remembered (fixing it changes the fingerprint); any other failure raises,
    and Streamlit does not cache exceptions, so an outage is not remembered for ten minutes.
    """
    try:
        details = _conn.client.client_details(client_id)
    except AuthenticationError as err:
        return "", err.reason
    return details.company_name or client_id, ""


def _connected_name(conn: Connection) -> tuple[str, str]:
    """(company name, problem in the page's language); the reason is Campaign Monitor's own."""
    try:
        name, rejected = _client_name(conn, conn.credentials.api_url, conn.client_id, _fingerprint(conn))
    except CMError as err:
        return "", t("Could not reach Campaign Monitor ({reason}).", reason=err.reason)
    if rejected or not name:
        return "", t("Campaign Monitor rejected the credentials ({reason}).", reason=rejected)
    return name, ""


def _fingerprint(conn: Connection) -> str:
    return hashlib.sha256(conn.credentials.api_key.encode()).hexdigest()[:16]


def connection_panel(conn: Connection) -> None:
    """Which client this session reads and writes, in the sidebar."""
    sb = st.sidebar
    if conn.is_demo:
        sb.warning(t(DEMO_NOTICE), icon=":material/science:")
    if not conn.client_id:
        sb.markdown(t(":red[:material/link_off: **Not connected.**] No client ID is configured."))
    else:
        name, problem = _connected_name(conn)
        if problem:  # the page says it loudly (st.error) where the lookup failed; here just the state
            _not_connected(sb, problem)
        else:
            sb.markdown(t(":material/link: Connected to **{name}**", name=md_escape(name)))
            sb.caption(t("Client ID {client_id}", client_id=md_escape(conn.client_id)))
    settings_link(t("Connection settings"), container=sb)


def _not_connected(sb, problem: str) -> None:
    sb.markdown(t(":red[:material/link_off: **Not connected.**] {problem}", problem=md_escape(problem)))


def operator_panel(conn: Connection | None = None) -> None:
    """Who is acting. With a login the name comes from it; on the helpdesk panel with ``operator=``
    it is the link's name (shown, not editable here: the helpdesk sets it); otherwise the operator
    types it once and this browser remembers it (``ui.identity``), in new tabs and deep links too."""
    sb = st.sidebar
    user = oidc_user()
    if user:
        sb.markdown(t(":material/badge: Signed in as **{name}**", name=md_escape(user)))
        return
    api_key = conn.credentials.api_key if conn is not None else None
    linked = link_operator()
    if linked:
        _link_operator_note(linked, api_key)
        return
    # Drawn by app.py on every run of every page, so Streamlit never drops the widget's state.
    operator_field(sb)
    with sb:
        leaks = remember_in_browser("sidebar", lambda: configured_secrets(api_key))
    for leak in leaks:
        sb.error(md_escape(t("The operator name contains {secret}: remove it. It is not remembered in this "
                             "browser, and no change can be made under it.", secret=t(leak.label))),
                 icon=":material/key_off:")


def _link_operator_note(name: str, api_key: str | None) -> None:
    """Who acts on the panel opened with ``operator=``: the link's name, not the typed one (which
    stays remembered for the other pages). A name holding a credential is never shown."""
    sb = st.sidebar
    if find_secrets({"operator_name": name}, configured_secrets(api_key)):
        sb.error(t("The helpdesk link's operator name contains a credential, so no change can be made under "
                   "it: fix the {param} part of the panel URL in the helpdesk.", param="operator="),
                 icon=":material/key_off:")
        return
    sb.markdown(t(":material/badge: Acting as **{name}**", name=md_escape(name)))
    sb.caption(t("Set by the helpdesk link ({param}): a convenience, not a sign-in.", param="operator="))


def render_sidebar(conn: Connection | None, connection_error: str | None = None) -> None:
    """``connection_error`` is already in the page's language."""
    if conn is not None:
        connection_panel(conn)
    else:
        _not_connected(st.sidebar, connection_error or "")
        settings_link(t("Connection settings"), container=st.sidebar)
    st.sidebar.divider()
    operator_panel(conn)
    st.sidebar.divider()
    language_picker(st.sidebar)
