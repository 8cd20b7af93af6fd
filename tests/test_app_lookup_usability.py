"""The Lookup page's usability fixes of issue 12, through AppTest against the sandbox.

Item 3: every time (as of, state dates, joined, reasons, Sent) in one zone, the zone named.
Item 4: consent to track shows the stored value, never the write-only word "Unchanged".
Item 5: a suppressed address says so up front in its tab (since when, why, what subscribing takes).
Item 8: the demo notice links to Settings; demo customers are one-click examples (demo mode only).
Item 9: the box submits on Enter (AppTest: a chat input's submit); the help says what happens.
"""
from __future__ import annotations

import re
from datetime import timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from streamlit.testing.v1 import AppTest

from cmlib.sandbox import DEMO_CUSTOMERS
from tests.apptest_helpers import campaign_table, caption_lines, shown, shown_figures
from tests.sandbox_fixtures import make_client

ROOT = Path(__file__).resolve().parent.parent
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")
APP = str(ROOT / "app.py")
MOSCOW = timezone(timedelta(hours=3))  # the sandbox client's "(GMT+03:00) Moscow, St. Petersburg"
CLIENT_ZONE = "UTC+03:00"
DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(?::\d\d)?")


def lookup(query=None, path=LOOKUP_PAGE) -> AppTest:
    at = AppTest.from_file(path, default_timeout=30)
    if query is not None:
        at.query_params["email"] = query
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def tab_for(at: AppTest, email: str):
    [tab] = [t for t in at.tabs if shown(t.label).split(" · ")[0].lower() == email.lower()]
    return tab


def captions(block) -> list[str]:
    return caption_lines(block)


def dates_with_zone(texts: list[str]) -> list[str]:
    """Every "YYYY-MM-DD HH:MM" in the texts with the word that follows it (its zone)."""
    return [m.group(0) for t in texts for m in re.finditer(DATE.pattern + r"(?: \S+)?", t)]


# --------------------------------------------------------------------------- item 3: times
def test_every_time_in_a_tab_is_in_one_zone_and_names_it(app_env):
    sb = app_env
    email = "ivan.work@example.org"
    at = lookup(email)
    tab = tab_for(at, email)
    texts = captions(tab)
    found = dates_with_zone(texts)
    assert len(found) >= 8  # state since + joined on four lists, and the reason of the unsubscribe
    assert all(f.endswith(f" {CLIENT_ZONE}") for f in found), found
    assert any(t.startswith("as of ") and t.endswith(CLIENT_ZONE) for t in texts)
    # Campaign Monitor's dates are the client's own: shown as they are, with the client's zone named
    news = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    record = sb.data.record(news, email)
    assert f"state since {record.date:%Y-%m-%d %H:%M} {CLIENT_ZONE}" in " ".join(texts)
    [reason] = [t for t in texts if t.startswith("Reason: Unsubscribe on ")]
    assert re.match(r"Reason: Unsubscribe on \d{4}-\d\d-\d\d \d\d:\d\d UTC\+03:00 from “", reason)
    sent = [row["Sent"] for row in campaign_table(tab)[1]]
    assert sent and all(re.fullmatch(DATE.pattern + f" {re.escape(CLIENT_ZONE)}", s) for s in sent)
    [as_of] = [c for c in tab.caption if shown(c.value).startswith("as of")]
    assert shown(as_of.help) == (f"Times are shown in {CLIENT_ZONE}, the Campaign Monitor client's time zone "
                                 "“(GMT+03:00) Moscow, St. Petersburg” (your browser did not report one).")


def test_times_follow_the_browsers_zone_when_streamlit_knows_it(app_env, monkeypatch):
    import ui.profile

    monkeypatch.setattr(ui.profile, "browser_time_zone", lambda: "Europe/Berlin")
    sb = app_env
    email = "anna@example.com"
    at = lookup(email)
    tab = tab_for(at, email)
    texts = captions(tab)
    berlin = ZoneInfo("Europe/Berlin")
    news = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    changed = sb.data.record(news, email).date.replace(tzinfo=MOSCOW).astimezone(berlin)
    assert f"state since {changed:%Y-%m-%d %H:%M} {changed.tzname()}" in " ".join(texts)
    stamp = at.session_state["lookup.results"].profiles[email].fetched_at.astimezone(berlin)
    assert f"as of {stamp:%H:%M:%S} {stamp.tzname()}" in texts
    assert all(f.endswith((" CET", " CEST")) for f in dates_with_zone(texts)), dates_with_zone(texts)
    sent = [row["Sent"] for row in campaign_table(tab)[1]]
    assert all(s.endswith((" CET", " CEST")) for s in sent)
    [as_of] = [c for c in tab.caption if shown(c.value).startswith("as of")]
    note = shown(as_of.help)
    assert note.startswith("Times are shown in Europe/Berlin (CE") and "your browser's time zone" in note


