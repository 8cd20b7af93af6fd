"""The Bulk page's job machinery: a run owned by a background thread, its progress, and the
registry that finds it again.

A page rerun loses nothing: :class:`BulkJob` owns the run (the engine's :class:`~.engine.BulkRun`,
the same loop the CLI uses) in a background thread and holds the results, so the Streamlit
page only reads it and can be rerun, or left and revisited, while the run continues. The job
owns its client too (:meth:`BulkJob.connect`: a client of its own with bulk options) and closes
it when the run ends, so a finished run holds no connection, pool or per-address cache key.

Watchers that need to know when something happened (a result, a pause, the end) wait on the
job's own signal (:meth:`BulkJob.wait`) instead of polling the clock.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from .. import runtime
from ..client import CampaignMonitor, ClientOptions
from ..config import Credentials
from ..errors import AuthenticationError, describe
from .control import (
    DEFAULT_PATIENCE,
    FINISHED_STATES,
    JobState,
    Pause,
    RunControl,
    format_duration,
    not_looked_up_reason,
)
from .engine import BulkLookup, BulkRun, LookupResult, bulk_client_options
from .validate import BulkInput, InputRow

log = logging.getLogger("cmlib.bulk.jobs")


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass(frozen=True)
class Progress:
    state: JobState
    done: int
    total: int
    errors: int
    elapsed: float
    rate: float  # addresses per second, recent
    eta: float | None  # seconds left, None while unknown
    paused: Pause | None = None  # set while the run waits for Campaign Monitor to answer

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    @property
    def waiting(self) -> int:
        """Addresses not looked up yet."""
        return max(0, self.total - self.done)

    @property
    def active(self) -> bool:
        return self.state in (JobState.RUNNING, JobState.CANCELLING)

    def pause_message(self) -> str | None:
        """"Campaign Monitor is not answering since 14:02 UTC — paused, 705 addresses waiting"."""
        if self.paused is None or not self.active:
            return None
        return self.paused.message(self.waiting)

    def describe(self) -> str:
        parts = [f"{self.done:,} / {self.total:,} addresses"]
        if self.paused is not None and self.active:
            parts.append("paused: Campaign Monitor is not answering")
        elif self.rate > 0:
            parts.append(f"{self.rate:.1f}/s")
        if self.paused is None and self.active and self.done < self.total:
            parts.append(f"about {format_duration(self.eta)} left" if self.eta is not None else "estimating time left")
        if self.errors:
            parts.append(f"{self.errors:,} failed")
        return " · ".join(parts)


class RateMeter:
    """Recent throughput: completions over the last ``window`` seconds (overall before that)."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def record(self, done: int) -> None:
        now = self.clock()
        with self._lock:
            if self._samples and now - self._samples[-1][0] < 0.2:
                return
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[1][0] > self.window:
                self._samples.popleft()

    def rate(self, done: int) -> float:
        now = self.clock()
        with self._lock:
            if self._samples and now - self._samples[0][0] >= 1.0:
                t0, d0 = self._samples[0]
                return max(0.0, (done - d0) / (now - t0))
        elapsed = now - self.started
        return done / elapsed if elapsed > 0.5 else 0.0


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

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def not_run_reason(self) -> str:
        return not_looked_up_reason(self.state, fatal=self.fatal, gave_up=self.gave_up)


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
        self._errors = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._state = JobState.PENDING
        self._thread: threading.Thread | None = None
        self._meter = RateMeter(clock=clock)
        self._started = clock()
        self._ended: float | None = None
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
            self._started = self._clock()
            self._meter = RateMeter(clock=self._clock)
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
        with self._lock:
            self._results[row.key or ""] = res
            if not res.ok:
                self._errors += 1
            done = len(self._results)
        self._meter.record(done)
        self._notify()

    def _run(self) -> None:
        try:
            self.loop.prepare()
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
            log.warning("closing the connection of bulk job %s failed: %s", self.id, describe(exc))

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
        with self._lock:
            done, errors, state, ended = len(self._results), self._errors, self._state, self._ended
        end = ended if ended is not None else self._clock()
        elapsed = end - self._started
        rate = self._meter.rate(done) if ended is None else (done / elapsed if elapsed > 0 else 0.0)
        left = self.total - done
        eta = (left / rate) if rate > 0 and left > 0 else (0.0 if left <= 0 else None)
        return Progress(state, done, self.total, errors, elapsed, rate, eta, paused=self.control.pause)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            results = dict(self._results)
            state = self._state
        with self.lookup._lock:
            names = dict(self.lookup.list_names)
        return JobSnapshot(job_id=self.id, input=self.input, results=results, list_names=names,
                           with_activity=self.with_activity, state=state, fatal=self.control.fatal,
                           notes=tuple(self.lookup.notes), gave_up=self.control.gave_up)

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
