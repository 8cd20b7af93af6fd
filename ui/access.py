"""The admin-password prompt that guards the Settings page and every write.

Pages call ``require_admin("subscription changes")`` right before rendering (or performing) a
change; it returns True at once when no admin password is configured or this session already
unlocked, and otherwise draws a small password form in place and returns False. The password is
asked for once per session; the comparison and the lock-out live in :mod:`cmlib.access`.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

import streamlit as st

from cmlib import access
from cmlib.config import load_secrets
from cmlib.i18n import t
from cmlib.lazy_text import text_of

UNLOCKED_KEY = "_admin_unlocked"  # holds the fingerprint of the password that was accepted


FORWARDING_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def _client_address() -> tuple[str | None, dict[str, list[str]]]:
    """Streamlit's view of the client: its address (None over localhost) and any forwarding headers."""
    try:
        ip = st.context.ip_address
    except Exception:
        ip = None
    headers: dict[str, list[str]] = {}
    try:
        sent = st.context.headers
        for name in FORWARDING_HEADERS:
            values = sent.get_all(name)
            if values:
                headers[name] = list(values)
    except Exception:  # no request context (AppTest, a bare script run)
        headers = {}
    return (ip if isinstance(ip, str) and ip else None), headers


def _caller() -> access.Caller:
    """What wrong passwords count against: the client's address when known, else a shared source
    (never the session: a reload starts a new one). See :func:`cmlib.access.identify_caller`."""
    ip, headers = _client_address()
    return access.identify_caller(ip, headers, access.trusted_proxies())


def auth_section() -> dict:
    """The ``[auth]`` section of secrets.toml (Streamlit's built-in OIDC login), {} when absent."""
    section: dict = {}
    try:
        from streamlit.auth_util import get_secrets_auth_section

        section = dict(get_secrets_auth_section() or {})
    except Exception:  # no secrets file, or a Streamlit without built-in auth
        section = {}
    if not section:
        raw = load_secrets().get("auth")
        section = dict(raw) if isinstance(raw, Mapping) else {}
    return section


def auth_configured() -> bool:
    return bool(auth_section())


def login_providers() -> list[str | None]:
    """What to pass to ``st.login``: None for a single provider set directly in ``[auth]``,
    else each named ``[auth.<provider>]`` section."""
    section = auth_section()
    named = [k for k, v in section.items() if isinstance(v, Mapping)]
    if "client_id" in section or not named:
        return [None, *named]
    return named


def is_logged_in() -> bool:
    try:
        return bool(st.user.is_logged_in)
    except Exception:
        return False


def login_prompt(message: str, key: str) -> None:
    """A "Log in" button per configured identity provider (``st.login`` runs in the callback);
    ``message`` is said as given (the caller translates it)."""
    st.info(message, icon=":material/login:")
    for provider in login_providers():
        label = t("Log in") if provider is None else t("Log in with {provider}", provider=provider)
        st.button(label, key=f"{key}_login_{provider or 'default'}", on_click=st.login, args=(provider,),
                  type="primary", icon=":material/login:")


def require_login() -> bool:
    """With single sign-on configured nobody uses the app anonymously: the audit log needs a name.

    True when SSO is not configured or the user is signed in; else offers login and returns False.
    """
    if not auth_configured() or is_logged_in():
        return True
    login_prompt(t("This deployment uses single sign-on: log in to use the dashboard."), "app")
    return False


def admin_configured() -> bool:
    return access.admin_password() is not None


def is_unlocked() -> bool:
    """True when no password is configured or this session entered the current one."""
    password = access.admin_password()
    if password is None:
        return True
    return st.session_state.get(UNLOCKED_KEY) == access.password_fingerprint(password)


def lock() -> None:
    """Forget this session's unlock (the "Lock" button on the Settings page)."""
    st.session_state.pop(UNLOCKED_KEY, None)


def _slug(context: str) -> str:
    """A widget-key part for ``context``; a context in another script (Russian) gets a short hash."""
    slug = re.sub(r"[^a-z0-9]+", "_", context.lower()).strip("_")
    if slug and context.isascii():
        return slug
    return (slug + "_" if slug else "") + hashlib.sha256(context.encode("utf-8")).hexdigest()[:10]


def require_admin(context: str) -> bool:
    """Ask for the admin password (once per session) before ``context``; True when allowed now.

    ``context`` names what is protected as a person reads it ("the Settings page"), so the caller
    passes it translated; the form's widget keys are derived from it (the unlock itself is per
    session, whatever the form)."""
    password = access.admin_password()
    if password is None:
        return True
    fingerprint = access.password_fingerprint(password)
    if st.session_state.get(UNLOCKED_KEY) == fingerprint:  # also right after _check() unlocked it
        return True

    slug = _slug(context)
    pw_key = f"admin_gate_pw_{slug}"
    result_key = f"_admin_gate_result_{slug}"

    def _check() -> None:
        """Runs before the rerun, so the page already renders the outcome (and a lock) this run."""
        result = access.shared_gate(password).check(st.session_state.get(pw_key) or "", _caller())
        if result.ok:
            st.session_state[UNLOCKED_KEY] = fingerprint
            st.session_state.pop(result_key, None)
        else:
            st.session_state[result_key] = result

    state = access.shared_gate(password).status(_caller())
    with st.container(border=True):
        st.markdown(t("**Admin password required**"))
        st.text(t("An admin password protects {what}. Enter it once to unlock every admin action for this browser "
                  "session.", what=context))
        with st.form(f"admin_gate_{slug}", clear_on_submit=True):
            st.text_input(t("Admin password"), type="password", key=pw_key, disabled=state.locked)
            st.form_submit_button(t("Unlock"), disabled=state.locked, on_click=_check)
        last = st.session_state.pop(result_key, None)
        if state.locked:
            st.error(text_of(state.message))
        elif last is not None:
            st.warning(text_of(last.message))
        elif state.slowed:  # a short wait, not a lock: the form stays usable
            st.warning(text_of(state.message))
    return False
