"""Durable bulk jobs on a real Postgres with real ``python -m cmlib worker`` processes and the
sandbox: submit on one replica, show/cancel/download on another, a worker SIGKILLed mid-run and
replaced, a Postgres restart mid-run -- and every row looked up and stored once.

"Replica A" and "replica B" are two :class:`DurableJobBook` objects: all they share is the
database, as two app processes would. Waits are bounded polls of the job's progress in the
database (the worker is another process); nothing here asserts on durations.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, text

from cmlib import deployment
from cmlib.bulk.control import JobState
from cmlib.bulk.durable import DurableJob, DurableJobBook
from cmlib.bulk.durable_run import DurableRun, StopReason
from cmlib.bulk.engine import bulk_client_options
from cmlib.bulk.job_queue import ResumeLater
from cmlib.bulk.job_store import Beat, JobStore, LeaseLost, Outcome, jobs_table, rows_table
from cmlib.bulk.jobs import BulkJob, JobRegistry, open_job_book
from cmlib.bulk.matrix import layout_for
from cmlib.bulk.pasted import parse_pasted
from cmlib.bulk.validate import BulkInput, validate_table
from cmlib.bulk.view import matrix_csv
from cmlib.config import Credentials, CredentialSource, resolve_credentials
from cmlib.database import database
from cmlib.retry import RetryPolicy
from cmlib.sandbox import DEMO_CUSTOMERS, Sandbox
from tests.sandbox_fixtures import point_app_at

ROOT = Path(__file__).resolve().parent.parent
WAIT = 45.0  # upper bound of every wait below (a bound, never an expectation)


# --------------------------------------------------------------------------- helpers
def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT, poll: float = 0.05) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def addresses(n: int) -> list[str]:
    """Demo customers (real memberships) first, then addresses on no list."""
    known = sorted({a for group in DEMO_CUSTOMERS.values() for a in group})
    return known + [f"durable{i}@example.com" for i in range(n - len(known))]


def bulk_input(emails: list[str]) -> BulkInput:
    return validate_table(parse_pasted("\n".join(emails)))


def count_lookups(sb: Sandbox) -> Counter[str]:
    """Count ``listsforemail`` requests per address as the sandbox receives them."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    endpoints = sb._ctx.endpoints  # type: ignore[union-attr]
    original = endpoints._handlers["listsforemail"]

    def counting(route, principal, query, body):
        with lock:
            calls[(query.get("email") or [""])[0].lower()] += 1
        return original(route, principal, query, body)

    endpoints._handlers["listsforemail"] = counting
    return calls


@dataclass
class Workers:
    """``python -m cmlib worker`` processes for one test, stopped (or killed) at the end; their
    logs go to files in the test's folder (shown when a test fails)."""

    env: dict[str, str]
    folder: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    def start(self) -> subprocess.Popen:
        log = self.folder / f"worker-{len(self.procs) + 1}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cmlib", "worker", "--heartbeat", "0.3", "--stalled-after", "1.5",
                 "--poll", "0.1", "--flush-every", "0.1", "--shutdown-grace", "0.3", "--db-patience", "60"],
                cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()}" for p in self.logs)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def durable(sandbox: Sandbox, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app configured for the sandbox and a fresh Postgres database (CM_DATABASE_URL)."""
    point_app_at(sandbox, monkeypatch)
    monkeypatch.setenv("CM_DATABASE_URL", postgres_url)
    deployment.reset_for_tests()
    yield postgres_url
    deployment.reset_for_tests()