def test_without_the_clients_zone_times_are_in_utc_and_say_so(app_env, monkeypatch):
    from cmlib.lookup import LookupService

    monkeypatch.setattr(LookupService, "client_time_zone", lambda self: None)
    at = lookup("anna@example.com")
    found = dates_with_zone(captions(at.tabs[0]))
    assert found and all(f.endswith(" UTC") for f in found)


# --------------------------------------------------------------------------- item 4: consent
def test_a_subscriber_added_with_unchanged_consent_shows_the_stored_value(app_env):
    sb = app_env
    cm = make_client(sb, sb.client_api_key)
    news = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    cm.add_subscriber(news, "new.reader@example.com", consent_to_track="Unchanged")  # the dialog's default
    at = lookup("new.reader@example.com")
    text = " ".join(captions(at.tabs[0]))
    assert "consent to track: No" in text
    assert "Unchanged" not in text


def test_a_stored_unchanged_is_shown_as_nothing(app_env):
    """Seeded subscribers from before consent was recorded read back "Unchanged": no value."""
    sb = app_env
    main = sb.main_client_id
    email = next(e for e in sb.data.emails(main)
                 if any(sb.data.record(m.list_id, e).consent_to_track == "Unchanged"
                        for m in sb.data.memberships(main, e)))
    at = lookup(email)
    text = " ".join(captions(at.tabs[0]))
    assert "Unchanged" not in text and "consent to track: Unchanged" not in text


# --------------------------------------------------------------------------- item 5: suppression
def test_a_suppressed_address_says_so_first_in_its_tab(app_env):
    sb = app_env
    email = DEMO_CUSTOMERS["suppressed"][0]
    at = lookup(email)
    tab = tab_for(at, email)
    assert shown(tab.label) == f"{email} · on no list, suppressed"
    [entry] = [e for e in sb.data.suppression(sb.main_client_id) if e.email == email]
    [warning] = tab.warning
    text = shown(warning.value)
    assert text.startswith(f"{email} is on this client's suppression list since "
                           f"{entry.date:%Y-%m-%d %H:%M} {CLIENT_ZONE} (reason: Unsubscribed).")
    assert "Resubscribe" in text and "confirm that explicitly" in text
    first = tab.children[0]
    assert first.type == "warning" and shown(first.value) == text  # up front: before the buttons
    # not offered as an easy add: the Subscribe button is not the primary one
    [subscribe] = [b for b in tab.button if b.label == "Subscribe to lists…"]
    assert subscribe.proto.type == "secondary"

    # after a Resubscribe elsewhere, Refresh reads the suppression list again (bypassing the cache)
    webinars = sb.data.list_by_name(sb.main_client_id, "Webinars").list_id
    make_client(sb, sb.client_api_key).add_subscriber(webinars, email, resubscribe=True, consent_to_track="Yes")
    next(b for b in tab.button if b.label == "Refresh").click().run()
    assert not at.exception
    tab = tab_for(at, email)
    assert not tab.warning
    assert shown(tab.label) == f"{email} · 1 subscribed"


def test_an_address_not_suppressed_has_no_notice(app_env):
    at = lookup(DEMO_CUSTOMERS["no_list"][0])
    assert not at.tabs[0].warning
    [subscribe] = [b for b in at.tabs[0].button if b.label == "Subscribe to lists…"]
    assert subscribe.proto.type == "primary"
    assert shown(at.tabs[0].label).endswith("· on no list")


