"""The audit log: created on first use, filters, CSV export safe for spreadsheets, no secrets."""
from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib.audit import (
    ActorSource,
    AuditEntry,
    AuditFilter,
    AuditLog,
    SecretInTextError,
    default_path,
    neutralise_cell,
    table_rows,
    to_csv_bytes,
)


def _e(**kw) -> AuditEntry:
    base = {"actor": "lead@example.com", "client_id": "c1", "email": "anna@example.com", "list_id": "L1",
            "list_name": "Newsletter", "state_before": "Active", "action": "unsubscribe", "reason": "ticket 42",
            "result": "done"}
    base.update(kw)
    return AuditEntry(**base)


def test_default_path_is_in_data_dir_and_env_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("CM_AUDIT_DB", raising=False)
    assert default_path() == tmp_path / "data" / "audit.sqlite"
    monkeypatch.setenv("CM_AUDIT_DB", str(tmp_path / "elsewhere" / "a.db"))
    log = AuditLog()
    assert log.path == tmp_path / "elsewhere" / "a.db"
    assert not log.path.exists()  # nothing is created until it is used
    log.record(_e())
    assert log.path.exists()
    assert log.count() == 1


def test_record_fills_time_and_id_and_reads_back(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    saved = log.record(_e(plan_token="tok"))
    assert saved.id is not None
    assert saved.at.endswith("Z") and "T" in saved.at
    [row] = log.query()
    assert row == saved
    assert row.result_kind == "done"


def test_filters_combine(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record_many([
        _e(at="2024-03-01T10:00:00Z"),
        _e(at="2024-03-02T10:00:00Z", email="ivan@example.com", list_name="Offers", list_id="L2",
           result="failed: Code 500: Sorry"),
        _e(at="2024-03-03T10:00:00Z", actor="support@example.com", result="queued"),
        _e(at="2024-03-04T10:00:00Z", result="conflict — not written"),
    ])
    assert len(log.query()) == 4
    assert log.query()[0].at == "2024-03-04T10:00:00Z"  # newest first
    assert [r.email for r in log.query(AuditFilter(email_contains="IVAN"))] == ["ivan@example.com"]
    assert len(log.query(AuditFilter(list_text="offer"))) == 1
    assert len(log.query(AuditFilter(list_text="L1"))) == 3
    assert [r.actor for r in log.query(AuditFilter(actor="support"))] == ["support@example.com"]
    assert [r.result for r in log.query(AuditFilter(result="failed"))] == ["failed: Code 500: Sorry"]
    assert [r.result for r in log.query(AuditFilter(result="conflict"))] == ["conflict — not written"]
    assert len(log.query(AuditFilter(result="done"))) == 1
    got = log.query(AuditFilter(since=date(2024, 3, 2), until=date(2024, 3, 3)))
    assert [r.at for r in got] == ["2024-03-03T10:00:00Z", "2024-03-02T10:00:00Z"]
    assert log.query(AuditFilter(email_contains="anna", result="queued"))[0].actor == "support@example.com"


def test_filter_text_is_not_sql(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record(_e())
    assert log.query(AuditFilter(email_contains="' OR 1=1 --")) == []
    assert log.query(AuditFilter(email_contains="%")) == []  # instr(), not LIKE: % is literal


@pytest.mark.parametrize(("cell", "expected"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1", "'+1"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"),
    ("Newsletter", "Newsletter"), ("", ""), (None, ""),
])
def test_neutralise_cell(cell, expected):
    assert neutralise_cell(cell) == expected


def test_csv_export_has_bom_and_neutralised_cells(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record(_e(list_name="=cmd|' /C calc'!A0", reason="+ticket", email="maria+news@example.com",
                  actor="Ольга"))
    data = to_csv_bytes(log.query())
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0][:4] == ["at", "actor", "client_id", "email"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["list_name"] == "'=cmd|' /C calc'!A0"
    assert row["reason"] == "'+ticket"
    assert row["email"] == "maria+news@example.com"
    assert row["actor"] == "Ольга"


def test_the_source_of_the_name_is_stored_exported_and_shown(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record(_e(actor="Dana", actor_source=ActorSource.TYPED))
    log.record(_e(actor="lead@example.com", actor_source=ActorSource.SIGNED_IN))
    assert [(r.actor, r.actor_source) for r in log.query()] == [
        ("lead@example.com", ActorSource.SIGNED_IN), ("Dana", ActorSource.TYPED)]
    rows = list(csv.reader(io.StringIO(to_csv_bytes(log.query()).decode("utf-8-sig"))))
    assert rows[0][-1] == "actor_source" and [r[-1] for r in rows[1:]] == ["signed-in user", "typed"]
    assert [r["Name from"] for r in table_rows(log.query())] == ["signed-in user", "typed"]


_OLD_SCHEMA = """CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT NOT NULL,
    client_id TEXT NOT NULL, email TEXT NOT NULL, list_id TEXT NOT NULL, list_name TEXT NOT NULL,
    state_before TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, result TEXT NOT NULL,
    plan_token TEXT NOT NULL DEFAULT '');
INSERT INTO audit (at, actor, client_id, email, list_id, list_name, state_before, action, reason, result)
    VALUES ('2024-03-01T10:00:00Z', 'anonymous', 'c1', 'anna@example.com', 'L1', 'Newsletter', 'Active',
            'unsubscribe', '', 'done');"""


def test_a_file_from_before_the_source_column_is_migrated_and_its_rows_stay_readable(tmp_path):
    path = tmp_path / "audit.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_OLD_SCHEMA)
    con.close()
    log = AuditLog(path)
    [old] = log.query()
    assert (old.actor, old.result, old.actor_source) == ("anonymous", "done", ActorSource.NOT_RECORDED)
    log.record(_e(at="2024-03-02T10:00:00Z", actor="Dana", actor_source=ActorSource.TYPED))
    assert [(r.actor, r.actor_source) for r in log.query()] == [
        ("Dana", ActorSource.TYPED), ("anonymous", ActorSource.NOT_RECORDED)]
    # a second process opening the migrated file finds the column there and adds nothing
    assert [r.actor for r in AuditLog(path).query()] == ["Dana", "anonymous"]
    con = sqlite3.connect(path)
    columns = [row[1] for row in con.execute("PRAGMA table_info(audit)")]
    con.close()
    assert columns.count("actor_source") == 1


def test_an_unknown_stored_source_reads_as_not_recorded():
    assert ActorSource.parse("typed") is ActorSource.TYPED
    assert ActorSource.parse("") is ActorSource.NOT_RECORDED
    assert ActorSource.parse("from a future version") is ActorSource.NOT_RECORDED


def test_refuses_rows_containing_the_api_key(tmp_path):
    key = "sandbox-client-key-6e3a9c0d4b8147f2"
    log = AuditLog(tmp_path / "audit.sqlite", secrets=[key])
    with pytest.raises(SecretInTextError, match="the reason contains a configured credential"):
        log.record(_e(reason=f"failed with {key}"))
    assert log.count() == 0
    log.record(_e())
    assert key.encode() not in (tmp_path / "audit.sqlite").read_bytes()


def test_ensure_writable_fails_on_unwritable_location(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    log = AuditLog(blocker / "audit.sqlite")  # parent is a file: cannot be created
    with pytest.raises(FileExistsError):  # the folder cannot be made: a file is in the way
        log.ensure_writable()


# ------------------------------------------------------------------------- the Audit page
AUDIT_PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "audit.py")


def _page() -> AppTest:
    at = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_audit_page_empty(monkeypatch):
    monkeypatch.delenv("CM_AUDIT_DB", raising=False)
    at = _page()
    assert "No change has been made" in at.info[0].value
    assert len(at.dataframe) == 0


def test_audit_page_lists_and_filters(monkeypatch):
    monkeypatch.delenv("CM_AUDIT_DB", raising=False)
    AuditLog().record_many([
        _e(at="2024-03-01T10:00:00Z", list_name="<img src=x onerror=alert(1)> **VIP** :red[x]"),
        _e(at="2024-03-02T10:00:00Z", email="ivan@example.com", result="failed: Code 500: Sorry"),
        _e(at="2024-03-05T10:00:00Z", actor="support@example.com", result="queued"),
    ])
    at = _page()
    df = at.dataframe[0].value
    assert list(df["Address"]) == ["anna@example.com", "ivan@example.com", "anna@example.com"]
    assert df.iloc[2]["List"] == "<img src=x onerror=alert(1)> **VIP** :red[x]"  # data, shown as is
    assert {"Time", "Who", "Before", "Action", "Reason", "Result"} <= set(df.columns)  # times: test_app_audit.py
    at.text_input(key="audit_email").input("ivan").run()
    assert list(at.dataframe[0].value["Result"]) == ["failed: Code 500: Sorry"]
    at.text_input(key="audit_email").input("").run()
    at.selectbox(key="audit_result").select("queued").run()
    assert list(at.dataframe[0].value["Who"]) == ["support@example.com"]
    at.selectbox(key="audit_result").select("any").run()
    at.date_input(key="audit_since").set_value(date(2024, 3, 2)).run()
    at.date_input(key="audit_until").set_value(date(2024, 3, 4)).run()
    assert list(at.dataframe[0].value["Address"]) == ["ivan@example.com"]
    at.text_input(key="audit_actor").input("nobody-like-this").run()
    assert "No change matches" in at.info[0].value


def test_new_verdicts_are_filterable_and_parsed(monkeypatch):
    from cmlib.audit import RESULTS, Outcome

    assert {"unknown", "not sent"} <= set(RESULTS) and Outcome.NOT_SENT == "not sent"
    assert _e(result="not sent: API unreachable (connection failed)").result_kind == "not sent"
    assert _e(result="unknown: the answer was lost").result_kind == "unknown"
    assert _e(result="sent: read-back failed").result_kind == "sent"
    monkeypatch.delenv("CM_AUDIT_DB", raising=False)
    AuditLog().record_many([
        _e(at="2024-03-01T10:00:00Z", result="not sent: API unreachable (connection failed: ConnectionError)"),
        _e(at="2024-03-02T10:00:00Z", result="unknown: the answer was lost (HTTP 502) and the read-back failed"),
        _e(at="2024-03-03T10:00:00Z", result="sent: read-back failed: HTTP 500"),
    ])
    assert [r.result_kind for r in AuditLog().query(AuditFilter(result="not sent"))] == ["not sent"]
    assert [r.result_kind for r in AuditLog().query(AuditFilter(result="sent"))] == ["sent"]  # not "not sent"
    at = _page()
    at.selectbox(key="audit_result").select("unknown").run()
    assert list(at.dataframe[0].value["Result"]) == [
        "unknown: the answer was lost (HTTP 502) and the read-back failed"]


def test_secret_check_names_what_to_remove_and_never_shows_it(tmp_path):
    from cmlib.audit import api_key_secrets

    key = "sandbox-client-key-6e3a9c0d4b8147f2"
    log = AuditLog(tmp_path / "audit.sqlite", secrets=api_key_secrets(key))
    with pytest.raises(SecretInTextError) as exc:
        log.check_text(reason=f"ticket 1 {key}", actor="lead")
    assert str(exc.value).startswith("the reason contains the API key: remove it")
    assert key not in str(exc.value) and key not in repr(exc.value)
    log.check_text(reason="ticket 1", actor="lead")  # clean text passes
    with pytest.raises(SecretInTextError, match="the list name contains the API key"):
        log.record(_e(list_name=key))
