"""The subscription dialog in headless Chromium: open, tick, reset, tick, save, apply, and the tab
shows the new badge. Screenshots of each stage go to tests/browser/screenshots/."""
from __future__ import annotations

import re

import pytest

from cmlib.audit import AuditLog

pytestmark = pytest.mark.browser

EMAIL = "anna@example.com"


def wait_idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def test_manage_subscriptions_end_to_end(page, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    webinars = sb.data.list_by_name(sb.main_client_id, "Webinars").list_id
    assert sb.data.state_of(webinars, EMAIL) == "Active"

    page.goto(f"{streamlit_app.url}/?email={EMAIL}")
    tab = page.locator('[role="tabpanel"]:visible')
    expect(tab.get_by_role("button", name="Manage subscriptions")).to_be_visible(timeout=60_000)
    wait_idle(page)
    tab.get_by_role("button", name="Manage subscriptions").click()

    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    beta = dialog.get_by_role("checkbox", name="Beta testers")
    web = dialog.get_by_role("checkbox", name="Webinars")
    expect(web).to_be_checked(timeout=30_000)
    expect(beta).not_to_be_checked()
    page.screenshot(path=str(screenshot_dir / "subscriptions-1-open.png"))

    # tick two boxes, then reset: both back to what was read at open
    dialog.get_by_text("Beta testers", exact=True).click()
    dialog.get_by_text("Webinars", exact=True).click()
    expect(beta).to_be_checked()
    expect(web).not_to_be_checked()
    dialog.get_by_role("button", name="Reset to original values").click()
    wait_idle(page)
    expect(dialog.get_by_role("checkbox", name="Beta testers")).not_to_be_checked()
    expect(dialog.get_by_role("checkbox", name="Webinars")).to_be_checked()
    page.screenshot(path=str(screenshot_dir / "subscriptions-2-reset.png"))

    # tick again (leave Webinars), save: the plan in words, then Apply
    dialog.get_by_text("Webinars", exact=True).click()
    expect(dialog.get_by_role("checkbox", name="Webinars")).not_to_be_checked()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_text(re.compile(r"Plan:\W*unsubscribe from Webinars"))).to_be_visible()
    wait_idle(page)
    page.screenshot(path=str(screenshot_dir / "subscriptions-3-plan.png"))
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text("Applied.")).to_be_visible()
    wait_idle(page)
    page.screenshot(path=str(screenshot_dir / "subscriptions-4-applied.png"))
    assert sb.data.state_of(webinars, EMAIL) == "Unsubscribed"

    # close: the tab underneath shows the new state
    dialog.locator('[data-testid^="stBaseButton"]').filter(has_text="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    wait_idle(page)
    panel = page.locator('[role="tabpanel"]:visible')
    badges = panel.locator(".stMarkdownBadge, [class*='Badge']")
    expect(badges.filter(has_text=re.compile(r"^unsubscribed$"))).not_to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "subscriptions-5-tab-updated.png"), full_page=True)
    # Newsletter and Offers stay subscribed; only Webinars changed
    expect(page.locator('[role="tab"]').first).to_contain_text("2 active, 1 unsubscribed")

    # the app wrote the audit row into its own data folder
    rows = AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query()
    assert [(r.email, r.list_name, r.action, r.result) for r in rows] == [(EMAIL, "Webinars", "unsubscribe", "done")]
