"""Durable bulk jobs in Postgres: the tables, and every statement that reads or writes them.

Two tables of this app's own, created on start (no manual step), beside procrastinate's queue:

* ``cm_bulk_jobs``: one row per run -- what it runs on (the API URL, client and credential
  *source*, never a key), its state, the cancel request, the worker that holds it (``owner``), and
  the counters every replica reads for the progress bar;
* ``cm_bulk_job_rows``: one row per input row, with the row's result written **as it finishes**.
  A result is only ever written where there is none (``result IS NULL``), under the job's
  current owner, and numbered from a sequence (``done_seq``) so a replica reads only the results
  it has not seen yet.

Why an owner token as well as procrastinate's own bookkeeping: procrastinate hands a stalled job
(its worker stopped sending heartbeats) to another worker, but a worker that was only cut off
from the database may still be running. Each attempt takes the job with a fresh token and every
write checks it (a fencing token), so the old attempt stops at its next write instead of writing
beside the new one. Every write of a batch happens in one transaction with the counters, so the
bar and the stored results always agree, whoever reads them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from .. import lazy_text
from ..database import Database
from .control import FINISHED_STATES, JobState
from .job_codec import decode_input_meta, decode_row, encode_input_meta, encode_row
from .validate import BulkInput, InputRow, Verdict

__all__ = ["DB_ERRORS", "Claim", "JobRecord", "JobStatus", "JobStore", "LeaseLost", "StoredResult", "jobs_table",
           "rows_table"]

# What a database that went away looks like through SQLAlchemy (a restart, a dropped connection,
# a pool that could not connect in time). Anything else from the database is a bug, not an outage.
DB_ERRORS = (OperationalError, InterfaceError, PoolTimeoutError)

metadata = MetaData()

jobs_table = Table(
    "cm_bulk_jobs", metadata,
    Column("id", String(40), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("ended_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("state", String(16), nullable=False),
    Column("cancel_requested", Boolean, nullable=False, server_default="false"),
    Column("owner", String(64)),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("queue_job_id", BigInteger),
    # Which configuration the run is for: a worker refuses a run for another API URL. No key.
    Column("api_url", Text, nullable=False),
    Column("client_id", Text, nullable=False),
    Column("credential_source", String(32), nullable=False),
    Column("with_activity", Boolean, nullable=False),
    Column("patience", Float),
    Column("input_meta", JSONB, nullable=False),
    Column("total", Integer, nullable=False),
    Column("looked_up", Integer, nullable=False, server_default="0"),
    Column("failed", Integer, nullable=False, server_default="0"),
    Column("on_no_list", Integer, nullable=False, server_default="0"),
    Column("suppressed", Integer, nullable=False, server_default="0"),
    Column("preparing", Boolean, nullable=False, server_default="false"),
    Column("rate", Float, nullable=False, server_default="0"),
    Column("paused", Boolean, nullable=False, server_default="false"),
    Column("paused_since", DateTime(timezone=True)),
    Column("list_names", JSONB, nullable=False, server_default="[]"),  # [[id, name], ...]: order matters
    Column("notes", JSONB, nullable=False, server_default="[]"),
    Column("fatal", Text),
    Column("gave_up", Text),
    Column("suppression_loaded", Boolean, nullable=False, server_default="false"),
    Column("suppression_complete", Boolean, nullable=False, server_default="true"),
)
Index("ix_cm_bulk_jobs_state_created", jobs_table.c.state, jobs_table.c.created_at)

rows_table = Table(
    "cm_bulk_job_rows", metadata,
    Column("job_id", String(40), ForeignKey("cm_bulk_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("idx", Integer, primary_key=True),  # position in the input
    Column("row_no", Integer, nullable=False),
    Column("raw", Text, nullable=False),
    Column("email", Text),
    Column("extra", JSONB, nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("duplicate_of", Integer),
    Column("suppressed", JSONB),  # the row's suppression entry, read once per run
    Column("result", JSONB),
    Column("done_seq", BigInteger),
)
# Partial, so only reads of stored results use it: a write of a batch must find its rows by the
# primary key (job_id, idx), never by scanning the job through this index.
Index("ix_cm_bulk_job_rows_done", rows_table.c.job_id, rows_table.c.done_seq,
      postgresql_where=rows_table.c.done_seq.is_not(None))
result_seq = DbSequence("cm_bulk_result_seq", metadata=metadata)

ROW_BATCH = 2000  # input rows per INSERT

# No join: a join with the batch is planned from the table's statistics, which are stale right
# after a 100,000-row job was inserted (a nested loop over every row of the job, seconds per
# write). A primary-key lookup (job_id, idx = ANY(...)) with each value taken from a JSON object
# by key costs the same whatever the statistics say.
_RECORD_SQL = text(
    "UPDATE cm_bulk_job_rows AS r SET result = CAST(:batch AS jsonb) -> CAST(r.idx AS text), "
    "done_seq = nextval('cm_bulk_result_seq') "
    "WHERE r.job_id = :job_id AND r.idx = ANY(CAST(:idxs AS integer[])) AND r.result IS NULL "
    "RETURNING r.idx"
)
_SUPPRESSED_SQL = text(
    "UPDATE cm_bulk_job_rows AS r SET suppressed = CAST(:batch AS jsonb) -> CAST(r.idx AS text) "
    "WHERE r.job_id = :job_id AND r.idx = ANY(CAST(:idxs AS integer[]))"
)
_ACTIVE = [str(s) for s in JobState if s not in FINISHED_STATES]


class LeaseLost(Exception):
    """Another attempt holds the job now (or it was deleted): this one must stop writing."""


@dataclass(frozen=True)
class JobRecord:
    """What a job is: fixed when it is submitted."""

    job_id: str
    created_at: datetime
    api_url: str
    client_id: str
    credential_source: str
    with_activity: bool
    patience: float | None
    input_meta: Mapping[str, Any]
    total: int


@dataclass(frozen=True)
class JobStatus:
    """Where a job is: one row read in one statement, so every number agrees."""

    state: JobState
    cancel_requested: bool
    now: datetime  # the database's clock, for elapsed time (the replicas' clocks may differ)
    started_at: datetime | None
    ended_at: datetime | None
    looked_up: int
    failed: int
    on_no_list: int
    suppressed: int
    preparing: bool
    rate: float
    paused: bool
    paused_since: datetime | None
    patience: float | None
    fatal: str | None
    gave_up: str | None
    notes: tuple[str, ...]
    list_names: tuple[tuple[str, str], ...]
    suppression_loaded: bool
    suppression_complete: bool
    queue_job_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES


@dataclass(frozen=True)
class Claim:
    """An attempt's hold on a job: the record, the cancel request as it stood, and what is done."""

    record: JobRecord
    owner: str
    cancel_requested: bool
    suppression_loaded: bool


