"""The engine owner (cmlib.database) and the admin-saved settings in a database (issue 16).

One engine per URL per process, the SQLite hooks (WAL, busy timeout, BEGIN IMMEDIATE for
writes), owner-only files, and settings saved on "replica A" read on "replica B" on both backends,
without the API key ever reaching an error message.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat

import pytest

from cmlib import database as dbmod
from cmlib.config import CredentialSource, SettingsStore, resolve_credentials
from cmlib.database import Backend, DatabaseUrlError, database, normalise_url, sqlite_url
from cmlib.errors import ConfigurationError
from cmlib.settings_db import SettingsUnavailableError
from tests.servers import free_port

KEY = "team-api-key-0123456789abcdef"
API_URL = "http://127.0.0.1:8765/api/v3.3"


@pytest.fixture(autouse=True)
def _close_engines():
    yield
    dbmod.close_all()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url(tmp_path / "team.sqlite")
    return request.getfixturevalue("postgres_url")


# ------------------------------------------------------------------------------ the engine owner

def test_one_database_and_engine_per_url(tmp_path):
    a = database(sqlite_url(tmp_path / "a.sqlite"))
    assert database(sqlite_url(tmp_path / "a.sqlite")) is a
    assert database(f"sqlite:///{tmp_path / 'a.sqlite'}") is a  # the same URL written by hand
    assert database(sqlite_url(tmp_path / "b.sqlite")) is not a
    assert a.engine is a.engine
    assert not (tmp_path / "a.sqlite").exists()  # nothing opened before the first use
    first = a.engine
    a.close()
    assert a.engine is not first  # a closed database opens a new engine when used again
    dbmod.close_all()
    assert database(sqlite_url(tmp_path / "a.sqlite")) is not a


@pytest.mark.parametrize(("raw", "driver"), [
    ("postgres://u:pw@db:5432/cm", "postgresql+psycopg"),
    ("postgresql://u:pw@db/cm", "postgresql+psycopg"),
    ("postgresql+psycopg://u:pw@db/cm", "postgresql+psycopg"),
    ("sqlite:////tmp/x.sqlite", "sqlite"),
    ("sqlite+pysqlite:////tmp/x.sqlite", "sqlite"),
])
def test_urls_are_normalised_to_the_installed_drivers(raw, driver):
    assert normalise_url(raw).drivername == driver


@pytest.mark.parametrize("raw", ["mysql://u@db/cm", "postgresql+psycopg2://u@db/cm", "not a url"])
def test_unsupported_urls_are_a_configuration_error(raw):
    with pytest.raises(DatabaseUrlError) as exc:
        database(raw)
    assert isinstance(exc.value, ConfigurationError)


def test_a_location_never_shows_the_password():
    db = database("postgresql+psycopg://cm:s3cret-pass@db.internal:5432/cm")
    assert db.backend is Backend.POSTGRES and "s3cret-pass" not in db.location and "db.internal" in db.location
    assert "s3cret-pass" not in repr(db)


def test_sqlite_connections_use_wal_and_a_busy_timeout(tmp_path):
    db = database(sqlite_url(tmp_path / "x.sqlite"))
    with db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == dbmod.SQLITE_BUSY_TIMEOUT_MS


class _LockedCursor:
    """A sqlite3 cursor whose first ``locked`` pragmas fail as a busy new file's can."""

    def __init__(self, mode: str, locked: int) -> None:
        self.mode, self.locked, self.sent = mode, locked, []

    def execute(self, sql: str) -> _LockedCursor:
        self.sent.append(sql)
        if self.locked:
            self.locked -= 1
            raise sqlite3.OperationalError("database is locked")
        if sql == "PRAGMA journal_mode = WAL":
            self.mode = "wal"
        return self

    def fetchone(self) -> tuple[str]:
        return (self.mode,)


class _FakeClock:
    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_wal_is_switched_on_once_and_only_read_afterwards():
    new, old = _LockedCursor("delete", 0), _LockedCursor("wal", 0)
    dbmod.ensure_wal(new)
    dbmod.ensure_wal(old)
    assert new.mode == "wal" and new.sent == ["PRAGMA journal_mode", "PRAGMA journal_mode = WAL"]
    assert old.sent == ["PRAGMA journal_mode"]


