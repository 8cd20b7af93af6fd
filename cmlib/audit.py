"""An append-only record of every subscription change attempted through the dashboard.

SQLite because it is embedded (no server to run next to a Streamlit app), safe across the
threads of several sessions (one short-lived connection per operation, WAL journal) and
queryable for the Audit page's filters. The file lives in the app's data folder unless
``CM_AUDIT_DB`` points elsewhere, e.g. to a volume that outlives the container.

Only what a reviewer needs is stored: who, where that name came from (:class:`ActorSource`),
when, which address and list, the state before, the requested action, the reason given and what
happened. A file written before a column existed is brought up to date when it is opened
(``ALTER TABLE ... ADD COLUMN``); its old rows read as "not recorded" there.

Never credentials: no field takes them, and :func:`AuditLog.record` refuses a row whose text
contains a configured secret (the API key, the admin password, secrets.toml credentials). The
same check, :func:`find_secrets` (:mod:`cmlib.audit_secrets`, re-exported here), runs on
operator-supplied text *before* a change is sent (``cmlib.subscriptions.apply``), so a key
pasted into a reason is refused up front instead of leaving a change without its audit row.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from pathlib import Path

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
from .spreadsheet import neutralise

__all__ = [
    "CSV_COLUMNS", "ENV_PATH", "MIN_SECRET_LENGTH", "RESULTS", "TABLE_COLUMNS", "ActorSource", "AuditEntry",
    "AuditFilter", "AuditLog", "Outcome", "Secret", "SecretFinding", "SecretInTextError", "api_key_secrets",
    "configured_secrets", "default_path", "find_secrets", "neutralise_cell", "table_rows", "to_csv_bytes",
    "utc_now_iso",
]

ENV_PATH = "CM_AUDIT_DB"


class Outcome(StrEnum):
    """What happened to one attempted change: the head of the ``result`` column (details after ": ").

    A write whose answer was lost (5xx, timeout, dropped connection, malformed answer) is never
    reported from the answer: the read-back decides between DONE, FAILED (not done) and UNKNOWN.
    """

    DONE = "done"  # the read-back shows the change (or the API confirmed it and the read-back agrees)
    ALREADY = "already"  # nothing to send: the address was already so
    QUEUED = "queued"  # the API accepted it but the read-back does not show it yet (adds are queued)
    FAILED = "failed"  # not done: the API refused, or the answer was lost and the read-back shows no change
    CONFLICT = "conflict"  # not written: the states changed since the dialog opened
    SENT = "sent"  # the API accepted the write but the read-back failed
    UNKNOWN = "unknown"  # the answer was lost and the read-back could not tell: someone must check
    NOT_SENT = "not sent"  # never reached Campaign Monitor (API unreachable, another change in progress)


RESULTS = tuple(o.value for o in Outcome)  # the Audit page's filter choices, as stored


class ActorSource(StrEnum):
    """Where the ``actor`` of a row came from, stored as its value in ``actor_source``.

    A reviewer weighs "signed-in user" (the login vouches for it) differently from "typed" (the
    operator wrote a name into the dashboard) and "helpdesk link" (the ``operator=`` parameter
    of the helpdesk panel's URL: whoever can edit a link can write any name there). Readers treat
    an unknown stored value as NOT_RECORDED.
    """

    SIGNED_IN = "signed-in user"  # the login (OIDC) names the person
    TYPED = "typed"  # typed by the operator in this browser (the sidebar, or when asked before a change)
    HELPDESK_LINK = "helpdesk link"  # ``operator=`` in the panel URL the helpdesk built (not authenticated)
    NOT_RECORDED = "not recorded"  # rows written before the source was recorded, or by code that did not say

    @classmethod
    def parse(cls, value: object) -> ActorSource:
        """The member stored as ``value``; NOT_RECORDED for anything else (old rows, empty cells)."""
        try:
            return cls(str(value))
        except ValueError:
            return cls.NOT_RECORDED

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    client_id TEXT NOT NULL,
    email TEXT NOT NULL,
    list_id TEXT NOT NULL,
    list_name TEXT NOT NULL,
    state_before TEXT NOT NULL,
    action TEXT NOT NULL,
    reason TEXT NOT NULL,
    result TEXT NOT NULL,
    plan_token TEXT NOT NULL DEFAULT '',
    actor_source TEXT NOT NULL DEFAULT 'not recorded'
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_email ON audit(email);
"""

# Columns added after the first release, with their definition: a file without one gets it on open.
_ADDED_COLUMNS = {"actor_source": "TEXT NOT NULL DEFAULT 'not recorded'"}

# New columns go at the end, so a script reading the export by position keeps working.
CSV_COLUMNS = ("at", "actor", "client_id", "email", "list_id", "list_name", "state_before", "action",
               "reason", "result", "actor_source")


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_path() -> Path:
    env = os.environ.get(ENV_PATH)
    return Path(env) if env else data_dir() / "audit.sqlite"


@dataclass(frozen=True)
class AuditEntry:
    """One attempted change of one address on one list."""

    actor: str
    client_id: str
    email: str
    list_id: str
    list_name: str
    state_before: str  # "" when the address was not on the list
    action: str  # "subscribe", "resubscribe", "unsubscribe", "unsubscribe (via …)"
    reason: str
    result: str  # "done", "already", "queued", "failed: <reason>", "conflict — not written", ...
    at: str = ""  # UTC ISO 8601; filled by record() when empty
    plan_token: str = ""
    actor_source: ActorSource = ActorSource.NOT_RECORDED
    id: int | None = None

    @property
    def result_kind(self) -> str:
        """The :class:`Outcome` value the result starts with (``done``, ``not sent``, …)."""
        text = self.result.strip().lower()
        for kind in sorted(RESULTS, key=len, reverse=True):
            if text == kind or text.startswith((kind + ":", kind + " ")):
                return kind
        return text.split(":", 1)[0].split(" ", 1)[0]


@dataclass(frozen=True)
class AuditFilter:
    """What the Audit page asks for; every field is optional and they combine with AND."""

    email_contains: str = ""
    list_text: str = ""  # matches list name or list id, substring
    actor: str = ""  # substring
    result: str = ""  # one of RESULTS, matched against the result's first word
    since: date | None = None  # inclusive, UTC day
    until: date | None = None  # inclusive, UTC day
    limit: int = 10_000


class AuditLog:
    """The audit database. Cheap to construct; the file is created on the first write or read."""

    def __init__(self, path: str | Path | None = None, *, secrets: Sequence[Secret | str] = ()) -> None:
        self.path = Path(path) if path else default_path()
        self._secrets = tuple(as_secret(s) for s in secrets
                              if s and len(as_secret(s).value.strip()) >= MIN_SECRET_LENGTH)
        self._init_lock = threading.Lock()
        self._ready = False

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._init_lock:
                if not self._ready:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    con = sqlite3.connect(self.path, timeout=10)
                    try:
                        con.execute("PRAGMA journal_mode=WAL")
                        con.executescript(_SCHEMA)
                        con.commit()
                        _migrate(con)
                    finally:
                        con.close()
                    with contextlib.suppress(OSError):  # e.g. a volume that does not keep modes
                        os.chmod(self.path, 0o600)
                    self._ready = True
        con = sqlite3.connect(self.path, timeout=10)
        con.row_factory = sqlite3.Row
        return con

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
        """Raise if a row could not be stored now; called before any change is sent."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
        finally:
            con.close()

    def record(self, entry: AuditEntry) -> AuditEntry:
        return self.record_many([entry])[0]

    def record_many(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Append rows in one transaction; returns them with ``id`` and ``at`` filled."""
        rows = list(entries)
        for e in rows:
            self._check_no_secret(e)
        out: list[AuditEntry] = []
        con = self._connect()
        try:
            with con:
                for e in rows:
                    at = e.at or utc_now_iso()
                    cur = con.execute(
                        "INSERT INTO audit (at, actor, client_id, email, list_id, list_name, state_before,"
                        " action, reason, result, plan_token, actor_source) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                        (at, e.actor, e.client_id, e.email, e.list_id, e.list_name, e.state_before,
                         e.action, e.reason, e.result, e.plan_token, str(e.actor_source)),
                    )
                    out.append(replace(e, id=cur.lastrowid, at=at))
        finally:
            con.close()
        return out

    def query(self, flt: AuditFilter | None = None) -> list[AuditEntry]:
        """Rows matching the filter, newest first."""
        flt = flt or AuditFilter()
        where: list[str] = []
        args: list[object] = []
        if flt.email_contains.strip():
            where.append("instr(lower(email), ?) > 0")
            args.append(flt.email_contains.strip().lower())
        if flt.list_text.strip():
            where.append("(instr(lower(list_name), ?) > 0 OR instr(lower(list_id), ?) > 0)")
            args += [flt.list_text.strip().lower()] * 2
        if flt.actor.strip():
            where.append("instr(lower(actor), ?) > 0")
            args.append(flt.actor.strip().lower())
        if flt.result.strip():
            kind = flt.result.strip().lower()
            where.append("(lower(result) = ? OR lower(result) LIKE ? OR lower(result) LIKE ?)")
            args += [kind, kind + ":%", kind + " %"]
        if flt.since:
            where.append("at >= ?")
            args.append(flt.since.strftime("%Y-%m-%dT00:00:00Z"))
        if flt.until:
            where.append("at < ?")
            args.append((flt.until + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00Z"))
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY at DESC, id DESC LIMIT ?"
        args.append(max(1, int(flt.limit)))
        con = self._connect()
        try:
            return [_entry(r) for r in con.execute(sql, args)]
        finally:
            con.close()

    def count(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
        finally:
            con.close()


def _migrate(con: sqlite3.Connection) -> None:
    """Add the columns a file from an older version lacks. Under ``BEGIN IMMEDIATE`` so two
    processes opening the same old file do not both add a column (the second sees it there)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        have = {row[1] for row in con.execute("PRAGMA table_info(audit)")}
        for name, definition in _ADDED_COLUMNS.items():
            if name not in have:
                con.execute(f"ALTER TABLE audit ADD COLUMN {name} {definition}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=r["id"], at=r["at"], actor=r["actor"], client_id=r["client_id"], email=r["email"],
        list_id=r["list_id"], list_name=r["list_name"], state_before=r["state_before"],
        action=r["action"], reason=r["reason"], result=r["result"], plan_token=r["plan_token"],
        actor_source=ActorSource.parse(r["actor_source"]),  # present: _migrate adds it to old files
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
