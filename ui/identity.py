"""Who is acting, for the audit log: the signed-in user, else the name the operator typed.

A typed name is remembered *in that browser* across reloads and new tabs -- so a helpdesk deep
link opened in a new tab already knows who is acting -- by a cookie. Streamlit cannot set a
cookie from the server, so a tiny script in a hidden ``st.iframe`` (same origin) sets it on the
parent document; every new session reads it back with ``st.context.cookies`` (the cookies of the
request that opened the session). Only the name goes there, never anything a configured secret
is found in.

One session key holds the typed name (:data:`NAME_KEY`); the sidebar field (:data:`OPERATOR_KEY`)
and the dialog's "who is acting?" prompt both write to it through their change callbacks, and
the sidebar field is set from it before it is drawn, so a name given in the dialog (a fragment
run that does not redraw the sidebar) shows in the sidebar on the next full run.

Inside a helpdesk the panel's URL may carry ``operator=<name>`` (the helpdesk fills in the
agent's name). ``app.py`` hands it over with :func:`use_link_operator` before the sidebar is drawn
(so the sidebar shows who acts; on any other page it is forgotten), and the panel page does so
again when it runs on its own (AppTest); it ranks below a login and
above the typed name, is never written to the cookie (the helpdesk says it on every opening), and
is a convenience, not authentication: whoever edits a link can write any name, which is why its
audit rows say "helpdesk link".

Where the name came from is an :class:`~cmlib.audit.ActorSource`, recorded with every audit row.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote

import streamlit as st

from cmlib.audit_entry import ActorSource
from cmlib.audit_secrets import Secret, SecretFinding, find_secrets
from cmlib.i18n import N_, Language, t

OPERATOR_KEY = "operator_name"  # the sidebar field's widget key
NAME_KEY = "identity.operator"  # the typed name this session acts under ("" when none)
LINK_KEY = "identity.link_operator"  # ``operator=`` of the helpdesk panel URL this session shows ("" when none)
_WRITTEN_KEY = "identity.cookie_written"  # the value this session last put into the cookie
COOKIE = "cm_operator"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chromium caps at 400 days)
MAX_NAME = 100
_HIDE_CSS = "<style>[class*='st-key-identity-memory']{display:none}</style>"


@dataclass(frozen=True)
class Actor:
    """Who is acting and where that name came from."""

    name: str
    source: ActorSource

    def describe(self, lang: Language | str | None = None) -> str:
        """"Dana (typed in this browser)" -- for "Acting as …" (the name as given, the rest in
        ``lang``, default: the current language)."""
        how = _HOW.get(self.source)
        if how is None:
            return f"{self.name} ({self.source})"
        return t(how, lang=lang, name=self.name)


_HOW = {ActorSource.SIGNED_IN: N_("{name} (signed in)"),
        ActorSource.TYPED: N_("{name} (typed in this browser)"),
        ActorSource.HELPDESK_LINK: N_("{name} (from the helpdesk link)")}


def clean_name(value: object) -> str:
    """A name as stored: control characters dropped, spaces collapsed, at most MAX_NAME long."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", "" if value is None else str(value))
    return re.sub(r"\s+", " ", text).strip()[:MAX_NAME]


def oidc_user() -> str | None:
    """The logged-in user's email/name when Streamlit's built-in login is configured and used."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(user.get("email") or user.get("name") or user.get("sub") or "") or None
    except Exception:  # st.user raises when [auth] is not configured
        return None
    return None


def _browser_cookies() -> dict[str, str]:
    """The cookies of the request that opened this session ({} outside a browser, e.g. AppTest)."""
    try:
        return dict(st.context.cookies)
    except Exception:  # no request context at all
        return {}


def remembered_name() -> str:
    """The name this browser remembered (the cookie as it was when the session opened)."""
    return clean_name(unquote(_browser_cookies().get(COOKIE, "")))


def typed_name() -> str:
    """The name typed in this browser: this session's, else (first call) the remembered one."""
    if NAME_KEY not in st.session_state:
        # A value already in the sidebar field's key (a test presetting it) counts as typed.
        st.session_state[NAME_KEY] = clean_name(st.session_state.get(OPERATOR_KEY) or remembered_name())
    return str(st.session_state[NAME_KEY])


