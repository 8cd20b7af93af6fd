"""The Bulk page's job machinery: a run owned by a background thread, its progress, and the
registry that finds it again.

A page rerun loses nothing: :class:`BulkJob` owns the run (the engine's :class:`~.engine.BulkRun`,
the same loop the CLI uses) in a background thread and holds the results, so the Streamlit
page only reads it and can be rerun, or left and revisited, while the run continues. The job
owns its client too (:meth:`BulkJob.connect`: a client of its own with bulk options) and closes
it when the run ends, so a finished run holds no connection, pool or per-address cache key.

Watchers that need to know when something happened (a result, a pause, the end) wait on the
job's own signal (:meth:`BulkJob.wait`) instead of polling the clock.

The page talks to a :class:`JobBook` (submit, get, remove) and to a :class:`JobHandle` (progress,
snapshot, cancel, memo), not to these classes: :func:`open_job_book` gives the in-process
:class:`JobRegistry` by default, and the durable book of :mod:`.durable` (jobs in Postgres, run
by ``python -m cmlib worker``, seen by every replica) when ``CM_DATABASE_URL`` names Postgres.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from .. import runtime
from ..client import CampaignMonitor, ClientOptions
from ..config import Credentials
from ..errors import AuthenticationError, describe, logged
from ..suppression import SuppressionIndex
from .control import DEFAULT_PATIENCE, FINISHED_STATES, JobState, RunControl, not_looked_up_reason
from .engine import BulkLookup, BulkRun, LookupResult, bulk_client_options
from .progress import Progress, RateMeter
from .tally import ResultTally
from .validate import BulkInput, InputRow, Verdict

# Progress and RateMeter live in .progress; they are re-exported for the callers that import them here.
__all__ = ["BulkJob", "JobBook", "JobHandle", "JobRegistry", "JobSnapshot", "Progress", "RateMeter", "open_job_book"]

T = TypeVar("T")


class VersionMemo:
    """Values built once per version of a job's results, shared by every session watching the
    job (the per-list summary: computed once, not per rerun and person)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, tuple[object, Any]] = {}

    def get(self, name: str, version: object, build: Callable[[], T]) -> T:
        with self._lock:
            held = self._held.get(name)
        if held is not None and held[0] == version:
            return held[1]
        value = build()
        with self._lock:
            self._held[name] = (version, value)
        return value