@dataclass(frozen=True)
class StoredResult:
    idx: int
    email: str
    result: Mapping[str, Any]
    seq: int


@dataclass
class Outcome:
    """One finished row for :meth:`JobStore.record`: its result and how it counts."""

    idx: int
    result: Mapping[str, Any]
    ok: bool
    on_no_list: bool


@dataclass
class Beat:
    """What an attempt says about itself with each batch (read by every replica's progress bar)."""

    rate: float = 0.0
    paused: bool = False
    paused_since: datetime | None = None
    list_names: Sequence[tuple[str, str]] | None = None  # only when it changed
    notes: Sequence[str] | None = None


_LAZY = "lazy:"  # a stored sentence kept translatable (cmlib.lazy_text), not its English only


def _text_in(value: str | None) -> str | None:
    """A run's fatal/gave-up sentence for a text column: a LazyText as its JSON, so a replica
    whose reader speaks Russian still shows it in Russian."""
    data = lazy_text.to_json(value)
    return _LAZY + json.dumps(data) if isinstance(data, dict) else value


def _text_out(value: str | None) -> str | None:
    if value and value.startswith(_LAZY):
        try:
            return lazy_text.from_json(json.loads(value[len(_LAZY):]))
        except ValueError:
            return value
    return value


def _notes_in(notes: Sequence[str]) -> list[Any]:
    return [lazy_text.to_json(n) for n in notes]