@pytest.fixture
def workers(durable: str, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(env=dict(os.environ), folder=tmp_path)
    yield w
    w.stop()
    print(w.log_text())  # pytest shows it when the test failed


def creds() -> Credentials:
    c = resolve_credentials()
    assert c is not None
    return c


def stored_results(url: str, job_id: str) -> dict[int, dict]:
    """Every stored result of the job by row index (straight from the table)."""
    with database(url).read() as conn:
        return {r.idx: r.result for r in conn.execute(
            select(rows_table.c.idx, rows_table.c.result)
            .where(rows_table.c.job_id == job_id, rows_table.c.result.is_not(None)))}


def assert_every_row_once(url: str, job: DurableJob, calls: Counter[str]) -> None:
    bi = job.input
    valid = {i: r for i, r in enumerate(bi.rows) if r.key and r.status == "valid"}
    results = stored_results(url, job.id)
    assert set(results) == set(valid), "every valid row has one stored result, and only those rows"
    progress = job.progress()
    assert progress.done == len(valid) == bi.counts.valid, "the counters agree with the stored rows"
    assert set(calls) == {r.key for r in valid.values()}, "no address outside the input was looked up"


# --------------------------------------------------------------------------- the default stays
def test_without_postgres_the_page_keeps_in_process_jobs(monkeypatch, tmp_path):
    assert isinstance(open_job_book(), JobRegistry)
    monkeypatch.setenv("CM_DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    assert isinstance(open_job_book(), JobRegistry), "SQLite (one process) keeps in-process jobs"


def test_demo_runs_stay_in_process_even_with_postgres(durable):
    book = open_job_book()
    assert isinstance(book, DurableJobBook)
    demo = Credentials(api_key="k", client_id="c", api_url="http://127.0.0.1:1/api/v3.3", source=CredentialSource.DEMO)
    local = JobRegistry()
    book = DurableJobBook(durable, local=local)
    job = book.submit(demo, bulk_input(["a@example.com"]))
    try:
        assert isinstance(job, BulkJob) and book.get(job.id) is job, "the demo sandbox lives in this process"
    finally:
        book.close()


# --------------------------------------------------------------------------- submit / worker
def test_submit_stores_job_rows_and_queue_entry_but_no_key(durable):
    book = DurableJobBook(durable)
    c = creds()
    bi = bulk_input(["anna@example.com", "not-an-address", "ANNA@example.com", "ivan.work@example.org"])
    job = book.submit(c, bi, with_activity=True)
    assert isinstance(job, DurableJob) and job.state == JobState.PENDING
    db = database(durable)
    with db.read() as conn:
        row = conn.execute(select(jobs_table).where(jobs_table.c.id == job.id)).one()
        assert (row.api_url, row.client_id, row.credential_source) == (c.api_url, c.client_id, "environment")
        assert conn.execute(select(rows_table.c.idx).where(rows_table.c.job_id == job.id)).all().__len__() == 4
        queued = conn.execute(text("SELECT status, args, task_name FROM procrastinate_jobs")).one()
        assert queued.status == "todo" and queued.args == {"job_id": job.id} and queued.task_name == "cmlib.bulk.run"
        # The key is configuration, never job data: not in any column of any job table.
        for table in ("cm_bulk_jobs", "cm_bulk_job_rows", "procrastinate_jobs"):
            dump = conn.execute(text(f"SELECT CAST(t AS text) FROM {table} AS t")).scalars().all()
            assert not any(c.api_key in d for d in dump), table
    other = DurableJobBook(durable)  # replica B
    seen = other.get(job.id)
    assert seen is not None and seen.input.counts == bi.counts and seen.with_activity
    assert [r.email for r in seen.input.rows] == [r.email for r in bi.rows]


def test_worker_process_runs_every_row_once_and_replica_b_downloads(durable, sandbox, workers):
    calls = count_lookups(sandbox)
    emails = [*addresses(120), "bad address", addresses(1)[0].upper()]
    job = DurableJobBook(durable).submit(creds(), bulk_input(emails))
    workers.start()
    b = DurableJobBook(durable)  # another replica: shows and downloads what the worker stored
    seen = b.get(job.id)
    assert seen is not None
    wait_for("the run to finish", lambda: seen.progress().finished)
    p = seen.progress()
    assert p.state == JobState.DONE and p.done == p.total == 120 and p.errors == 0
    assert isinstance(seen, DurableJob)
    assert_every_row_once(durable, seen, calls)
    assert all(n == 1 for n in calls.values()), "each address was looked up exactly once"
    snap = seen.snapshot()
    assert snap.finished and len(snap.results) == 120 and snap.tally is not None and snap.tally.done == 120
    assert snap.suppression is not None and snap.list_names, "reference data came with the results"
    layout = layout_for(snap)
    csv = matrix_csv(snap, layout, range(len(snap.input.rows))).decode("utf-8-sig")
    lines = csv.splitlines()
    assert len(lines) == 1 + len(emails)
    assert "durable7@example.com" in csv and "Invalid address" in csv
    assert "Not looked up" not in csv


def test_replica_b_cancels_a_queued_job_at_once(durable):
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(20)))
    b = DurableJobBook(durable)
    seen = b.get(job.id)
    assert seen is not None and seen.state == JobState.PENDING
    seen.cancel()
    assert seen.state == JobState.CANCELLED and job.state == JobState.CANCELLED
    with database(durable).read() as conn:
        assert conn.execute(text("SELECT status FROM procrastinate_jobs")).scalar() == "cancelled"
    snap = seen.snapshot()
    assert snap.results == {} and snap.not_run_reason() == "Not looked up: the run was cancelled"


