"""``python -m cmlib worker``: run durable bulk jobs from the Postgres queue.

One process runs one procrastinate worker (``--concurrency`` runs side by side, each in a
thread) and a reaper beside it. Start as many processes as you like, on any host that reaches
the database and Campaign Monitor; they share the queue and the account's rate budget
(``CM_REDIS_URL``).

Why a reaper: a worker that is killed (SIGKILL, OOM, a host lost) cannot hand its job back.
procrastinate 3 keeps a heartbeat per worker; the reaper asks it for jobs whose worker has not
beaten for ``--stalled-after`` seconds (:meth:`~procrastinate.manager.JobManager.get_stalled_jobs`)
and puts them back on the queue (``retry_job``), where any worker resumes them from their stored
rows (a run cancelled while its worker was dead ends cancelled there, keeping its rows). Every
worker runs the reaper; two reapers retrying the same job is harmless (the second finds it
already queued).

Why polling and a supervisor loop: a database restart must cost a pause, not a run. The worker
polls for jobs every ``--poll`` seconds instead of holding a LISTEN connection (a listener that
loses its connection stops the whole procrastinate worker); its pool checks connections before
use and waits for the database to come back. Should the worker stop anyway, the loop opens a
fresh app and goes on, and the interrupted run is resumed from its stored rows.

SIGTERM and SIGINT stop the worker gracefully: runs still going after ``--shutdown-grace``
seconds stop starting lookups, store what finished, and go back on the queue for another worker.

The API key comes from this process's configuration (environment, secrets.toml or the saved
settings), read again for every run, never from a job.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass

import procrastinate
from procrastinate.exceptions import ConnectorException
from procrastinate.job_context import AbortReason, JobContext

from ..config import Credentials, resolve_credentials
from ..database import Database, DatabaseUrlError, database
from ..deployment import database_url, uses_postgres
from ..errors import logged
from .durable_run import DurableRun, StopReason
from .job_queue import QUEUE, TASK_NAME, apply_schema_if_missing, conninfo, make_app
from .job_store import DB_ERRORS, JobStore

__all__ = ["CONTEXT_KEY", "WorkerOptions", "main", "serve"]

log = logging.getLogger("cmlib.bulk.worker")

CONTEXT_KEY = "cmlib"


@dataclass(frozen=True)
class WorkerOptions:
    concurrency: int = 2
    heartbeat: float = 10.0  # seconds between this worker's heartbeats
    stalled_after: float = 30.0  # a worker silent this long is dead: its jobs go back on the queue
    poll: float = 1.0  # seconds between looks for new jobs
    shutdown_grace: float = 5.0
    flush_every: float = 0.25  # seconds between writes of finished rows
    db_patience: float = 120.0  # how long a run keeps finished rows in memory while the database is away
    name: str = ""

    @property
    def grace(self) -> float:
        """The shutdown grace actually used: procrastinate stops a worker's heartbeat as its
        graceful stop begins, so a grace as long as ``stalled_after`` would let another worker
        take over runs this one is still finishing. Kept to half of it."""
        return min(self.shutdown_grace, self.stalled_after / 2)


@dataclass(frozen=True)
class WorkerEnv:
    """What a task needs from its worker, handed over in procrastinate's job context."""

    store: JobStore
    options: WorkerOptions

    def credentials(self) -> Credentials | None:
        return resolve_credentials()


def _stop_reason(context: JobContext) -> StopReason | None:
    reason = context.abort_reason()
    if reason is None:
        return None
    return StopReason.SHUTDOWN if reason == AbortReason.SHUTDOWN else StopReason.CANCEL


def run_task(context: JobContext, job_id: str) -> None:
    """The bulk task's body (in a thread of the worker)."""
    env: WorkerEnv = context.additional_context[CONTEXT_KEY]
    DurableRun(env.store, job_id, credentials=env.credentials(), should_stop=lambda: _stop_reason(context),
               flush_every=env.options.flush_every, db_patience=env.options.db_patience).run()


async def _reap_once(app: procrastinate.App, options: WorkerOptions) -> None:
    manager = app.job_manager
    for job in await manager.get_stalled_jobs(queue=QUEUE, task_name=TASK_NAME,
                                              seconds_since_heartbeat=options.stalled_after):
        job_id = str(job.task_kwargs.get("job_id") or "")
        log.warning("bulk job %s: its worker stopped answering; queuing it again", job_id)
        assert job.id is not None
        with contextlib.suppress(ConnectorException):  # another reaper was first
            await manager.retry_job(job)
    await manager.prune_stalled_workers(options.stalled_after)


async def _reaper(app: procrastinate.App, options: WorkerOptions) -> None:
    period = max(0.2, min(options.heartbeat, options.stalled_after / 2))
    while True:
        try:
            await _reap_once(app, options)
        except (ConnectorException, *DB_ERRORS) as exc:
            log.warning("reaper: the database is not answering (%s)", logged(exc))
        await asyncio.sleep(period)


