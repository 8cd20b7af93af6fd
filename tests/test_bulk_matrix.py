"""The summary and the email × list matrix, from hand-made results (no API)."""
from __future__ import annotations

from datetime import datetime

import pandas as pd

from cmlib.bulk.csv_input import parse_text
from cmlib.bulk.engine import ActivitySummary, LookupResult
from cmlib.bulk.jobs import JobSnapshot
from cmlib.bulk.matrix import (
    COL_ERROR,
    COL_NO_LIST,
    COL_STATUS,
    FILTER_ON_NO_LIST,
    FILTER_PROBLEM,
    Layout,
    Status,
    build_matrix,
    chart_colors,
    filter_matrix,
    filter_states,
    layout_for,
    problems_frame,
    style_matrix,
    summarise,
)
from cmlib.bulk.validate import validate_table
from cmlib.states import STATE_STYLES

LISTS = {"L1": "Newsletter", "L2": "Offers", "L3": "<b>VIP</b> **x**", "L4": "Email"}
TEXT = (
    "Email;Name;Status\n"
    "anna@x.com;Anna;gold\n"  # 2: Active on two lists
    "ivan@x.com;Ivan;\n"  # 3: Unsubscribed + Bounced
    "nobody@x.com;Nobody;\n"  # 4: on no list
    "broken@@x;Broken;\n"  # 5: invalid
    "ANNA@x.com;Anna again;\n"  # 6: duplicate of 2
    "fail@x.com;Fail;\n"  # 7: lookup failed
    "later@x.com;Later;\n"  # 8: not run
    "spam@x.com;Spam;\n"  # 9: a state the API invented
    "part@x.com;Partial;\n"  # 10: activity incomplete
)


def snapshot(state="done", with_activity=False, fatal=None) -> JobSnapshot:
    bi = validate_table(parse_text(TEXT))
    act = ActivitySummary(4, 3, 1, 0.75, 0.25, "Spring sale", datetime(2025, 5, 1, 10, 0)) if with_activity else None
    results = {
        "anna@x.com": LookupResult("anna@x.com", (("L1", "Active"), ("L2", "Active")), activity=act),
        "ivan@x.com": LookupResult("ivan@x.com", (("L1", "Unsubscribed"), ("L3", "Bounced"))),
        "nobody@x.com": LookupResult("nobody@x.com", ()),
        "fail@x.com": LookupResult("fail@x.com", error="Looking up the lists of fail@x.com failed after retries: "
                                   "HTTP 500: HTML 500 response"),
        "spam@x.com": LookupResult("spam@x.com", (("L2", "Spam"),)),
        "part@x.com": LookupResult("part@x.com", (("L4", "Unconfirmed"),), warning="Activity incomplete: x"),
    }
    return JobSnapshot(job_id="j", input=bi, results=results, list_names=dict(LISTS), with_activity=with_activity,
                       state=state, fatal=fatal, notes=())


