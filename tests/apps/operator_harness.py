"""The shared sidebar's "who is acting" panel on its own, for AppTest (a full app run under
st.navigation re-runs only the page script after the first run, dropping the sidebar)."""
from __future__ import annotations

from ui.connection import get_connection
from ui.sidebar import operator_panel

operator_panel(get_connection())
