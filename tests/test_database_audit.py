"""The audit log on both backends (issue 16): the same cases on a SQLite file and on Postgres.

Record / query / filter / count, case-insensitive filters for non-ASCII text, timezone-aware
times, migration of tables written by older versions, and unique ids under concurrent writers
(4 processes x 200 inserts). Postgres comes from the ``postgres_url`` fixture (tests/servers.py).
"""
from __future__ import annotations

import multiprocessing
import queue
import sqlite3
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text

from cmlib import database as dbmod
from cmlib.audit import AUDIT_TABLE, ActorSource, AuditEntry, AuditFilter, AuditLog, to_csv_bytes
from cmlib.database import sqlite_url


@pytest.fixture(autouse=True)
def _close_engines():
    """Each test's database is new: drop the engines (and Postgres pools) it opened."""
    yield
    dbmod.close_all()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "audit.sqlite")
    return request.getfixturevalue("postgres_url")


def _e(**kw) -> AuditEntry:
    base = {"actor": "lead@example.com", "client_id": "c1", "email": "anna@example.com", "list_id": "L1",
            "list_name": "Newsletter", "state_before": "Active", "action": "unsubscribe", "reason": "ticket 42",
            "result": "done"}
    base.update(kw)
    return AuditEntry(**base)


def test_record_query_filter_count(url):
    log = AuditLog(url=url)
    assert log.count() == 0 and log.query() == []
    saved = log.record_many([
        _e(at="2024-03-01T10:00:00Z", plan_token="tok"),
        _e(at="2024-03-02T10:00:00Z", email="ivan@example.com", list_name="Offers", list_id="L2",
           result="failed: Code 500: Sorry"),
        _e(at="2024-03-03T10:00:00Z", actor="support@example.com", result="queued",
           actor_source=ActorSource.SIGNED_IN),
        _e(at="2024-03-04T10:00:00Z", result="conflict — not written"),
        _e(at="2024-03-05T10:00:00Z", result="not sent: API unreachable"),
        _e(at="2024-03-06T10:00:00Z", result="sent: read-back failed"),
    ])
    assert log.count() == 6
    assert all(s.id is not None for s in saved) and len({s.id for s in saved}) == 6
    rows = log.query()
    assert [r.at for r in rows] == [f"2024-03-0{d}T10:00:00Z" for d in range(6, 0, -1)]  # newest first
    assert rows[-1] == saved[0]  # every field reads back as recorded
    assert rows[3].actor_source is ActorSource.SIGNED_IN
    assert [r.email for r in log.query(AuditFilter(email_contains="IVAN"))] == ["ivan@example.com"]
    assert len(log.query(AuditFilter(list_text="offer"))) == 1
    assert len(log.query(AuditFilter(list_text="l1"))) == 5  # the list id, case-insensitive
    assert [r.actor for r in log.query(AuditFilter(actor="Support"))] == ["support@example.com"]
    assert [r.result for r in log.query(AuditFilter(result="failed"))] == ["failed: Code 500: Sorry"]
    assert [r.result for r in log.query(AuditFilter(result="conflict"))] == ["conflict — not written"]
    assert [r.result_kind for r in log.query(AuditFilter(result="sent"))] == ["sent"]  # not "not sent"
    assert [r.result_kind for r in log.query(AuditFilter(result="not sent"))] == ["not sent"]
    got = log.query(AuditFilter(since=date(2024, 3, 2), until=date(2024, 3, 3)))
    assert [r.at for r in got] == ["2024-03-03T10:00:00Z", "2024-03-02T10:00:00Z"]
    assert [r.at for r in log.query(AuditFilter(limit=2))] == ["2024-03-06T10:00:00Z", "2024-03-05T10:00:00Z"]
    assert log.query(AuditFilter(email_contains="anna", result="queued"))[0].actor == "support@example.com"


def test_rows_in_the_same_second_keep_the_order_they_were_written(url):
    log = AuditLog(url=url)
    log.record_many([_e(at="2024-03-01T10:00:00Z", email=f"{i}@example.com") for i in range(5)])
    assert [r.email for r in log.query()] == [f"{i}@example.com" for i in reversed(range(5))]


