"""Issue 13, keyboard and focus on the Lookup page (the panel shares the same script, ui.a11y):
the subscription dialog has one close control, gives focus back to the button that opened it,
moves focus to the review step after Save changes, and checkboxes and tabs are named by the text
they show -- the hostile VIP list name without markdown's escapes."""
from __future__ import annotations

import re
from urllib.parse import urlencode

from cmlib.sandbox import VIP_LIST_NAME

VIP = "vip@example.com"
OPENER = f'.st-key-subs_open-{re.sub(r"[^A-Za-z0-9_-]", "-", VIP)}'


def wait_idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def open_lookup(page, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(f"{url}/?" + urlencode([("email", VIP), ("email", "anna@example.com")]))
    expect(page.locator(OPENER).get_by_role("button")).to_be_visible(timeout=60_000)
    wait_idle(page)


def opener_has_focus(page) -> bool:
    return page.evaluate(f"() => !!document.activeElement && !!document.activeElement.closest('{OPENER}')")


def open_dialog(page):
    from playwright.sync_api import expect

    page.locator(OPENER).get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Save changes")).to_be_visible(timeout=30_000)
    wait_idle(page)
    return dialog


def test_closing_the_dialog_gives_focus_back_to_its_opener(page, streamlit_app):
    from playwright.sync_api import expect

    open_lookup(page, streamlit_app.url)
    page.locator(OPENER).get_by_role("button").focus()
    page.keyboard.press("Enter")  # opened from the keyboard
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Save changes")).to_be_visible(timeout=30_000)
    wait_idle(page)
    expect(dialog.get_by_role("button", name="Close")).to_have_count(1)  # one close control: the X
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_have_count(0)
    wait_idle(page)
    page.wait_for_function(f"() => !!(document.activeElement && document.activeElement.closest('{OPENER}'))")
    assert opener_has_focus(page)
    # and with the mouse, closed with the X
    dialog = open_dialog(page)
    dialog.get_by_role("button", name="Close").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    wait_idle(page)
    page.wait_for_function(f"() => !!(document.activeElement && document.activeElement.closest('{OPENER}'))")
    assert opener_has_focus(page)


def test_save_changes_moves_focus_to_the_review(page, streamlit_app):
    from playwright.sync_api import expect

    open_lookup(page, streamlit_app.url)
    dialog = open_dialog(page)
    dialog.get_by_text("Newsletter", exact=True).click()
    dialog.get_by_role("button", name="Save changes").click()
    heading = dialog.get_by_role("heading", name="Review the change")
    expect(heading).to_be_visible(timeout=30_000)
    expect(heading).to_be_focused()
    # the next Tab goes on from the review, not from the top of the dialog
    page.keyboard.press("Tab")
    assert page.evaluate("() => !!document.activeElement.closest('[role=\"dialog\"]')")


def test_checkboxes_and_tabs_are_named_by_their_visible_text(page, streamlit_app):
    from playwright.sync_api import expect

    open_lookup(page, streamlit_app.url)
    expect(page.get_by_role("tab", name=f"{VIP} · 2 subscribed", exact=True)).to_have_count(1)
    expect(page.get_by_role("tab", name="anna@example.com · 3 subscribed", exact=True)).to_have_count(1)
    dialog = open_dialog(page)
    expect(dialog.get_by_role("checkbox", name=VIP_LIST_NAME, exact=True)).to_have_count(1)
    expect(dialog.get_by_role("checkbox", name="Newsletter", exact=True)).to_be_checked()
    tree = dialog.aria_snapshot()
    assert "\\<" not in tree and "\\*" not in tree and "\u2060" not in tree.split("paragraph")[0], tree
