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
    """Until the script run is over and every element of the visible tab has drawn (widgets load
    their code lazily and show skeletons first)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stSkeleton\"]')",
        timeout=30_000,
    )


def lookup_box(page):
    """The Lookup page's address box (a chat-style input: Enter submits, Shift+Enter adds a line)."""
    return page.locator('[data-testid="stMain"] [data-testid="stChatInputTextArea"]')


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

        # the campaigns table and the activity figures of an address that received email
        table = panel.get_by_role("table")
        expect(table).to_have_count(1)
        expect(table.get_by_role("columnheader")).to_have_count(5)
        expect(table.get_by_role("rowheader")).to_have_count(3)  # the last three emails, by subject
        figures = panel.locator("dl.cm-figures")
        expect(figures).to_have_count(1)
        expect(figures.locator("dt")).to_have_count(5)
        expect(figures.locator("dd.cm-figure-help")).to_have_count(5)  # each explained where it stands
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
    expect(main.locator("dl.cm-figures dt")).to_have_count(5)
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
    expect(lookup_box(page)).to_have_value("anna@example.com\nfresh@example.com")


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
    lookup_box(page).fill(email)
    lookup_box(page).press("Enter")
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

    box = lookup_box(page)
    box.click()
    box.press("Control+A")
    box.press("Delete")
    box.press("Control+V")
    assert box.input_value() == copied
    box.press("Enter")
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
    assert any(re.search(r"as of \d\d:\d\d:\d\d [A-Z]", t) for t in texts)
    assert not [t for t in texts if WJ in t and "@" not in t]


def test_enter_submits_shift_enter_adds_a_line_and_a_pasted_list_is_looked_up(page, streamlit_app, screenshot_dir):
    """Issue 12 item 9, with real keys: Enter looks up, Shift+Enter only starts a new line, and a
    column of addresses pasted from the clipboard (real paste, Ctrl+V) is looked up whole."""
    from playwright.sync_api import expect

    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=streamlit_app.url)
    page.goto(streamlit_app.url)
    wait_for_app(page)
    tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
    box = lookup_box(page)
    expect(box).to_be_visible()
    help_text = page.locator('[data-testid="stMain"]').inner_text()
    assert "Enter looks the addresses up; Shift+Enter starts a new line" in help_text
    assert "Ctrl+Enter" not in help_text

    box.click()
    box.type("anna@example.com")
    box.press("Shift+Enter")
    box.type("fresh@example.com")
    # A submit empties the box at once (the lookup's text comes back only after the run), so both
    # lines still being there, in order, means Shift+Enter submitted nothing.
    expect(box).to_have_value("anna@example.com\nfresh@example.com")
    wait_for_app(page)
    assert tabs.count() == 0 and "email=" not in page.url

    box.press("Enter")
    expect(tabs).to_have_count(2, timeout=30_000)
    wait_for_app(page)
    assert [visible_text(t).split(" · ")[0] for t in tabs.all_inner_texts()] == ["anna@example.com",
                                                                                 "fresh@example.com"]
    assert re.search(r"email=anna(%40|@)example\.com&email=fresh(%40|@)example\.com", page.url)
    expect(box).to_have_value("anna@example.com\nfresh@example.com")  # the lookup stays in the box

    pasted = "\n".join(DEMO_CUSTOMERS["three_addresses"])
    page.evaluate("text => navigator.clipboard.writeText(text)", pasted)
    box.click()
    box.press("Control+A")
    box.press("Delete")
    box.press("Control+V")
    expect(box).to_have_value(pasted)
    box.press("Enter")
    expect(tabs).to_have_count(3, timeout=30_000)
    wait_for_app(page)
    assert [visible_text(t).split(" · ")[0] for t in tabs.all_inner_texts()] == list(DEMO_CUSTOMERS["three_addresses"])
    assert all(e.replace("@", "%40") in page.url or e in page.url for e in DEMO_CUSTOMERS["three_addresses"])
    expect(box).to_have_value(pasted)
    # ...and the box is as tall as the pasted column: every line shows, none scrolled out of sight
    assert box.evaluate("e => e.scrollHeight <= e.clientHeight + 1")
    page.screenshot(path=str(screenshot_dir / "lookup-enter-paste.png"), full_page=True)


def test_times_are_in_the_browsers_zone_and_named(browser, streamlit_app):
    """Issue 12 item 3: Streamlit knows the browser's zone (here Asia/Tokyo), so every time on the
    tab -- as of, state dates, joined, reasons, Sent -- is in it, named."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1440, "height": 2200}, timezone_id="Asia/Tokyo")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{streamlit_app.url}/?email=ivan.work%40example.org")
        tabs = page.locator('[data-testid="stTabs"] [role="tab"]')
        expect(tabs).to_have_count(1, timeout=60_000)
        wait_for_app(page)
        panel = page.locator('[role="tabpanel"]:visible')
        texts = panel.locator('[data-testid="stCaptionContainer"]').evaluate_all("els => els.map(e => e.textContent)")
        assert any(re.fullmatch(r"as of \d\d:\d\d:\d\d JST", t.strip()) for t in texts), texts
        dated = [m.group(0) for t in texts for m in re.finditer(r"\d{4}-\d\d-\d\d \d\d:\d\d \S+", t)]
        assert len(dated) >= 8 and all(d.endswith(" JST") for d in dated), dated
    finally:
        context.close()


def test_the_campaigns_table_fits_a_360px_window_in_russian(browser, streamlit_app, screenshot_dir):
    """On a phone-sized window each email of the table is a small card: no value scrolled out of
    sight (the page and the table's own box scroll nowhere), every value named by its column."""
    from playwright.sync_api import expect

    email = DEMO_CUSTOMERS["with_campaigns"][0]
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ru-RU")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{streamlit_app.url}/?email={email}&lang=ru")
        table = page.get_by_role("table")
        expect(table).to_have_count(1, timeout=60_000)
        wait_for_app(page)
        table.scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "lookup-360-ru-campaigns.png"), full_page=True)
        widths = page.evaluate("""() => ({page: document.documentElement.scrollWidth,
            wrap: [...document.querySelectorAll('.cm-table-wrap')].map(e => e.scrollWidth - e.clientWidth)})""")
        assert widths == {"page": 360, "wrap": [0]}, widths
        expect(table.get_by_role("rowheader")).to_have_count(3)
        named = page.evaluate("""() => [...document.querySelectorAll('.cm-campaigns-table tbody tr:first-child td')]
            .map(td => getComputedStyle(td, '::before').content)""")
        assert named == ['"Отправлено: "', '"Открыто: "', '"Переход: "', '"Веб-версия: "'], named
        expect(table.get_by_role("columnheader")).to_have_count(5)  # still there for a screen reader
        # the activity figures wrap into the window too, each with its explanation under it
        figures = page.evaluate("""() => [...document.querySelectorAll('dl.cm-figures .cm-figure')]
            .map(e => ({right: e.getBoundingClientRect().right,
                        help: e.querySelector('.cm-figure-help').innerText}))""")
        assert len(figures) == 5 and all(f["right"] <= 360 and f["help"] for f in figures), figures
    finally:
        context.close()
