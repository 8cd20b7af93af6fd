"""The session-state keys more than one view uses, and the one "refetch this address" channel.

``st.session_state`` is one flat dict per browser session, shared by every page. A key that one
module writes and another reads is an interface between them, so it is named here, once, and
both import it; keys only one module uses stay private to that module (widget keys included).
Keys are ``area.what``.

The refresh channel: whoever knows that an address changed at Campaign Monitor -- a Refresh
button, the subscription dialog after a write -- calls :func:`request_refresh`; the view that
shows addresses (the Lookup page, a test harness) calls :func:`take_refresh` on its next run and
refetches, bypassing the cache, what it was asked for among the addresses it shows. Requests for
addresses it does not show stay for a view that does. This module imports nothing from ``ui``,
so the views that talk through it never import each other to do so.
"""
from __future__ import annotations

from collections.abc import Iterable

import streamlit as st

LOOKUP_REFRESH = "lookup.refresh"  # addresses to refetch fresh, oldest request first
SUBSCRIPTION_DIALOG = "subs.dialog_for"  # the address whose subscription dialog is open
APPLIED_PLANS = "subs.applied_tokens"  # plan tokens already applied in this session (never twice)


def pending_refresh() -> list[str]:
    """The addresses someone asked to refetch, in request order (nothing malformed)."""
    value = st.session_state.get(LOOKUP_REFRESH)
    if not isinstance(value, (list, tuple, set, frozenset)):
        return []
    return [e for e in value if isinstance(e, str)]


def request_refresh(email: str) -> None:
    """Ask the view showing ``email`` to refetch it fresh on its next run (a repeated request
    moves to the end: the latest one is the address the person is looking at)."""
    pending = [e for e in pending_refresh() if e.lower() != email.lower()]
    st.session_state[LOOKUP_REFRESH] = [*pending, email]


def take_refresh(emails: Iterable[str]) -> list[str]:
    """The addresses among ``emails`` (compared case-insensitively, returned as spelled in
    ``emails``) someone asked to refetch, in request order; their requests are consumed, the
    others stay."""
    by_key = {e.lower(): e for e in emails}
    pending = pending_refresh()
    taken = list(dict.fromkeys(by_key[e.lower()] for e in pending if e.lower() in by_key))
    rest = [e for e in pending if e.lower() not in by_key]
    if LOOKUP_REFRESH in st.session_state:
        st.session_state[LOOKUP_REFRESH] = rest
    return taken
