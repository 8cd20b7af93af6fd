"""The app's one connection per credential, shared by every session of this server.

``st.cache_resource`` keeps one connection (one client, connection pool, lookup service and
cache partition) per credential; saving new credentials on the Settings page changes the hash,
so the next rerun gets a new connection without a restart. The key is hashed, never used as a
label.

Lifetime: the cache owns the connection. Whenever it drops one -- :func:`reset_connections`
after a settings change, ``st.cache_resource.clear()`` -- Streamlit calls ``on_release``, which
closes it: its lookup pool, page pool and HTTP session go with it instead of living on unused.
A run that still holds the old connection finishes what it started; anything it starts after
that is refused with "try again" (see :class:`cmlib.runtime.Connection`).
"""
from __future__ import annotations

import hashlib
import logging

import streamlit as st

from cmlib import runtime
from cmlib.config import Credentials
from cmlib.runtime import Connection

log = logging.getLogger("ui.connection")


def _fingerprint(c: Credentials) -> tuple:
    return (c.source, c.client_id, c.api_url, hashlib.sha256(c.api_key.encode()).hexdigest())


def release(conn: object) -> None:
    """``on_release`` of the cache: close what it drops. Never raises: Streamlit would report a
    failure here as an error of whichever script happened to clear the cache."""
    if not isinstance(conn, Connection):
        return
    try:
        conn.close()
    except Exception as exc:
        log.warning("closing a dropped connection failed: %s", type(exc).__name__)


@st.cache_resource(show_spinner=False, hash_funcs={Credentials: _fingerprint}, on_release=release)
def _connect(creds: Credentials) -> Connection:
    return runtime.connect(creds)


def get_connection() -> Connection:
    """The connection for the current configuration (demo sandbox when nothing is configured)."""
    creds = runtime.current_credentials()
    return _connect(creds)


def reset_connections() -> None:
    """Drop every cached connection, closing each (after credentials or cache settings changed)."""
    _connect.clear()