def test_the_suppression_list_is_read_once_for_every_address_and_rerun(app_env):
    sb = app_env
    at = lookup(list(DEMO_CUSTOMERS["three_addresses"]))
    assert sb.request_counts["suppressionlist"] == 1  # one page, one read, for three addresses
    at.run()
    at.chat_input[0].set_value("suppressed@example.com, anna@example.com").run()
    assert not at.exception
    assert shown(tab_for(at, "suppressed@example.com").label).endswith("suppressed")
    assert sb.request_counts["suppressionlist"] == 1  # kept: a new lookup asks no page again


def test_an_unreadable_suppression_list_is_said_in_place(app_env, monkeypatch):
    from cmlib.errors import APIError
    from cmlib.suppression import SuppressionIndex

    def broken(*a, **kw):
        raise APIError("Sorry, we've run into a problem", status=500, code=500)

    monkeypatch.setattr(SuppressionIndex, "for_client", broken)
    at = lookup("anna@example.com")
    warnings = [shown(w.value) for w in at.tabs[0].warning]
    assert any("Could not check whether anna@example.com is on the client's suppression list" in w
               for w in warnings), warnings
    assert shown_figures(at.tabs[0])  # the rest of the lookup is there


# --------------------------------------------------------------------------- item 9: the box
def test_the_box_submits_and_its_help_says_enter_and_shift_enter(app_env):
    at = lookup()
    [box] = at.chat_input
    assert box.key.startswith("lookup.input")
    help_text = " ".join(captions(at.main))
    assert "Enter looks the addresses up" in help_text and "Shift+Enter starts a new line" in help_text
    assert "Ctrl+Enter" not in help_text
    box.set_value("anna@example.com\nfresh@example.com\n\nivan@example.com").run()  # a pasted column
    assert [shown(t.label).split(" · ")[0] for t in at.tabs] == ["anna@example.com", "fresh@example.com",
                                                                 "ivan@example.com"]
    assert at.query_params["email"] == ["anna@example.com", "fresh@example.com", "ivan@example.com"]
    assert at.session_state["lookup.text"] == "anna@example.com\nfresh@example.com\n\nivan@example.com"


def test_clear_empties_the_lookup_and_the_link(app_env):
    at = lookup(["anna@example.com"])
    next(b for b in at.button if b.label == "Clear").click().run()
    assert not at.exception
    assert not at.tabs and "email" not in at.query_params
    assert not [b for b in at.button if b.label == "Clear"]


# --------------------------------------------------------------------------- item 8: demo mode
def test_demo_customers_are_one_click_examples_in_demo_mode():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    [expander] = [e for e in at.expander if "Demo customers" in e.label]
    labels = [b.label for b in expander.button]
    assert len(labels) == len(DEMO_CUSTOMERS)
    three = DEMO_CUSTOMERS["three_addresses"]
    button = next(b for b in expander.button if shown(b.label) == f"{three[0]} + 2 more")
    assert button.help and "three addresses" in shown(button.help)
    button.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [shown(t.label).split(" · ")[0] for t in at.tabs] == list(three)
    assert at.query_params["email"] == list(three)


def test_the_demo_notice_links_to_settings():
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception
    links = [p for p in at.main.get("page_link") if p.proto.page == "settings"]
    assert [p.proto.label for p in links] == ["configure one in Settings"]
    assert any("Demo data" in m.value for m in at.main.markdown)


def test_no_demo_examples_or_notice_with_a_real_account(app_env):
    at = lookup(path=APP)
    assert not [e for e in at.expander if "Demo customers" in e.label]
    assert not [p for p in at.main.get("page_link") if p.proto.label == "configure one in Settings"]


def test_a_connection_that_cannot_be_made_is_a_message_with_or_without_addresses(monkeypatch):
    """The page now connects before drawing the box (to know demo mode): a refused API URL is
    still one sentence, never a traceback, and only where a lookup needs the connection."""
    monkeypatch.setenv("CM_API_KEY", "env-key-12345678")
    monkeypatch.setenv("CM_CLIENT_ID", "cid")
    monkeypatch.setenv("CM_API_URL", "https://" + "a" * 5000 + "/api/v3.3")
    at = lookup()
    assert not at.error and at.chat_input
    at = lookup("anna@example.com")
    [error] = at.error
    assert "Cannot connect to Campaign Monitor" in error.value and "too long" in error.value
    assert not at.tabs
