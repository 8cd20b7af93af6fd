"""Durable bulk jobs as a replica sees them: submitted, watched, cancelled and read back from
Postgres, while ``python -m cmlib worker`` runs them.

:class:`DurableJobBook` is the team deployment's :class:`~.jobs.JobBook` (the in-process
:class:`~.jobs.JobRegistry` is the embedded one), and :class:`DurableJob` its
:class:`~.jobs.JobHandle`: the page calls ``progress()``, ``snapshot()``, ``cancel()`` and
``memo()`` on either without knowing which. Any replica can show any job (``?job=<id>``), because
everything a handle knows it reads from the database:

* ``progress()`` is one row (the counters the worker updates with every batch), read at most
  every :data:`STATUS_TTL` seconds however many sessions watch the job in this process;
* ``snapshot()`` reads only the results stored since the last one (by ``done_seq``) and keeps
  them, with their counts, so a 100,000-row job is read once per replica, not once per rerun;
  downloads are built from these rows (:mod:`.view`, :mod:`.export`) on whichever replica
  serves the click.

Runs on the demo sandbox stay in-process even here: the demo sandbox lives inside the app's
process, where no worker can reach it, and its key is not configuration a worker could have.
A database that is briefly away (a restart) shows the last reading instead of an error.
"""
from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar

from ..config import Credentials
from ..database import Database, database
from ..errors import ConfigurationError, logged
from ..suppression import SuppressionIndex, email_key
from ..urls import require_api_url
from .control import DEFAULT_PATIENCE, FINISHED_STATES, JobState, Pause
from .engine import LookupResult
from .job_codec import decode_result, decode_suppressed
from .job_queue import JobQueue
from .job_store import DB_ERRORS, JobRecord, JobStatus, JobStore
from .jobs import BulkJob, JobHandle, JobRegistry, JobSnapshot, VersionMemo
from .progress import Progress
from .tally import ResultTally
from .validate import BulkInput

__all__ = ["STATUS_TTL", "DurableJob", "DurableJobBook", "JobDatabaseError", "JobGone"]

T = TypeVar("T")

log = logging.getLogger("cmlib.bulk.durable")

STATUS_TTL = 0.25  # seconds a status reading is shared by every session of this process
HANDLES_KEPT = 50  # jobs whose input and results this process keeps in memory


class JobGone(LookupError):
    """The job is no longer in the database (cleared, or swept after it expired)."""


