"""The Lookup page's wording and numbers, from hand-built profiles."""
from __future__ import annotations

from datetime import UTC, datetime, timezone

import pytest

from cmlib.lookup import Activity, ListStatus, Profile, ReceivedCampaign, StateReason
from cmlib.models import SuppressedAddress
from cmlib.presenters import (
    CAMPAIGN_COLUMNS,
    COL_CLICKED,
    COL_OPENED,
    COL_SENT,
    COL_SUBJECT,
    COL_WEB,
    TimeDisplay,
    activity_figures,
    as_of,
    campaign_rows,
    consent_fact,
    format_when,
    list_facts,
    safe_web_link,
    state_reason,
    state_summary,
    suppression_notice,
)
from cmlib.timezones import ZoneSource

NOW = datetime(2025, 3, 4, 14, 32, 5, tzinfo=UTC)


def status(state: str, **kw) -> ListStatus:
    base = {"list_id": f"id-{state}", "list_name": f"List {state}", "state": state,
            "date_added": datetime(2024, 1, 2, 9, 0)}
    base.update(kw)
    return ListStatus(**base)


def camp(cid: str, sent: datetime | None, opens: int = 0, clicks: int = 0, url: str = "") -> ReceivedCampaign:
    return ReceivedCampaign(campaign_id=cid, name=f"name {cid}", subject=f"subject {cid}", sent=sent,
                            web_version_url=url, opens=opens, clicks=clicks)


def profile(lists=(), campaigns=(), failed=False, suppression=None) -> Profile:
    return Profile(email="a@example.com", lists=tuple(lists), campaigns=tuple(campaigns),
                   activity=Activity.of(campaigns), fetched_at=NOW, failed=failed, suppression=suppression)


MOSCOW_CLIENT = "(GMT+03:00) Moscow, St. Petersburg"
# The client's dates are in Moscow time; the person reads in Berlin (browser zone).
BERLIN = TimeDisplay.choose("Europe/Berlin", MOSCOW_CLIENT)
CLIENT = TimeDisplay.choose(None, MOSCOW_CLIENT)


def test_summary_counts_states_in_support_order():
    p = profile([status("Unsubscribed"), status("Active"), status("Active"), status("Unsubscribed")])
    assert state_summary(p) == "2 subscribed, 2 unsubscribed"


def test_summary_of_each_known_state_word():
    p = profile([status(s) for s in ("Deleted", "Bounced", "Unconfirmed", "Active", "Unsubscribed")])
    assert state_summary(p) == "1 subscribed, 1 unsubscribed, 1 pending, 1 bounced, 1 deleted"


def test_summary_keeps_unknown_states():
    assert state_summary(profile([status("Active"), status("Spam")])) == "1 subscribed, 1 spam"
    assert state_summary(profile([status("")])) == "1 unknown"


def test_summary_of_no_list_and_failed():
    assert state_summary(profile()) == "on no list"
    assert state_summary(profile(failed=True)) == "lookup failed"


def test_as_of_is_utc_with_seconds():
    assert as_of(NOW) == "as of 14:32:05 UTC"
    from datetime import timedelta

    assert as_of(NOW.astimezone(timezone(timedelta(hours=3)))) == "as of 14:32:05 UTC"


def test_format_when_names_the_zone():
    assert format_when(datetime(2025, 1, 2, 3, 4, 5)) == "2025-01-02 03:04 UTC"  # nothing known: UTC, said
    assert format_when(None) == ""
    # Campaign Monitor's 03:04 is Moscow time (the client's zone) = 01:04 in Berlin in winter
    assert format_when(datetime(2025, 1, 2, 3, 4, 5), BERLIN) == "2025-01-02 01:04 CET"
    assert format_when(datetime(2025, 7, 2, 3, 4, 5), BERLIN) == "2025-07-02 02:04 CEST"
    assert format_when(datetime(2025, 1, 2, 3, 4, 5), CLIENT) == "2025-01-02 03:04 UTC+03:00"


def test_the_display_zone_is_the_browsers_else_the_clients_else_utc():
    assert BERLIN.zone.source == ZoneSource.BROWSER
    assert CLIENT.zone.source == ZoneSource.CLIENT
    assert TimeDisplay.choose(None, None).zone.source == ZoneSource.UTC
    assert TimeDisplay.choose("Not/AZone", "garbage").zone.source == ZoneSource.UTC


def test_as_of_in_the_display_zone():
    assert as_of(NOW, BERLIN) == "as of 15:32:05 CET"  # our own times are aware UTC
    assert as_of(NOW, CLIENT) == "as of 17:32:05 UTC+03:00"


def test_list_facts_full_and_sparse():
    full = status("Active", state_changed=datetime(2025, 2, 1, 10, 0), joined=datetime(2023, 5, 6, 7, 8),
                  consent_to_track="Yes", confirmed_opt_in=True, subscriber_name=" Anna K ")
    assert list_facts(full) == ["name: Anna K", "state since 2025-02-01 10:00 UTC", "joined 2023-05-06 07:08 UTC",
                                "consent to track: Yes", "confirmed opt-in list"]
    assert list_facts(full, BERLIN)[1:3] == ["state since 2025-02-01 08:00 CET", "joined 2023-05-06 06:08 CEST"]
    sparse = status("Active", date_added=None)
    assert list_facts(sparse) == []  # no consent reported: nothing said rather than a made-up value
    # joined falls back to the listsforemail date
    assert list_facts(status("Active"))[0] == "joined 2024-01-02 09:00 UTC"


