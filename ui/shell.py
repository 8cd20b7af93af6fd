"""Make every page run inside the app shell, even when it is the first URL a server sees.

Streamlit decides per process whether an app uses the old ``pages/`` folder routing: until
``app.py`` has called ``st.navigation`` once, a first visit to ``/bulk`` or ``/settings`` runs
that page file on its own (no sidebar, no demo notice, an "app" entry in the menu). A page
that finds itself run that way hands over to ``app.py`` and asks it to come straight back,
with the same query parameters, once the real navigation exists.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

_DEEP_LINK = "_deep_link_page"


def _running_outside_navigation() -> bool:
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # internal API moved: nothing to repair
        return False
    return bool(PagesManager.uses_pages_directory)


def ensure_shell(page_file: str) -> None:
    """Call first thing in every page: redirect through app.py when run outside navigation."""
    if not _running_outside_navigation():
        return
    st.session_state[_DEEP_LINK] = (Path(page_file).name, st.query_params.to_dict())
    st.switch_page("app.py")


def resume_deep_link(pages: dict[str, "st.navigation"]) -> None:
    """Called by app.py after ``st.navigation``: go to the page a first visit asked for."""
    wanted = st.session_state.pop(_DEEP_LINK, None)
    if not wanted:
        return
    name, params = wanted
    page = pages.get(name)
    if page is not None:
        st.switch_page(page, query_params=params or None)
