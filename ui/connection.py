"""The app's one connection per credential, shared by every session of this server.

``st.cache_resource`` keeps one client (one connection pool, one limiter, one cache
partition) per credential; saving new credentials on the Settings page changes the hash, so
the next rerun gets a new client without a restart. The key is hashed, never used as a label.
"""
from __future__ import annotations

import hashlib

import streamlit as st

from cmlib import runtime
from cmlib.config import Credentials
from cmlib.runtime import Connection


def _fingerprint(c: Credentials) -> tuple:
    return (c.source, c.client_id, c.api_url, hashlib.sha256(c.api_key.encode()).hexdigest())


@st.cache_resource(show_spinner=False, hash_funcs={Credentials: _fingerprint})
def _connect(creds: Credentials) -> Connection:
    return runtime.connect(creds)


def get_connection() -> Connection:
    """The connection for the current configuration (demo sandbox when nothing is configured)."""
    creds = runtime.current_credentials()
    return _connect(creds)


def reset_connections() -> None:
    """Drop every cached client (after credentials or cache settings changed)."""
    _connect.clear()