@pytest.mark.parametrize("value", ["Unchanged", "unchanged", " Unchanged ", "", None])
def test_unchanged_consent_is_never_shown_as_a_value(value):
    """ "Unchanged" is what a write sends to keep the stored value: a read saying it reports nothing."""
    assert consent_fact(value) is None
    facts = list_facts(status("Active", consent_to_track=value))
    assert not [f for f in facts if "consent" in f or "Unchanged" in f]


def test_stored_consent_is_shown():
    assert consent_fact("No") == "consent to track: No"
    assert "consent to track: Yes" in list_facts(status("Active", consent_to_track="Yes"))


def test_state_reason_names_the_zone():
    r = StateReason(event="Unsubscribe", date=datetime(2025, 1, 1, 12, 0), campaign_id="c1",
                    campaign_name="January news")
    assert state_reason(status("Unsubscribed", reason=r)) == "Unsubscribe on 2025-01-01 12:00 UTC from “January news”"
    assert state_reason(status("Unsubscribed", reason=r), BERLIN) == ("Unsubscribe on 2025-01-01 10:00 CET from "
                                                                       "“January news”")
    assert "no matching event" in state_reason(status("Bounced"))
    assert state_reason(status("Active")) is None


def test_suppressed_address_in_the_tab_label_and_the_notice():
    entry = SuppressedAddress("A@example.com", "Spam Complaint", datetime(2025, 1, 2, 12, 0))
    assert state_summary(profile(suppression=entry)) == "on no list, suppressed"
    assert state_summary(profile([status("Bounced")], suppression=entry)) == "1 bounced, suppressed"
    text = suppression_notice("a@example.com", entry, BERLIN)
    assert text.startswith("a@example.com is on this client's suppression list since 2025-01-02 10:00 CET "
                           "(reason: Spam Complaint).")
    assert "Resubscribe" in text and "confirm that explicitly" in text
    bare = suppression_notice("a@example.com", SuppressedAddress("a@example.com", "", None))
    assert bare.startswith("a@example.com is on this client's suppression list (no reason recorded).")


def test_campaign_rows_last_three_newest_first_as_given():
    cs = [camp("c4", datetime(2025, 4, 1), opens=2, clicks=1, url="https://x/c4"),
          camp("c3", datetime(2025, 3, 1), opens=1),
          camp("c2", datetime(2025, 2, 1)),
          camp("c1", datetime(2025, 1, 1), opens=5)]
    rows = campaign_rows(profile([status("Active")], cs))
    assert [r[COL_SUBJECT] for r in rows] == ["subject c4", "subject c3", "subject c2"]
    assert rows[0] == {COL_SUBJECT: "subject c4", COL_SENT: "2025-04-01 00:00 UTC", COL_OPENED: True,
                       COL_CLICKED: True, COL_WEB: "https://x/c4"}
    # the Sent column is in the display zone like every other time, the zone named in each cell
    assert [r[COL_SENT] for r in campaign_rows(profile([status("Active")], cs), 3, BERLIN)] == [
        "2025-03-31 23:00 CEST", "2025-02-28 22:00 CET", "2025-01-31 22:00 CET"]
    assert (rows[1][COL_OPENED], rows[1][COL_CLICKED], rows[1][COL_WEB]) == (True, False, None)
    assert set(rows[2]) == set(CAMPAIGN_COLUMNS)


def test_campaign_rows_fall_back_to_name_without_subject():
    c = ReceivedCampaign(campaign_id="j", name="Welcome journey", subject="", sent=None,
                         web_version_url="", opens=0, clicks=0)
    assert campaign_rows(profile([status("Active")], [c]))[0][COL_SUBJECT] == "Welcome journey"


def test_activity_figures():
    cs = [camp("a", None, opens=3, clicks=2), camp("b", None, opens=1), camp("c", None)]
    figs = {f.label: f.value for f in activity_figures(Activity.of(cs))}
    assert figs == {"Emails received": "3", "Open rate": "67%", "Click rate": "33%",
                    "Avg opens / email": "1.3", "Avg clicks / email": "0.7"}


def test_activity_figures_with_nothing_received():
    figs = {f.label: f.value for f in activity_figures(Activity.of(()))}
    assert figs["Open rate"] == "0%" and figs["Avg opens / email"] == "0.0"


# ---------------------------------------------------------------------------- web version links
@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:alert(document.cookie)", " javascript:alert(1)", "java\tscript:alert(1)",
    "java\nscript:alert(1)", "data:text/html,<script>alert(1)</script>", "DATA:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)", "file:///etc/passwd", "ftp://example.com/x", "//evil.example/x", "https:evil.example",
    "https:\\\\evil.example", "https://", "http:///path", "https://[bad", "\x00https://x.com", "", None,
])
def test_only_http_links_become_view_links(url):
    assert safe_web_link(url) is None
    rows = campaign_rows(profile(campaigns=[camp("c1", datetime(2025, 1, 1), url=url or "")]))
    assert rows[0][COL_WEB] is None


@pytest.mark.parametrize("url", ["https://x.createsend1.com/t/ViewEmail/r/ABC", "http://cm.example/t/c1",
                                 "HTTPS://Example.com/a?b=1#c"])
def test_http_and_https_links_are_kept(url):
    assert safe_web_link(url) == url
    rows = campaign_rows(profile(campaigns=[camp("c1", datetime(2025, 1, 1), url=f"  {url} ")]))
    assert rows[0][COL_WEB] == url