def set_typed_name(value: object) -> None:
    st.session_state[NAME_KEY] = clean_name(value)


def use_link_operator(value: object) -> None:
    """The panel's ``operator=`` for this session (None or "" forgets it): the panel calls this on
    every run with what its URL says, so a link without the parameter never acts under an older
    link's name."""
    st.session_state[LINK_KEY] = clean_name(value) if value else ""


def link_operator() -> str:
    """The name the helpdesk link gave (:func:`use_link_operator`), or ""."""
    value = st.session_state.get(LINK_KEY)
    return value if isinstance(value, str) else ""


def acting() -> Actor | None:
    """Who a write is made by: the signed-in user, else the helpdesk link's ``operator=``, else the
    typed (remembered) name; None when there is none of them (ask first)."""
    user = oidc_user()
    if user:
        return Actor(user, ActorSource.SIGNED_IN)
    linked = link_operator()
    if linked:
        return Actor(linked, ActorSource.HELPDESK_LINK)
    name = typed_name()
    return Actor(name, ActorSource.TYPED) if name else None


def current_user() -> str:
    """Who is acting, for log lines (never for a write: that asks, see :func:`acting`)."""
    actor = acting()
    return actor.name if actor else "anonymous"


def _on_sidebar_change() -> None:
    set_typed_name(st.session_state.get(OPERATOR_KEY))


def operator_field(container=None) -> None:
    """The sidebar's "Operator name" field, showing the session's typed name."""
    target = container if container is not None else st
    name = typed_name()
    if st.session_state.get(OPERATOR_KEY) != name:
        st.session_state[OPERATOR_KEY] = name  # before the widget exists in this run: allowed
    target.text_input(t("Operator name"), key=OPERATOR_KEY, placeholder=t("Your name, for the audit log"),
                      max_chars=MAX_NAME, on_change=_on_sidebar_change,
                      help=t("Recorded in the audit log with every change you make here; remembered in "
                             "this browser (also in new tabs and links) until you change it."))


def _cookie_script(value: str) -> str:
    """The script that stores ``value`` ("" deletes it) as the cookie of the parent document.

    The value is a JSON string literal with ``<``, ``>``, ``&`` escaped, so no name can end the
    script or become markup; the cookie holds it URI-encoded."""
    literal = json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    age = COOKIE_MAX_AGE if value else 0
    return ("<script>try{var d=window.parent.document,v=" + literal + ";"
            f"d.cookie='{COOKIE}='+encodeURIComponent(v)+'; path=/; max-age={age}; SameSite=Lax'"
            "+(window.parent.location.protocol==='https:'?'; Secure':'');}catch(e){}</script>")


def remember_in_browser(where: str, secrets: Callable[[], Iterable[Secret | str]] = tuple) -> list[SecretFinding]:
    """Keep the typed name in this browser's cookie, drawn (hidden) in the current container.

    Nothing is drawn while the name is what the browser already remembers. Once this session
    changed it, the writer stays on every run with the same content (Streamlit keeps the same
    element, the script does not run again): a rerun right after the change cannot remove it
    before it ran. A name holding a configured secret (``secrets`` is asked only when something
    is to be written) is not remembered -- the cookie is cleared -- and the findings are returned
    for the caller to show. ``where`` names the container ("sidebar", "dialog") so two writers
    never share a key.
    """
    name = typed_name()
    written = st.session_state.get(_WRITTEN_KEY)
    if written is None and name == remembered_name():
        return []
    findings = find_secrets({"operator_name": name}, secrets()) if name else []
    if findings:
        name = ""
    st.session_state[_WRITTEN_KEY] = name
    st.html(_HIDE_CSS)
    with st.container(key=f"identity-memory-{where}"):
        st.iframe(_cookie_script(name), height="content", tab_index=-1, alt=t("Remembers the operator name"))
    return findings
