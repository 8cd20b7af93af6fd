"""Issue 13 in headless Chromium: the helpdesk panel at 360 x 740 inside a cross-site iframe.

A tiny host page -- the "helpdesk" -- is served by ``http.server`` from ``localhost`` on its own
port and embeds ``http://127.0.0.1:<app port>/panel?...&embed=true&operator=...``: another
origin and another *site* (different host), so the panel runs as a real third-party frame, with
the cookie rules a ticket sidebar has. Every check runs inside the frame.
"""
from __future__ import annotations

import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from cmlib.audit import ActorSource, AuditLog
from cmlib.sandbox import VIP_LIST_NAME

pytestmark = pytest.mark.browser

WIDTH, HEIGHT = 360, 740
ADDRESSES = ["ivan@example.com", "ivan.work@example.org", "ivan.old@example.com"]
OPERATOR = "Dana Helpdesk"


@pytest.fixture(scope="module")
def helpdesk(tmp_path_factory, streamlit_app) -> Iterator[str]:
    """The host page on ``localhost:<port>`` (the app is on 127.0.0.1): its URL."""
    root: Path = tmp_path_factory.mktemp("helpdesk")
    query = urlencode([("email", ADDRESSES[0]), ("email", ",".join(ADDRESSES[1:])), ("embed", "true"),
                       ("operator", OPERATOR)])
    src = f"{streamlit_app.url}/panel?{query}"
    (root / "index.html").write_text(
        "<!doctype html><html><head><title>Ticket 4711</title>"
        "<style>body{margin:0}iframe{border:0;display:block}</style></head><body>"
        f'<iframe title="Campaign Monitor" src="{src}" width="{WIDTH}" height="{HEIGHT}"></iframe>'
        "</body></html>", encoding="utf-8")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()


def wait_idle(frame) -> None:
    frame.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


@pytest.fixture
def panel(browser, helpdesk):
    """(page, frame) with the panel loaded in the host page's iframe."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(helpdesk)
    frame = page.frame_locator("iframe")
    expect(frame.get_by_role("radio").first).to_be_attached(timeout=60_000)
    expect(frame.locator('[data-testid="stExpander"]').first).to_be_visible(timeout=60_000)
    content = next(f for f in page.frames if "/panel" in f.url)
    wait_idle(content)
    try:
        yield page, frame, content
    finally:
        context.close()


OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.right > width + 1 && getComputedStyle(el).visibility !== 'hidden')
      out.push((el.getAttribute('data-testid') || el.tagName) + ' ' + Math.round(r.right));
  }
  const scrollers = [document.scrollingElement, ...document.querySelectorAll('[data-testid="stMain"], section')]
    .filter(Boolean).filter(el => el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
    .map(el => (el.getAttribute('data-testid') || el.tagName) + ' ' + el.scrollWidth + '>' + el.clientWidth);
  return {width, out: out.slice(0, 10), scrollers};
}"""


