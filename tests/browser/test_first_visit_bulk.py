"""The very first request to a fresh server is ``/bulk`` with a repeated parameter.

Every value of a repeated query parameter, in order, must survive the first-visit detour
through app.py (ui/shell.py); before the fix ``?x=1&x=2`` came back as ``?x=2``. This module
gets its own server (the fixture is per module), so its first request really is the first.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

pytestmark = pytest.mark.browser


def test_first_visit_keeps_repeated_parameters_in_order(page, streamlit_app):
    page.goto(f"{streamlit_app.url}/bulk?x=1&x=2&y=&x=3")
    page.get_by_text("Bulk lookup", exact=True).first.wait_for()
    page.locator('[data-testid="stSidebarNav"]').wait_for()  # the detour through app.py happened
    page.get_by_text("Connected to").first.wait_for()
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    parts = urlsplit(page.url)
    assert parts.path.endswith("/bulk")
    # Streamlit keeps one list per key: the values of x in order, then y
    assert parse_qsl(parts.query, keep_blank_values=True) == [("x", "1"), ("x", "2"), ("x", "3"), ("y", "")]