def test_a_locked_new_file_is_retried_until_it_is_free():
    cursor, clock = _LockedCursor("delete", 3), _FakeClock()
    dbmod.ensure_wal(cursor, clock=lambda: clock.now, sleep=clock.sleep)
    assert cursor.mode == "wal" and len(clock.slept) == 3
    assert clock.slept == sorted(clock.slept)  # backs off


def test_a_file_locked_past_the_busy_timeout_fails_like_a_writer_would():
    cursor, clock = _LockedCursor("delete", 10_000), _FakeClock()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        dbmod.ensure_wal(cursor, clock=lambda: clock.now, sleep=clock.sleep)
    assert dbmod.SQLITE_BUSY_TIMEOUT_MS / 1000 <= clock.now <= dbmod.SQLITE_BUSY_TIMEOUT_MS / 1000 + 0.1


def test_other_errors_are_not_retried():
    class Broken(_LockedCursor):
        def execute(self, sql: str) -> _LockedCursor:
            raise sqlite3.OperationalError("disk I/O error")

    clock = _FakeClock()
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        dbmod.ensure_wal(Broken("delete", 0), clock=lambda: clock.now, sleep=clock.sleep)
    assert clock.slept == []


def _try_write_lock(path) -> bool:
    """Can another connection take SQLite's write lock right now (not waiting)?"""
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        if "locked" not in str(exc):
            raise
        return False
    finally:
        con.close()


def test_a_write_takes_the_sqlite_write_lock_when_it_begins_and_a_read_does_not(tmp_path):
    path = tmp_path / "x.sqlite"
    db = database(sqlite_url(path))
    with db.write():
        assert not _try_write_lock(path)  # BEGIN IMMEDIATE: held before any statement
    assert _try_write_lock(path)
    with db.read():
        assert _try_write_lock(path)  # readers never block a writer (WAL, deferred BEGIN)


def test_a_failed_write_is_rolled_back(tmp_path):
    db = database(sqlite_url(tmp_path / "x.sqlite"))
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")

    def insert_then_fail() -> None:
        with db.write() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        insert_then_fail()
    with db.read() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM t").scalar() == 0


def test_a_schema_step_runs_once_per_process_and_again_after_close(tmp_path):
    db = database(sqlite_url(tmp_path / "x.sqlite"))
    calls = []
    db.prepare("t", lambda conn: calls.append(conn.exec_driver_sql("SELECT 1").scalar()))
    db.prepare("t", lambda conn: calls.append(2))
    assert calls == [1]
    db.close()
    db.prepare("t", lambda conn: calls.append(3))
    assert calls == [1, 3]


def test_a_failed_schema_step_is_retried(tmp_path):
    db = database(sqlite_url(tmp_path / "x.sqlite"))

    def fail(conn):
        raise RuntimeError("server away")

    with pytest.raises(RuntimeError):
        db.prepare("t", fail)
    calls = []
    db.prepare("t", lambda conn: calls.append(1))
    assert calls == [1]


def test_a_new_sqlite_file_and_its_journal_files_are_owner_only(tmp_path):
    path = tmp_path / "deep" / "x.sqlite"
    db = database(sqlite_url(path))
    with db.write() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x TEXT)")
        conn.exec_driver_sql("INSERT INTO t VALUES ('x')")
        files = [path, *path.parent.glob("x.sqlite-*")]
        assert any(p.name.endswith("-wal") for p in files)
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


# ------------------------------------------------------------------------------ settings in the database

def test_settings_saved_on_replica_a_are_read_on_replica_b(url):
    replica_a, replica_b = SettingsStore(url=url), SettingsStore(url=url)
    assert replica_b.load() == {} and replica_b.saved_credentials() is None
    replica_a.save_credentials(f" {KEY} ", "client-1", API_URL)
    creds = replica_b.saved_credentials()
    assert creds is not None
    assert (creds.api_key, creds.client_id, creds.api_url, creds.source) == (
        KEY, "client-1", API_URL, CredentialSource.SETTINGS)
    replica_b.update(cache_expiry={"subscriber": 15, "lists": 600})
    assert replica_a.load()["cache_expiry"] == {"subscriber": 15, "lists": 600}  # JSON values round-trip
    replica_a.forget_credentials()
    assert replica_b.saved_credentials() is None
    assert replica_b.load() == {"cache_expiry": {"subscriber": 15, "lists": 600}}
    replica_b.save({"cache_backend": "memory"})  # save() replaces the whole set
    assert replica_a.load() == {"cache_backend": "memory"}


