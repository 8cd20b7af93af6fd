"""An append-only record of every subscription change attempted through the dashboard.

One table, through SQLAlchemy Core (:mod:`cmlib.database` owns the engines), in one of two places:

- by default an embedded SQLite file (no server to run next to a Streamlit app), in the app's
  data folder unless ``CM_AUDIT_DB`` points elsewhere, e.g. to a volume that outlives the container;
- with ``CM_DATABASE_URL`` set, that database (Postgres for a team deployment), so every replica
  writes the same log and the Audit page of any replica shows every row. It then takes precedence
  over ``CM_AUDIT_DB`` (rows already in that file stay there).

Behaviour is the same on both: filters are case-insensitive for any script (they search
case-folded copies written in Python, :func:`cmlib.db_schema.fold`, because SQLite's ``lower()``
only folds ASCII), times are UTC, and ids are unique however many processes write at once.

Only what a reviewer needs is stored: who, where that name came from (:class:`ActorSource`),
when, which address and list, the state before, the requested action, the reason given and what
happened. A table written before a column existed is brought up to date on first use
(``ALTER TABLE ... ADD COLUMN``, found by inspection; no manual step); its old rows read as
"not recorded" there, and their case-folded copies are filled in.

The entry and its enumerations live in :mod:`cmlib.audit_entry` (re-exported here), which does
not import SQLAlchemy: the Lookup page and the dialog use them on every run, and the log itself
is imported where a row is written or read, not before a page's first paint.

Never credentials: no field takes them, and :func:`AuditLog.record` refuses a row whose text
contains a configured secret (the API key, the admin password, secrets.toml credentials). The
same check, :func:`find_secrets` (:mod:`cmlib.audit_secrets`, re-exported here), runs on
operator-supplied text *before* a change is sent (``cmlib.subscriptions.apply``), so a key
pasted into a reason is refused up front instead of leaving a change without its audit row.
"""
from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Table,
    Text,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)

from .audit_entry import ACTOR_SOURCE_WORDS, OUTCOME_WORDS, RESULTS, ActorSource, AuditEntry, Outcome
from .audit_secrets import (
    MIN_SECRET_LENGTH,
    Secret,
    SecretFinding,
    SecretInTextError,
    api_key_secrets,
    as_secret,
    configured_secrets,
    find_secrets,
)
from .config import data_dir
from .database import Backend, Database, DatabaseUrlError, database, sqlite_url
from .db_schema import UtcDateTime, as_utc, ensure_table, fold, iso_utc
from .deployment import database_url
from .spreadsheet import neutralise

__all__ = [
    "ACTOR_SOURCE_WORDS", "CSV_COLUMNS", "ENV_PATH", "MIN_SECRET_LENGTH", "OUTCOME_WORDS", "RESULTS", "TABLE_COLUMNS",
    "ActorSource", "AuditEntry", "AuditFilter", "AuditLog", "Outcome", "Secret", "SecretFinding", "SecretInTextError",
    "api_key_secrets", "configured_secrets", "default_path", "find_secrets", "neutralise_cell", "table_rows",
    "to_csv_bytes", "utc_now_iso",
]

ENV_PATH = "CM_AUDIT_DB"