@pytest.mark.parametrize(("stored", "typed"), [
    ("Élodie Dupont", "élodie"),
    ("élodie dupont", "ÉLODIE"),
    ("Ёлка новогодняя", "ёлка"),
    ("ёлка", "ЁЛКА"),
    ("Straße Newsletter", "STRASSE"),
    ("ΣΊΣΥΦΟΣ", "σίσυφος"),
    ("Cafe\u0301 list", "CAFÉ"),  # a decomposed accent matches the precomposed one
])
def test_non_ascii_filters_are_case_insensitive(url, stored, typed):
    log = AuditLog(url=url)
    log.record_many([
        _e(actor=stored, email="x@example.com", list_name=stored),
        _e(actor="someone else", email="y@example.com", list_name="Other"),
    ])
    assert [r.actor for r in log.query(AuditFilter(actor=typed))] == [stored]
    assert [r.list_name for r in log.query(AuditFilter(list_text=typed))] == [stored]
    assert log.query(AuditFilter(actor=typed + "zzz")) == []


def test_non_ascii_addresses_are_found_and_exported_as_stored(url):
    log = AuditLog(url=url)
    log.record(_e(email="ÉLODIE@exemple.fr", actor="Ольга"))
    [row] = log.query(AuditFilter(email_contains="élodie@"))
    assert row.email == "ÉLODIE@exemple.fr"  # the original is kept; only the search copy is folded
    assert "Ольга".encode() in to_csv_bytes([row])


def test_filter_text_is_literal_not_sql_or_a_pattern(url):
    log = AuditLog(url=url)
    log.record_many([_e(email="anna@example.com"), _e(email="100%_off@example.com")])
    assert log.query(AuditFilter(email_contains="' OR 1=1 --")) == []
    assert [r.email for r in log.query(AuditFilter(email_contains="%"))] == ["100%_off@example.com"]
    assert [r.email for r in log.query(AuditFilter(email_contains="_"))] == ["100%_off@example.com"]
    assert log.query(AuditFilter(email_contains="a%a")) == []


def test_times_come_back_timezone_aware_utc(url):
    log = AuditLog(url=url)
    before = datetime.now(UTC).replace(microsecond=0)
    now_row = log.record(_e())
    offset_row = log.record(_e(at="2024-03-01T12:30:00+02:00"))  # another offset: stored in UTC
    assert offset_row.at == "2024-03-01T10:30:00Z"
    rows = {r.id: r for r in log.query()}
    assert rows[offset_row.id].timestamp == datetime(2024, 3, 1, 10, 30, tzinfo=UTC)
    stamp = rows[now_row.id].timestamp
    assert stamp is not None and stamp.utcoffset() == timedelta(0) and stamp >= before
    # the column itself, read through SQLAlchemy, is aware on both backends
    with dbmod.database(url).read() as conn:
        values = conn.execute(select(AUDIT_TABLE.c.at).order_by(AUDIT_TABLE.c.id)).scalars().all()
    assert all(v.tzinfo is not None and v.utcoffset() == timedelta(0) for v in values)
    assert values[1] == datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))


def test_a_day_filter_is_a_utc_day_whatever_the_session_zone(url):
    log = AuditLog(url=url)
    log.record_many([_e(at="2024-03-01T23:59:59Z", email="late@example.com"),
                     _e(at="2024-03-02T00:00:00Z", email="early@example.com")])
    assert [r.email for r in log.query(AuditFilter(until=date(2024, 3, 1)))] == ["late@example.com"]
    assert [r.email for r in log.query(AuditFilter(since=date(2024, 3, 2)))] == ["early@example.com"]


def test_configured_by_cm_database_url(url, monkeypatch, tmp_path):
    monkeypatch.setenv("CM_DATABASE_URL", url)
    monkeypatch.setenv("CM_AUDIT_DB", str(tmp_path / "ignored.sqlite"))  # the one database wins
    AuditLog().record(_e(actor="Élodie"))
    assert [r.actor for r in AuditLog(url=url).query(AuditFilter(actor="ÉLODIE"))] == ["Élodie"]
    assert not (tmp_path / "ignored.sqlite").exists()
    AuditLog().ensure_writable()


