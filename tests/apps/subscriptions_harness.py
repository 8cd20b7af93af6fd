"""A minimal page for AppTest and browser tests of the subscription editor.

It does what the lookup page does around the editor: look up each address (fresh when the
editor asked for a refresh through ``ui.state.request_refresh``), show a badge per list and call
``subscription_entry``. Addresses come from ``st.session_state["harness_emails"]`` or the
``?email=`` query parameter.
"""
from __future__ import annotations

import streamlit as st

from ui.badges import render_state_badge
from ui.connection import get_connection
from ui.state import take_refresh
from ui.subscriptions import subscription_entry
from ui.text import md_escape

conn = get_connection()
emails = list(st.session_state.get("harness_emails") or st.query_params.get_all("email"))
fresh = take_refresh(emails)
profiles = conn.lookup_service().lookup_many(emails, fresh=fresh) if emails else []

for profile in profiles:
    with st.container(border=True, key=f"harness_{profile.email}"):
        st.markdown(f"**{md_escape(profile.email)}**")
        subscription_entry(conn, profile)
        for ls in profile.lists:
            c1, c2 = st.columns(2)
            c1.text(ls.list_name)
            with c2:
                render_state_badge(ls.state)
