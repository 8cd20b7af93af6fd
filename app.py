"""Entry point: `streamlit run app.py`. Page setup, navigation and the shared sidebar."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from cmlib.errors import CMError, describe
from cmlib.i18n import N_, t
from ui import favicon, nodelay, preload
from ui.access import require_login
from ui.connection import get_connection
from ui.demo import demo_banner
from ui.identity import use_link_operator
from ui.language import apply_language
from ui.shell import resume_deep_link
from ui.sidebar import render_sidebar

nodelay.install()  # this server's later connections answer without a 40 ms delayed-ACK wait
apply_language()  # first: the page title, the navigation and the sidebar are drawn in it

st.set_page_config(page_title=t("Campaign Monitor dashboard"), page_icon=favicon.DATA_URL,
                   layout="wide")
preload.install()  # the widgets' frontend code, fetched together before the elements that need it arrive

# (file, title, icon, url path); the first one is the default page. Titles are translated below.
PAGES = [
    ("pages/lookup.py", N_("Lookup"), ":material/person_search:", "lookup"),
    ("pages/bulk.py", N_("Bulk lookup"), ":material/table_view:", "bulk"),
    ("pages/settings.py", N_("Settings"), ":material/settings:", "settings"),
    ("pages/audit.py", N_("Audit log"), ":material/history:", "audit"),
    ("pages/panel.py", N_("Helpdesk panel"), ":material/view_sidebar:", "panel"),
]

pages = [
    st.Page(path, title=t(title), icon=icon, url_path=url, default=(i == 0))
    for i, (path, title, icon, url) in enumerate(PAGES)
]

nav = st.navigation(pages)
resume_deep_link({Path(path).name: page for (path, *_), page in zip(PAGES, pages, strict=True)})
if not require_login():
    st.stop()

conn = None
connection_error = None
try:
    conn = get_connection()
except CMError as err:  # e.g. a configured API URL that cannot be used at all
    connection_error = t("Cannot connect to Campaign Monitor: {reason}", reason=describe(err))
except OSError as err:  # the demo sandbox could not bind its loopback port
    connection_error = t("Cannot start the demo sandbox: {error}", error=type(err).__name__)
# Only the panel's own link names who acts (before the sidebar, which shows who acts).
use_link_operator(st.query_params.get("operator") if nav.url_path == "panel" else None)
render_sidebar(conn, connection_error)
demo_banner(conn)
nav.run()