def test_the_panel_fits_360px_and_shows_addresses_and_badges_above_the_fold(panel, screenshot_dir):
    from playwright.sync_api import expect

    page, frame, content = panel
    page.screenshot(path=str(screenshot_dir / "panel-360-embed.png"))
    result = content.evaluate(OVERFLOW_JS)
    assert result["width"] == WIDTH
    assert result["scrollers"] == [] and result["out"] == [], result  # no horizontal scrolling anywhere

    # no app chrome in embed mode: no sidebar (nor its arrow), no header, no title, no address box
    for testid in ("stSidebar", "stSidebarCollapsedControl", "stExpandSidebarButton", "stHeader"):
        assert content.evaluate(f"""() => [...document.querySelectorAll('[data-testid="{testid}"]')]
                                    .every(el => el.getBoundingClientRect().width === 0)"""), testid
    expect(frame.get_by_role("heading")).to_have_count(0)
    # Why operator= exists: a cross-site frame cannot keep the remembered name, the browser drops a
    # SameSite=Lax cookie the frame sets (README "Embedding in a helpdesk").
    stored = content.evaluate("() => { document.cookie = 'cm_probe=1; path=/; SameSite=Lax'; return document.cookie; }")
    assert "cm_probe" not in stored
    expect(frame.get_by_role("textbox")).to_have_count(0)

    # every address is a radio option with its summary; the first is chosen
    radios = frame.get_by_role("radio")
    expect(radios).to_have_count(len(ADDRESSES))
    for radio, address in zip(radios.all(), ADDRESSES, strict=True):
        box = radio.locator("xpath=ancestor::label[1]").bounding_box()
        assert box is not None and box["y"] + box["height"] <= HEIGHT, (address, box)
    expect(radios.first).to_be_checked()
    expect(frame.get_by_text(re.compile(r"ivan\W*@example\.com · 4 subscribed"))).to_be_visible()

    # the first list's coloured badge is visible without scrolling
    first = frame.locator('[data-testid="stExpander"] summary').first
    expect(first).to_contain_text("Newsletter")
    expect(first).to_contain_text("subscribed")
    badge = first.get_by_text("subscribed", exact=True)
    box = badge.bounding_box()
    assert box is not None and box["y"] + box["height"] <= HEIGHT, box


def test_every_address_is_reachable_and_campaigns_are_in_the_accessibility_tree(panel, screenshot_dir):
    from playwright.sync_api import expect

    page, frame, content = panel
    expected = {"ivan.work@example.org": "unsubscribed", "ivan.old@example.com": "bounced"}
    for address, word in expected.items():
        frame.get_by_role("radio", name=re.compile(re.escape(address.split("@")[0]) + r"\W*@")).check(force=True)
        wait_idle(content)
        expect(frame.get_by_role("radio", name=re.compile(re.escape(address.split("@")[0]) + r"\W*@"))
               ).to_be_checked()
        expect(frame.locator('[data-testid="stExpander"] summary').filter(has_text=word).first).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "panel-360-third-address.png"))
    assert content.evaluate(OVERFLOW_JS)["out"] == []

    frame.get_by_role("radio", name=re.compile(r"^ivan\W*@")).check(force=True)
    wait_idle(content)
    campaigns = frame.get_by_role("list", name=re.compile(r"The last 3 of \d+ emails received"))
    expect(campaigns).to_be_visible()
    items = campaigns.get_by_role("listitem")
    expect(items).to_have_count(3)
    tree = frame.locator("body").aria_snapshot()  # the frame's accessibility tree, as a screen reader gets it
    tree = tree[tree.index('list "The last 3'):]
    assert tree.count("- listitem") == 3, tree
    # subject, sent date with its zone, opened/clicked as images named yes/no, the web version link
    assert re.search(r"Sent \d{4}-\d\d-\d\d \d\d:\d\d \S+", tree), tree
    assert re.search(r'img "(yes|no)"', tree) and "Opened" in tree and "Clicked" in tree, tree
    assert re.search(r'link "web version of [^"]+"', tree), tree
    # the activity line
    expect(frame.get_by_text(re.compile(r"\d+ received · open rate \d+% · click rate \d+%"))).to_be_visible()
    link = frame.get_by_role("link", name="Open in the full dashboard")
    expect(link).to_have_attribute("href", re.compile(r"^\./\?email=ivan%40example\.com&email=ivan\.work"))
    # followed on a server that is already running, it opens the Lookup page with the three tabs
    target = content.evaluate("() => new URL(document.querySelector('a[href^=\"./?email\"]').href).href")
    full = page.context.new_page()
    try:
        full.goto(target)
        expect(full.get_by_role("tab")).to_have_count(3, timeout=30_000)
        expect(full.get_by_text("Page not found")).to_have_count(0)
    finally:
        full.close()


