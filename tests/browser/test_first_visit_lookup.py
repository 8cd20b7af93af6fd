"""The very first request to a fresh server is a Lookup deep link with two addresses.

Before the fix, the first-visit detour through app.py (ui/shell.py) kept only the last value
of each query parameter: the page ended on ``?email=<second>`` with one tab. This module gets
its own server (the fixture is per module), so its first request really is the first.
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

pytestmark = pytest.mark.browser


def test_first_visit_keeps_every_address_in_order(page, streamlit_app):
    from playwright.sync_api import expect

    page.goto(f"{streamlit_app.url}/lookup?email=ivan%40example.com&email=anna%40example.com")
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    expect(tabs).to_have_count(2, timeout=60_000)
    labels = [t.replace("\u2060", "").split(" · ")[0].strip() for t in tabs.all_inner_texts()]
    assert labels == ["ivan@example.com", "anna@example.com"]
    page.locator('[data-testid="stSidebarNav"]').wait_for()  # inside the app shell
    parts = urlsplit(page.url)
    assert parts.path in ("/", "/lookup")  # Lookup is the default page, so its address is the root
    query = parse_qsl(parts.query, keep_blank_values=True)
    assert query == [("email", "ivan@example.com"), ("email", "anna@example.com")]
