"""The team deployment as two support agents feel it, in headless Chromium: two app replicas (A
and B, as a load balancer would hand out), one worker, Redis and Postgres, one rate-limited
sandbox -- the real processes ``make team`` starts, once for this module.

1. A run pasted on A is queued to the worker; B, opened on the run's link, watches it finish
   with every row accounted for, and B's download holds every row.
2. A big run started on A is cancelled on B; A then says it was cancelled and keeps what finished.
3. B shows an address, A changes one of its subscriptions; B, looking again, shows the new
   state (no replica serves the old one), and B's Audit page lists A's change.

Waits are on what the pages show (Playwright's expectations), never on the clock.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from cmlib.sandbox.demo import MAIN_CLIENT_ID
from tests.browser.team_fixture import Team, start_team
from tests.sandbox_fixtures import make_sandbox

pytestmark = pytest.mark.browser

PROGRESS = '[data-testid="stMain"] [data-testid="stProgress"]'
VIEWPORT = {"width": 1440, "height": 1600}
OPERATOR = "Dana Köhler"  # non-ASCII: the audit filter on Postgres must find it in any case
EMAIL = "anna@example.com"  # subscribed to Newsletter, Offers and Webinars


@pytest.fixture(scope="module")
def team(chromium_executable, tmp_path_factory) -> Iterator[Team]:
    yield from start_team(tmp_path_factory)


@pytest.fixture(scope="module")
def demo_emails() -> list[str]:
    """The sandbox's addresses of the main client (the team's sandbox has the same seed)."""
    return make_sandbox().data.emails(MAIN_CLIENT_ID)


@pytest.fixture
def agents(browser) -> Iterator[tuple[object, object]]:
    """Two agents' browsers (separate cookies): one on replica A, one on replica B."""
    contexts = [browser.new_context(viewport=VIEWPORT, accept_downloads=True) for _ in range(2)]
    try:
        pages = [c.new_page() for c in contexts]
        for p in pages:
            p.set_default_timeout(30_000)
        yield pages[0], pages[1]
    finally:
        for c in contexts:
            c.close()


@pytest.fixture(scope="module", autouse=True)
def _patient_expectations():
    """Expectations wait up to 30 s here (Playwright's default is 5 s): six processes share
    this machine with the browser, and a page condition may take a while to come true."""
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default, for the modules after this one


@pytest.fixture(autouse=True)
def _team_log_on_failure(team):
    """What the team's processes said last: captured, so pytest shows it with a failed test only."""
    yield
    print("---- team output (last lines) ----\n" + team.log_tail())


def wait_for_app(page) -> None:
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)


def wait_idle(page) -> None:
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def metric(page, label: str) -> int:
    box = page.locator('[data-testid="stMetric"]', has=page.get_by_text(label, exact=True)).first
    return int(box.locator('[data-testid="stMetricValue"]').inner_text().replace(",", "").strip())


def progress_numbers(page) -> tuple[int, int]:
    text = page.locator(PROGRESS).inner_text()
    m = re.search(r"([\d,]+) / ([\d,]+) addresses", text)
    assert m, text
    return int(m.group(1).replace(",", "")), int(m.group(2).replace(",", ""))


def start_bulk_run(page, base: str, emails: list[str]) -> str:
    """Paste ``emails`` on the Bulk page, press "Look up"; the run's id, from the page's URL."""
    from playwright.sync_api import expect

    page.goto(base + "/bulk")
    wait_for_app(page)
    page.locator('[data-testid="stMain"] textarea').first.fill("\n".join(emails))
    page.get_by_role("button", name=re.compile("Look up")).click()
    expect(page).to_have_url(re.compile(r"[?&]job=[^&]+"), timeout=30_000)
    m = re.search(r"[?&]job=([^&#]+)", page.url)
    assert m, page.url
    return m.group(1)


# ------------------------------------------------------------------------------------ 1. bulk A -> B
def test_a_run_started_on_a_is_watched_and_downloaded_on_b(agents, team, demo_emails):
    from playwright.sync_api import expect

    page_a, page_b = agents
    emails = demo_emails[:30]
    job_id = start_bulk_run(page_a, team.a, emails)
    expect(page_a.locator(PROGRESS)).to_contain_text(re.compile(r"\d+ / 30 addresses"))

    page_b.goto(f"{team.b}/bulk?job={job_id}")
    wait_for_app(page_b)
    # B knows the run it did not start: what it ran on, and its progress to the end
    expect(page_b.get_by_text(re.compile(r"Run of 30 addresses \(30 rows\) from pasted addresses"))).to_be_visible()
    expect(page_b.locator(PROGRESS)).to_contain_text("30 / 30 addresses", timeout=60_000)
    # the run's end reruns the page: for a moment the old drawing of the results may stand beside
    # the new one, so the first is waited for, and once the run is over there is exactly one
    per_list = page_b.get_by_text("Per list: distinct addresses in each state")
    expect(per_list.first).to_be_visible(timeout=30_000)
    wait_for_app(page_b)
    expect(per_list).to_have_count(1)
    assert progress_numbers(page_b) == (30, 30)
    assert metric(page_b, "Looked up") + metric(page_b, "Failed") == 30
    assert metric(page_b, "Not looked up") == 0
    assert metric(page_b, "Looked up") > 0
    expect(page_b.get_by_text("Showing 30 rows.")).to_be_visible()

    # B's download: one row per input row, every address once
    with page_b.expect_download() as info:
        page_b.get_by_role("button", name="Download CSV").click()
    data = info.value.path().read_bytes()
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 30, data[:500]
    assert sorted(r["Email"].lower() for r in rows) == sorted(e.lower() for e in emails)

    # and A, which started it, shows the same end
    expect(page_a.locator(PROGRESS)).to_contain_text("30 / 30 addresses", timeout=60_000)