def _status(row: Any) -> JobStatus:
    return JobStatus(
        state=JobState(row.state), cancel_requested=bool(row.cancel_requested), now=row.now,
        started_at=row.started_at, ended_at=row.ended_at, looked_up=row.looked_up, failed=row.failed,
        on_no_list=row.on_no_list, suppressed=row.suppressed, preparing=bool(row.preparing), rate=float(row.rate),
        paused=bool(row.paused), paused_since=row.paused_since, patience=row.patience, fatal=_text_out(row.fatal),
        gave_up=_text_out(row.gave_up), notes=tuple(lazy_text.from_json(n) for n in row.notes or ()),
        list_names=tuple((str(i), str(n)) for i, n in (row.list_names or ())),
        suppression_loaded=bool(row.suppression_loaded), suppression_complete=bool(row.suppression_complete),
        queue_job_id=row.queue_job_id,
    )


def _record(row: Any) -> JobRecord:
    return JobRecord(job_id=row.id, created_at=row.created_at, api_url=row.api_url, client_id=row.client_id,
                     credential_source=row.credential_source, with_activity=bool(row.with_activity),
                     patience=row.patience, input_meta=row.input_meta, total=row.total)


_RECORD_COLUMNS = [jobs_table.c[n] for n in ("id", "created_at", "api_url", "client_id", "credential_source",
                                              "with_activity", "patience", "input_meta", "total")]
_STATUS_COLUMNS = [jobs_table.c[n] for n in (
    "state", "cancel_requested", "started_at", "ended_at", "looked_up", "failed", "on_no_list", "suppressed",
    "preparing", "rate", "paused", "paused_since", "patience", "fatal", "gave_up", "notes", "list_names",
    "suppression_loaded", "suppression_complete", "queue_job_id")]