# ------------------------------------------------------------------------------ schema migration

_OLD_SQLITE_SCHEMA = """CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL,
    actor TEXT NOT NULL, client_id TEXT NOT NULL, email TEXT NOT NULL, list_id TEXT NOT NULL,
    list_name TEXT NOT NULL, state_before TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL,
    result TEXT NOT NULL, plan_token TEXT NOT NULL DEFAULT '');
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_email ON audit(email);
"""
_OLD_ROW = ("INSERT INTO audit (at, actor, client_id, email, list_id, list_name, state_before, action, reason,"
            " result) VALUES ('{at}', '{actor}', 'c1', '{email}', 'L1', 'Ёлка', 'Active', 'unsubscribe', '',"
            " 'done');")


def test_an_old_sqlite_file_is_migrated_and_its_rows_are_searchable(tmp_path):
    path = tmp_path / "audit.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_OLD_SQLITE_SCHEMA + "".join(
        _OLD_ROW.format(at=f"2024-03-01T10:00:{i:02d}Z", actor=f"Élodie {i}", email=f"e{i}@example.com")
        for i in range(3)))
    con.close()
    log = AuditLog(path)  # the call every existing site makes
    assert [r.actor for r in log.query(AuditFilter(actor="élodie 1"))] == ["Élodie 1"]
    assert len(log.query(AuditFilter(list_text="ёлка"))) == 3
    [oldest] = log.query(AuditFilter(email_contains="e0@"))
    assert (oldest.actor_source, oldest.timestamp) == (ActorSource.NOT_RECORDED,
                                                      datetime(2024, 3, 1, 10, 0, tzinfo=UTC))
    new = log.record(_e(at="2024-03-02T10:00:00Z", actor="Dana", actor_source=ActorSource.TYPED))
    assert new.id == 4  # AUTOINCREMENT continues
    con = sqlite3.connect(path)
    columns = [row[1] for row in con.execute("PRAGMA table_info(audit)")]
    stored_at = con.execute("SELECT at FROM audit WHERE id = 4").fetchone()[0]
    null_folds = con.execute("SELECT COUNT(*) FROM audit WHERE email_folded IS NULL").fetchone()[0]
    con.close()
    assert columns.count("actor_source") == 1 and {"email_folded", "actor_folded"} <= set(columns)
    assert stored_at == "2024-03-02T10:00:00Z"  # the same text the file always held
    assert null_folds == 0


def test_two_processes_opening_an_old_file_migrate_it_once(tmp_path):
    path = tmp_path / "audit.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_OLD_SQLITE_SCHEMA + _OLD_ROW.format(at="2024-03-01T10:00:00Z", actor="Zoë",
                                                           email="e@example.com"))
    con.close()
    url = sqlite_url(path)
    _run_writers(url, processes=4, rows=5)
    log = AuditLog(path)
    assert log.count() == 1 + 4 * 5
    assert [r.actor for r in log.query(AuditFilter(actor="ZOË"))] == ["Zoë"]  # the old row, backfilled once
    assert len(log.query(AuditFilter(actor="élodie"))) == 20


def test_a_postgres_table_without_the_newer_columns_is_brought_up_to_date(postgres_url):
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(
            "CREATE TABLE audit (id BIGSERIAL PRIMARY KEY, at TIMESTAMPTZ NOT NULL, actor TEXT NOT NULL,"
            " client_id TEXT NOT NULL, email TEXT NOT NULL, list_id TEXT NOT NULL, list_name TEXT NOT NULL,"
            " state_before TEXT NOT NULL, action TEXT NOT NULL, reason TEXT NOT NULL, result TEXT NOT NULL,"
            " plan_token TEXT NOT NULL DEFAULT '')"))
        conn.execute(text(
            "INSERT INTO audit (at, actor, client_id, email, list_id, list_name, state_before, action, reason,"
            " result) VALUES ('2024-03-01T10:00:00Z', 'Élodie', 'c1', 'e@example.com', 'L1', 'Ёлка', 'Active',"
            " 'unsubscribe', '', 'done')"))
    engine.dispose()
    log = AuditLog(url=postgres_url)
    [row] = log.query(AuditFilter(actor="élodie", list_text="ЁЛКА"))
    assert row.actor_source is ActorSource.NOT_RECORDED and row.at == "2024-03-01T10:00:00Z"
    assert log.record(_e()).id == 2