def test_replica_b_shows_cancels_and_downloads_a_running_job(durable, sandbox, workers):
    sandbox.set_faults(latency_ms=60)
    calls = count_lookups(sandbox)
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(400)))
    workers.start()
    b = DurableJobBook(durable)
    seen = b.get(job.id)
    assert seen is not None
    wait_for("some rows stored", lambda: seen.progress().done >= 30)
    seen.cancel()
    assert seen.state in (JobState.CANCELLING, JobState.CANCELLED)
    wait_for("the cancel to end the run", lambda: seen.progress().finished)
    p = seen.progress()
    assert p.state == JobState.CANCELLED and 30 <= p.done < p.total
    results = stored_results(durable, job.id)
    assert len(results) == p.done, "a cancelled job keeps what finished"
    assert all(calls[r.key] == 1 for i, r in enumerate(seen.input.rows) if i in results)
    snap = seen.snapshot()
    csv = matrix_csv(snap, layout_for(snap), range(len(snap.input.rows))).decode("utf-8-sig")
    assert csv.count("Not looked up: the run was cancelled") == p.total - p.done


def test_sigkilled_worker_is_replaced_and_the_run_finishes_every_row_once(durable, sandbox, workers):
    sandbox.set_faults(latency_ms=40)
    calls = count_lookups(sandbox)
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(500)))
    first = workers.start()
    wait_for("the first worker to store some rows", lambda: job.progress().done >= 60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    before = stored_results(durable, job.id)
    assert 60 <= len(before) < 500, "killed mid-run"
    assert job.progress().state == JobState.RUNNING, "nobody finished it"
    workers.start()  # the replacement finds the stalled run through procrastinate's heartbeats
    wait_for("the replacement to finish the run", lambda: job.progress().finished)
    assert isinstance(job, DurableJob)
    assert job.progress().state == JobState.DONE
    assert_every_row_once(durable, job, calls)
    rows = job.input.rows
    assert all(calls[rows[i].key] == 1 for i in before), "rows stored before the kill were not looked up again"
    # Only lookups in flight (or not yet written) when the worker died can have gone out twice.
    assert max(calls.values()) <= 2


def test_postgres_restart_mid_run_loses_nothing(durable, sandbox, workers, postgres_server):
    sandbox.set_faults(latency_ms=60)
    calls = count_lookups(sandbox)
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(500)))
    assert isinstance(job, DurableJob)
    workers.start()
    wait_for("some rows stored", lambda: job.progress().done >= 40)
    postgres_server.restart()
    # A job only ends with a write: still unfinished now, so the restart happened mid-run.
    assert not job.status(fresh=True).finished
    wait_for("the run to finish after the restart", lambda: job.progress().finished)
    assert isinstance(job, DurableJob)
    assert job.progress().state == JobState.DONE
    assert_every_row_once(durable, job, calls)
    assert all(n == 1 for n in calls.values()), "finished rows waited in memory; none was looked up twice"


