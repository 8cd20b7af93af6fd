"""ui/state.py's one refresh channel between the views that change an address and the view that
shows it (AppTest runs the calls inside a real script run, with a real session_state)."""
from __future__ import annotations

from streamlit.testing.v1 import AppTest

from ui.state import LOOKUP_REFRESH


def _script() -> None:
    import streamlit as st

    from ui.state import request_refresh, take_refresh

    for email in st.session_state.get("to_request", []):
        request_refresh(email)
    st.session_state["taken"] = take_refresh(st.session_state.get("shown", []))


def run(**state) -> AppTest:
    at = AppTest.from_function(_script, default_timeout=30)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_the_view_takes_what_it_shows_in_request_order_and_leaves_the_rest():
    at = run(to_request=["ivan@example.com", "Anna@Example.com", "other@example.com", "ivan@example.com"],
             shown=["anna@example.com", "ivan@example.com"])
    # a repeated request moves to the end; returned as the view spells the addresses
    assert at.session_state["taken"] == ["anna@example.com", "ivan@example.com"]
    assert at.session_state[LOOKUP_REFRESH] == ["other@example.com"]  # for a view that shows it


def test_nothing_requested_is_nothing_taken():
    at = run(shown=["anna@example.com"])
    assert at.session_state["taken"] == []
    assert LOOKUP_REFRESH not in at.session_state


def test_a_malformed_channel_is_read_as_empty():
    at = run(shown=["anna@example.com"], **{LOOKUP_REFRESH: "anna@example.com"})
    assert at.session_state["taken"] == []
    assert at.session_state[LOOKUP_REFRESH] == []
