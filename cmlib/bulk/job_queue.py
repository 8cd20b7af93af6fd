"""The queue under durable bulk jobs: procrastinate on the same Postgres database.

Why procrastinate: it runs on Postgres (no second server to operate), takes jobs with
``SELECT … FOR UPDATE SKIP LOCKED``, cancels queued jobs, and (3.x) keeps worker heartbeats so
a job whose worker died can be found (``get_stalled_jobs``) and handed to another
(``retry_job``). The queue only says *which* run to work on; the run's rows and results live in
this app's own tables (:mod:`.job_store`), so a retried job resumes where the last attempt
stopped instead of starting over.

Replicas never open a procrastinate pool: they defer and cancel on the connection of the
transaction that stores the job (:meth:`JobQueue.defer`, :meth:`JobQueue.cancel_queued`), so a
job is queued exactly when it is stored. The worker (:mod:`.worker`) opens an async app with its
own pool. The queue's schema is applied when missing, under the app's schema lock, so starting
two workers at once is safe and nobody runs a migration by hand.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate.job_context import JobContext
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from procrastinate.schema import SchemaManager
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

from ..database import Database

__all__ = ["QUEUE", "RESUME_DELAY", "TASK_NAME", "JobQueue", "ResumeLater", "conninfo", "make_app"]

TASK_NAME = "cmlib.bulk.run"
QUEUE = "cm_bulk"
RESUME_DELAY = 1.0  # seconds before an interrupted run is offered to the workers again


class ResumeLater(Exception):
    """The attempt stopped without finishing (the worker is shutting down, or the database
    went away for too long): the queue offers the job again and the next attempt resumes it."""


class _ResumeStrategy(BaseRetryStrategy):
    """Retry an interrupted run (:class:`ResumeLater`) however often that happens; never retry
    a run that failed for its own reasons (those are recorded on the job, not retried)."""

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, ResumeLater):
            return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=RESUME_DELAY))
        return None


def conninfo(url: URL) -> str:
    """The libpq connection string of a SQLAlchemy ``postgresql+psycopg://`` URL."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _driver(conn: Connection) -> Any:
    """The psycopg connection under a SQLAlchemy connection (same transaction)."""
    return conn.connection.driver_connection


def apply_schema_if_missing(conn: Connection) -> None:
    """procrastinate's schema, once: skipped when its jobs table is already there."""
    if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return
    with _driver(conn).cursor() as cur:  # no parameters: psycopg runs the whole script
        cur.execute(SchemaManager.get_schema())


def make_app(connector: procrastinate.BaseConnector, run: Callable[..., Any] | None = None) -> procrastinate.App:
    """An app with the one bulk task. ``run(context, job_id)`` is the task body (the worker's);
    replicas only defer and cancel, and pass none."""
    app = procrastinate.App(connector=connector)
    body = run or _not_here
    app.task(name=TASK_NAME, queue=QUEUE, pass_context=True, retry=_ResumeStrategy())(body)
    return app


def _not_here(context: JobContext, job_id: str) -> None:  # pragma: no cover -- replicas never run tasks
    raise RuntimeError("bulk jobs run in `python -m cmlib worker`")


class JobQueue:
    """Defer and cancel bulk jobs from a replica, on a transaction of the job store."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # A connector that is never opened: every call below passes the transaction's connection.
        self.app = make_app(procrastinate.SyncPsycopgConnector(conninfo=conninfo(db.url)))

    def prepare(self) -> None:
        self.db.prepare("procrastinate", apply_schema_if_missing)

    def defer(self, conn: Connection, job_id: str) -> int:
        """Queue the run of ``job_id``; at most one attempt of a job runs at a time (its lock)."""
        self.prepare()
        task = self.app.tasks[TASK_NAME]
        return task.configure(lock=f"cm-bulk-{job_id}", connection=_driver(conn)).defer(job_id=job_id)

    def cancel_queued(self, conn: Connection, queue_job_id: int) -> bool:
        """Take a job off the queue if no worker has it yet (procrastinate's cancel)."""
        self.prepare()
        return self.app.job_manager.cancel_job_by_id(queue_job_id, connection=_driver(conn))