class JobDatabaseError(ConfigurationError):
    """The job database did not answer a submit or a cancel (a CMError: the page says why)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__("the job database is not answering; try again in a moment")
        log.warning("bulk job database: %s", logged(exc))


class DurableJob:
    """One durable job, read from the database; it runs in a worker, never here."""

    def __init__(self, store: JobStore, record: JobRecord, *, cancel: Callable[[str], object],
                 bulk_input: BulkInput | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.id = record.job_id
        self.record = record
        self.with_activity = record.with_activity
        self.created_at: datetime = record.created_at
        self.total = record.total
        self._store = store
        self._cancel = cancel
        self._clock = clock
        self._lock = threading.RLock()
        self._input = bulk_input
        self._keys: list[str | None] | None = None
        self._suppression: SuppressionIndex | None = None
        self._status: JobStatus | None = None
        self._status_at = float("-inf")
        self._gone = False
        self._results: dict[str, LookupResult] = {}
        self._tally = ResultTally()
        self._seq = 0
        self._memo = VersionMemo()

    # -- reading the database
    def status(self, *, fresh: bool = False) -> JobStatus:
        """The job's row, at most :data:`STATUS_TTL` old (``fresh``: read now). While the
        database is away the last reading stands. Raises :class:`JobGone`."""
        with self._lock:
            if not fresh and self._status is not None and self._clock() - self._status_at < STATUS_TTL:
                return self._status
            try:
                got = self._store.status(self.id)
            except DB_ERRORS as exc:
                if self._status is None:
                    raise
                log.warning("bulk job %s: showing the last reading (%s)", self.id, logged(exc))
                return self._status
            if got is None:
                self._gone = True
                if self._status is None:
                    raise JobGone(self.id)
                return self._status
            self._status, self._status_at = got, self._clock()
            return got

    @property
    def gone(self) -> bool:
        return self._gone

    @property
    def input(self) -> BulkInput:
        with self._lock:
            if self._input is None:
                self._input, suppressed = self._store.load_input(self.record)
                if suppressed:
                    self._suppression = self._index(suppressed, complete=True)
            return self._input

    def _index(self, entries: Mapping[int, Mapping[str, Any]], *, complete: bool) -> SuppressionIndex:
        by_email = {}
        for data in entries.values():
            entry = decode_suppressed(data)
            by_email[email_key(entry.email)] = entry
        return SuppressionIndex(client_id=self.record.client_id, entries=by_email, complete=complete)

    def _suppression_for(self, st: JobStatus) -> SuppressionIndex | None:
        """The run's suppression entries (those of its own addresses), once the worker stored them."""
        if not st.suppression_loaded:
            return None
        held = self._suppression
        if held is None or held.complete != st.suppression_complete:
            held = self._suppression = self._index(self._store.suppression_entries(self.id),
                                                   complete=st.suppression_complete)
        return held

    def _catch_up(self) -> None:
        """Read the results stored since the last reading (in storage order) into the cache."""
        bi = self.input
        if self._keys is None:
            self._keys = [r.key for r in bi.rows]
        try:
            fresh = self._store.results_since(self.id, self._seq)
        except DB_ERRORS as exc:
            log.warning("bulk job %s: showing the results read so far (%s)", self.id, logged(exc))
            return
        for stored in fresh:
            key = self._keys[stored.idx] or ""
            res = decode_result(stored.email, stored.result)
            old = self._results.get(key)
            if old is not None:
                self._tally.add(old, -1)
            self._results[key] = res
            self._tally.add(res)
            self._seq = stored.seq

    # -- the page's interface (JobHandle)
    @property
    def state(self) -> JobState:
        return self.status().state

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def progress(self) -> Progress:
        """One reading of the job's row: the bar, its sentence and the counters agree."""
        st = self.status()
        done = st.looked_up + st.failed
        elapsed = 0.0
        if st.started_at is not None:
            elapsed = max(0.0, ((st.ended_at or st.now) - st.started_at).total_seconds())
        active = st.state in (JobState.RUNNING, JobState.CANCELLING)
        # running: the worker's recent rate; ended: the average over the whole run
        rate = st.rate if active else (done / elapsed if elapsed > 0 and st.ended_at is not None else 0.0)
        left = self.total - done
        eta = 0.0 if left <= 0 else (left / rate if rate > 0 and active else None)
        paused = Pause(st.paused_since, 0.0, st.patience) if st.paused and active else None
        return Progress(st.state, done, self.total, st.failed, elapsed, rate, eta, paused=paused,
                        looked_up=st.looked_up, on_no_list=st.on_no_list, suppressed=st.suppressed,
                        preparing=st.preparing and active)

    def snapshot(self) -> JobSnapshot:
        """The results stored so far. The status is read first: a job read as finished has
        every result stored, so a finished snapshot is complete and shares the cache."""
        with self._lock:
            st = self.status(fresh=True)
            self._catch_up()
            bi = self.input
            suppression = self._suppression_for(st)
            if st.finished:
                results, tally = self._results, self._tally
            else:
                results, tally = dict(self._results), self._tally.copy()
        return JobSnapshot(job_id=self.id, input=bi, results=results, list_names=dict(st.list_names),
                           with_activity=self.with_activity, state=st.state, fatal=st.fatal, notes=st.notes,
                           gave_up=st.gave_up, suppression=suppression, tally=tally)

    def cancel(self) -> None:
        """Ask the run to stop, from any replica: queued, it never starts; running, its worker
        stops starting lookups at its next batch and keeps what finished."""
        self._cancel(self.id)
        self.status(fresh=True)

    def memo(self, name: str, version: object, build: Callable[[], T]) -> T:
        """``build()`` once per ``version`` of the results, shared by this process's sessions."""
        return self._memo.get(name, version, build)

    def wait(self, until: Callable[[Progress], bool], timeout: float | None = None, poll: float = 0.1) -> bool:
        """Block until ``until(progress)`` holds or ``timeout`` passes (a bounded poll of the
        database: the run happens in another process). Returns whether it holds."""
        end = None if timeout is None else self._clock() + timeout
        while True:
            self.status(fresh=True)
            if until(self.progress()):
                return True
            if end is not None and self._clock() >= end:
                return False
            time.sleep(poll)


