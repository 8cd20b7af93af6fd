"""Entry point: `streamlit run app.py`. Page setup, navigation and the shared sidebar.

Pages are listed only when their file exists, so the app runs while pages are being written
and a missing page never turns into a navigation crash.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cmlib.errors import CMError
from ui.connection import get_connection
from ui.sidebar import demo_banner, render_sidebar

ROOT = Path(__file__).resolve().parent

st.set_page_config(page_title="Campaign Monitor dashboard", page_icon=":material/mark_email_read:",
                   layout="wide")

# (file, title, icon, url path); the first existing one is the default page.
PAGES = [
    ("pages/lookup.py", "Lookup", ":material/person_search:", "lookup"),
    ("pages/bulk.py", "Bulk lookup", ":material/table_view:", "bulk"),
    ("pages/settings.py", "Settings", ":material/settings:", "settings"),
    ("pages/audit.py", "Audit log", ":material/history:", "audit"),
]

present = [p for p in PAGES if (ROOT / p[0]).exists()]
pages = [
    st.Page(path, title=title, icon=icon, url_path=url, default=(i == 0))
    for i, (path, title, icon, url) in enumerate(present)
]

conn = None
connection_error = None
try:
    conn = get_connection()
except CMError as err:  # e.g. a configured API URL that cannot be used at all
    connection_error = f"Cannot connect to Campaign Monitor: {err.reason}"
except OSError as err:  # the demo sandbox could not bind its loopback port
    connection_error = f"Cannot start the demo sandbox: {type(err).__name__}"

if not pages:
    st.error("No pages are installed.")
    st.stop()

nav = st.navigation(pages)
render_sidebar(conn, connection_error)
demo_banner(conn)
nav.run()