log = logging.getLogger("cmlib.bulk.jobs")


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for rendering (safe to read while the job runs)."""

    job_id: str
    input: BulkInput
    results: dict[str, LookupResult]  # by lower-cased address
    list_names: dict[str, str]
    with_activity: bool
    state: JobState
    fatal: str | None
    notes: tuple[str, ...]
    gave_up: str | None = None  # the run stopped because Campaign Monitor stayed silent too long
    suppression: SuppressionIndex | None = None  # the client's suppression list, read once for the run
    tally: ResultTally | None = None  # counts of ``results``, kept as they came (None: counted on demand)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    @property
    def version(self) -> tuple[int, JobState]:
        """What the tables built from this snapshot depend on: results only ever grow."""
        return len(self.results), self.state

    def not_run_reason(self) -> str:
        return not_looked_up_reason(self.state, fatal=self.fatal, gave_up=self.gave_up)


@runtime_checkable
class JobHandle(Protocol):
    """What the Bulk page needs of a run, wherever it runs: a thread of this process
    (:class:`BulkJob`) or a worker, read back from the database (:class:`~.durable.DurableJob`)."""

    @property
    def id(self) -> str: ...
    @property
    def input(self) -> BulkInput: ...
    @property
    def with_activity(self) -> bool: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def state(self) -> JobState: ...
    @property
    def finished(self) -> bool: ...
    def progress(self) -> Progress: ...
    def snapshot(self) -> JobSnapshot: ...
    def cancel(self) -> None: ...
    def memo(self, name: str, version: object, build: Callable[[], T]) -> T: ...


@runtime_checkable
class JobBook(Protocol):
    """Where the page submits runs and finds them again (by the id in its URL)."""

    @property
    def max_jobs(self) -> int: ...
    @property
    def max_age(self) -> float: ...
    def submit(self, credentials: Credentials, bulk_input: BulkInput, *, with_activity: bool = False,
               patience: float | None = DEFAULT_PATIENCE) -> JobHandle: ...
    def add(self, job: BulkJob) -> BulkJob: ...  # an in-process run made elsewhere (the benchmark's)
    def get(self, job_id: str | None) -> JobHandle | None: ...
    def remove(self, job_id: str) -> None: ...
    def close(self) -> None: ...


def open_job_book() -> JobBook:
    """The job book of this deployment: durable on Postgres (``CM_DATABASE_URL``), else in-process."""
    from ..deployment import database_url, uses_postgres

    url = database_url()
    if uses_postgres() and url is not None:
        from .durable import DurableJobBook

        return DurableJobBook(url)
    return JobRegistry()


class BulkJob:
    """A bulk run owned by a background thread; the page holds the job and reads it."""

    def __init__(
        self,
        client: CampaignMonitor,
        client_id: str,
        bulk_input: BulkInput,
        *,
        with_activity: bool = False,
        max_workers: int | None = None,
        repass: bool = True,
        repass_delay: float = 2.0,
        patience: float | None = DEFAULT_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
        owned: Closeable | None = None,
    ) -> None:
        """``owned`` (the job's own connection) is closed when the run ends, or by :meth:`close`
        when it never started."""
        self.id = secrets.token_urlsafe(12)
        self.input = bulk_input
        self.with_activity = with_activity
        self.lookup = BulkLookup(client, client_id, with_activity=with_activity)
        self.control = RunControl(patience=patience, clock=clock, sleep=sleep,
                                  on_pause=lambda _pause: self._notify(), on_resume=self._notify)
        self.loop = BulkRun(self.lookup, self.control, max_workers=max_workers or max(1, client.limiter.max_in_flight),
                            repass=repass, repass_delay=repass_delay)
        self.total = bulk_input.counts.valid
        self.created_at = datetime.now(UTC)
        self._clock = clock
        self._owned = owned
        self._results: dict[str, LookupResult] = {}
        self._tally = ResultTally()
        self._suppressed = 0  # distinct valid addresses on the suppression list (known once prepared)
        self._preparing = False
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._state = JobState.PENDING
        self._thread: threading.Thread | None = None
        self._max_rate = lambda: client.limiter.rate  # no run goes faster than its budget's current pace
        self._meter = RateMeter(clock=clock, max_rate=self._max_rate)
        self._started = clock()
        self._ended: float | None = None
        self._memo = VersionMemo()
        self.calls_at_start = client.calls_made

    @classmethod
    def connect(cls, credentials: Credentials, bulk_input: BulkInput, *, options: ClientOptions | None = None,
                **kwargs: Any) -> BulkJob:
        """A job on a client of its own (:func:`~.engine.bulk_client_options`), closed when the
        run ends. The client shares the credential's circuit breaker (and rate budget) with
        every other client of the credential. Raises CMError when no client can be made."""
        conn = runtime.connect(credentials, options=options or bulk_client_options())
        try:
            return cls(conn.client, conn.client_id, bulk_input, owned=conn, **kwargs)
        except BaseException:
            conn.close()
            raise

    # -- control
    def start(self) -> BulkJob:
        with self._lock:
            if self._thread is not None:
                return self
            self._state = JobState.RUNNING
            self._preparing = True
            self._started = self._clock()
            self._meter = RateMeter(clock=self._clock, max_rate=self._max_rate)
            self._thread = threading.Thread(target=self._run, name=f"bulk-{self.id}", daemon=True)
        self._thread.start()
        self._notify()
        return self

    def cancel(self) -> None:
        """Stop starting new lookups; those in flight finish and are kept."""
        self.control.cancel.set()
        with self._lock:
            if self._state == JobState.RUNNING:
                self._state = JobState.CANCELLING
        self._notify()

    def close(self) -> None:
        """Cancel the run; its connection is closed as the run ends (at once if it never started)."""
        self.cancel()
        with self._lock:
            never_started = self._thread is None
        if never_started:
            self._release()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    @property
    def state(self) -> JobState:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in FINISHED_STATES

    def _record(self, row: InputRow, res: LookupResult) -> None:
        key = row.key or ""
        with self._lock:
            old = self._results.get(key)
            if old is not None:
                self._tally.add(old, -1)
            self._results[key] = res
            self._tally.add(res)
            done = len(self._results)
        self._meter.record(done)
        self._notify()

    def _prepare(self) -> None:
        """The run's reference data (lists, suppression list, campaigns), then the lookups' clock."""
        self.loop.prepare()
        index = self.lookup.suppression
        suppressed = 0
        if index is not None and len(index):
            suppressed = sum(1 for r in self.input.rows if r.status == Verdict.VALID and r.email and r.email in index)
        with self._lock:
            self._suppressed = suppressed
            self._preparing = False
            self._meter = RateMeter(clock=self._clock, max_rate=self._max_rate)  # the rate of lookups only
        self._notify()

    def _run(self) -> None:
        try:
            self._prepare()
            end_state = self.loop.run([self.input.rows], self._record)
        except AuthenticationError as exc:
            self.control.fatal = exc.reason
            end_state = JobState.FAILED
        except Exception as exc:  # a bug must still end the job visibly, keeping its results
            log.exception("bulk job %s failed", self.id)
            self.control.fatal = describe(exc)
            end_state = JobState.FAILED
        self._release()
        with self._lock:
            self._state = end_state
            self._preparing = False
            self._ended = self._clock()
        self._notify()

    def _release(self) -> None:
        with self._lock:
            owned, self._owned = self._owned, None
        if owned is None:
            return
        try:
            owned.close()
        except Exception as exc:  # closing must never turn a finished run into a failure
            log.warning("closing the connection of bulk job %s failed: %s", self.id, logged(exc))

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    # -- observation
    def wait(self, until: Callable[[Progress], bool], timeout: float | None = None) -> bool:
        """Block until ``until(progress)`` holds -- checked at every change (a result, a pause,
        a state change) -- or ``timeout`` seconds pass; returns whether it holds."""
        with self._changed:
            return self._changed.wait_for(lambda: until(self.progress()), timeout)

    def progress(self) -> Progress:
        """One reading, every number taken under one lock: the bar, its sentence and the
        counters beside it always agree."""
        with self._lock:
            t = self._tally
            looked_up, failed, on_no_list = t.looked_up, t.failed, t.on_no_list
            state, ended, preparing, suppressed = self._state, self._ended, self._preparing, self._suppressed
            meter = self._meter
        done = looked_up + failed
        end = ended if ended is not None else self._clock()
        elapsed = end - self._started
        if ended is None:
            rate, eta = meter.rate(done), meter.eta(done, self.total)
        else:
            rate, eta = (done / elapsed if elapsed > 0 else 0.0), (0.0 if done >= self.total else None)
        return Progress(state, done, self.total, failed, elapsed, rate, eta, paused=self.control.pause,
                        looked_up=looked_up, on_no_list=on_no_list, suppressed=suppressed, preparing=preparing)

    def snapshot(self) -> JobSnapshot:
        """A consistent copy for rendering. A finished run's results no longer change, so its
        snapshot shares them (and their counts) instead of copying 100,000 entries per rerun."""
        with self._lock:
            state = self._state
            if state in FINISHED_STATES:
                results, tally = self._results, self._tally
            else:
                results, tally = dict(self._results), self._tally.copy()
        with self.lookup._lock:
            names = dict(self.lookup.list_names)
        return JobSnapshot(job_id=self.id, input=self.input, results=results, list_names=names,
                           with_activity=self.with_activity, state=state, fatal=self.control.fatal,
                           notes=tuple(self.lookup.notes), gave_up=self.control.gave_up,
                           suppression=self.lookup.suppression, tally=tally)

    def memo(self, name: str, version: object, build: Callable[[], T]) -> T:
        """``build()`` once per ``version`` of the job's results (see :class:`VersionMemo`)."""
        return self._memo.get(name, version, build)

    def calls_made(self) -> int:
        """HTTP calls since the job was created."""
        return self.lookup.client.calls_made - self.calls_at_start


class JobRegistry:
    """Jobs of one server process, by id: a page rerun, a visit to another page or a browser
    reload (the id is in the URL) finds its job again. Old finished jobs are dropped."""

    def __init__(self, max_jobs: int = 20, max_age_seconds: float = 24 * 3600) -> None:
        self.max_jobs = max_jobs
        self.max_age = max_age_seconds
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()

    def submit(self, credentials: Credentials, bulk_input: BulkInput, *, with_activity: bool = False,
               patience: float | None = DEFAULT_PATIENCE) -> BulkJob:
        """A run on a client of its own for ``credentials``, kept here and started. Raises
        CMError when no client can be made."""
        job = BulkJob.connect(credentials, bulk_input, with_activity=with_activity, patience=patience)
        self.add(job)
        return job.start()

    def add(self, job: BulkJob) -> BulkJob:
        with self._lock:
            self._jobs[job.id] = job
            self._evict()
        return job

    def get(self, job_id: str | None) -> BulkJob | None:
        if not job_id:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            job.close()

    def close(self) -> None:
        """Cancel every job and forget it (the server drops the registry)."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            job.close()

    def __len__(self) -> int:
        return len(self._jobs)

    def _evict(self) -> None:
        now = datetime.now(UTC)
        for jid, job in list(self._jobs.items()):
            if job.finished and (now - job.created_at).total_seconds() > self.max_age:
                del self._jobs[jid]
        finished = [j for j in self._jobs.values() if j.finished]
        finished.sort(key=lambda j: j.created_at)
        while len(self._jobs) > self.max_jobs and finished:
            del self._jobs[finished.pop(0).id]