async def _run_worker_once(db: Database, store: JobStore, options: WorkerOptions, stop: asyncio.Event) -> bool:
    """One procrastinate worker until ``stop`` (returns True) or until it fails (False)."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo(db.url), min_size=1,
                                               max_size=options.concurrency + 4, timeout=30)
    app = make_app(connector, run=run_task)
    async with app.open_async():
        env = WorkerEnv(store, options)
        worker = asyncio.create_task(app.run_worker_async(
            queues=[QUEUE], name=options.name or f"cm-worker-{socket.gethostname()}-{os.getpid()}",
            concurrency=options.concurrency, wait=True, listen_notify=False,
            fetch_job_polling_interval=options.poll, abort_job_polling_interval=options.poll,
            update_heartbeat_interval=options.heartbeat, stalled_worker_timeout=options.stalled_after,
            shutdown_graceful_timeout=options.grace, delete_jobs="successful",
            additional_context={CONTEXT_KEY: env}, install_signal_handlers=False), name="procrastinate worker")
        reaper = asyncio.create_task(_reaper(app, options), name="bulk reaper")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
            await _cancelled(reaper)  # first: the stopping worker's heartbeat ends before its runs do
            if stop.is_set() and not worker.done():
                worker.cancel()  # procrastinate's graceful stop: runs get the grace, then resume elsewhere
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            return stop.is_set()
        finally:
            stopping.cancel()
            await _cancelled(reaper)


async def _cancelled(task: asyncio.Task) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def serve(db: Database, options: WorkerOptions, stop: asyncio.Event) -> None:
    """Run workers on ``db`` until ``stop`` is set; a worker that fails is replaced."""
    store = JobStore(db)
    delay = 0.5
    while not stop.is_set():
        try:
            await asyncio.to_thread(store.prepare)
            await asyncio.to_thread(db.prepare, "procrastinate", apply_schema_if_missing)
            if await _run_worker_once(db, store, options, stop):
                return
            log.warning("the worker stopped (the database went away?); starting again")
            delay = 0.5
        except (ConnectorException, *DB_ERRORS, OSError) as exc:
            log.warning("the worker cannot run yet: %s; trying again in %.1f s", logged(exc), delay)
        except Exception:
            log.exception("the worker failed; starting again in %.1f s", delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 10.0)


# --------------------------------------------------------------------------- CLI
def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError("must be a number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    d = WorkerOptions()
    p = argparse.ArgumentParser(
        prog="python -m cmlib worker",
        description="Run durable bulk jobs (needs CM_DATABASE_URL=postgresql+psycopg://…; the Campaign Monitor "
                    "credentials come from this process's configuration, as for the app).")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help=f"runs at once (default {d.concurrency})")
    p.add_argument("--heartbeat", type=_positive, default=d.heartbeat,
                   help=f"seconds between heartbeats (default {d.heartbeat:g})")
    p.add_argument("--stalled-after", type=_positive, default=d.stalled_after,
                   help=f"seconds without a heartbeat before a worker's runs are resumed elsewhere "
                        f"(default {d.stalled_after:g})")
    p.add_argument("--poll", type=_positive, default=d.poll,
                   help=f"seconds between looks for new jobs (default {d.poll:g})")
    p.add_argument("--shutdown-grace", type=_positive, default=d.shutdown_grace,
                   help=f"seconds a run may go on after SIGTERM before it is resumed elsewhere "
                        f"(default {d.shutdown_grace:g}; at most half of --stalled-after)")
    p.add_argument("--flush-every", type=_positive, default=d.flush_every, help=argparse.SUPPRESS)
    p.add_argument("--db-patience", type=_positive, default=d.db_patience, help=argparse.SUPPRESS)
    p.add_argument("--name", default="", help="worker name in logs and procrastinate's tables")
    p.add_argument("-q", "--quiet", action="store_true", help="log warnings only")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not uses_postgres():
        print("python -m cmlib worker needs CM_DATABASE_URL pointing at Postgres (postgresql+psycopg://…); "
              "without it bulk runs stay in the app's process.", file=sys.stderr)
        return 2
    if args.concurrency < 1:
        print("--concurrency must be 1 or more", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    creds = resolve_credentials()
    if creds is None:
        log.warning("no Campaign Monitor credentials are configured yet: runs will be refused until they are "
                    "(CM_API_KEY and CM_CLIENT_ID, secrets.toml, or the Settings page)")
    options = WorkerOptions(concurrency=args.concurrency, heartbeat=args.heartbeat, stalled_after=args.stalled_after,
                            poll=args.poll, shutdown_grace=args.shutdown_grace, flush_every=args.flush_every,
                            db_patience=args.db_patience, name=args.name)
    url = database_url()
    assert url is not None
    try:
        db = database(url)
    except DatabaseUrlError as exc:
        print(f"CM_DATABASE_URL: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_main(db, options))


async def _main(db: Database, options: WorkerOptions) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("bulk worker started (database %s)", db.location)
    started = time.monotonic()
    try:
        await serve(db, options, stop)
    finally:
        await asyncio.to_thread(db.close)
    log.info("bulk worker stopped after %.0f s", time.monotonic() - started)
    return 0
