"""A server's very first visitor may arrive on a deep link to a sub-page.

Before app.py has run once, Streamlit would route ``/bulk`` by the ``pages/`` folder and run
the page without the app shell. ui/shell.py sends such a visit through app.py and back; this
module gets its own fresh server, so its first request really is the first.
"""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_first_request_to_a_sub_page_gets_the_shell_and_keeps_the_url(page, streamlit_app):
    page.goto(f"{streamlit_app.url}/bulk?job=none")
    page.get_by_text("Bulk lookup", exact=True).first.wait_for()
    nav = page.locator("[data-testid=stSidebarNav]")
    nav.wait_for()
    entries = nav.inner_text()
    for title in ("Lookup", "Bulk lookup", "Settings", "Audit log"):
        assert title in entries
    assert "app" not in entries.split()  # no file-name entries from folder routing
    page.get_by_text("Connected to").first.wait_for()  # the shared sidebar ran
    assert page.url.endswith("/bulk?job=none")
