"""The Audit page in AppTest (issue 12 #14 and #3): sized columns, a row read whole, times in the
one display zone with the zone named (and day filters in that zone), where each name came from,
and the product's state words."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib.audit import AuditEntry, AuditLog
from tests.apptest_helpers import open_page, shown
from ui.audit_view import TABLE_KEY

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "audit.py")

LONG_REASON = ("Ticket 48213: the customer wrote twice (10 and 12 March) asking to stop the newsletter; "
               "she still wants the invoices.\nSecond line: confirmed on the phone by the lead, "
               "who asked for the Offers list to stay as it is until the renewal in June. " * 2).strip()
LONG_RESULT = ("unknown: the answer was lost (HTTP 502 from the proxy) and the read-back failed twice "
               "(connection reset); check the list in Campaign Monitor before trying again")


def entry(**kw) -> AuditEntry:
    base = {
        "actor": "lead@example.com", "client_id": "c1", "email": "anna@example.com", "list_id": "L1",
        "list_name": "Newsletter", "state_before": "Active", "action": "unsubscribe", "reason": "ticket 1",
        "result": "done", "at": "2024-03-01T10:00:00Z"}
    return AuditEntry(**{**base, **kw})


def page(browser_zone: str | None = "Asia/Tokyo", **session) -> AppTest:
    return open_page(PAGE, browser_zone, **session)


def select_row(at: AppTest, index: int) -> AppTest:
    """What a click on the row's selection box does: the table's selection state names the row."""
    at.session_state[TABLE_KEY] = {"selection": {"rows": [index], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def detail(at: AppTest) -> dict[str, str]:
    """The detail view as label -> text: the bold label and the value after the view's heading."""
    texts = [shown(m.value) for m in at.markdown]
    start = next(i for i, t in enumerate(texts) if t.startswith("**The whole row:"))
    out = {}
    rest = texts[start + 1:]
    for label, value in zip(rest[0::2], rest[1::2], strict=False):
        if not (label.startswith("**") and label.endswith("**")):
            break
        out[label.strip("*")] = value.replace("  \n", "\n")
    return out


@pytest.fixture
def log() -> AuditLog:
    return AuditLog()  # CM_DATA_DIR is a fresh folder per test (tests/conftest.py)


def test_columns_are_sized_and_reason_and_result_get_the_most_room(log):
    log.record(entry(reason=LONG_REASON, result=LONG_RESULT))
    at = page()
    table = at.dataframe[0]
    config = json.loads(table.proto.columns)
    widths = {name: c.get("width") for name, c in config.items() if name != "_index"}  # (the hidden index)
    assert set(widths) >= {"Time", "Who", "Address", "List", "Before", "Action", "Reason", "Result"}
    assert all(isinstance(w, int) and w > 0 for w in widths.values()), widths
    others = [w for name, w in widths.items() if name not in ("Reason", "Result")]
    assert min(widths["Reason"], widths["Result"]) > max(others)


def test_selecting_a_row_shows_every_field_whole(log):
    log.record_many([entry(at="2024-03-01T10:00:00Z", email="ivan@example.com"),
                     entry(at="2024-03-02T10:00:00Z", reason=LONG_REASON, result=LONG_RESULT,
                           list_name="<img src=x onerror=alert(1)> **VIP** :red[x]", plan_token="tok-1")])
    at = page()
    assert not [m for m in at.markdown if "The whole row" in m.value]
    assert "Select a row" in " ".join(c.value for c in at.caption)
    select_row(at, 0)  # newest first: the long one
    fields = detail(at)
    assert fields["Reason"] == LONG_REASON  # whole, its line breaks kept
    assert fields["Result"] == LONG_RESULT
    assert fields["List"] == "<img src=x onerror=alert(1)> **VIP** :red[x]"  # data, shown as is
    assert fields["List ID"] == "L1" and fields["Client ID"] == "c1" and fields["Change ID"] == "tok-1"
    assert fields["Address"] == "anna@example.com" and fields["Who"] == "lead@example.com"
    select_row(at, 1)
    assert detail(at)["Address"] == "ivan@example.com"


