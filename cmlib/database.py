"""The owner of the SQL engines: one SQLAlchemy engine per database URL per process.

The audit log and the admin-saved settings live in one database named by a URL: the embedded
SQLite file (the default, no server to run) or, for a team deployment, ``CM_DATABASE_URL``
pointing at Postgres (``postgresql+psycopg://…``) so every replica reads and writes the same rows.

Why one engine per URL: an engine is a connection pool. Pages build an ``AuditLog`` on every
rerun; if each made its own engine, a busy replica would open a pool per rerun and exhaust
Postgres' connection slots. :func:`database` hands out the process's one :class:`Database` per URL
and :func:`close_all` (registered with :func:`cmlib.deployment.on_reset`) disposes of them all.

SQLite needs three things Postgres does by itself, set on every connection by hooks here:

- WAL journal, so readers never wait for a writer (several Streamlit sessions, a CLI run);
- ``busy_timeout``, so a writer waits for another instead of failing with "database is locked";
- ``BEGIN IMMEDIATE`` for writes, so a transaction takes the write lock when it starts. With
  the driver's deferred BEGIN, two transactions that both read then write deadlock and one fails
  at once, without waiting for the busy timeout. Reads begin deferred (WAL snapshots).

SQLite connections are not pooled (``NullPool``): one short-lived connection per operation, as
the log always did, so no file stays open after a test or a page is done with it. The file is
created owner-only (0600) before SQLite opens it; SQLite gives its ``-wal``/``-shm`` files the
same mode. Postgres connections are pooled and pinged before use, so a restarted server costs
one reconnect, not an error. Bound parameters are never put into error messages
(``hide_parameters``): the settings table holds an API key.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool, StaticPool

from .errors import ConfigurationError

SQLITE_BUSY_TIMEOUT_MS = 10_000  # what the audit log waited before (sqlite3's timeout=10)
POSTGRES_CONNECT_TIMEOUT_S = 10
_MIGRATION_LOCK_KEY = 0x636D_6C69_6273  # "cmlibs": one advisory lock for every schema change of this app
_WRITE_OPTION = "cm_write"  # execution option read by the SQLite begin hook


class Backend(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgresql"


class DatabaseUrlError(ConfigurationError):
    """``CM_DATABASE_URL`` (or a URL passed in) names no database this app can use."""


def sqlite_url(path: str | Path) -> str:
    """The URL of a SQLite file (absolute, so the same file gives the same URL and engine)."""
    return URL.create("sqlite", database=str(Path(path).expanduser().absolute())).render_as_string()


def normalise_url(raw: str) -> URL:
    """The URL with its driver made explicit: ``postgres://`` and ``postgresql://`` mean psycopg 3.

    Raises :class:`DatabaseUrlError` for anything that is neither SQLite nor Postgres.
    """
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise DatabaseUrlError("the database URL is malformed (expected sqlite:///… or "
                               "postgresql+psycopg://…)") from None
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        if driver not in ("", "psycopg"):
            raise DatabaseUrlError(f"the database URL's driver {driver!r} is not installed: use postgresql+psycopg://")
        return url.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise DatabaseUrlError(f"the database URL's driver {driver!r} is not supported: use sqlite:///")
        return url.set(drivername="sqlite")
    raise DatabaseUrlError(f"the database URL names {backend!r}: only sqlite:/// and postgresql+psycopg:// "
                           "are supported")


class Database:
    """One database: its engine (created on first use), its schema preparations, and :meth:`close`.

    Get it from :func:`database`, not the constructor, so a process keeps one per URL.
    """

    def __init__(self, url: str | URL) -> None:
        self.url = normalise_url(url) if isinstance(url, str) else url
        self.backend = Backend.POSTGRES if self.url.drivername.startswith("postgresql") else Backend.SQLITE
        self._lock = threading.Lock()
        self._prepare_lock = threading.Lock()
        self._engine: Engine | None = None
        self._prepared: set[str] = set()

    def __repr__(self) -> str:
        return f"Database({self.location!r})"

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None (Postgres, or an in-memory SQLite database)."""
        if self.backend is not Backend.SQLITE or self.url.database in (None, "", ":memory:"):
            return None
        return Path(str(self.url.database))

    @property
    def location(self) -> str:
        """Where the data is, for messages: the file, or the URL without its password."""
        path = self.sqlite_path
        return str(path) if path is not None else self.url.render_as_string(hide_password=True)

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = self._create_engine()
            return self._engine

    def _create_engine(self) -> Engine:
        if self.backend is Backend.POSTGRES:
            return create_engine(
                self.url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800,
                hide_parameters=True,
                connect_args={"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "application_name": "cm-dashboard"},
            )
        if self.sqlite_path is None:  # in memory: one shared connection, or each would see its own database
            engine = create_engine(self.url, poolclass=StaticPool, hide_parameters=True,
                                   connect_args={"check_same_thread": False})
        else:
            engine = create_engine(self.url, poolclass=NullPool, hide_parameters=True)
        _install_sqlite_hooks(engine)
        return engine

    def _ensure_sqlite_file(self) -> None:
        """Create the folder and an owner-only file before SQLite does (it would use the umask).

        Raises the plain ``OSError`` (e.g. ``FileExistsError`` when a file is where the folder
        should be), so "cannot write the audit log" says why.
        """
        path = self.sqlite_path
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        with contextlib.suppress(OSError):  # e.g. a volume that does not keep modes
            if path.stat().st_mode & 0o077:
                os.chmod(path, 0o600)

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will write: committed on success, rolled back on error.

        On SQLite it starts with ``BEGIN IMMEDIATE`` (the write lock, waiting up to the busy timeout).
        """
        self._ensure_sqlite_file()
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (deferred on SQLite: readers never take the write lock)."""
        self._ensure_sqlite_file()
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: False})
            with conn.begin():
                yield conn

    def prepare(self, name: str, step: Callable[[Connection], None]) -> None:
        """Run a schema step (create tables, add missing columns, backfill) once per process.

        The step runs in one write transaction under a lock every process honours: SQLite's write
        lock (``BEGIN IMMEDIATE``) or a Postgres advisory lock. Both databases have transactional
        DDL, so two replicas starting together never both add a column: the second waits, then
        finds it there. A step that fails is retried by the next caller.
        """
        if name in self._prepared:
            return
        with self._prepare_lock:  # one thread of this process does it; the others wait for it
            if name in self._prepared:
                return
            with self.write() as conn:
                if self.backend is Backend.POSTGRES:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                step(conn)
            self._prepared.add(name)

    def close(self) -> None:
        """Close the pool's connections; a later use opens a new engine (and re-checks the schema)."""
        with self._lock:
            engine, self._engine = self._engine, None
        with self._prepare_lock:
            self._prepared.clear()
        if engine is not None:
            engine.dispose()


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver emits no BEGIN; _on_begin does
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            ensure_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, True)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def ensure_wal(cursor: Any, *, clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Put the file in WAL mode unless it already is, retrying while another process holds it.

    WAL is a property of the file, so only the first connection ever has to switch; every later
    one only reads the mode. The switch needs the file to itself, and when several processes
    open a new file at once (replicas starting together, the CLI beside the app) SQLite can
    answer "database is locked" without waiting for the busy timeout (seen in CI: four writer
    processes on a new file, one failed on this pragma). So the connection looks again and
    retries, within the same time a writer would wait for the write lock.
    """
    deadline = clock() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = 0.005
    while True:
        try:
            mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or clock() >= deadline:
                raise
        sleep(pause)
        pause = min(pause * 2, 0.1)


_registry_lock = threading.Lock()
_registry: dict[str, Database] = {}


def database(url: str) -> Database:
    """The process's one :class:`Database` for ``url`` (its engine is created on first use)."""
    normalised = normalise_url(url)
    key = normalised.render_as_string(hide_password=False)
    with _registry_lock:
        db = _registry.get(key)
        if db is None:
            db = _registry[key] = Database(normalised)
        return db


def close_all() -> None:
    """Dispose of every engine of this process (shutdown, tests that change the environment)."""
    with _registry_lock:
        dbs = list(_registry.values())
        _registry.clear()
    for db in dbs:
        db.close()


def _after_fork_in_child() -> None:
    # A forked child must not use the parent's pooled sockets (SQLAlchemy's documented recipe:
    # dispose without closing them, the parent still owns them); it builds its own on first use.
    # The locks are replaced: another thread of the parent may have held one at the fork.
    global _registry_lock
    _registry_lock = threading.Lock()
    dbs = list(_registry.values())
    _registry.clear()
    for db in dbs:
        db._lock, db._prepare_lock = threading.Lock(), threading.Lock()
        engine, db._engine = db._engine, None
        if engine is not None:
            engine.dispose(close=False)


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(close_all)  # Postgres sees a clean goodbye instead of dropped connections


def _register_reset() -> None:
    from . import deployment

    deployment.on_reset(close_all)


_register_reset()
