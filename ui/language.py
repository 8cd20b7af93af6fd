"""The language this session speaks, the sidebar's language picker, and ``<html lang>``.

Chosen on every run, before anything is drawn (so the page title, the navigation and the sidebar
are in it), in the order the product asks (:func:`cmlib.i18n.choose_language`):

1. ``?lang=ru|en`` in the URL -- helpdesk links carry it;
2. the user's choice in the sidebar: this session's pick, else the one this browser remembers in
   the ``cm_lang`` cookie (written the way :mod:`ui.identity` writes its cookie: a tiny script in a
   hidden same-origin ``st.iframe``, read back by every new session with ``st.context.cookies``);
3. the browser's language (``st.context.locale``);
4. the deployment's ``CM_LANGUAGE`` (default English).

Picking a language while the URL says ``lang=`` rewrites the URL too, else the URL would win over
the pick on the very next run.

The language goes into :mod:`cmlib.i18n` twice: as this run's context variable
(:func:`cmlib.i18n.set_language`), and as this session's state, read by a provider for threads
where no run set it -- a fragment rerun runs on a fresh thread without running ``app.py``. The
provider answers only inside a script run (anything else -- a bulk worker, the CLI -- passes its
language explicitly or speaks ``CM_LANGUAGE``).

Streamlit serves ``<html lang="en">``; a screen reader reading Russian with English rules is
gibberish, so the same kind of hidden script sets ``document.documentElement.lang``.
"""
from __future__ import annotations

import json
from collections.abc import Mapping

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from cmlib.i18n import Language, choose_language, set_language, set_language_provider, t

QUERY_PARAM = "lang"
COOKIE = "cm_lang"
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest a browser keeps a cookie (Chromium caps at 400 days)
PICKER_KEY = "language.picker"  # the sidebar picker's widget key
PICKED_KEY = "language.picked"  # the language the user picked in this session (absent: none)
CURRENT_KEY = "language.current"  # the language of this session's latest run (the provider's answer)
_WRITTEN_KEY = "language.written"  # the script this session last drew (absent: none drawn yet)
_SERVED_LANG = Language.EN  # what Streamlit's index.html declares
_HIDE_CSS = "<style>[class*='st-key-language-memory']{display:none}</style>"


def _context_value(name: str) -> object:
    """``st.context.<name>`` (None outside a browser session, e.g. a bare import)."""
    try:
        return getattr(st.context, name)
    except Exception:  # no request context at all
        return None


def url_language() -> Language | None:
    """``?lang=`` of this run's URL, when it names a language we speak."""
    return Language.parse(st.query_params.get(QUERY_PARAM))


def remembered_language() -> Language | None:
    """The choice this browser remembered (the cookie as it was when the session opened)."""
    cookies = _context_value("cookies")
    return Language.parse(cookies.get(COOKIE)) if isinstance(cookies, Mapping) else None


def browser_language() -> Language | None:
    """The browser's own language (``navigator.language``), when it is one we speak."""
    return Language.parse(_context_value("locale"))


def picked_language() -> Language | None:
    """What the user picked in the sidebar in this session, if anything."""
    return Language.parse(st.session_state.get(PICKED_KEY))


def session_language() -> Language:
    """This run's language: URL, the user's choice (this session's, else this browser's), the
    browser's language, the deployment default."""
    return choose_language(query=url_language(), remembered=picked_language() or remembered_language(),
                           browser=browser_language())


def _provided() -> Language | None:
    """The provider :mod:`cmlib.i18n` asks on a thread with no language set: this session's
    language inside a script run (a fragment rerun), None anywhere else."""
    if get_script_run_ctx(suppress_warning=True) is None:
        return None
    try:
        return Language.parse(st.session_state.get(CURRENT_KEY))
    except Exception:  # a session torn down under us: no answer rather than a broken message
        return None


def apply_language() -> Language:
    """Choose this run's language and speak it. ``app.py`` calls this first on every run, and
    every page first thing after ``ensure_shell`` (a page run on its own, as in AppTest, has no
    ``app.py`` before it). Draws nothing."""
    lang = session_language()
    st.session_state[CURRENT_KEY] = lang
    set_language(lang)
    set_language_provider(_provided)
    return lang


def _on_pick() -> None:
    picked = Language.parse(st.session_state.get(PICKER_KEY))
    if picked is None:
        return
    st.session_state[PICKED_KEY] = picked
    if QUERY_PARAM in st.query_params:
        st.query_params[QUERY_PARAM] = picked.value  # else the URL would override the pick


def language_picker(container=None) -> None:
    """The sidebar's language picker (each language by its own name, never translated) and the
    hidden script that tells the browser which language the page is in."""
    target = container if container is not None else st.sidebar
    lang = apply_language()  # the same answer app.py got; also right when a test draws only this
    if st.session_state.get(PICKER_KEY) != lang:
        st.session_state[PICKER_KEY] = lang  # before the widget exists in this run: allowed
    target.radio(t("Language"), options=list(Language), format_func=lambda code: Language(code).native_name,
                 key=PICKER_KEY, horizontal=True, on_change=_on_pick)
    with target:
        _tell_browser(lang, picked_language())


def _writer_script(lang: Language, remember: Language | None) -> str:
    """Sets ``<html lang>`` of the parent document and, when the user picked one in this session,
    the ``cm_lang`` cookie. Only our own language codes go in, as JSON literals."""
    code = json.dumps(lang.value)
    script = "var d=window.parent.document;d.documentElement.lang=" + code + ";"
    if remember is not None:
        script += (f"d.cookie='{COOKIE}='+encodeURIComponent({json.dumps(remember.value)})"
                   f"+'; path=/; max-age={COOKIE_MAX_AGE}; SameSite=Lax'"
                   "+(window.parent.location.protocol==='https:'?'; Secure':'');")
    return "<script>try{" + script + "}catch(e){}</script>"


def _tell_browser(lang: Language, remember: Language | None) -> None:
    """Draw the writer (hidden) when there is something to write: a page not in English, a pick to
    remember, or an earlier write of this session to keep. Once drawn it stays on every run with
    the same content (Streamlit keeps the element and does not run it again), so a rerun right
    after a change cannot remove it before it ran; new content runs again."""
    if lang is _SERVED_LANG and remember is None and _WRITTEN_KEY not in st.session_state:
        return
    script = _writer_script(lang, remember)
    st.session_state[_WRITTEN_KEY] = script
    st.html(_HIDE_CSS)
    with st.container(key="language-memory"):
        st.iframe(script, height="content", tab_index=-1, alt=t("Sets the page language"))