# ------------------------------------------------------------------------------ concurrent writers

def _writer(url: str, worker: int, rows: int, start, ids) -> None:  # in a child process
    log = AuditLog(url=url)
    start.wait(30)
    got = [log.record(_e(email=f"w{worker}-{i}@example.com", actor=f"Élodie {worker}")).id for i in range(rows)]
    ids.put(got)
    dbmod.close_all()


def _run_writers(url: str, *, processes: int, rows: int) -> list[int]:
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited from pytest's
    start, ids = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(url, w, rows, start, ids)) for w in range(processes)]
    for p in procs:
        p.start()
    start.set()
    got: list[int] = []
    while len(got) < rows * processes:
        try:
            got += ids.get(timeout=1)
        except queue.Empty:  # not a timing check: stop waiting as soon as a writer has died
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not failed, f"a writer failed: exit codes {failed}"
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    return got


def test_concurrent_writers_get_unique_ids(url):
    ids = _run_writers(url, processes=4, rows=200)
    assert len(ids) == 800 and len(set(ids)) == 800
    log = AuditLog(url=url)  # another "replica" reads what every writer wrote
    assert log.count() == 800
    rows = log.query()
    assert sorted(r.id for r in rows) == sorted(ids)
    assert len(log.query(AuditFilter(actor="élodie 3"))) == 200


def test_the_sqlite_file_is_owner_only(tmp_path):
    path = tmp_path / "sub" / "audit.sqlite"
    AuditLog(path).record(_e())
    for p in [path, *Path(path.parent).glob("audit.sqlite-*")]:
        assert p.stat().st_mode & 0o077 == 0, p


# ------------------------------------------------------------------------------ the Audit page

AUDIT_PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "audit.py")


def test_the_audit_page_reads_the_configured_database(url, monkeypatch):
    from tests.apptest_helpers import open_page

    AuditLog(url=url).record_many([_e(at="2024-03-01T10:00:00Z", actor="Élodie", email="e@example.com"),
                                   _e(at="2024-03-02T10:00:00Z", actor="Ivan", email="i@example.com")])
    monkeypatch.setenv("CM_DATABASE_URL", url)  # replica B: the rows were written elsewhere
    at = open_page(AUDIT_PAGE, "UTC")
    assert list(at.dataframe[0].value["Address"]) == ["i@example.com", "e@example.com"]
    at.text_input(key="audit_actor").input("ÉLODIE").run()
    assert list(at.dataframe[0].value["Address"]) == ["e@example.com"]


def test_an_unusable_database_url_is_reported_on_the_page_not_a_crash(monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CM_DATABASE_URL", "mysql://cm:pw-s3cret@db/cm")
    log = AuditLog()
    assert "pw-s3cret" not in log.location and "pw-s3cret" not in repr(log)
    at = AppTest.from_file(AUDIT_PAGE, default_timeout=30).run()
    assert not at.exception, at.exception
    assert any("cannot be read" in e.value and "only sqlite" in e.value for e in at.error)
    assert all("pw-s3cret" not in e.value for e in at.error)


def test_ensure_writable_refuses_a_postgres_user_that_may_not_insert(postgres_url):
    import uuid

    from sqlalchemy.engine import make_url

    AuditLog(url=postgres_url).record(_e())  # the table exists, owned by the admin user
    role = "ro_" + uuid.uuid4().hex[:8]
    engine = create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN"))
        conn.execute(text(f"GRANT SELECT ON audit TO {role}"))
    engine.dispose()
    reader = AuditLog(url=make_url(postgres_url).set(username=role).render_as_string(hide_password=False))
    assert reader.count() == 1  # it may read
    with pytest.raises(PermissionError, match="may not add rows"):
        reader.ensure_writable()
    AuditLog(url=postgres_url).ensure_writable()  # the owner may