class DurableJobBook:
    """The team deployment's job book: jobs in Postgres, run by workers, seen by every replica.

    Owns nothing that a job needs to survive: closing it (Streamlit dropping the cached book, a
    replica going down) leaves every job running in its worker.
    """

    max_jobs = 500  # finished jobs kept (older ones are swept)
    max_age = 24 * 3600.0  # seconds a finished job is kept

    def __init__(self, url: str | None = None, *, db: Database | None = None, local: JobRegistry | None = None) -> None:
        if db is None:
            if url is None:
                raise ValueError("a database URL or a Database is needed")
            db = database(url)
        self.db = db
        self.store = JobStore(db)
        self.queue = JobQueue(db)
        self._local = local or JobRegistry()
        self._handles: OrderedDict[str, DurableJob] = OrderedDict()
        self._lock = threading.Lock()

    def prepare(self) -> None:
        self.store.prepare()
        self.queue.prepare()

    def submit(self, credentials: Credentials, bulk_input: BulkInput, *, with_activity: bool = False,
               patience: float | None = DEFAULT_PATIENCE) -> JobHandle:
        """Store the job with its rows and queue it, in one transaction (no key is stored: the
        worker uses its own configuration, and refuses a job for another URL)."""
        if credentials.is_demo:
            return self._local.submit(credentials, bulk_input, with_activity=with_activity, patience=patience)
        api_url = require_api_url(credentials.api_url)
        job_id = secrets.token_urlsafe(12)
        try:
            self.prepare()
            record = self.store.create(job_id, bulk_input, api_url=api_url, client_id=credentials.client_id,
                                       credential_source=str(credentials.source), with_activity=with_activity,
                                       patience=patience, enqueue=lambda conn: self.queue.defer(conn, job_id))
        except DB_ERRORS as exc:
            raise JobDatabaseError(exc) from exc
        try:
            self.store.sweep(max_age_seconds=self.max_age, keep=self.max_jobs)
        except DB_ERRORS as exc:  # housekeeping: the next submit sweeps
            log.warning("could not sweep old bulk jobs: %s", logged(exc))
        return self._keep(DurableJob(self.store, record, cancel=self.cancel, bulk_input=bulk_input))

    def add(self, job: BulkJob) -> BulkJob:
        """Keep an in-process run (made and started by the caller) beside the durable ones."""
        return self._local.add(job)

    def _keep(self, handle: DurableJob) -> DurableJob:
        with self._lock:
            self._handles[handle.id] = handle
            self._handles.move_to_end(handle.id)
            while len(self._handles) > HANDLES_KEPT:
                self._handles.popitem(last=False)
        return handle

    def get(self, job_id: str | None) -> JobHandle | None:
        """The job, whichever replica submitted it; None when it is not (or no longer) stored."""
        if not job_id:
            return None
        local = self._local.get(job_id)
        if local is not None:
            return local
        with self._lock:
            handle = self._handles.get(job_id)
        if handle is None:
            try:
                record = self.store.record(job_id)
            except DB_ERRORS as exc:
                log.warning("cannot read bulk job %s: %s", job_id, logged(exc))
                return None
            if record is None:
                return None
            handle = self._keep(DurableJob(self.store, record, cancel=self.cancel))
        with contextlib.suppress(JobGone):
            handle.status()
        if handle.gone:
            with self._lock:
                self._handles.pop(job_id, None)
            return None
        return handle

    def cancel(self, job_id: str) -> JobState | None:
        try:
            return self.store.request_cancel(job_id, self.queue.cancel_queued)
        except DB_ERRORS as exc:
            raise JobDatabaseError(exc) from exc

    def remove(self, job_id: str) -> None:
        """Forget a job everywhere (cancelled first when it is still going); its rows are deleted."""
        if self._local.get(job_id) is not None:
            self._local.remove(job_id)
            return
        with self._lock:
            self._handles.pop(job_id, None)
        self.cancel(job_id)
        self.store.delete(job_id)

    def close(self) -> None:
        """Drop what this process holds; the jobs themselves go on in their workers."""
        self._local.close()
        with self._lock:
            self._handles.clear()

    def __len__(self) -> int:
        return len(self._handles) + len(self._local)
