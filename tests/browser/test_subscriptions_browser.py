"""The subscription dialog in headless Chromium: open, tick, reset, tick, save, give a name when
asked, apply, and the tab shows the new badge; a conflict offers the choices again. Screenshots
of each stage go to tests/browser/screenshots/."""
from __future__ import annotations

import re

import pytest

from cmlib.audit import ActorSource, AuditLog

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
    # nobody is signed in and no name was typed: the review asks for one, Apply waits for it
    expect(dialog.get_by_role("button", name="Apply")).to_be_disabled()
    prompt = dialog.get_by_role("textbox", name="Your name (who is acting, for the audit log)")
    prompt.fill("Dana Köhler")
    prompt.press("Enter")
    expect(dialog.get_by_text(re.compile(r"Acting as\W*Dana Köhler \(typed in this browser\)"))).to_be_visible()
    expect(dialog.get_by_role("button", name="Apply")).to_be_enabled()
    page.screenshot(path=str(screenshot_dir / "subscriptions-3-plan.png"))
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text("Applied.")).to_be_visible()
    wait_idle(page)
    page.screenshot(path=str(screenshot_dir / "subscriptions-4-applied.png"))
    assert sb.data.state_of(webinars, EMAIL) == "Unsubscribed"

    # close: the tab underneath shows the new state
    dialog.get_by_role("button", name="Close").click()  # the dialog's X: its one close control
    expect(page.get_by_role("dialog")).to_have_count(0)
    wait_idle(page)
    panel = page.locator('[role="tabpanel"]:visible')
    badges = panel.locator(".stMarkdownBadge, [class*='Badge']")
    expect(badges.filter(has_text=re.compile(r"^unsubscribed$"))).not_to_have_count(0)
    page.screenshot(path=str(screenshot_dir / "subscriptions-5-tab-updated.png"), full_page=True)
    # Newsletter and Offers stay subscribed; only Webinars changed
    expect(page.locator('[role="tab"]').first).to_contain_text("2 subscribed, 1 unsubscribed")

    # the app wrote the audit row into its own data folder
    rows = AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query()
    assert [(r.email, r.list_name, r.action, r.result) for r in rows] == [(EMAIL, "Webinars", "unsubscribe", "done")]
    assert (rows[0].actor, rows[0].actor_source) == ("Dana Köhler", ActorSource.TYPED)
    # the name given in the dialog is in the sidebar now, and remembered by this browser
    expect(page.get_by_role("textbox", name="Operator name")).to_have_value("Dana Köhler")


def _name_operator(page, url: str, name: str) -> None:
    """Type the operator name in the sidebar, as an operator does once per browser."""
    from playwright.sync_api import expect

    page.goto(url)
    field = page.get_by_role("textbox", name="Operator name")
    field.fill(name)
    field.press("Enter")
    wait_idle(page)
    expect(field).to_have_value(name)
    page.wait_for_function("() => document.cookie.includes('cm_operator=')")  # remembered by the browser


def _open_and_untick(page, url: str, email: str, list_name: str, *, operator: str = "Tess Tester"):
    from playwright.sync_api import expect

    _name_operator(page, url, operator)
    page.goto(f"{url}/?email={email}")
    tab = page.locator('[role="tabpanel"]:visible')
    expect(tab.get_by_role("button", name="Manage subscriptions")).to_be_visible(timeout=60_000)
    wait_idle(page)
    tab.get_by_role("button", name="Manage subscriptions").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("checkbox", name=list_name)).to_be_checked(timeout=30_000)
    dialog.get_by_text(list_name, exact=True).click()
    expect(dialog.get_by_role("checkbox", name=list_name)).not_to_be_checked()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_text(re.compile(rf"Plan:\W*unsubscribe from {list_name}"))).to_be_visible()
    wait_idle(page)
    return dialog