def test_every_input_row_appears_once_in_input_order_with_a_status():
    df = build_matrix(snapshot())
    assert list(df["Row"]) == [2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert list(df[COL_STATUS]) == [Status.OK, Status.OK, Status.OK, Status.INVALID, Status.DUPLICATE, Status.ERROR,
                                    Status.NOT_RUN, Status.OK, Status.PARTIAL]


def test_list_columns_hold_states_and_duplicates_copy_their_original():
    snap = snapshot()
    layout = layout_for(snap)
    df = build_matrix(snap, layout).set_index("Row")
    news, offers, vip, email_list = (layout.list_column_of[k] for k in ("L1", "L2", "L3", "L4"))
    # the words a person reads everywhere (cmlib.states), not the API's "Active"/"Unconfirmed"
    assert (df.loc[2, news], df.loc[2, offers], df.loc[2, vip]) == ("subscribed", "subscribed", "")
    assert (df.loc[3, news], df.loc[3, vip]) == ("unsubscribed", "bounced")
    assert df.loc[6, news] == "subscribed" and df.loc[6, COL_ERROR] == "Duplicate of row 2"
    assert df.loc[6, "Email"] == "ANNA@x.com"
    assert df.loc[10, email_list] == "pending"
    assert df.loc[9, offers] == "Spam"  # a state cmlib.states does not know keeps the API's name


def test_the_api_state_of_each_list_is_kept_in_its_own_column_for_machines():
    snap = snapshot()
    layout = layout_for(snap)
    assert layout.api_state_columns == [f"{layout.list_column_of[k]} (API state)" for k in ("L1", "L2", "L3", "L4")]
    assert layout.headers[-4:] == layout.api_state_columns  # after everything a person reads
    assert not set(layout.api_state_columns) & set(layout.shown_columns)
    df = build_matrix(snap, layout).set_index("Row")
    news, offers, email_list = (f"{layout.list_column_of[k]} (API state)" for k in ("L1", "L2", "L4"))
    assert (df.loc[2, news], df.loc[2, offers]) == ("Active", "Active")
    assert df.loc[3, news] == "Unsubscribed" and df.loc[10, email_list] == "Unconfirmed"
    assert df.loc[6, news] == "Active"  # the duplicate copies its original's, in both forms
    assert df.loc[4, news] == "" and df.loc[5, news] == ""  # on no list; invalid


def test_a_list_listed_twice_shows_both_states_in_both_forms():
    layout = Layout({"L1": "News"}, [], with_activity=False)
    bi = validate_table(parse_text("Email\nanna@x.com\n"))
    res = {"anna@x.com": LookupResult("anna@x.com", (("L1", "Active"), ("L1", "Deleted")))}
    snap = JobSnapshot("j", bi, res, {"L1": "News"}, False, "done", None, ())
    df = build_matrix(snap, layout)
    assert (df.loc[0, "News"], df.loc[0, "News (API state)"]) == ("subscribed, deleted", "Active, Deleted")
    assert list(filter_matrix(df, layout, states=["deleted"])["Row"]) == [2]


def test_on_no_list_and_error_columns():
    df = build_matrix(snapshot(state="cancelled")).set_index("Row")
    assert df.loc[4, COL_NO_LIST] == "yes" and df.loc[2, COL_NO_LIST] == "no"
    assert df.loc[5, COL_NO_LIST] == "" and df.loc[5, COL_ERROR].startswith("Invalid address:")
    assert "HTTP 500" in df.loc[7, COL_ERROR] and "fail@x.com" in df.loc[7, COL_ERROR]
    assert df.loc[8, COL_ERROR] == "Not looked up: the run was cancelled"
    assert df.loc[10, COL_ERROR] == "Activity incomplete: x"


def test_not_run_reason_names_an_authentication_failure():
    df = build_matrix(snapshot(state="failed", fatal="Code 100: Invalid API Key")).set_index("Row")
    assert "authentication failed (Code 100: Invalid API Key)" in df.loc[8, COL_ERROR]


def test_columns_never_collide_whatever_lists_and_input_columns_are_called():
    snap = snapshot()
    layout = layout_for(snap)
    assert len(set(layout.headers)) == len(layout.headers)
    # a list called "Email" and an input column called "Status" are both renamed, not merged
    assert layout.list_column_of["L4"] == "Email (2)"
    assert layout.extra_columns == ["Name", "Status (2)"]
    assert layout.list_column_of["L3"] == "<b>VIP</b> **x**"
    df = build_matrix(snap, layout).set_index("Row")
    assert df.loc[2, "Status (2)"] == "gold" and df.loc[2, "Name"] == "Anna"


def test_two_lists_with_the_same_name_get_two_columns():
    layout = Layout({"a": "News", "b": "News"}, [], with_activity=False)
    assert layout.list_columns == ["News", "News (2)"]


def test_activity_columns_are_numbers_and_text():
    df = build_matrix(snapshot(with_activity=True)).set_index("Row")
    assert df.loc[2, "Campaigns received"] == 4
    assert df.loc[2, "Open rate %"] == 75.0 and df.loc[2, "Click rate %"] == 25.0
    assert df.loc[2, "Last campaign"] == "Spring sale"
    assert df.loc[2, "Last campaign sent"] == pd.Timestamp(2025, 5, 1, 10, 0)  # a date, not text
    assert pd.api.types.is_datetime64_any_dtype(df["Last campaign sent"]) and pd.isna(df.loc[5, "Last campaign sent"])
    assert pd.isna(df.loc[5, "Open rate %"]) and pd.isna(df.loc[5, "Campaigns received"])
    assert pd.api.types.is_numeric_dtype(df["Open rate %"])
    assert str(df["Campaigns received"].dtype) == "Int64"  # whole numbers, with gaps: never 4.0


def test_summary_counts_distinct_addresses_per_list_and_state():
    snap = snapshot()
    layout = layout_for(snap)
    summary, counts = summarise(snap, layout)
    assert list(summary.columns[:5]) == ["subscribed", "unsubscribed", "pending", "bounced", "deleted"]
    assert "Spam" in summary.columns  # unknown states get a column (the API's name) instead of vanishing
    assert summary.loc["Newsletter", "subscribed"] == 1  # the duplicate row is not counted twice
    assert summary.loc["Newsletter", "unsubscribed"] == 1
    assert summary.loc["Offers", "subscribed"] == 1 and summary.loc["Offers", "Spam"] == 1
    assert summary.loc["<b>VIP</b> **x**", "bounced"] == 1
    assert summary.loc["Email (2)", "pending"] == 1
    assert counts.looked_up == 5 and counts.on_no_list == 1 and counts.failed == 1 and counts.not_run == 1
    assert counts.invalid_rows == 1 and counts.duplicate_rows == 1
    # the chart's colours are the one table's (cmlib.states), by the word shown
    assert chart_colors(list(summary.columns)) == [s.color for s in STATE_STYLES.values()] + ["#2563eb"]
    assert chart_colors(["subscribed", "unsubscribed", "pending", "deleted", "bounced"]) == [
        "#16a34a", "#dc2626", "#ea580c", "#6b7280", "#7c3aed"]


def test_summary_lists_lists_nobody_is_on():
    snap = snapshot()
    names = dict(LISTS, L9="Webinars")
    snap = JobSnapshot(**{**snap.__dict__, "list_names": names})
    summary, _ = summarise(snap)
    assert "Webinars" in summary.index and summary.loc["Webinars"].sum() == 0


def test_filters_by_list_by_state_and_pseudo_states():
    snap = snapshot()
    layout = layout_for(snap)
    df = build_matrix(snap, layout)
    assert filter_matrix(df, layout) is df
    rows = lambda f: list(f["Row"])  # noqa: E731
    assert rows(filter_matrix(df, layout, lists=["Newsletter"])) == [2, 3, 6]
    assert rows(filter_matrix(df, layout, states=["subscribed"])) == [2, 6]
    assert rows(filter_matrix(df, layout, lists=["<b>VIP</b> **x**"], states=["subscribed"])) == []
    assert rows(filter_matrix(df, layout, lists=["Newsletter"], states=["unsubscribed"])) == [3]
    assert rows(filter_matrix(df, layout, states=[FILTER_ON_NO_LIST])) == [4]
    assert rows(filter_matrix(df, layout, states=[FILTER_PROBLEM])) == [5, 7, 8, 10]
    states = filter_states(df, layout)
    assert states[:4] == ["subscribed", "unsubscribed", "pending", "bounced"]
    assert "Spam" in states and states[-2:] == [FILTER_ON_NO_LIST, FILTER_PROBLEM]


def test_style_colours_state_cells_and_gives_up_on_huge_frames():
    snap = snapshot()
    layout = layout_for(snap)
    df = build_matrix(snap, layout)
    styled = style_matrix(df, layout)
    html = styled.to_html()
    assert "#dcfce7" in html  # subscribed background (green)
    assert "#fee2e2" in html  # unsubscribed (red)
    assert "#ede9fe" in html  # bounced (violet)
    assert "#ffedd5" in html  # pending (orange)
    assert style_matrix(df, layout, max_cells=3) is df


def test_problems_frame_lists_invalid_and_duplicate_rows():
    pf = problems_frame(snapshot().input)
    assert list(pf["Row"]) == [5, 6]
    assert pf.iloc[0]["Value"] == "broken@@x" and pf.iloc[0]["Reason"].startswith("Invalid:")
    assert pf.iloc[1]["Reason"] == "Duplicate of row 2"