def test_sigterm_hands_the_run_to_another_worker(durable, sandbox, workers):
    """A redeploy: the stopped worker stores what finished and puts the run back on the queue."""
    sandbox.set_faults(latency_ms=60)  # 16 lookups in flight: the 570 rows left take 2 s at least
    calls = count_lookups(sandbox)
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(600)))
    assert isinstance(job, DurableJob)
    first = workers.start()
    wait_for("some rows stored", lambda: job.progress().done >= 30)
    first.send_signal(signal.SIGTERM)
    assert first.wait(WAIT) == 0
    p = job.status(fresh=True)
    assert p.state == JobState.PENDING and 30 <= p.looked_up < 600, "handed back with what finished"
    workers.start()
    wait_for("the next worker to finish the run", lambda: job.progress().finished)
    assert job.progress().state == JobState.DONE
    assert_every_row_once(durable, job, calls)
    assert all(n == 1 for n in calls.values()), "nothing was looked up twice across the redeploy"


def test_finished_jobs_are_swept_after_their_time_but_never_a_running_one(durable):
    book = DurableJobBook(durable)
    old_done, old_running, fresh_done = (book.submit(creds(), bulk_input(addresses(2))) for _ in range(3))
    store = JobStore(database(durable))
    with database(durable).write() as conn:
        for job, state in ((old_done, "done"), (old_running, "running"), (fresh_done, "done")):
            conn.execute(jobs_table.update().where(jobs_table.c.id == job.id).values(state=state))
        conn.execute(text("UPDATE cm_bulk_jobs SET created_at = now() - interval '2 days' WHERE id IN (:a, :b)"),
                     {"a": old_done.id, "b": old_running.id})
    assert store.sweep(max_age_seconds=24 * 3600, keep=10) == 1
    assert DurableJobBook(durable).get(old_done.id) is None
    assert DurableJobBook(durable).get(old_running.id) is not None and book.get(fresh_done.id) is not None
    assert stored_results(durable, old_done.id) == {} and store.row_results(old_done.id) == [], "rows went too"


# --------------------------------------------------------------------------- in-process attempts
def quick_options():
    return bulk_client_options(retry=RetryPolicy(max_attempts=1, base_delay=0.01, max_delay=0.01))


def test_worker_refuses_a_job_for_another_api_url(durable, sandbox):
    calls = count_lookups(sandbox)
    c = creds()
    other = Credentials(api_key="typed-elsewhere", client_id=c.client_id, api_url="https://api.example.com/api/v3.3",
                        source=CredentialSource.SETTINGS)
    job = DurableJobBook(durable).submit(other, bulk_input(addresses(5)))
    store = JobStore(database(durable))
    DurableRun(store, job.id, credentials=c, options=quick_options()).run()
    p = job.progress()
    snap = job.snapshot()
    assert p.state == JobState.FAILED and snap.fatal and "api.example.com" in snap.fatal
    assert not calls, "the key was not sent anywhere"


def test_a_later_attempt_fences_off_an_earlier_one(durable):
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(3)))
    store = JobStore(database(durable))
    first = store.claim(job.id, "first")
    second = store.claim(job.id, "second")
    assert first is not None and second is not None
    outcome = [Outcome(0, {"m": []}, ok=True, on_no_list=True)]
    with pytest.raises(LeaseLost):
        store.record_results(job.id, "first", outcome, Beat())
    store.record_results(job.id, "second", outcome, Beat())
    store.record_results(job.id, "second", outcome, Beat())  # a row is stored once, ever
    assert job.progress().done == 1 and len(stored_results(durable, job.id)) == 1


