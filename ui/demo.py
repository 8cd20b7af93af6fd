"""The demo notice above every page: demo data must never be mistaken for the real account,
and the way out of it -- configuring one in Settings -- is one click, not a sentence to follow.
"""
from __future__ import annotations

import streamlit as st

from cmlib.i18n import N_, t
from cmlib.runtime import Connection
from ui.sidebar import settings_link

# The banner's words, then the link's: one line on screen, two elements (a markdown and a page link).
DEMO_BANNER = N_(":orange-badge[:material/science: Demo data] sandbox customers, not a real Campaign Monitor "
                 "account —")
DEMO_LINK = N_("configure one in Settings")


def demo_banner(conn: Connection | None) -> None:
    """One line above the page's content (seen even with the sidebar collapsed), ending in a link
    to the Settings page."""
    if conn is None or not conn.is_demo:
        return
    with st.container(horizontal=True, vertical_alignment="center", gap="small", key="demo-banner"):
        st.markdown(t(DEMO_BANNER), width="content")
        settings_link(t(DEMO_LINK))