class JobStore:
    """Every read and write of the job tables, on one :class:`~cmlib.database.Database`.

    Stateless apart from the database it is given (whose owner closes it): replicas and workers
    each build one and share nothing else.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------------ schema
    def prepare(self) -> None:
        """Create the tables when missing (once per process, under the app's schema lock)."""
        self.db.prepare("bulk_jobs", lambda conn: metadata.create_all(conn, checkfirst=True))

    # ------------------------------------------------------------------ submit (any replica)
    def create(self, job_id: str, bi: BulkInput, *, api_url: str, client_id: str, credential_source: str,
               with_activity: bool, patience: float | None, enqueue: Callable[[Connection], int]) -> JobRecord:
        """Store a job and its input rows, and queue it (``enqueue`` defers the task on the same
        connection), all in one transaction: a job is never stored without being queued."""
        self.prepare()
        with self.db.write() as conn:
            conn.execute(insert(jobs_table).values(
                id=job_id, state=str(JobState.PENDING), api_url=api_url, client_id=client_id,
                credential_source=credential_source, with_activity=with_activity, patience=patience,
                input_meta=encode_input_meta(bi), total=bi.counts.valid))
            for start in range(0, len(bi.rows), ROW_BATCH):
                chunk = bi.rows[start:start + ROW_BATCH]
                conn.execute(insert(rows_table), [{"job_id": job_id, "idx": start + i, **encode_row(r)}
                                                  for i, r in enumerate(chunk)])
            queue_id = enqueue(conn)
            row = conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(queue_job_id=queue_id)
                               .returning(*_RECORD_COLUMNS)).one()
        return _record(row)

    # ------------------------------------------------------------------ read (any replica)
    def record(self, job_id: str) -> JobRecord | None:
        self.prepare()
        with self.db.read() as conn:
            row = conn.execute(select(*_RECORD_COLUMNS).where(jobs_table.c.id == job_id)).one_or_none()
        return _record(row) if row is not None else None

    def status(self, job_id: str) -> JobStatus | None:
        self.prepare()
        with self.db.read() as conn:
            row = conn.execute(select(*_STATUS_COLUMNS, func.now().label("now"))
                               .where(jobs_table.c.id == job_id)).one_or_none()
        return _status(row) if row is not None else None

    def load_input(self, record: JobRecord) -> tuple[BulkInput, dict[int, Mapping[str, Any]]]:
        """The job's input as the page knows it, and the suppression entries by row index."""
        rows: list[InputRow] = []
        suppressed: dict[int, Mapping[str, Any]] = {}
        cols = [rows_table.c[n] for n in ("idx", "row_no", "raw", "email", "extra", "status", "reason",
                                          "duplicate_of", "suppressed")]
        with self.db.read() as conn:
            for r in conn.execute(select(*cols).where(rows_table.c.job_id == record.job_id)
                                  .order_by(rows_table.c.idx)):
                rows.append(decode_row(r._mapping))
                if r.suppressed is not None:
                    suppressed[r.idx] = r.suppressed
        return decode_input_meta(record.input_meta, rows), suppressed

    def suppression_entries(self, job_id: str) -> dict[int, Mapping[str, Any]]:
        with self.db.read() as conn:
            return {r.idx: r.suppressed for r in conn.execute(
                select(rows_table.c.idx, rows_table.c.suppressed)
                .where(rows_table.c.job_id == job_id, rows_table.c.suppressed.is_not(None)))}

    def results_since(self, job_id: str, seq: int) -> list[StoredResult]:
        """Results stored after ``seq`` (0: all), in the order they were stored."""
        with self.db.read() as conn:
            rows = conn.execute(
                select(rows_table.c.idx, rows_table.c.email, rows_table.c.result, rows_table.c.done_seq)
                .where(rows_table.c.job_id == job_id, rows_table.c.done_seq > seq)
                .order_by(rows_table.c.done_seq))
            return [StoredResult(r.idx, r.email or "", r.result, int(r.done_seq)) for r in rows]

    # ------------------------------------------------------------------ cancel / forget (any replica)
    def request_cancel(self, job_id: str, cancel_queued: Callable[[Connection, int], bool]) -> JobState | None:
        """Ask a job to stop. A queued job is taken off the queue at once (``cancel_queued``:
        procrastinate's cancel, on the same transaction) and ends cancelled; a running one is
        marked, and its worker stops starting lookups at its next batch. Returns the state now."""
        self.prepare()
        with self.db.write() as conn:
            row = conn.execute(
                update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.state.in_(_ACTIVE))
                .values(cancel_requested=True, updated_at=func.now(),
                        state=func.coalesce(func.nullif(jobs_table.c.state, str(JobState.RUNNING)),
                                            str(JobState.CANCELLING)))
                .returning(jobs_table.c.state, jobs_table.c.queue_job_id)).one_or_none()
            if row is None:
                got = conn.execute(select(jobs_table.c.state).where(jobs_table.c.id == job_id)).scalar()
                return JobState(got) if got is not None else None
            state = JobState(row.state)
            if state == JobState.PENDING and row.queue_job_id is not None and cancel_queued(conn, row.queue_job_id):
                conn.execute(update(jobs_table).where(jobs_table.c.id == job_id)
                             .values(state=str(JobState.CANCELLED), ended_at=func.now(), updated_at=func.now()))
                state = JobState.CANCELLED
            return state

    def delete(self, job_id: str) -> None:
        self.prepare()
        with self.db.write() as conn:
            conn.execute(delete(jobs_table).where(jobs_table.c.id == job_id))

    def sweep(self, *, max_age_seconds: float, keep: int) -> int:
        """Forget finished jobs older than ``max_age_seconds``, and all but the newest ``keep``
        finished ones. Running and queued jobs are never swept. Returns how many went."""
        self.prepare()
        finished = [str(s) for s in FINISHED_STATES]
        with self.db.write() as conn:
            old = conn.execute(delete(jobs_table).where(
                jobs_table.c.state.in_(finished),
                jobs_table.c.created_at < func.now() - func.make_interval(0, 0, 0, 0, 0, 0, max_age_seconds)))
            ranked = (select(jobs_table.c.id).where(jobs_table.c.state.in_(finished))
                      .order_by(jobs_table.c.created_at.desc()).offset(keep).scalar_subquery())
            extra = conn.execute(delete(jobs_table).where(jobs_table.c.id.in_(ranked)))
        return int(old.rowcount or 0) + int(extra.rowcount or 0)

    # ------------------------------------------------------------------ worker
    def claim(self, job_id: str, owner: str) -> Claim | None:
        """Take the job for one attempt (a new owner token fences off any earlier attempt).
        None when the job is gone or already finished."""
        self.prepare()
        with self.db.write() as conn:
            row = conn.execute(
                update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.state.in_(_ACTIVE))
                .values(owner=owner, attempts=jobs_table.c.attempts + 1, updated_at=func.now(),
                        started_at=func.coalesce(jobs_table.c.started_at, func.now()),
                        state=func.coalesce(func.nullif(jobs_table.c.state, str(JobState.PENDING)),
                                            str(JobState.RUNNING)),
                        preparing=True, paused=False, paused_since=None)
                .returning(*_RECORD_COLUMNS, jobs_table.c.cancel_requested, jobs_table.c.suppression_loaded)
            ).one_or_none()
        if row is None:
            return None
        return Claim(_record(row), owner, bool(row.cancel_requested), bool(row.suppression_loaded))

    def pending_rows(self, job_id: str) -> list[tuple[int, InputRow]]:
        """The valid rows without a result yet (all of them on a first attempt), in input order."""
        cols = [rows_table.c[n] for n in ("idx", "row_no", "raw", "email", "extra", "status", "reason",
                                          "duplicate_of")]
        with self.db.read() as conn:
            return [(r.idx, decode_row(r._mapping)) for r in conn.execute(
                select(*cols).where(rows_table.c.job_id == job_id, rows_table.c.status == str(Verdict.VALID),
                                    rows_table.c.result.is_(None)).order_by(rows_table.c.idx))]

    def valid_emails(self, job_id: str) -> list[tuple[int, str]]:
        with self.db.read() as conn:
            return [(r.idx, r.email) for r in conn.execute(
                select(rows_table.c.idx, rows_table.c.email)
                .where(rows_table.c.job_id == job_id, rows_table.c.status == str(Verdict.VALID)))]

    def _fence(self, conn: Connection, job_id: str, owner: str) -> Any:
        row = conn.execute(select(jobs_table.c.cancel_requested, jobs_table.c.state)
                           .where(jobs_table.c.id == job_id, jobs_table.c.owner == owner)
                           .with_for_update()).one_or_none()
        if row is None:
            raise LeaseLost(job_id)
        return row

    def save_prepared(self, job_id: str, owner: str, *, list_names: Sequence[tuple[str, str]], notes: Sequence[str],
                      suppression: Mapping[int, Mapping[str, Any]] | None, complete: bool) -> None:
        """The run's reference data; ``suppression`` (entries by row index) only on the run's
        first attempt -- the page reports the suppression list as it was when the run started."""
        with self.db.write() as conn:
            self._fence(conn, job_id, owner)
            values: dict[str, Any] = {"list_names": [list(p) for p in list_names], "notes": _notes_in(notes),
                                      "preparing": False, "updated_at": func.now()}
            if suppression is not None:
                if suppression:
                    conn.execute(_SUPPRESSED_SQL, {"batch": json.dumps({str(i): e for i, e in suppression.items()}),
                                                   "idxs": list(suppression), "job_id": job_id})
                values.update(suppressed=len(suppression), suppression_loaded=True, suppression_complete=complete)
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))

    def record_results(self, job_id: str, owner: str, outcomes: Sequence[Outcome], beat: Beat) -> bool:
        """Store finished rows (each at most once, ever) and the attempt's beat, in one
        transaction with the counters. Returns whether a cancel was requested. Raises
        :class:`LeaseLost` when another attempt owns the job."""
        with self.db.write() as conn:
            fence = self._fence(conn, job_id, owner)
            looked_up = failed = on_no_list = 0
            if outcomes:
                batch = json.dumps({str(o.idx): o.result for o in outcomes})
                stored = {r.idx for r in conn.execute(_RECORD_SQL, {"batch": batch, "idxs": [o.idx for o in outcomes],
                                                                    "job_id": job_id})}
                for o in outcomes:
                    if o.idx in stored:
                        looked_up += o.ok
                        failed += not o.ok
                        on_no_list += o.on_no_list
            values: dict[str, Any] = {
                "looked_up": jobs_table.c.looked_up + looked_up, "failed": jobs_table.c.failed + failed,
                "on_no_list": jobs_table.c.on_no_list + on_no_list, "rate": beat.rate, "paused": beat.paused,
                "paused_since": beat.paused_since, "updated_at": func.now()}
            if beat.list_names is not None:
                values["list_names"] = [list(p) for p in beat.list_names]
            if beat.notes is not None:
                values["notes"] = _notes_in(beat.notes)
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))
        return bool(fence.cancel_requested)

    def finish(self, job_id: str, owner: str, state: JobState, *, fatal: str | None = None,
               gave_up: str | None = None, notes: Sequence[str] | None = None,
               list_names: Sequence[tuple[str, str]] | None = None) -> None:
        with self.db.write() as conn:
            self._fence(conn, job_id, owner)
            values: dict[str, Any] = {"state": str(state), "fatal": _text_in(fatal), "gave_up": _text_in(gave_up),
                                      "owner": None,
                                      "ended_at": func.now(), "updated_at": func.now(), "preparing": False,
                                      "paused": False, "rate": 0.0}
            if notes is not None:
                values["notes"] = _notes_in(notes)
            if list_names is not None:
                values["list_names"] = [list(p) for p in list_names]
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id).values(**values))

    def release(self, job_id: str, owner: str) -> None:
        """The attempt stops without finishing (the worker is shutting down): queued again."""
        with self.db.write() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.owner == owner)
                         .values(owner=None, preparing=False, paused=False, rate=0.0, updated_at=func.now(),
                                 state=func.coalesce(func.nullif(jobs_table.c.state, str(JobState.RUNNING)),
                                                     str(JobState.PENDING))))

    def refuse(self, job_id: str, message: str) -> None:
        """End a job no worker of this configuration may run (see the worker's credential check)."""
        with self.db.write() as conn:
            conn.execute(update(jobs_table).where(jobs_table.c.id == job_id, jobs_table.c.state.in_(_ACTIVE))
                         .values(state=str(JobState.FAILED), fatal=_text_in(message), owner=None, preparing=False,
                                 ended_at=func.now(), updated_at=func.now()))

    def row_results(self, job_id: str) -> Iterable[tuple[int, Mapping[str, Any] | None]]:
        """Every row's stored result (None where there is none): for checks and tests."""
        with self.db.read() as conn:
            return [(r.idx, r.result) for r in conn.execute(
                select(rows_table.c.idx, rows_table.c.result).where(rows_table.c.job_id == job_id)
                .order_by(rows_table.c.idx))]