def test_times_are_in_the_browsers_zone_and_the_zone_is_named(log):
    log.record(entry(at="2024-03-01T10:00:00Z"))
    at = page(browser_zone="Asia/Tokyo")
    assert "Times are shown in Asia/Tokyo (JST), your browser's time zone." in shown(at.caption[0].value)
    assert list(at.dataframe[0].value["Time"]) == ["2024-03-01 19:00:00 JST"]
    assert "(UTC)" not in " ".join(at.dataframe[0].value.columns)
    select_row(at, 0)
    assert detail(at)["Time"] == "2024-03-01 19:00:00 JST (2024-03-01 10:00:00 UTC, as stored)"
    assert at.date_input(key="audit_since").label == "From (a day in Asia/Tokyo)"


def test_without_a_browser_zone_the_clients_zone_is_used_and_named(log):
    log.record(entry(at="2024-03-01T10:00:00Z"))
    at = page(browser_zone=None)  # the demo client is in "(GMT+03:00) Moscow, St. Petersburg"
    assert "the Campaign Monitor client's time zone" in shown(at.caption[0].value)
    assert list(at.dataframe[0].value["Time"]) == ["2024-03-01 13:00:00 UTC+03:00"]


def test_day_filters_are_days_in_the_display_zone(log):
    log.record_many([entry(at="2024-03-01T14:00:00Z", email="late-on-the-1st@example.com"),  # 23:00 JST, 1 March
                     entry(at="2024-03-01T16:00:00Z", email="early-on-the-2nd@example.com")])  # 01:00 JST, 2 March
    at = page(browser_zone="Asia/Tokyo")
    at.date_input(key="audit_since").set_value(date(2024, 3, 2))
    at.date_input(key="audit_until").set_value(date(2024, 3, 2)).run()
    assert list(at.dataframe[0].value["Address"]) == ["early-on-the-2nd@example.com"]
    at.date_input(key="audit_since").set_value(date(2024, 3, 1))
    at.date_input(key="audit_until").set_value(date(2024, 3, 1)).run()
    assert list(at.dataframe[0].value["Address"]) == ["late-on-the-1st@example.com"]


def test_before_uses_the_products_words_and_the_detail_names_the_api_state(log):
    log.record_many([entry(at="2024-03-01T10:00:00Z", state_before="Unconfirmed"),
                     entry(at="2024-03-02T10:00:00Z", state_before="", action="subscribe")])
    at = page()
    assert list(at.dataframe[0].value["Before"]) == ["—", "pending"]
    select_row(at, 1)
    assert detail(at)["Before"] == "pending (API state: Unconfirmed)"
    select_row(at, 0)
    assert detail(at)["Before"] == "— (not on the list)"


def test_where_the_name_came_from_is_a_column_when_recorded(log):
    from cmlib.audit import ActorSource  # added with issue 12 #1

    log.record_many([entry(at="2024-03-01T10:00:00Z", actor="Dana", actor_source=ActorSource.TYPED),
                     entry(at="2024-03-02T10:00:00Z", actor="lead@example.com", actor_source=ActorSource.SIGNED_IN)])
    at = page()
    frame = at.dataframe[0].value
    assert list(frame["Name from"]) == ["signed-in user", "typed"]
    select_row(at, 1)
    assert detail(at)["Name from"] == "typed"


def test_with_no_zone_from_the_browser_nor_campaign_monitor_times_are_utc_and_say_so(log, app_env):
    app_env.set_faults(down=True)  # the client's zone cannot be read: the page still opens
    log.record(entry(at="2024-03-01T10:00:00Z"))
    at = page(browser_zone=None)
    assert "Times are shown in UTC (neither your browser nor Campaign Monitor named a time zone)." in \
        shown(at.caption[0].value)
    assert list(at.dataframe[0].value["Time"]) == ["2024-03-01 10:00:00 UTC"]
    select_row(at, 0)
    assert detail(at)["Time"] == "2024-03-01 10:00:00 UTC"  # no second UTC time beside a UTC one