def test_two_browser_sessions_applying_the_same_change_send_it_once(browser, streamlit_app):
    """Issue 10.5: two sessions on one address untick Webinars and press Apply back to back: one
    unsubscribe reaches Campaign Monitor; the other session says "already so"."""
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    email = "ivan@example.com"
    contexts = [browser.new_context(viewport={"width": 1440, "height": 2200}) for _ in range(2)]
    try:
        pages = [c.new_page() for c in contexts]
        dialogs = [_open_and_untick(p, streamlit_app.url, email, "Webinars") for p in pages]
        before = sb.request_counts["unsubscribe"]
        for d in dialogs:  # no wait in between: both Apply clicks are in flight together
            d.get_by_role("button", name="Apply").click(no_wait_after=True)
        texts = []
        for d in dialogs:
            result = d.get_by_text(re.compile(r"^(Applied\.|Already so: nothing needed sending\.)"))
            expect(result).to_be_visible(timeout=30_000)
            texts.append(result.inner_text())
        assert sorted(t.split(":")[0].split(".")[0] for t in texts) == ["Already so", "Applied"]
        assert sb.request_counts["unsubscribe"] - before == 1
    finally:
        for c in contexts:
            c.close()
    rows = [r for r in AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query() if r.email == email]
    assert sorted(r.result.split(":")[0] for r in rows) == ["already", "done"]


def test_a_conflict_offers_the_operators_choices_again(page, streamlit_app, screenshot_dir):
    """Issue 12.6: the person leaves the Newsletter while the operator reviews "unsubscribe from
    Webinars". Nothing is written, the dialog says what changed, the untick is still there on the
    new states, and Apply (pressed again) makes the change."""
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    email = "conflict@example.com"
    newsletter = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    webinars = sb.data.list_by_name(sb.main_client_id, "Webinars").list_id
    sb.data.set_state(newsletter, email, "Active")
    sb.data.set_state(webinars, email, "Active")
    dialog = _open_and_untick(page, streamlit_app.url, email, "Webinars")
    sb.data.set_state(newsletter, email, "Unsubscribed")  # meanwhile, elsewhere
    before = sb.request_counts["unsubscribe"]
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text(re.compile(r"Nothing was written.*Newsletter: subscribed → unsubscribed"))
           ).to_be_visible(timeout=30_000)
    expect(dialog.get_by_text(re.compile(r"Your choices are kept on the current states"))).to_be_visible()
    wait_idle(page)
    expect(dialog.get_by_role("checkbox", name="Webinars")).not_to_be_checked()
    expect(dialog.get_by_role("checkbox", name="Newsletter")).not_to_be_checked()
    expect(dialog.get_by_text(re.compile(r"Plan:\W*unsubscribe from Webinars"))).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "subscriptions-conflict.png"))
    assert sb.request_counts["unsubscribe"] == before
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text("Applied.")).to_be_visible(timeout=30_000)
    assert sb.data.state_of(webinars, email) == "Unsubscribed"
    assert sb.data.state_of(newsletter, email) == "Unsubscribed"


def test_api_down_at_apply_keeps_the_dialog_open(page, streamlit_app, screenshot_dir):
    """Issue 10.4: with the API gone at Apply the dialog stays, says nothing was written and
    which lists, and the change is audited as not sent.

    Last in this module on purpose: the app's circuit breaker (per credential, process-wide)
    stays open for a probe interval after the outage, so a test after it would start with
    "Campaign Monitor is not answering"."""
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    email = "fresh@example.com"
    dialog = _open_and_untick(page, streamlit_app.url, email, "Newsletter")
    sb.set_faults(down=True)
    try:
        dialog.get_by_role("button", name="Apply").click()
        expect(dialog.get_by_text(re.compile("Nothing was written for fresh\u2060?@example\\.com: Campaign Monitor "
                                             "could not be reached"))).to_be_visible(timeout=30_000)
        wait_idle(page)
        expect(page.get_by_role("dialog")).to_have_count(1)
        expect(dialog.get_by_text(re.compile(r"Not sent: unsubscribe on Newsletter"))).to_be_visible()
        expect(page.get_by_text(re.compile("lookup failed", re.I))).to_have_count(0)
        page.screenshot(path=str(screenshot_dir / "subscriptions-api-down.png"))
    finally:
        sb.set_faults(down=False)
    newsletter = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    assert sb.data.state_of(newsletter, email) == "Active"
    rows = [r for r in AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query() if r.email == email]
    assert [(r.list_name, r.result.split(":")[0]) for r in rows] == [("Newsletter", "not sent")]
