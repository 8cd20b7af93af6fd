"""Make every page run inside the app shell, even when it is the first URL a server sees.

Streamlit decides per process whether an app uses the old ``pages/`` folder routing: until
``app.py`` has called ``st.navigation`` once, a first visit to ``/bulk`` or ``/settings`` runs
that page file on its own (no sidebar, no demo notice, an "app" entry in the menu). A page
that finds itself run that way hands over to ``app.py`` and asks it to come straight back,
with the same query parameters, once the real navigation exists.

The parameters are kept as every value of every key, in order (``?email=a&email=b`` is two
addresses, and ``to_dict()`` would keep only the last), because a deep link to the Lookup page
is a list of addresses pasted into a ticket.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

if TYPE_CHECKING:
    from streamlit.navigation.page import StreamlitPage

_DEEP_LINK = "_deep_link_page"


@dataclass(frozen=True)
class DeepLink:
    """The page a first visit asked for and its query parameters, each key with all its values."""

    page: str  # file name, e.g. "lookup.py"
    params: tuple[tuple[str, tuple[str, ...]], ...]

    def query_params(self) -> dict[str, list[str]] | None:
        """For ``st.switch_page``: a list per key keeps repeated values and their order."""
        return {key: list(values) for key, values in self.params} or None


def _running_outside_navigation() -> bool:
    """True while Streamlit routes by the ``pages/`` folder. Reads an internal flag: if a
    Streamlit release moves or renames it, answer False (no detour) rather than fail the page."""
    try:
        from streamlit.runtime.pages_manager import PagesManager

        return bool(PagesManager.uses_pages_directory)
    except (ImportError, AttributeError):
        return False


def current_params() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Every query parameter of this run, every value, in the order the URL gave them."""
    qp = st.query_params
    return tuple((key, tuple(qp.get_all(key))) for key in qp)


def ensure_shell(page_file: str) -> None:
    """Call first thing in every page: redirect through app.py when run outside navigation."""
    if not _running_outside_navigation():
        return
    st.session_state[_DEEP_LINK] = DeepLink(Path(page_file).name, current_params())
    st.switch_page("app.py")


def resume_deep_link(pages: dict[str, StreamlitPage]) -> None:
    """Called by app.py after ``st.navigation``: go to the page a first visit asked for."""
    wanted = st.session_state.pop(_DEEP_LINK, None)
    if not isinstance(wanted, DeepLink):
        return
    page = pages.get(wanted.page)
    if page is not None:
        st.switch_page(page, query_params=wanted.query_params())