def test_a_dialog_round_trip_records_the_operator_from_the_link(panel, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    page, frame, content = panel
    frame.get_by_role("button", name="Manage subscriptions").click()
    dialog = frame.get_by_role("dialog")
    expect(dialog.get_by_role("checkbox", name="Webinars")).to_be_checked(timeout=30_000)
    assert content.evaluate(OVERFLOW_JS)["out"] == []  # the dialog fits the width too
    # accessible names are the visible text: a hostile list name without markdown's escapes
    expect(dialog.get_by_role("checkbox", name=VIP_LIST_NAME, exact=True)).to_have_count(1)
    dialog.get_by_text("Webinars", exact=True).click()
    expect(dialog.get_by_role("checkbox", name="Webinars")).not_to_be_checked()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_text(re.compile(r"Plan:\W*unsubscribe from Webinars"))).to_be_visible()
    wait_idle(content)
    expect(dialog.get_by_text(f"Acting as {OPERATOR} (from the helpdesk link)", exact=False)).to_be_visible()
    expect(dialog.get_by_role("textbox", name=re.compile("Your name"))).to_have_count(0)  # not asked
    page.screenshot(path=str(screenshot_dir / "panel-360-dialog.png"))
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text("Applied.")).to_be_visible(timeout=30_000)
    wait_idle(content)
    rows = [r for r in AuditLog(streamlit_app.log.parent / "data" / "audit.sqlite").query()
            if r.email == "ivan@example.com"]
    assert [(r.actor, r.actor_source, r.list_name) for r in rows] == [
        (OPERATOR, ActorSource.HELPDESK_LINK, "Webinars")]
    dialog.get_by_role("button", name="Close").click()  # the dialog's X: its one close control
    expect(frame.get_by_role("dialog")).to_have_count(0)
    webinars = frame.locator('[data-testid="stExpander"] summary').filter(has_text="Webinars")
    expect(webinars).to_contain_text("unsubscribed", timeout=30_000)  # the card was refetched


def test_without_embed_the_panel_also_fits_360px(browser, streamlit_app, screenshot_dir):
    """The same URL opened on its own (no embed=true): the app's frame is there, still no overflow."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{streamlit_app.url}/panel?" + urlencode([("email", ",".join(ADDRESSES))]))
        expect(page.locator('[data-testid="stExpander"]').first).to_be_visible(timeout=60_000)
        wait_idle(page)
        expect(page.get_by_role("heading", name="Helpdesk panel")).to_be_visible()
        expect(page.get_by_role("textbox", name="Email addresses")).to_be_visible()
        expect(page.locator('[data-testid="stMain"]').get_by_role("radio")).to_have_count(len(ADDRESSES))
        page.screenshot(path=str(screenshot_dir / "panel-360-standalone.png"))
        result = page.evaluate(OVERFLOW_JS)
        assert result["scrollers"] == [] and result["out"] == [], result
    finally:
        context.close()


def test_the_russian_panel_also_fits_360px(browser, streamlit_app, screenshot_dir):
    """Russian words run longer than English ones («отказ доставки», «не подтверждён»): the
    embedded panel in Russian still has no horizontal scrolling and its first badge above the fold."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, locale="ru-RU")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{streamlit_app.url}/panel?" + urlencode([("email", ",".join(ADDRESSES)), ("embed", "true"),
                                                             ("lang", "ru")]))
        expect(page.locator('[data-testid="stExpander"]').first).to_be_visible(timeout=60_000)
        wait_idle(page)
        # no fixed counts: the module's dialog round trip changes ivan's lists on the shared app
        expect(page.get_by_text(re.compile(r"ivan\W*@example\.com · подписан: \d"))).to_be_visible()
        page.get_by_role("radio", name=re.compile(r"^ivan\W*\.old")).check(force=True)
        expect(page.get_by_text("отказ доставки", exact=True).first).to_be_visible()
        wait_idle(page)
        page.screenshot(path=str(screenshot_dir / "panel-360-ru.png"))
        result = page.evaluate(OVERFLOW_JS)
        assert result["width"] == WIDTH
        assert result["scrollers"] == [] and result["out"] == [], result
        box = page.get_by_text("отказ доставки", exact=True).first.bounding_box()
        assert box is not None and box["y"] + box["height"] <= HEIGHT, box
    finally:
        context.close()
