"""An internal tool asks nobody else for anything: every page, and the deep links a helpdesk
opens, load only from the app's own address (no fonts, icons or scripts from another host, so
no third party learns who opens which page, and nothing fails on a network without internet)."""
from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from cmlib.sandbox.demo import DEMO_CUSTOMERS

pytestmark = pytest.mark.browser

PATHS = ["/", "/?" + urlencode([("email", e) for e in DEMO_CUSTOMERS["three_addresses"]]),
         "/bulk", "/settings", "/audit", "/panel?" + urlencode({"email": DEMO_CUSTOMERS["with_campaigns"][0]})]


@pytest.mark.parametrize("path", PATHS)
def test_a_page_loads_nothing_from_another_host(page, streamlit_app, path):
    from playwright.sync_api import expect

    elsewhere: list[str] = []
    page.on("request", lambda r: None if r.url.startswith((streamlit_app.url, "data:", "blob:"))
            else elsewhere.append(r.url))
    page.goto(streamlit_app.url + path)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_load_state("networkidle")  # late requests too: lazily loaded code, fonts, the icon
    # the tab's icon is set from the page (a data: URL), not fetched
    icon = page.locator('link[rel="shortcut icon"], link[rel="icon"]').last
    expect(icon).to_have_attribute("href", re.compile(r"^data:image/png;base64,"))
    assert elsewhere == [], elsewhere