def test_a_resumed_attempt_looks_up_only_the_rows_without_results(durable, sandbox):
    calls = count_lookups(sandbox)
    job = DurableJobBook(durable).submit(creds(), bulk_input(addresses(60)))
    store = JobStore(database(durable))
    sandbox.set_faults(latency_ms=100)

    def shutdown_once_lookups_went_out() -> StopReason | None:
        return StopReason.SHUTDOWN if sum(calls.values()) >= 5 else None

    run = DurableRun(store, job.id, credentials=creds(), options=quick_options(), flush_every=0.05,
                     should_stop=shutdown_once_lookups_went_out)
    with pytest.raises(ResumeLater):
        run.run()
    assert job.progress().state == JobState.PENDING, "handed back to the queue"
    first = stored_results(durable, job.id)
    assert 0 < len(first) < 60 and sum(calls.values()) == len(first), "what went out was stored"
    sandbox.set_faults(latency_ms=0)
    DurableRun(store, job.id, credentials=creds(), options=quick_options()).run()
    assert job.progress().state == JobState.DONE
    assert isinstance(job, DurableJob)
    assert_every_row_once(durable, job, calls)
    assert all(n == 1 for n in calls.values())


# --------------------------------------------------------------------------- the page
PAGE = str(ROOT / "pages" / "bulk.py")


def page(**query: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=30)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_job_started_on_replica_a_is_shown_on_replica_b_by_its_link(durable, sandbox):
    job = DurableJobBook(durable).submit(creds(), bulk_input([*addresses(12), "not-an-address"]))
    DurableRun(JobStore(database(durable)), job.id, credentials=creds(), options=quick_options()).run()
    at = page(job=job.id)  # this process never saw the job: everything comes from the database
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Looked up"] == "12" and metrics["Not looked up"] == "0"
    assert any("On no list" in df.value.columns for df in at.dataframe), "the matrix is drawn"
    assert len(at.get("download_button")) == 2
    assert not at.warning or all("was not found" not in str(w.value) for w in at.warning)


def test_look_up_queues_a_durable_job_and_cancel_takes_it_off_the_queue(durable):
    from ui.bulk_view import CANCEL_KEY, JOB_KEY, PASTE_KEY, START_KEY

    at = page()
    at.text_area(key=PASTE_KEY).input("anna@example.com\nivan.work@example.org")
    at.run()
    at.button(key=START_KEY).click()
    at.run()
    assert not at.exception, at.exception
    job = DurableJobBook(durable).get(at.session_state[JOB_KEY])
    assert isinstance(job, DurableJob) and job.state == JobState.PENDING, "queued for the workers"
    assert any("Queued" in str(c.value) for c in at.caption)
    at.button(key=CANCEL_KEY).click()
    at.run()
    assert not at.exception, at.exception
    assert job.status(fresh=True).state == JobState.CANCELLED


def test_a_runs_sentences_stay_translatable_through_the_job_table():
    """A worker writes a run's reasons without knowing who reads them: a Russian reader on
    another replica still reads them in Russian; a plain text stored earlier reads as it is."""
    from cmlib import lazy_text
    from cmlib.bulk.job_store import _notes_in, _text_in, _text_out
    from cmlib.errors import AuthenticationError

    gave_up = lazy_text.t("Not looked up: {reason}", reason=AuthenticationError("Invalid API key", code=100))
    back = _text_out(_text_in(gave_up))
    assert back == gave_up and back.text("ru").startswith("Не проверен")
    assert _text_out(_text_in("plain")) == "plain" and _text_out(None) is None
    [note] = [lazy_text.from_json(n) for n in _notes_in([gave_up])]
    assert note.text("ru") == gave_up.text("ru")