def test_two_replicas_updating_different_settings_keep_both(url):
    a, b = SettingsStore(url=url), SettingsStore(url=url)
    stale = a.load()  # what each page read before its admin pressed Save
    b.update(cache_backend="memory")
    a.update(client_id="c-9")
    assert b.load() == {**stale, "cache_backend": "memory", "client_id": "c-9"}


def test_cm_database_url_moves_the_settings_into_the_database(url, monkeypatch, tmp_path):
    monkeypatch.setenv("CM_DATABASE_URL", url)
    store = SettingsStore()
    assert store.path is None
    store.save_credentials(KEY, "client-1", API_URL)
    creds = resolve_credentials(env={}, secrets={})  # what the app and the CLI do
    assert creds is not None and creds.api_key == KEY and creds.source == CredentialSource.SETTINGS
    assert not (tmp_path / "data" / "settings.json").exists()
    assert KEY not in repr(store)
    # an explicit path is still the JSON file (the tests' and tools' way to name one)
    assert SettingsStore(tmp_path / "s.json").load() == {}


def test_without_cm_database_url_the_settings_stay_in_the_json_file(tmp_path):
    store = SettingsStore()
    assert store.path == tmp_path / "data" / "settings.json"
    store.update(client_id="c")
    assert json.loads(store.path.read_text()) == {"client_id": "c"}


def test_a_sqlite_settings_database_is_owner_only(tmp_path, monkeypatch):
    path = tmp_path / "shared" / "team.sqlite"
    monkeypatch.setenv("CM_DATABASE_URL", sqlite_url(path))
    SettingsStore().save_credentials(KEY, "client-1", API_URL)
    for p in [path, *path.parent.glob("team.sqlite-*")]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


def test_an_unreachable_settings_database_is_an_error_never_demo_mode_and_never_shows_the_key():
    url = f"postgresql+psycopg://cm:pw-s3cret@127.0.0.1:{free_port()}/cm"  # nothing listens there
    store = SettingsStore(url=url)
    with pytest.raises(SettingsUnavailableError) as exc:
        store.load()
    assert isinstance(exc.value, ConfigurationError)
    with pytest.raises(SettingsUnavailableError) as exc:
        resolve_credentials(env={}, secrets={}, store=store)
    with pytest.raises(SettingsUnavailableError) as exc:
        store.save_credentials(KEY, "client-1", API_URL)
    text = f"{exc.value} {exc.value!r} {exc.value.__context__!r} {exc.value.__cause__!r}"
    assert KEY not in text and "pw-s3cret" not in text
    assert "127.0.0.1" in str(exc.value)  # says where it looked


def test_bound_parameters_never_reach_error_messages(tmp_path):
    url = sqlite_url(tmp_path / "team.sqlite")
    store = SettingsStore(url=url)
    store.update(client_id="c")
    with database(url).write() as conn:  # a database that refuses the next write, after binding the key
        conn.exec_driver_sql("CREATE TRIGGER refuse BEFORE INSERT ON settings BEGIN SELECT RAISE(ABORT, 'no'); END")
    with pytest.raises(SettingsUnavailableError) as exc:
        store.save_credentials(KEY, "client-1", API_URL)
    original = exc.value.__context__
    assert original is not None and "no" in str(original)
    assert KEY not in f"{exc.value} {exc.value!r} {original} {original!r}"


def test_config_imports_no_sqlalchemy_for_the_default():
    # The CLI and the app resolve credentials through config; the JSON default needs no database library.
    import subprocess
    import sys

    code = "import sys, cmlib.config as c; c.SettingsStore(); print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "CM_DATABASE_URL": ""})
    assert out.stdout.strip() == "False"
