"""The Settings page in headless Chromium, against a real server.

Issue 10 #1 and #12: the attack as it was reproduced. The app runs with no admin password and a
key an admin saved on the Settings page (no credentials in its environment). Another browser
session opens Settings, leaves the key empty, points the API URL at a local HTTP server on another
port and presses Test connection, then Save. That server records every request: it must never
receive the saved key (nor anything). A metadata address and a 5,000-character URL get a
sentence, never Streamlit's exception box.

Issue 12 #7: on a first visit (nothing configured) an admin pastes a key, presses Tab and clicks
Test connection: the key in the field is the key used (it once said "Enter an API key first"),
and Tab goes from field to field, never to a help icon or the key's show-password eye.
"""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from cmlib.config import SettingsStore
from tests.browser.conftest import RunningApp, serve_app
from tests.key_listener import Listener, start_listener, stop_listener
from tests.sandbox_fixtures import make_sandbox

pytestmark = pytest.mark.browser


@contextlib.contextmanager
def _serve(tmp: Path, *, save_pair: bool) -> Iterator[RunningApp]:
    """The app with no credentials in its environment: only the pair saved in its settings.json
    (``save_pair``), or none at all (demo data until an admin enters a key)."""
    with make_sandbox() as sb:
        if save_pair:
            SettingsStore(tmp / "data" / "settings.json").save_credentials(sb.client_api_key, sb.main_client_id,
                                                                           sb.base_url)
        with serve_app(tmp, sb, {}) as app:
            yield app


@pytest.fixture(scope="module")
def saved_key_app(chromium_executable, tmp_path_factory) -> Iterator[RunningApp]:
    """The app whose only credentials are the pair saved in its settings.json."""
    with _serve(tmp_path_factory.mktemp("settings-app"), save_pair=True) as app:
        yield app


@pytest.fixture(scope="module")
def unconfigured_app(chromium_executable, tmp_path_factory) -> Iterator[RunningApp]:
    """The app with no credentials anywhere (a first visit): the key field is the only key there is."""
    with _serve(tmp_path_factory.mktemp("unconfigured-app"), save_pair=False) as app:
        yield app


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = start_listener()
    try:
        yield lst
    finally:
        stop_listener(lst)


def wait_idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def _set_url(page, url: str) -> None:
    field = page.get_by_role("textbox", name="API URL", exact=True)
    if not field.is_visible():
        page.get_by_text("API URL (advanced)").click()
    field.fill(url)
    field.press("Enter")
    wait_idle(page)


def _press(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    wait_idle(page)


def test_another_session_cannot_send_the_saved_key_to_its_own_server(page, saved_key_app, listener,
                                                                     screenshot_dir):
    from playwright.sync_api import expect

    key = saved_key_app.sandbox.client_api_key
    page.goto(f"{saved_key_app.url}/settings")
    expect(page.get_by_text("Using the credentials saved on this page")).to_be_visible(timeout=60_000)
    wait_idle(page)
    assert page.get_by_role("textbox", name="API key").input_value() == ""  # the key field is left empty

    _set_url(page, listener.base_url)
    _press(page, "Test connection")
    expect(page.get_by_text(re.compile("type the API key again"))).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "settings-key-stays-home-test.png"))
    _press(page, "Save")
    expect(page.get_by_text(re.compile(r"Not saved: .*only sent to the URL it was saved with"))).to_be_visible()

    # the checks ran before either answer was drawn: had anything been sent, it would be here
    assert listener.requests == [], listener.requests
    assert not listener.received_key(key)
    assert key not in page.content()
    assert SettingsStore(saved_key_app.log.parent / "data" / "settings.json").load()["api_url"] == \
        saved_key_app.sandbox.base_url


