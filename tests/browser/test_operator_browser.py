"""Issue 12.1 in headless Chromium: the operator name typed once is remembered by the browser --
after a reload, in a new tab, and in a helpdesk deep link opened in a new tab, where the dialog
says who is acting without asking -- and a name given in the dialog is remembered the same way."""
from __future__ import annotations

import re

import pytest

from cmlib.audit import ActorSource, AuditLog

pytestmark = pytest.mark.browser

NAME = "Dana Köhler <b>x</b>"  # non-ASCII and markup: both must come back as typed, as text


def wait_idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def wait_remembered(page) -> None:
    page.wait_for_function("() => document.cookie.includes('cm_operator=')", timeout=30_000)


def open_dialog(page, url: str, email: str):
    from playwright.sync_api import expect

    page.goto(f"{url}/?email={email}")
    tab = page.locator('[role="tabpanel"]:visible')
    expect(tab.get_by_role("button", name="Manage subscriptions")).to_be_visible(timeout=60_000)
    wait_idle(page)
    tab.get_by_role("button", name="Manage subscriptions").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("checkbox", name="Webinars")).to_be_checked(timeout=30_000)
    return dialog


def untick_and_save(page, dialog, list_name: str) -> None:
    from playwright.sync_api import expect

    dialog.get_by_text(list_name, exact=True).click()
    expect(dialog.get_by_role("checkbox", name=list_name)).not_to_be_checked()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_text(re.compile(rf"Plan:\W*unsubscribe from {list_name}"))).to_be_visible()
    wait_idle(page)


def test_the_name_typed_once_survives_a_reload_a_new_tab_and_a_deep_link(browser, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 2200})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(streamlit_app.url)
        field = page.get_by_role("textbox", name="Operator name")
        expect(field).to_have_value("", timeout=60_000)
        field.fill(NAME)
        field.press("Enter")
        wait_idle(page)
        wait_remembered(page)

        page.reload()
        expect(page.get_by_role("textbox", name="Operator name")).to_have_value(NAME, timeout=60_000)

        tab = context.new_page()  # a new tab of the same browser
        tab.set_default_timeout(30_000)
        tab.goto(f"{streamlit_app.url}/bulk")
        expect(tab.get_by_role("textbox", name="Operator name")).to_have_value(NAME, timeout=60_000)
        tab.close()

        link = context.new_page()  # a helpdesk deep link opened in a new tab
        link.set_default_timeout(30_000)
        dialog = open_dialog(link, streamlit_app.url, "anna@example.com")
        expect(link.get_by_role("textbox", name="Operator name")).to_have_value(NAME)
        untick_and_save(link, dialog, "Webinars")
        expect(dialog.get_by_text(f"Acting as {NAME} (typed in this browser)", exact=False)).to_be_visible()
        expect(dialog.get_by_role("textbox", name=re.compile("Your name"))).to_have_count(0)  # not asked again
        link.screenshot(path=str(screenshot_dir / "operator-deep-link-acting-as.png"))
        dialog.get_by_role("button", name="Apply").click()
        expect(dialog.get_by_text("Applied.")).to_be_visible(timeout=30_000)
    finally:
        context.close()
    rows = [r for r in AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query()
            if r.email == "anna@example.com"]
    assert [(r.actor, r.actor_source, r.list_name) for r in rows] == [(NAME, ActorSource.TYPED, "Webinars")]


def test_a_name_given_in_the_dialog_is_remembered_too(browser, streamlit_app):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 2200})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        dialog = open_dialog(page, streamlit_app.url, "ivan@example.com")
        untick_and_save(page, dialog, "Webinars")
        prompt = dialog.get_by_role("textbox", name="Your name (who is acting, for the audit log)")
        prompt.fill("Sam")
        prompt.press("Enter")
        expect(dialog.get_by_text("Acting as Sam (typed in this browser)", exact=False)).to_be_visible()
        wait_remembered(page)  # written from inside the dialog, before any full rerun

        other = context.new_page()
        other.set_default_timeout(30_000)
        other.goto(streamlit_app.url)
        expect(other.get_by_role("textbox", name="Operator name")).to_have_value("Sam", timeout=60_000)
    finally:
        context.close()
