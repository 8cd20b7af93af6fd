"""The Bulk page in AppTest against the sandbox: paste or upload, run, summary, matrix, cancel,
reruns and reloads that keep the run, limits and unusable files."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cmlib import runtime
from cmlib.bulk.engine import BULK_CONCURRENCY
from cmlib.bulk.jobs import BulkJob
from cmlib.sandbox import VIP_LIST_NAME
from tests.sandbox_fixtures import point_app_at
from ui import bulk_results
from ui.bulk_view import (
    CANCEL_KEY,
    CLEAR_KEY,
    FILTER_STATES_KEY,
    JOB_KEY,
    PAGE_KEY,
    PASTE_KEY,
    REFRESH_KEY,
    SOURCE_KEY,
    SOURCE_UPLOAD,
    START_KEY,
    UPLOAD_KEY,
    registry,
)
from ui.text import WORD_JOINER

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "bulk.py")
PASTE = "anna@example.com\nivan.work@example.org\nnot-an-address\nANNA@example.com\nvip@example.com\nnobody@example.com"


@pytest.fixture
def app_env(sandbox, monkeypatch):
    point_app_at(sandbox, monkeypatch)
    yield sandbox
    for jid in list(registry()._jobs):  # never leave a run going into the next test
        registry().remove(jid)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def page() -> AppTest:
    return run(AppTest.from_file(PAGE, default_timeout=30))


def job_of(at: AppTest) -> BulkJob:
    job = registry().get(at.session_state[JOB_KEY])
    assert job is not None
    return job


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: AppTest, column: str):
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with column {column!r}")


def unescape(text: str) -> str:
    """Markdown source back to the text a user reads (md_escape's backslashes and joiners)."""
    return re.sub(r"\\(.)", r"\1", text.replace(WORD_JOINER, ""))


def all_markdown(at: AppTest, raw: bool = False) -> str:
    parts = [str(e.value) for kind in ("markdown", "caption", "error", "warning", "info", "success", "subheader")
             for e in getattr(at, kind)]
    text = "\n".join(parts)
    return text if raw else unescape(text)


def start_and_finish(at: AppTest) -> BulkJob:
    at.button(key=START_KEY).click()
    run(at)
    job = job_of(at)
    assert job.join(30)
    return job


def test_paste_run_shows_counts_summary_chart_and_matrix(app_env):
    at = page()
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    assert metrics(at) == {"Rows": "6", "Valid addresses": "4", "Invalid": "1", "Duplicates": "1"}
    problems = frame(at, "Reason")
    assert list(problems["Row"]) == [3, 4] and problems.iloc[1]["Reason"] == "Duplicate of row 1"
    assert "4 calls" in all_markdown(at)
    start_and_finish(at)
    run(at)
    m = metrics(at)
    assert m["Looked up"] == "4" and m["On no list"] == "1" and m["Failed"] == "0" and m["Not looked up"] == "0"
    summary = frame(at, "subscribed")  # the words of the whole app (cmlib.states), not the API's
    assert list(summary.columns[:5]) == ["subscribed", "unsubscribed", "pending", "bounced", "deleted"]
    assert summary.loc["Newsletter", "subscribed"] == 2  # anna and vip (the duplicate counts once)
    assert summary.loc["Newsletter", "unsubscribed"] == 1
    assert summary.loc[VIP_LIST_NAME, "subscribed"] == 1
    assert at.get("vega_lite_chart"), "the stacked bar chart is drawn"
    matrix = frame(at, "On no list").set_index("Row")
    assert list(matrix.index) == [1, 2, 3, 4, 5, 6]
    assert matrix.loc[1, "Newsletter"] == "subscribed" and matrix.loc[2, "Newsletter"] == "unsubscribed"
    assert matrix.loc[1, "Newsletter (API state)"] == "Active"  # in the data (downloads), for machines
    assert matrix.loc[3, "Status"] == "invalid" and matrix.loc[3, "Error"].startswith("Invalid address")
    assert matrix.loc[4, "Status"] == "duplicate" and matrix.loc[4, "Newsletter"] == "subscribed"
    assert matrix.loc[5, VIP_LIST_NAME] == "subscribed"  # the hostile list name is a column header, as data
    assert matrix.loc[6, "On no list"] == "yes"
    assert len(at.get("download_button")) == 2
    assert "<img" not in all_markdown(at, raw=True) and "**VIP**" not in all_markdown(at, raw=True)


def test_filter_by_state_narrows_the_matrix(app_env):
    at = page()
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    start_and_finish(at)
    run(at)
    states = at.multiselect(key=FILTER_STATES_KEY)
    assert states.options[:2] == ["subscribed", "unsubscribed"]
    states.set_value(["unsubscribed"])
    run(at)
    matrix = frame(at, "On no list")
    assert list(matrix["Email"]) == ["ivan.work@example.org"]
    assert "Showing 1 matching of 6 rows." in all_markdown(at)


def test_upload_cp1251_semicolon_file_keeps_the_other_columns(app_env):
    at = page()
    at.radio(key=SOURCE_KEY).set_value(SOURCE_UPLOAD)
    run(at)
    data = "Имя;Электронная почта;Город\nАнна;anna@example.com;Москва\nНикто;nobody@example.com;Казань\n"
    at.file_uploader(key=UPLOAD_KEY).upload("event.csv", data.encode("cp1251"), "text/csv")
    run(at)
    assert "Windows-1251" in all_markdown(at) and "semicolon" in all_markdown(at)
    assert next(s for s in at.selectbox if s.label == "Email column").value == 1
    assert metrics(at)["Valid addresses"] == "2"
    start_and_finish(at)
    run(at)
    matrix = frame(at, "On no list").set_index("Row")
    assert matrix.loc[2, "Имя"] == "Анна" and matrix.loc[3, "Город"] == "Казань"
    assert matrix.loc[2, "Newsletter"] == "subscribed" and matrix.loc[3, "On no list"] == "yes"


def test_file_without_an_email_column_asks_which_column(app_env):
    at = page()
    at.radio(key=SOURCE_KEY).set_value(SOURCE_UPLOAD)
    run(at)
    at.file_uploader(key=UPLOAD_KEY).upload("names.csv", b"Name,Contact\nIvan,ivan at example\nAnna,anna\n")
    run(at)
    assert any("No column with email addresses" in unescape(w.value) for w in at.warning)
    box = next(s for s in at.selectbox if s.label == "Email column")
    assert box.value is None and not at.metric
    box.set_value(1)
    run(at)
    assert metrics(at)["Invalid"] == "2" and metrics(at)["Valid addresses"] == "0"
    at.button(key=START_KEY).click()  # always there; a click on nothing to look up says so
    run(at)
    assert any("nothing to look up" in unescape(e.value) for e in at.error)
    assert JOB_KEY not in at.session_state and not at.get("progress")


def test_binary_upload_is_refused_clearly(app_env):
    at = page()
    at.radio(key=SOURCE_KEY).set_value(SOURCE_UPLOAD)
    run(at)
    at.file_uploader(key=UPLOAD_KEY).upload("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    run(at)
    assert any("PNG image" in unescape(e.value) for e in at.error)


def test_row_and_size_limits_have_clear_messages(app_env, monkeypatch):
    monkeypatch.setenv("CM_BULK_MAX_ROWS", "3")
    at = page()
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    assert any("limit is 3" in unescape(e.value) for e in at.error)
    monkeypatch.setenv("CM_BULK_MAX_MB", "0.0005")  # 500 bytes
    at.radio(key=SOURCE_KEY).set_value(SOURCE_UPLOAD)
    run(at)
    at.file_uploader(key=UPLOAD_KEY).upload("big.csv", b"Email\n" + b"someone@example.com\n" * 100)
    run(at)
    assert any("limit is 0.0005 MB" in unescape(e.value) for e in at.error)


def _slow_run(app_env, n=150):
    app_env.set_faults(latency_ms=400)
    emails = app_env.data.emails(app_env.main_client_id)[:n]
    at = page()
    at.text_area(key=PASTE_KEY).input("\n".join(emails))
    run(at)
    at.button(key=START_KEY).click()
    run(at)
    job = job_of(at)
    assert job.wait(lambda p: p.done >= 3, timeout=30)
    return at, job, emails


def test_cancel_stops_and_keeps_the_finished_part(app_env):
    at, job, emails = _slow_run(app_env)
    run(at)
    assert at.button(key=CANCEL_KEY) and at.get("progress")
    at.button(key=CANCEL_KEY).click()
    run(at)
    assert job.join(10) and job.state == "cancelled"
    run(at)
    assert any("cancelled" in s.value for s in at.subheader)
    done = len(job.snapshot().results)
    assert 3 <= done < len(emails)
    matrix = frame(at, "On no list")
    assert len(matrix) == len(emails)
    assert (matrix["Status"] == "ok").sum() == done
    assert set(matrix.loc[matrix["Status"] == "not run", "Error"]) == {"Not looked up: the run was cancelled"}
    assert metrics(at)["Not looked up"] == str(len(emails) - done)
    assert len(at.get("download_button")) == 2  # the partial results can be downloaded


def test_reruns_and_a_reload_find_the_running_job(app_env):
    at, job, emails = _slow_run(app_env)
    run(at)  # an ordinary rerun while the job runs
    assert any(s.value == "Results so far" for s in at.subheader)
    first = len(frame(at, "On no list"))
    assert first == len(emails)
    # a browser reload is a new session: the job id in the URL brings the job back
    again = AppTest.from_file(PAGE, default_timeout=30)
    again.query_params["job"] = job.id
    run(again)
    assert again.session_state[JOB_KEY] == job.id
    assert again.get("progress")
    job.cancel()
    assert job.join(10)
    run(again)
    assert (frame(again, "On no list")["Status"] == "ok").sum() == len(job.snapshot().results)
    again.button(key=CLEAR_KEY).click()
    run(again)
    assert not again.get("progress") and registry().get(job.id) is None


def test_an_unknown_job_id_in_the_url_says_the_run_is_not_found(app_env):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["job"] = "not-a-job"
    run(at)
    assert not at.get("progress") and JOB_KEY not in at.session_state
    [notice] = [unescape(w.value) for w in at.warning]
    assert notice.startswith("The bulk run “not-a-job” was not found: it has expired")
    assert "Start a new run below" in notice


def test_a_hostile_unknown_job_id_is_shown_as_text(app_env):
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["job"] = "**x** <img src=x onerror=alert(1)> " + "y" * 200
    run(at)
    [raw] = [w.value for w in at.warning]
    assert "**x**" not in raw and "<img" not in raw.replace("\\<img", "")  # escaped: text, not markup
    assert "“**x** <img src=x onerror=alert(1)> yyyy" in unescape(raw) and "y" * 41 not in raw


def _outage_env(app_env, monkeypatch):
    """The app's client with a breaker that opens after two connection failures and does not
    probe during the test, and no retries: the outage shows in a second, not after backoffs."""
    from cmlib import runtime
    from cmlib.client import ClientOptions
    from cmlib.retry import NO_RETRY

    real_connect = runtime.connect

    def connect(credentials=None, **kw):
        # the page's client and each run's own client alike
        kw["options"] = ClientOptions(retry=NO_RETRY, rate=None, max_in_flight=4, read_timeout=5.0,
                                      breaker_threshold=2, breaker_probe_interval=3600)
        return real_connect(credentials, **kw)

    monkeypatch.setattr(runtime, "connect", connect)


def test_the_page_warns_while_a_run_is_paused_by_an_outage(app_env, monkeypatch):
    _outage_env(app_env, monkeypatch)
    emails = app_env.data.emails(app_env.main_client_id)[:6]
    at = page()
    at.text_area(key=PASTE_KEY).input("\n".join(emails))
    run(at)
    app_env.set_faults(down=True)
    at.button(key=START_KEY).click()
    run(at)
    job = job_of(at)
    assert job.wait(lambda p: p.paused is not None, timeout=30)
    run(at)
    warnings = [unescape(w.value) for w in at.warning]
    paused = [w for w in warnings if w.startswith("Campaign Monitor is not answering since ")]
    assert paused and "— paused, 6 addresses waiting" in paused[0], warnings
    assert "continues by itself" in paused[0]
    assert "paused" in at.get("progress")[0].proto.text
    assert metrics(at).get("Failed", "0") == "0"
    job.cancel()
    assert job.join(10)
    run(at)
    assert metrics(at)["Failed"] == "0" and metrics(at)["Not looked up"] == "6"  # none failed for the outage


def test_a_run_that_runs_out_of_patience_says_so_and_marks_the_rest_not_looked_up(app_env, monkeypatch):
    _outage_env(app_env, monkeypatch)
    monkeypatch.setenv("CM_BULK_PATIENCE", "0")
    emails = app_env.data.emails(app_env.main_client_id)[:5]
    at = page()
    at.text_area(key=PASTE_KEY).input("\n".join(emails))
    run(at)
    app_env.set_faults(down=True)
    job = start_and_finish(at)
    assert job.state == "failed"
    run(at)
    errors = [unescape(e.value) for e in at.error]
    assert any(e.startswith("Campaign Monitor is not answering since ") and "the run stopped after waiting 0 s" in e
               for e in errors), errors
    m = metrics(at)
    assert m["Failed"] == "0" and m["Not looked up"] == "5"
    matrix = frame(at, "On no list")
    assert all(e.startswith("Not looked up: Campaign Monitor is not answering") for e in matrix["Error"])


def test_show_results_so_far_redraws_the_results_while_running(app_env):
    at, job, _emails = _slow_run(app_env)
    before = len(job.snapshot().results)
    assert job.wait(lambda p: p.done >= before + 3, timeout=30)
    at.button(key=REFRESH_KEY).click()
    run(at)
    shown = (frame(at, "On no list")["Status"] == "ok").sum()
    assert shown >= before + 3
    job.cancel()
    job.join(10)


def test_a_run_uses_a_client_of_its_own_and_closes_it_when_it_ends(app_env, monkeypatch):
    """Not the interactive client (20 requests/s, burst 40) the Lookup page uses: its own, with
    bulk options, released when the run is over."""
    made = []
    real_connect = runtime.connect

    def connect(credentials=None, **kw):
        conn = real_connect(credentials, **kw)
        made.append(conn)
        return conn

    monkeypatch.setattr(runtime, "connect", connect)
    at = page()
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    job = start_and_finish(at)
    [own] = [c for c in made if c.client is job.lookup.client]
    assert own.client.options.max_in_flight == BULK_CONCURRENCY
    assert own.closed and not any(c.closed for c in made if c is not own)
    run(at)
    assert metrics(at)["Looked up"] == "4"


# ---------------------------------------------------------------------------- issue 12: usability
def test_pasted_addresses_and_a_click_in_one_go_start_the_run(app_env):
    """The button is there before anything is pasted: the text and the click arrive together (a
    text area hands over its text when it loses the focus, which the click takes)."""
    at = page()
    assert not at.button(key=START_KEY).disabled
    at.text_area(key=PASTE_KEY).input(PASTE)
    at.button(key=START_KEY).click()
    run(at)
    job = job_of(at)
    assert job.join(30) and job.input.counts.valid == 4
    run(at)
    assert metrics(at)["Looked up"] == "4"


def test_look_up_with_nothing_to_look_up_says_what_is_missing(app_env):
    at = page()
    at.button(key=START_KEY).click()
    run(at)
    assert any("Paste some addresses first" in unescape(e.value) for e in at.error)
    assert JOB_KEY not in at.session_state


def test_a_link_to_the_run_says_what_it_ran_on_and_when(app_env):
    at = page()
    at.radio(key=SOURCE_KEY).set_value(SOURCE_UPLOAD)
    run(at)
    at.file_uploader(key=UPLOAD_KEY).upload("event.csv", b"Email\nanna@example.com\nnobody@example.com\n", "text/csv")
    run(at)
    job = start_and_finish(at)
    again = AppTest.from_file(PAGE, default_timeout=30)  # a fresh session: only the link
    again.query_params["job"] = job.id
    run(again)
    about = [unescape(c.value) for c in again.caption if unescape(c.value).startswith("Run of ")]
    assert about and "2 addresses (2 rows) from the uploaded file “event.csv”" in about[0], about
    assert " · membership only · started 20" in about[0]


def test_the_bar_and_the_counters_agree_while_cancelling(app_env):
    at, job, emails = _slow_run(app_env)
    at.button(key=CANCEL_KEY).click()
    run(at)
    assert job.state in ("cancelling", "cancelled")
    text = at.get("progress")[0].proto.text
    done = int(re.match(r"([\d,]+) / ", text).group(1).replace(",", ""))
    m = metrics(at)
    assert int(m["Looked up"]) + int(m["Failed"]) == done
    assert int(m["Not looked up"]) == len(emails) - done
    assert job.join(10)


def test_suppressed_addresses_are_counted_and_have_their_columns(app_env):
    at = page()
    at.text_area(key=PASTE_KEY).input("suppressed@example.com\ncomplaints@example.net\nanna@example.com")
    at.button(key=START_KEY).click()
    run(at)
    assert job_of(at).join(30)
    run(at)
    assert metrics(at)["Suppressed"] == "2"
    matrix = frame(at, "On no list").set_index("Row")
    assert matrix.loc[1, "Suppression reason"] == "Unsubscribed"
    assert matrix.loc[2, "Suppression reason"] == "Spam Complaint"
    assert matrix.loc[3, "Suppression reason"] == "" and pd.isna(matrix.loc[3, "Suppressed since"])
    assert pd.notna(matrix.loc[1, "Suppressed since"])
    # Campaign Monitor's dates are the client's (Acme Books: "(GMT+03:00) Moscow"): the zone is named
    assert any("in the client's time zone (UTC+03:00)" in c.value for c in at.caption)
    dataframe = next(d for d in at.dataframe if "On no list" in d.value.columns)
    since = json.loads(dataframe.proto.columns)["Suppressed since"]
    assert since["label"] == "Suppressed since (UTC+03:00)"


def test_the_matrix_is_paged_and_no_session_holds_a_whole_matrix(app_env, monkeypatch):
    """Before: every session kept the whole matrix (and a styled copy) per rerun -- 200 MB for a
    20,000-row run. Now a page of rows becomes a table; the rest stays in the job's results."""
    monkeypatch.setattr(bulk_results, "ROWS_PER_PAGE", 2)
    at = page()
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    start_and_finish(at)
    run(at)
    assert list(frame(at, "On no list")["Row"]) == [1, 2]
    assert "Showing rows 1–2 of 6 rows." in all_markdown(at)
    at.number_input(key=PAGE_KEY).set_value(3)
    run(at)
    assert list(frame(at, "On no list")["Row"]) == [5, 6]
    at.multiselect(key=FILTER_STATES_KEY).set_value(["unsubscribed"])  # one row: page 3 is gone
    run(at)
    assert list(frame(at, "On no list")["Email"]) == ["ivan.work@example.org"]
    assert "Showing 1 matching of 6 rows." in all_markdown(at)

    def tables(value, depth=0):
        if isinstance(value, (pd.DataFrame, pd.io.formats.style.Styler)):
            yield value
        elif isinstance(value, (tuple, list)) and depth < 3:
            for v in value:
                yield from tables(v, depth + 1)

    keys = list(at.session_state)
    assert JOB_KEY in keys
    held = [t for key in keys for t in tables(at.session_state[key])]
    assert held == [], "a session keeps no table of the results"
