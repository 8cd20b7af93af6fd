"""The Bulk page in headless Chromium, as marketing uses it on a laptop screen.

* Pasting addresses and clicking "Look up" at once starts the run: the button is there while the
  text area still has the focus (before, it appeared only after the text area lost it).
* The progress bar is in view right after the click (beside the button; before, it was drawn
  below the fold), it moves while the run goes (redrawn every half second: an intermediate count
  is seen, not 0 then done) and its "done / total" agrees with the counters beside it.
* A link to the run (``?job=``) opened in a fresh tab says what the run was on.

Waits are on what the page shows (Playwright's expectations), never on the clock.
"""
from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 720}
PROGRESS = '[data-testid="stMain"] [data-testid="stProgress"]'


def wait_for_app(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


@pytest.fixture
def laptop(browser):
    context = browser.new_context(viewport=LAPTOP)
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


def paste_box(page):
    return page.locator('[data-testid="stMain"] textarea').first


def look_up(page):
    return page.get_by_role("button", name=re.compile("Look up"))


def metric(page, label: str) -> int:
    box = page.locator('[data-testid="stMetric"]', has=page.get_by_text(label, exact=True)).first
    return int(box.locator('[data-testid="stMetricValue"]').inner_text().replace(",", "").strip())


def progress_numbers(page) -> tuple[int, int]:
    text = page.locator(PROGRESS).inner_text()
    m = re.search(r"([\d,]+) / ([\d,]+) addresses", text)
    assert m, text
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def test_paste_and_click_at_once_starts_the_run_with_progress_in_view(laptop, streamlit_app, screenshot_dir):
    from playwright.sync_api import expect

    sb = streamlit_app.sandbox
    emails = sb.data.emails(sb.main_client_id)[:90]
    sb.set_faults(latency_ms=300)  # a run of a few seconds: long enough to watch it move
    try:
        page = laptop
        page.goto(streamlit_app.url + "/bulk")
        wait_for_app(page)
        expect(look_up(page)).to_be_visible()  # there before anything is pasted
        box = paste_box(page)
        box.fill("\n".join(emails))  # the text area keeps the focus: nothing has been sent yet
        assert page.evaluate("() => document.activeElement && document.activeElement.tagName") == "TEXTAREA"
        look_up(page).click()

        bar = page.locator(PROGRESS)
        expect(bar).to_be_visible()
        page.screenshot(path=str(screenshot_dir / "bulk-progress-laptop.png"))
        bbox = bar.bounding_box()
        assert bbox is not None
        assert bbox["y"] >= 0 and bbox["y"] + bbox["height"] <= LAPTOP["height"], bbox  # in view, no scrolling

        # it moves: a count between none and all is shown before the end
        expect(bar).to_contain_text(re.compile(r"\b([1-9]|[1-8]\d) / 90 addresses"), timeout=30_000)
        # and ends, with the counters adding up to the bar
        expect(bar).to_contain_text("90 / 90 addresses", timeout=60_000)
        # the run's end reruns the page: for a moment the old drawing of the results may stand
        # beside the new one, so the first is waited for, and once the run is over there is one
        per_list = page.get_by_text("Per list: distinct addresses in each state")
        expect(per_list.first).to_be_visible(timeout=30_000)
        wait_for_app(page)
        expect(per_list).to_have_count(1)
        done, total = progress_numbers(page)
        assert (done, total) == (90, 90)
        assert metric(page, "Looked up") + metric(page, "Failed") == done
        assert metric(page, "Not looked up") == 0
        page.screenshot(path=str(screenshot_dir / "bulk-done-laptop.png"))
        page.get_by_text("Email × list matrix").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "bulk-matrix-laptop.png"))
        run_url = page.url
    finally:
        sb.set_faults(latency_ms=0)

    # the link, opened afresh: the run says what it ran on
    assert "job=" in run_url
    other = laptop.context.browser.new_context(viewport=LAPTOP)
    try:
        fresh = other.new_page()
        fresh.goto(run_url)
        wait_for_app(fresh)
        expect(fresh.get_by_text(re.compile(r"Run of 90 addresses \(90 rows\) from pasted addresses"))).to_be_visible()
        expect(fresh.locator(PROGRESS)).to_contain_text("90 / 90 addresses")
    finally:
        other.close()