def test_metadata_and_monster_urls_get_a_sentence_not_a_traceback(page, saved_key_app, screenshot_dir):
    from playwright.sync_api import expect

    page.goto(f"{saved_key_app.url}/settings")
    expect(page.get_by_text("Using the credentials saved on this page")).to_be_visible(timeout=60_000)
    wait_idle(page)

    _set_url(page, "http://169.254.169.254/latest/meta-data/")
    _press(page, "Test connection")
    expect(page.get_by_text(re.compile("link-local / cloud metadata address"))).to_be_visible()

    _set_url(page, "https://" + "a" * 5000 + "/api/v3.3")
    _press(page, "Test connection")
    expect(page.get_by_text(re.compile(r"The API URL is too long \(5,017 characters"))).to_be_visible()
    _press(page, "Save")
    expect(page.get_by_text(re.compile(r"Not saved: The API URL is too long"))).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "settings-long-url.png"))
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert "LocationParseError" not in page.content() and "Traceback" not in page.content()


# ---------------------------------------------------------------------------- issue 12 #7

FOCUSED = """() => {
  const e = document.activeElement;
  return (e.getAttribute('aria-label') || e.innerText || e.tagName).replace(/\\s+/g, ' ').trim();
}"""


def _first_visit(page, app: RunningApp) -> None:
    from playwright.sync_api import expect

    page.goto(f"{app.url}/settings")
    expect(page.get_by_role("textbox", name="API key")).to_be_visible(timeout=60_000)
    wait_idle(page)


def _focused(page) -> str:
    return page.evaluate(FOCUSED)


def test_tab_goes_from_field_to_field(page, unconfigured_app):
    _first_visit(page, unconfigured_app)
    page.get_by_text("API URL (advanced)").click()  # opened, so its field is in the order too
    page.get_by_role("textbox", name="API key").click()
    stops = []
    for _ in range(5):
        page.keyboard.press("Tab")
        stops.append(_focused(page))
    assert stops[0] == "Client ID", stops  # not "Show password", not "Help for Client ID"
    assert "API URL (advanced)" in stops[1], stops
    assert stops[2] == "API URL", stops
    assert "Test connection" in stops[3] and "Save" in stops[4], stops
    back = []
    for _ in range(5):
        page.keyboard.press("Shift+Tab")
        back.append(_focused(page))
    assert back[3:] == ["Client ID", "API key"], back  # and back again, with nothing in between
    assert not page.get_by_role("button", name="Show password").is_visible()


def test_a_pasted_key_then_tab_then_test_connection_uses_that_key(page, unconfigured_app, screenshot_dir):
    from playwright.sync_api import expect

    sb = unconfigured_app.sandbox
    settings_file = unconfigured_app.log.parent / "data" / "settings.json"
    company = sb.data.client(sb.main_client_id).name
    _first_visit(page, unconfigured_app)
    page.get_by_text("API URL (advanced)").click()
    page.get_by_role("textbox", name="API URL", exact=True).fill(sb.base_url)  # no Enter, no blur yet

    key_field = page.get_by_role("textbox", name="API key")
    key_field.click()
    page.keyboard.insert_text(sb.client_api_key)  # as a paste does
    page.keyboard.press("Tab")
    assert _focused(page) == "Client ID"
    page.keyboard.insert_text(sb.main_client_id)
    page.keyboard.press("Tab")
    page.get_by_role("button", name="Test connection").click()  # focus moved twice, then a click
    expect(page.get_by_text(re.compile(f"^Connected to {re.escape(company)} \\("))).to_be_visible()
    expect(page.get_by_text("Enter an API key first")).to_have_count(0)
    assert not settings_file.exists()  # testing saves nothing
    page.screenshot(path=str(screenshot_dir / "settings-tab-then-test.png"))

    # Enter in a field is Test connection (the form's first button), never Save
    key_field.press("Enter")  # (the Client ID field is a picker of the key's clients by now)
    wait_idle(page)
    expect(page.get_by_text(re.compile(f"^Connected to {re.escape(company)} \\("))).to_be_visible()
    assert not settings_file.exists()

    key_field.click()
    page.keyboard.press("Tab")  # focus leaves the key field again, and the button is clicked
    _press(page, "Save")
    expect(page.get_by_text(re.compile(r"^Saved\. Every user of this app now uses client"))).to_be_visible()
    saved = SettingsStore(settings_file).load()
    assert saved["api_key"] == sb.client_api_key and saved["client_id"] == sb.main_client_id
    expect(key_field).to_have_value("")  # the field is emptied: the key never goes back to the browser
    assert sb.client_api_key not in page.content()
