"""One attempt at a durable bulk job, inside a worker: the engine's run loop, with every
finished row written to the database as it comes.

The lookups are exactly the page's and the CLI's (:class:`~.engine.BulkRun` on a client of the
job's own with :func:`~.engine.bulk_client_options`); what is added here is where results go and
how the attempt learns it must stop:

* **Results per row, as they finish.** A flusher thread writes what finished every
  ``flush_every`` seconds (each row at most once, with the counters, under this attempt's owner
  token: :meth:`~.job_store.JobStore.record_results`). An attempt starts from the rows without a
  result, so a run resumed after its worker was killed never looks up a stored row again.
* **Cancel from any replica.** The replica marks the job; the flusher sees the mark with its
  next write and stops the run the way the page's Cancel does (lookups in flight finish and are
  kept). The job ends "cancelled" with what finished.
* **Shutdown and lost database.** A worker told to stop (procrastinate's shutdown abort), or
  cut off from the database for longer than ``db_patience``, stops starting lookups, writes what
  it can, and raises :class:`~.job_queue.ResumeLater`: the queue offers the job again and the
  next attempt resumes it. A short database restart only delays the writes: finished rows wait
  in memory and are written when it answers again.
* **Credentials from configuration only.** The key comes from this worker's configuration
  (environment, secrets.toml or the saved settings), never from the job. A job records the API
  URL and client it was submitted for; a worker configured for another URL or client refuses
  it, visibly, rather than sending its key somewhere the submitter did not mean.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .. import lazy_text, runtime
from ..client import CampaignMonitor, ClientOptions
from ..config import Credentials
from ..errors import AuthenticationError, CMError, logged
from ..urls import display_url, same_api_url
from .control import JobState, RunControl
from .engine import BulkLookup, BulkRun, LookupResult, bulk_client_options
from .job_codec import encode_result, encode_suppressed
from .job_queue import ResumeLater
from .job_store import DB_ERRORS, Beat, Claim, JobRecord, JobStore, LeaseLost, Outcome
from .progress import RateMeter
from .validate import InputRow

__all__ = ["DurableRun", "StopReason", "refusal"]

log = logging.getLogger("cmlib.bulk.durable_run")

class StopReason(StrEnum):
    CANCEL = "cancel"  # someone cancelled the run: it ends cancelled, keeping what finished
    SHUTDOWN = "shutdown"  # the worker is stopping: the run is resumed by another attempt


def refusal(record: JobRecord, configured: Credentials | None) -> str | None:
    """Why this worker must not run ``record`` with its configured credentials, or None."""
    if configured is None or configured.is_demo:
        return ("No worker is configured with Campaign Monitor credentials (CM_API_KEY, secrets.toml or the "
                "Settings page), so the run cannot start.")
    if not same_api_url(configured.api_url, record.api_url):
        return (f"The run was started for {display_url(record.api_url)} but the worker is configured for "
                f"{display_url(configured.api_url)}; it does not send its key to another URL. Start the run again "
                "once the app and the workers use the same settings.")
    if configured.client_id and configured.client_id != record.client_id:
        return ("The run was started for another Campaign Monitor client than the worker is configured for. Start "
                "the run again once the app and the workers use the same settings.")
    return None


@dataclass
class _Pending:
    """Finished rows not written yet, and whether the run must stop (guarded by ``lock``)."""

    lock: threading.Lock
    outcomes: list[Outcome]


class DurableRun:
    """One attempt at one job. :meth:`run` returns when the job ended (done, cancelled,
    failed) or when another attempt owns it; raises :class:`ResumeLater` when it must go on
    elsewhere."""

    def __init__(self, store: JobStore, job_id: str, *, credentials: Credentials | None,
                 should_stop: Callable[[], StopReason | None] = lambda: None,
                 options: ClientOptions | None = None, flush_every: float = 0.25, db_patience: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.job_id = job_id
        self.credentials = credentials
        self.should_stop = should_stop
        self.options = options
        self.flush_every = flush_every
        self.db_patience = db_patience
        self.clock = clock
        self.owner = secrets.token_hex(16)
        self.interrupted = False  # stop and resume elsewhere
        self.lost = False  # another attempt owns the job
        self._pending = _Pending(threading.Lock(), [])
        self._done = threading.Event()
        self._last_ok = clock()
        self._names_written = 0
        self._stored = 0
        self._meter: RateMeter | None = None

    # ------------------------------------------------------------------ the attempt
    def run(self) -> None:
        try:
            self._attempt()
        except ResumeLater:
            raise
        except DB_ERRORS as exc:  # the database went away: the queue offers the job again
            self._release()
            raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
        except Exception as exc:  # a bug must still end the job visibly, never leave it "running"
            log.exception("bulk job %s failed", self.job_id)
            self._finish(JobState.FAILED, fatal=lazy_text.error_text(exc))

    def _attempt(self) -> None:
        try:
            claim = self.store.claim(self.job_id, self.owner)
        except DB_ERRORS as exc:
            raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
        if claim is None:
            log.info("bulk job %s is finished or gone; nothing to do", self.job_id)
            return
        if claim.cancel_requested:
            self._finish(JobState.CANCELLED)
            return
        why = refusal(claim.record, self.credentials)
        if why is not None:
            log.warning("bulk job %s refused: %s", self.job_id, why)
            self.store.refuse(self.job_id, why)
            return
        assert self.credentials is not None
        creds = Credentials(api_key=self.credentials.api_key, client_id=claim.record.client_id,
                            api_url=self.credentials.api_url, source=self.credentials.source)
        try:
            rows = self.store.pending_rows(self.job_id)
            conn = runtime.connect(creds, options=self.options or bulk_client_options())
        except DB_ERRORS as exc:
            self._release()
            raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
        except CMError as exc:
            self._finish(JobState.FAILED, fatal=exc.reason)
            return
        try:
            self._run(claim, conn.client, rows)
        finally:
            conn.close()

    def _run(self, claim: Claim, client: CampaignMonitor, rows: list[tuple[int, InputRow]]) -> None:
        record = claim.record
        lookup = BulkLookup(client, record.client_id, with_activity=record.with_activity)
        control = RunControl(patience=record.patience)
        limiter = client.limiter
        loop = BulkRun(lookup, control, max_workers=max(1, limiter.max_in_flight))
        self._stored = record.total - len(rows)
        idx_of = {row.key: idx for idx, row in rows}
        try:
            loop.prepare()
        except AuthenticationError as exc:
            self._finish(JobState.FAILED, fatal=exc.reason)
            return
        if not self._save_prepared(claim, lookup):
            return
        self._meter = RateMeter(clock=self.clock, max_rate=lambda: limiter.rate)  # the rate of lookups only

        def on_result(row: InputRow, res: LookupResult) -> None:
            outcome = Outcome(idx_of[row.key], encode_result(res), res.ok, res.on_no_list)
            with self._pending.lock:
                self._pending.outcomes.append(outcome)

        flusher = threading.Thread(target=self._flush_loop, args=(lookup, control), name=f"flush-{self.job_id}",
                                   daemon=True)
        flusher.start()
        end_state = JobState.FAILED
        fatal: str | None = None
        try:
            end_state = loop.run([[row for _, row in rows]], on_result)
        except Exception as exc:  # a bug must still end the job visibly, keeping its results
            log.exception("bulk job %s failed", self.job_id)
            fatal = lazy_text.error_text(exc)
        finally:
            self._done.set()
            flusher.join()
        self._final_flush(lookup, control)
        if self.lost:
            log.warning("bulk job %s is held by another attempt now; this one stopped", self.job_id)
            return
        if self.interrupted:
            self._release()
            raise ResumeLater("the worker stopped before the run ended")
        if fatal is not None:
            self._finish(JobState.FAILED, fatal=fatal, lookup=lookup)
            return
        self._finish(end_state, fatal=control.fatal, gave_up=control.gave_up, lookup=lookup)

    # ------------------------------------------------------------------ writes
    def _save_prepared(self, claim: Claim, lookup: BulkLookup) -> bool:
        suppression = None
        complete = True
        if not claim.suppression_loaded and lookup.suppression is not None:
            index = lookup.suppression
            complete = index.complete
            suppression = {}
            if len(index):
                for idx, email in self.store.valid_emails(self.job_id):
                    entry = index.get(email)
                    if entry is not None:
                        suppression[idx] = encode_suppressed(entry)
        with lookup._lock:
            names = list(lookup.list_names.items())
        try:
            self.store.save_prepared(self.job_id, self.owner, list_names=names, notes=list(lookup.notes),
                                     suppression=suppression, complete=complete)
        except LeaseLost:
            self.lost = True
            return False
        except DB_ERRORS as exc:
            self._release()
            raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
        self._names_written = len(names)
        return True

    def _beat(self, lookup: BulkLookup, control: RunControl) -> Beat:
        pause = control.pause
        beat = Beat(rate=self._meter.rate(self._stored) if self._meter else 0.0, paused=pause is not None,
                    paused_since=pause.since if pause is not None else None)
        with lookup._lock:
            if len(lookup.list_names) != self._names_written:
                beat.list_names = list(lookup.list_names.items())
        return beat

    def _flush(self, lookup: BulkLookup, control: RunControl) -> None:
        """Write what finished; raises the database's errors with the batch put back."""
        with self._pending.lock:
            batch, self._pending.outcomes = self._pending.outcomes, []
        beat = self._beat(lookup, control)
        try:
            cancel = self.store.record_results(self.job_id, self.owner, batch, beat)
        except BaseException:
            with self._pending.lock:
                self._pending.outcomes[:0] = batch
            raise
        self._last_ok = self.clock()
        self._stored += len(batch)
        if self._meter is not None:
            self._meter.record(self._stored)
        if beat.list_names is not None:
            self._names_written = len(beat.list_names)
        if cancel and not control.cancel.is_set():
            log.info("bulk job %s: cancel requested", self.job_id)
            control.cancel.set()

    def _check_stop(self, control: RunControl) -> None:
        reason = self.should_stop()
        if reason is StopReason.SHUTDOWN and not self.interrupted:
            log.info("bulk job %s: the worker is stopping; the run will resume elsewhere", self.job_id)
            self.interrupted = True
            control.cancel.set()
        elif reason is StopReason.CANCEL:
            control.cancel.set()

    def _flush_loop(self, lookup: BulkLookup, control: RunControl) -> None:
        """Every ``flush_every`` seconds: look for a stop, write what finished (an empty batch
        still says how fast and whether paused)."""
        while not self._done.wait(self.flush_every):
            self._check_stop(control)
            try:
                self._flush(lookup, control)
            except LeaseLost:
                self.lost = True
                control.cancel.set()
                return
            except DB_ERRORS as exc:
                log.warning("bulk job %s: cannot write results yet (%s)", self.job_id, logged(exc))
                if self.clock() - self._last_ok > self.db_patience:
                    self.interrupted = True
                    control.cancel.set()

    def _final_flush(self, lookup: BulkLookup, control: RunControl) -> None:
        """Write the last results, waiting (up to ``db_patience``) for a database that is away."""
        if self.lost:
            return
        delay = 0.2
        while True:
            try:
                self._flush(lookup, control)
                return
            except LeaseLost:
                self.lost = True
                return
            except DB_ERRORS as exc:
                if self.clock() - self._last_ok > self.db_patience:
                    self.interrupted = True
                    log.error("bulk job %s: the database did not answer for %.0f s; %d results will be looked up "
                              "again", self.job_id, self.db_patience, len(self._pending.outcomes))
                    raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _finish(self, state: JobState, *, fatal: str | None = None, gave_up: str | None = None,
                lookup: BulkLookup | None = None) -> None:
        names = notes = None
        if lookup is not None:
            with lookup._lock:
                names = list(lookup.list_names.items())
            notes = list(lookup.notes)
        try:
            self.store.finish(self.job_id, self.owner, state, fatal=fatal, gave_up=gave_up, notes=notes,
                              list_names=names)
        except LeaseLost:
            self.lost = True
        except DB_ERRORS as exc:
            raise ResumeLater(f"the database is not answering: {logged(exc)}") from exc
        log.info("bulk job %s ended: %s", self.job_id, state)

    def _release(self) -> None:
        try:
            self.store.release(self.job_id, self.owner)
        except DB_ERRORS as exc:  # the next attempt takes the job over anyway (a new owner token)
            log.warning("bulk job %s: could not hand the run back (%s)", self.job_id, logged(exc))
