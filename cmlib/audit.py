"""An append-only record of every subscription change attempted through the dashboard.

SQLite because it is embedded (no server to run next to a Streamlit app), safe across the
threads of several sessions (one short-lived connection per operation, WAL journal) and
queryable for the Audit page's filters. The file lives in the app's data folder unless
``CM_AUDIT_DB`` points elsewhere, e.g. to a volume that outlives the container.

Only what a reviewer needs is stored: who, when, which address and list, the state before, the
requested action, the reason given and what happened. Never credentials: no field takes them,
and :func:`AuditLog.record` refuses a row whose text contains the configured API key.
"""
from __future__ import annotations

import csv
import io
import os
import sqlite3
import threading
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Sequence

from .spreadsheet import neutralise
from .config import data_dir

ENV_PATH = "CM_AUDIT_DB"

# Results, as the first word of the ``result`` column (details may follow after ": ").
RESULT_DONE = "done"
RESULT_ALREADY = "already"
RESULT_QUEUED = "queued"
RESULT_FAILED = "failed"
RESULT_CONFLICT = "conflict"
RESULT_SENT = "sent"  # the API accepted the write but the read-back failed
RESULTS = (RESULT_DONE, RESULT_ALREADY, RESULT_QUEUED, RESULT_FAILED, RESULT_CONFLICT, RESULT_SENT)

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
    plan_token TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_at ON audit(at);
CREATE INDEX IF NOT EXISTS audit_email ON audit(email);
"""

CSV_COLUMNS = ("at", "actor", "client_id", "email", "list_id", "list_name", "state_before", "action",
               "reason", "result")
# Characters that make a spreadsheet treat a cell as a formula (or a DDE payload).


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    id: int | None = None

    @property
    def result_kind(self) -> str:
        """``done`` / ``already`` / ``queued`` / ``failed`` / ``conflict`` / ``sent``."""
        head = self.result.split(":", 1)[0].split(" ", 1)[0].strip().lower()
        return head


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

    def __init__(self, path: str | Path | None = None, *, secrets: Sequence[str] = ()) -> None:
        self.path = Path(path) if path else default_path()
        self._secrets = tuple(s for s in secrets if s and len(s) >= 8)
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
                    finally:
                        con.close()
                    try:
                        os.chmod(self.path, 0o600)
                    except OSError:
                        pass
                    self._ready = True
        con = sqlite3.connect(self.path, timeout=10)
        con.row_factory = sqlite3.Row
        return con

    def _check_no_secret(self, entry: AuditEntry) -> None:
        text = "\x00".join(str(getattr(entry, f.name)) for f in fields(entry))
        for s in self._secrets:
            if s in text:
                raise ValueError("refusing to write an audit row that contains a credential")

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
                        " action, reason, result, plan_token) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        (at, e.actor, e.client_id, e.email, e.list_id, e.list_name, e.state_before,
                         e.action, e.reason, e.result, e.plan_token),
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

    def actors(self) -> list[str]:
        con = self._connect()
        try:
            return [r[0] for r in con.execute("SELECT DISTINCT actor FROM audit ORDER BY actor")]
        finally:
            con.close()

    def list_names(self) -> list[str]:
        con = self._connect()
        try:
            return [r[0] for r in con.execute("SELECT DISTINCT list_name FROM audit ORDER BY list_name")]
        finally:
            con.close()

    def count(self) -> int:
        con = self._connect()
        try:
            return int(con.execute("SELECT COUNT(*) FROM audit").fetchone()[0])
        finally:
            con.close()


def _entry(r: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=r["id"], at=r["at"], actor=r["actor"], client_id=r["client_id"], email=r["email"],
        list_id=r["list_id"], list_name=r["list_name"], state_before=r["state_before"],
        action=r["action"], reason=r["reason"], result=r["result"], plan_token=r["plan_token"],
    )


TABLE_COLUMNS = {
    "at": "Time (UTC)", "actor": "Who", "email": "Address", "list_name": "List", "state_before": "Before",
    "action": "Action", "reason": "Reason", "result": "Result", "list_id": "List ID", "client_id": "Client ID",
}


def table_rows(entries: Iterable[AuditEntry]) -> list[dict[str, str]]:
    """Rows for the Audit page's table, columns named for people, values as stored (text)."""
    return [{label: (getattr(e, f) or ("—" if f == "state_before" else "")) for f, label in TABLE_COLUMNS.items()}
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