# The table as every version of the app has written it, plus the columns added since. An existing
# SQLite file keeps its types (``at`` is text there); :func:`_prepare` adds what it lacks.
_METADATA = MetaData()
AUDIT_TABLE = Table(
    "audit", _METADATA,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", UtcDateTime(), nullable=False),
    Column("actor", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("email", Text, nullable=False),
    Column("list_id", Text, nullable=False),
    Column("list_name", Text, nullable=False),
    Column("state_before", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("result", Text, nullable=False),
    Column("plan_token", Text, nullable=False, server_default=""),
    Column("actor_source", Text, nullable=False, server_default=str(ActorSource.NOT_RECORDED)),
    # Case-folded copies (cmlib.db_schema.fold) the filters search; NULL only in rows written by a
    # version that did not have them, until _prepare fills them in.
    Column("email_folded", Text),
    Column("actor_folded", Text),
    Column("list_name_folded", Text),
    Column("list_id_folded", Text),
    Index("audit_at", "at"),
    Index("audit_email", "email"),
    sqlite_autoincrement=True,  # as before: an id is never reused, even after the newest row is deleted
)
_T = AUDIT_TABLE.c
_FOLDED = {"email_folded": "email", "actor_folded": "actor", "list_name_folded": "list_name",
           "list_id_folded": "list_id"}
_BACKFILL_BATCH = 1000

# New columns go at the end, so a script reading the export by position keeps working.
CSV_COLUMNS = ("at", "actor", "client_id", "email", "list_id", "list_name", "state_before", "action",
               "reason", "result", "actor_source")


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_path() -> Path:
    env = os.environ.get(ENV_PATH)
    return Path(env) if env else data_dir() / "audit.sqlite"


@dataclass(frozen=True)
class AuditFilter:
    """What the Audit page asks for; every field is optional and they combine with AND.

    Text filters are case-insensitive for every script ("élodie" finds "Élodie", "ёлка" finds
    "Ёлка") and literal (``%`` and ``_`` are characters, not wildcards).
    """

    email_contains: str = ""
    list_text: str = ""  # matches list name or list id, substring
    actor: str = ""  # substring
    result: str = ""  # one of RESULTS, matched against the result's first word
    since: date | None = None  # inclusive, UTC day
    until: date | None = None  # inclusive, UTC day
    limit: int = 10_000


def _resolve_url(path: str | Path | None, url: str | None) -> tuple[str, Path | None]:
    """(URL, SQLite file or None): an explicit path, else an explicit URL, else ``CM_DATABASE_URL``,
    else the file at :func:`default_path` (``CM_AUDIT_DB`` or the data folder)."""
    if path:
        return sqlite_url(path), Path(path)
    chosen = url or database_url()
    if chosen:
        try:
            return chosen, database(chosen).sqlite_path
        except DatabaseUrlError:  # reported by the first read or write, where callers handle errors
            return chosen, None
    file = default_path()
    return sqlite_url(file), file


class AuditLog:
    """The audit table of one database. Cheap to construct: nothing is opened or created before
    the first write or read, which also creates or migrates the table.

    ``AuditLog(path)`` is a SQLite file; ``AuditLog(url=...)`` any supported URL; ``AuditLog()``
    follows the configuration (``CM_DATABASE_URL``, else ``CM_AUDIT_DB``, else the data folder).
    """

    def __init__(self, path: str | Path | None = None, *, url: str | None = None,
                 secrets: Sequence[Secret | str] = ()) -> None:
        if path and url:
            raise ValueError("give the audit log a file path or a database URL, not both")
        self._url, self.path = _resolve_url(path, url)
        self._secrets = tuple(as_secret(s) for s in secrets
                              if s and len(as_secret(s).value.strip()) >= MIN_SECRET_LENGTH)

    def __repr__(self) -> str:
        return f"AuditLog({self.location!r})"

    @property
    def location(self) -> str:
        """Where the rows are, for messages: the file, or the database URL without its password."""
        if self.path is not None:
            return str(self.path)
        try:
            return database(self._url).location
        except DatabaseUrlError:
            return "the configured database URL (not usable)"

    def _database(self) -> Database:
        db = database(self._url)
        db.prepare("audit", _prepare)
        return db

    def find_secrets(self, values: Mapping[str, object]) -> list[SecretFinding]:
        """The secrets this log refuses, found in ``values`` (field name → text)."""
        return find_secrets(values, self._secrets)

    def check_text(self, **values: object) -> None:
        """Raise :class:`SecretInTextError` when any of the named texts holds a secret.

        Called before a change is sent, with every operator-supplied text of the change."""
        found = self.find_secrets(values)
        if found:
            raise SecretInTextError(found)

    def _check_no_secret(self, entry: AuditEntry) -> None:
        found = self.find_secrets({f.name: getattr(entry, f.name) for f in fields(entry)})
        if found:
            raise SecretInTextError(found)

    def ensure_writable(self) -> None:
        """Raise if a row could not be stored now; called before any change is sent.

        SQLite: the write lock can be taken. Postgres: the server answers and this user may insert.
        """
        db = self._database()
        with db.write() as conn:
            if db.backend is Backend.POSTGRES and not conn.scalar(
                    select(func.has_table_privilege(AUDIT_TABLE.name, "INSERT"))):
                raise PermissionError(f"the database user may not add rows to the audit table at {db.location}")

    def record(self, entry: AuditEntry) -> AuditEntry:
        return self.record_many([entry])[0]

    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Append rows in one transaction; returns them with ``id`` and ``at`` filled.

        ``at`` is stored in UTC (whole seconds): a given time with another offset is converted.
        """
        rows = list(entries)
        for e in rows:
            self._check_no_secret(e)
        stamped = [(e, as_utc(e.at) if e.at else as_utc(datetime.now(UTC))) for e in rows]
        out: list[AuditEntry] = []
        with self._database().write() as conn:
            for e, at in stamped:
                row_id = conn.execute(insert(AUDIT_TABLE).values(_values(e, at)).returning(_T.id)).scalar_one()
                out.append(replace(e, id=int(row_id), at=iso_utc(at)))
        return out

    def query(self, flt: AuditFilter | None = None) -> list[AuditEntry]:
        """Rows matching the filter, newest first."""
        flt = flt or AuditFilter()
        where: list[ColumnElement[bool]] = []
        if flt.email_contains.strip():
            where.append(_contains(_T.email_folded, flt.email_contains))
        if flt.list_text.strip():
            where.append(or_(_contains(_T.list_name_folded, flt.list_text),
                             _contains(_T.list_id_folded, flt.list_text)))
        if flt.actor.strip():
            where.append(_contains(_T.actor_folded, flt.actor))
        if flt.result.strip():
            kind = flt.result.strip().lower()
            result = func.lower(_T.result)
            where.append(or_(result == kind, result.startswith(kind + ":", autoescape=True),
                             result.startswith(kind + " ", autoescape=True)))
        if flt.since:
            where.append(_T.at >= _midnight_utc(flt.since))
        if flt.until:
            where.append(_T.at < _midnight_utc(flt.until + timedelta(days=1)))
        stmt = (select(AUDIT_TABLE).where(*where).order_by(_T.at.desc(), _T.id.desc())
                .limit(max(1, int(flt.limit))))
        with self._database().read() as conn:
            return [_entry(r) for r in conn.execute(stmt).mappings()]

    def count(self) -> int:
        with self._database().read() as conn:
            return int(conn.scalar(select(func.count()).select_from(AUDIT_TABLE)) or 0)


def _values(e: AuditEntry, at: datetime) -> dict[str, object]:
    return {
        "at": at, "actor": e.actor, "client_id": e.client_id, "email": e.email, "list_id": e.list_id,
        "list_name": e.list_name, "state_before": e.state_before, "action": e.action, "reason": e.reason,
        "result": e.result, "plan_token": e.plan_token, "actor_source": str(e.actor_source),
        **{folded: fold(getattr(e, source)) for folded, source in _FOLDED.items()},
    }


def _contains(column: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    """Substring match on a folded column: the same folding on both sides, ``%``/``_`` literal."""
    return column.contains(fold(needle.strip()), autoescape=True)


def _midnight_utc(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _prepare(conn: Connection) -> None:
    """Create the table, or add what an older file lacks (``actor_source``, the folded columns),
    then fill the folded columns of rows written before they existed (in batches)."""
    ensure_table(conn, AUDIT_TABLE)
    missing = or_(*(AUDIT_TABLE.c[name].is_(None) for name in _FOLDED))
    sources = [AUDIT_TABLE.c[source] for source in _FOLDED.values()]
    while True:
        batch = conn.execute(select(_T.id, *sources).where(missing).limit(_BACKFILL_BATCH)).mappings().all()
        if not batch:
            return
        conn.execute(
            update(AUDIT_TABLE).where(_T.id == bindparam("row_id")),
            [{"row_id": r["id"], **{folded: fold(r[source] or "") for folded, source in _FOLDED.items()}}
             for r in batch],
        )


def _entry(r: RowMapping) -> AuditEntry:
    at = r["at"]
    return AuditEntry(
        id=int(r["id"]), at=iso_utc(at) if at is not None else "", actor=r["actor"], client_id=r["client_id"],
        email=r["email"], list_id=r["list_id"], list_name=r["list_name"], state_before=r["state_before"],
        action=r["action"], reason=r["reason"], result=r["result"], plan_token=r["plan_token"],
        actor_source=ActorSource.parse(r["actor_source"]),  # present: _prepare adds it to old files
    )


TABLE_COLUMNS = {
    "at": "Time (UTC)", "actor": "Who", "actor_source": "Name from", "email": "Address", "list_name": "List",
    "state_before": "Before", "action": "Action", "reason": "Reason", "result": "Result", "list_id": "List ID",
    "client_id": "Client ID",
}


def table_rows(entries: Iterable[AuditEntry]) -> list[dict[str, str]]:
    """Rows for the Audit page's table, columns named for people, values as stored (text)."""
    return [{label: str(getattr(e, f) or ("—" if f == "state_before" else "")) for f, label in TABLE_COLUMNS.items()}
            for e in entries]


def neutralise_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (OWASP CSV injection)."""
    return neutralise("" if value is None else str(value))


def to_csv_bytes(entries: Iterable[AuditEntry]) -> bytes:
    """UTF-8 with BOM (so Excel reads non-ASCII names right), every cell formula-neutralised."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for e in entries:
        w.writerow([neutralise_cell(getattr(e, c)) for c in CSV_COLUMNS])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