# ------------------------------------------------------------------------------------ 2. cancel on B
def test_a_run_started_on_a_is_cancelled_on_b_and_keeps_what_finished(agents, team, demo_emails):
    from playwright.sync_api import expect

    page_a, page_b = agents
    emails = demo_emails  # about 1,200 addresses: a minute at the account's limit, so still running below
    total = len(emails)
    job_id = start_bulk_run(page_a, team.a, emails)

    page_b.goto(f"{team.b}/bulk?job={job_id}")
    wait_for_app(page_b)
    bar_b = page_b.locator(PROGRESS)
    # running on the worker: some rows done, not all
    expect(bar_b).to_contain_text(re.compile(rf"\b[1-9][\d,]* / {total:,} addresses"), timeout=60_000)
    page_b.get_by_role("button", name="Cancel").click()

    # A shows the cancel made on B, with the rows that finished kept
    expect(page_a.get_by_text("Results (the run was cancelled; what finished is kept)")).to_be_visible(
        timeout=60_000)
    wait_for_app(page_a)
    done, shown_total = progress_numbers(page_a)
    assert shown_total == total
    assert 0 < done < total
    looked_up, failed, waiting = metric(page_a, "Looked up"), metric(page_a, "Failed"), metric(page_a, "Not looked up")
    assert looked_up + failed == done and looked_up > 0
    assert waiting == total - done
    expect(page_a.get_by_role("button", name="Cancel")).to_have_count(0)
    # B ends in the same state
    expect(page_b.get_by_text("Results (the run was cancelled; what finished is kept)")).to_be_visible(
        timeout=30_000)
    wait_for_app(page_b)
    assert progress_numbers(page_b) == (done, total)


# ------------------------------------------------------------------------------------ 3. write A, read B
def lookup_tab(page, base: str, email: str):
    from playwright.sync_api import expect

    page.goto(f"{base}/?email={email}")
    tab = page.locator('[role="tabpanel"]:visible')
    expect(tab.get_by_role("button", name="Manage subscriptions")).to_be_visible(timeout=60_000)
    wait_idle(page)
    return tab


def test_a_write_on_a_is_seen_on_b_and_in_bs_audit_log(agents, team):
    from playwright.sync_api import expect

    page_a, page_b = agents
    tab_label = '[role="tab"]'

    # B shows the address (and fills its view, its memory and the shared cache)
    lookup_tab(page_b, team.b, EMAIL)
    expect(page_b.locator(tab_label).first).to_contain_text("3 subscribed")

    # A unsubscribes it from Webinars through the dialog, giving the operator's name when asked
    tab = lookup_tab(page_a, team.a, EMAIL)
    tab.get_by_role("button", name="Manage subscriptions").click()
    dialog = page_a.get_by_role("dialog")
    expect(dialog.get_by_role("checkbox", name="Webinars")).to_be_checked(timeout=30_000)
    dialog.get_by_text("Webinars", exact=True).click()
    expect(dialog.get_by_role("checkbox", name="Webinars")).not_to_be_checked()
    dialog.get_by_role("button", name="Save changes").click()
    expect(dialog.get_by_text(re.compile(r"Plan:\W*unsubscribe from Webinars"))).to_be_visible()
    wait_idle(page_a)
    prompt = dialog.get_by_role("textbox", name="Your name (who is acting, for the audit log)")
    prompt.fill(OPERATOR)
    prompt.press("Enter")
    expect(dialog.get_by_role("button", name="Apply")).to_be_enabled()
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog.get_by_text("Applied.")).to_be_visible(timeout=30_000)

    # B, looking again: a fresh load (a new session on the same replica) shows the new state ...
    fresh = page_b.context.new_page()
    fresh.set_default_timeout(30_000)
    lookup_tab(fresh, team.b, EMAIL)
    expect(fresh.locator(tab_label).first).to_contain_text("2 subscribed, 1 unsubscribed")
    # ... and so does the Refresh in the page B had open all along
    page_b.locator('[role="tabpanel"]:visible').get_by_role("button", name="Refresh").click()
    expect(page_b.locator(tab_label).first).to_contain_text("2 subscribed, 1 unsubscribed")

    # B's Audit page lists A's change, found by a lower-case, non-ASCII part of the name
    fresh.goto(f"{team.b}/audit")
    wait_for_app(fresh)
    who = fresh.get_by_role("textbox", name="Who contains")
    who.fill("köhler")
    who.press("Enter")
    expect(fresh.get_by_text("1 row, newest first")).to_be_visible()
    with fresh.expect_download() as info:
        fresh.get_by_role("button", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(info.value.path().read_bytes().decode("utf-8-sig"))))
    assert len(rows) == 1, rows
    row = {k.lower(): v for k, v in rows[0].items()}
    assert row["email"] == EMAIL
    assert OPERATOR in row.values()
    assert "Webinars" in row.values()
