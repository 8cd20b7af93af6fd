"""The Lookup page in headless Chromium: tabs that select on a click anywhere on the label
(no mailto: link inside), coloured badges, the campaigns table, and hostile list names that
stay text. A screenshot of each address is saved under tests/browser/screenshots/.
"""
from __future__ import annotations

import re

import pytest

from cmlib.sandbox import DEMO_CUSTOMERS, VIP_LIST_NAME

pytestmark = pytest.mark.browser

WJ = "\u2060"
BADGE_TEXT = {"Active": "subscribed", "Unsubscribed": "unsubscribed", "Unconfirmed": "pending",
              "Deleted": "deleted", "Bounced": "bounced"}


def visible_text(s: str) -> str:
    return s.replace(WJ, "").strip()


def wait_for_app(page) -> None:
    """Until the script run is over and every element of the visible tab has drawn (the data grid
    and metrics load their code lazily and show skeletons first)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stSkeleton\"]')",
        timeout=30_000,
    )


def test_three_addresses_as_tabs(page, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    emails = list(DEMO_CUSTOMERS["three_addresses"])
    page.goto(streamlit_app.url + "/?" + "&".join(f"email={e}" for e in emails))
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    expect(tabs).to_have_count(3, timeout=60_000)
    wait_for_app(page)

    # Tab labels are text: no link of any kind, let alone mailto:, anywhere in the tab bar.
    assert page.locator('[role="tablist"] a').count() == 0
    assert page.locator('[role="tab"] a[href^="mailto:"]').count() == 0

    colours: dict[str, set[str]] = {}
    for i, email in enumerate(emails):
        tab = tabs.nth(i)
        label = tab.locator('[data-testid="stMarkdownContainer"]')
        assert visible_text(label.inner_text()).startswith(f"{email} · ")
        label.click()  # on the address text itself: must select, not open a mail client
        expect(tab).to_have_attribute("aria-selected", "true")
        panel = page.locator('[role="tabpanel"]:visible')
        expect(panel).to_have_count(1)

        memberships = sb.data.memberships(sb.main_client_id, email)
        # list names in order, each with its badge text
        names = [visible_text(t) for t in panel.locator('[data-testid="stMarkdownContainer"] strong').all_inner_texts()]
        for m in memberships:
            assert m.list_name in names
        shown_badges = []
        for el in panel.locator('[data-testid="stMarkdown"]:has(.stMarkdownBadge)').all():
            badge = el.locator(".stMarkdownBadge").first  # a badge with a tooltip renders twice
            shown_badges.append((visible_text(badge.inner_text()),
                                 badge.evaluate("e => getComputedStyle(e).color")))
        state_badges = [b for b in shown_badges if b[0] in BADGE_TEXT.values()]
        assert [t for t, _ in state_badges] == [BADGE_TEXT[m.state] for m in memberships], shown_badges
        for text, colour in state_badges:
            colours.setdefault(text, set()).add(colour)

        # the campaigns table and the activity metrics of an address that received email
        expect(panel.locator('[data-testid="stDataFrame"]')).to_have_count(1)
        expect(panel.locator('[data-testid="stMetric"]')).to_have_count(5)
        expect(panel.locator('[data-testid="stDataFrame"] canvas').first).to_be_visible()
        expect(panel.get_by_role("button", name="Refresh")).to_be_visible()
        page.screenshot(path=str(screenshot_dir / f"lookup-{i + 1}-{email.replace('@', '_at_')}.png"), full_page=True)

    # one colour per state, and different states never share one
    assert set(colours) == {"subscribed", "unsubscribed", "bounced", "deleted"}
    assert all(len(c) == 1 for c in colours.values())
    assert len({next(iter(c)) for c in colours.values()}) == len(colours)

    # the URL still names the customer, so it can be pasted into the ticket
    assert all(re.search(re.escape(e.replace("@", "%40")) + "|" + re.escape(e), page.url) for e in emails)


def test_hostile_list_name_is_plain_text(page, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    email = DEMO_CUSTOMERS["html_list_name"][0]
    page.goto(f"{streamlit_app.url}/?email={email}")
    expect(page.locator('[data-testid="stTabs"] [role="tab"]')).to_have_count(1, timeout=60_000)
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    expect(main.locator('[data-testid="stMetric"]')).to_have_count(5)
    expect(main.get_by_role("button", name="Refresh")).to_be_visible()
    strongs = [visible_text(t) for t in main.locator("strong").all_inner_texts()]
    assert VIP_LIST_NAME in strongs  # literal: the ** and :red[x] are characters, not markup
    assert main.locator('img[src="x"]').count() == 0
    assert main.locator("strong strong").count() == 0
    page.screenshot(path=str(screenshot_dir / "lookup-vip.png"), full_page=True)


def test_refresh_keeps_the_tab_and_shows_the_new_state(page, streamlit_app):
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    emails = ["anna@example.com", "maria+news@example.com"]
    page.goto(streamlit_app.url + "/?email=anna%40example.com&email=maria%2Bnews%40example.com")
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    expect(tabs).to_have_count(2, timeout=60_000)
    wait_for_app(page)
    assert visible_text(tabs.nth(1).inner_text()) == f"{emails[1]} · 2 subscribed"

    tabs.nth(1).locator('[data-testid="stMarkdownContainer"]').click()
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    offers = sb.data.list_by_name(sb.main_client_id, "Offers").list_id
    sb.data.set_state(offers, emails[1], "Unsubscribed")
    page.locator('[role="tabpanel"]:visible').get_by_role("button", name="Refresh").click()

    expect(tabs.nth(1)).to_contain_text("1 unsubscribed", timeout=30_000)
    wait_for_app(page)
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")
    assert visible_text(tabs.nth(0).inner_text()) == f"{emails[0]} · 3 subscribed"
    panel = page.locator('[role="tabpanel"]:visible')
    expect(panel.locator(".stMarkdownBadge", has_text="unsubscribed").first).to_be_visible()

    # any later rerun (here: the sidebar's operator name) leaves the selection alone
    page.get_by_role("textbox", name="Operator name").fill("Dana")
    page.get_by_role("textbox", name="Operator name").press("Enter")
    wait_for_app(page)
    expect(tabs.nth(1)).to_have_attribute("aria-selected", "true")


def test_lookup_survives_a_visit_to_another_page(page, streamlit_app):
    from playwright.sync_api import expect

    page.goto(f"{streamlit_app.url}/?email=anna%40example.com&email=fresh%40example.com")
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    expect(tabs).to_have_count(2, timeout=60_000)
    wait_for_app(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Settings", exact=True).click()
    page.wait_for_url(re.compile(r"/settings"))
    wait_for_app(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Lookup", exact=True).click()
    expect(tabs).to_have_count(2, timeout=30_000)
    wait_for_app(page)
    assert [visible_text(t).split(" · ")[0] for t in tabs.all_inner_texts()] == ["anna@example.com",
                                                                                 "fresh@example.com"]
    assert "anna%40example.com" in page.url or "anna@example.com" in page.url
    assert page.locator("textarea").input_value().split() == ["anna@example.com", "fresh@example.com"]


def test_an_address_copied_from_a_tab_label_pastes_back(page, streamlit_app):
    """Copy (real clipboard) the address a tab label shows, paste it into the lookup box: found.

    The label needs its WORD JOINER against the mailto: autolink, and the copy carries it; the
    lookup box drops invisible characters instead of refusing "unsafe characters: WORD JOINER".
    """
    from playwright.sync_api import expect

    email = "ivan.work@example.org"
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=streamlit_app.url)
    page.goto(f"{streamlit_app.url}/?email=anna%40example.com")
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    expect(tabs).to_have_count(1, timeout=60_000)
    wait_for_app(page)
    page.locator("textarea").fill(email)
    page.get_by_role("button", name="Look up").click()
    expect(tabs.first).to_contain_text("example.org", timeout=30_000)
    wait_for_app(page)

    label = tabs.first.locator('[data-testid="stMarkdownContainer"]')
    copied = label.evaluate("""async (el) => {
        const text = el.textContent;
        const end = text.indexOf(" · ");
        const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
        const range = document.createRange();
        let node, offset = 0, started = false;
        while ((node = walker.nextNode())) {
            const len = node.textContent.length;
            if (!started) { range.setStart(node, 0); started = true; }
            if (offset + len >= end) { range.setEnd(node, end - offset); break; }
            offset += len;
        }
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
        document.execCommand("copy");
        sel.removeAllRanges();
        return await navigator.clipboard.readText();
    }""")
    assert copied.replace(WJ, "") == email
    assert WJ in copied  # what a person copies really carries the joiner

    box = page.locator("textarea")
    box.click()
    box.press("Control+A")
    box.press("Delete")
    box.press("Control+V")
    assert box.input_value() == copied
    page.get_by_role("button", name="Look up").click()
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    expect(tabs).to_have_count(1)
    expect(tabs.first).to_contain_text("example.org")
    assert visible_text(tabs.first.inner_text()).startswith(f"{email} · ")
    assert main.get_by_text("skipped").count() == 0
    assert "WORD JOINER" not in main.inner_text()

    # Text that is not an address needs no joiner: the freshness time and the list facts copy clean.
    captions = page.locator('[role="tabpanel"]:visible [data-testid="stCaptionContainer"]')
    expect(captions.first).to_be_visible()
    texts = captions.evaluate_all("els => els.map(e => e.textContent)")
    assert any(re.search(r"as of \d\d:\d\d:\d\d UTC", t) for t in texts)
    assert not [t for t in texts if WJ in t and "@" not in t]
