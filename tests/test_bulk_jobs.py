"""The page's bulk job owns what it starts: a client of its own with bulk options, closed when
the run ends; no listener or per-address key left on anyone's client, however many runs; one
vocabulary of states, statuses and verdicts whose stored words do not change."""
from __future__ import annotations

import pytest

from cmlib import runtime
from cmlib.bulk.control import JobState
from cmlib.bulk.csv_input import parse_pasted
from cmlib.bulk.engine import BULK_CONCURRENCY, BULK_RATE
from cmlib.bulk.jobs import BulkJob, JobRegistry
from cmlib.bulk.matrix import Status
from cmlib.bulk.validate import Verdict, validate_table
from cmlib.config import Credentials
from cmlib.pacing import Lane


def bulk_input(addresses):
    return validate_table(parse_pasted("\n".join(addresses)))


@pytest.fixture
def creds(sandbox, monkeypatch):
    monkeypatch.setenv("CM_CACHE_BACKEND", "memory")
    return Credentials(api_key=sandbox.client_api_key, client_id=sandbox.main_client_id, api_url=sandbox.base_url)


@pytest.fixture
def opened(monkeypatch):
    """Every Connection runtime.connect hands out, with whether it was closed."""
    conns = []
    real = runtime.connect

    def connect(*args, **kw):
        conn = real(*args, **kw)
        conn.extra["closed"] = False
        real_close = conn.close

        def close():
            conn.extra["closed"] = True
            real_close()

        conn.close = close
        conns.append(conn)
        return conn

    monkeypatch.setattr(runtime, "connect", connect)
    return conns


def test_a_job_runs_on_a_client_of_its_own_with_bulk_options_and_closes_it(sandbox, creds, opened):
    interactive = runtime.connect(creds)
    job = BulkJob.connect(creds, bulk_input(["anna@example.com", "nobody@example.com"])).start()
    assert job.join(30) and job.state == JobState.DONE
    assert len(opened) == 2
    own = opened[1]
    assert job.lookup.client is own.client is not interactive.client
    opts = own.client.options
    assert (opts.rate, opts.max_in_flight) == (BULK_RATE, BULK_CONCURRENCY)  # not the interactive 20/s, burst 40
    assert (opts.lane, interactive.client.options.lane) == (Lane.BULK, Lane.INTERACTIVE)  # served after lookups
    assert own.extra["closed"] and not interactive.extra["closed"]  # the run's own, closed when it ended
    assert job.snapshot().results["anna@example.com"].ok
    interactive.close()


def test_many_with_activity_runs_leave_nothing_behind(sandbox, creds, opened):
    """Before: the page's runs shared the interactive client, and each with-activity run left a
    LookupService listener on it and one cache key entry per address, forever."""
    interactive = runtime.connect(creds)
    svc = interactive.lookup_service()
    listeners = interactive.client.invalidation_listener_count
    calls = interactive.client.calls_made
    addresses = sandbox.data.emails(sandbox.main_client_id)[:5]
    for _ in range(3):
        job = BulkJob.connect(creds, bulk_input(addresses), with_activity=True).start()
        assert job.join(60) and job.state == JobState.DONE
        assert job.snapshot().results[addresses[0].lower()].activity is not None
        assert job.lookup.client.invalidation_listener_count == 0  # its campaigns-index service was closed
    assert interactive.client.invalidation_listener_count == listeners
    assert interactive.client.calls_made == calls  # not one bulk call (nor cache key) on the interactive client
    assert [c.extra["closed"] for c in opened[1:]] == [True, True, True]
    assert svc is interactive.lookup_service()
    interactive.close()


def test_a_registry_closing_cancels_its_jobs_and_releases_a_never_started_one(sandbox, creds, opened):
    reg = JobRegistry()
    job = reg.add(BulkJob.connect(creds, bulk_input(["anna@example.com"])))
    reg.close()
    assert job.control.stopped and opened[0].extra["closed"] and len(reg) == 0


def test_a_job_that_cannot_be_built_closes_the_connection_it_opened(sandbox, creds, opened):
    with pytest.raises(TypeError):
        BulkJob.connect(creds, bulk_input(["anna@example.com"]), no_such_option=True)
    assert opened[0].extra["closed"]


def test_states_statuses_and_verdicts_keep_their_stored_words():
    """StrEnums with the old values: CSV files written before still read the same."""
    assert [s.value for s in JobState] == ["pending", "running", "cancelling", "done", "cancelled", "failed"]
    assert [s.value for s in Status] == ["ok", "partial", "invalid", "duplicate", "error", "not run"]
    assert [v.value for v in Verdict] == ["valid", "invalid", "duplicate"]
    assert Status.NOT_RUN == "not run" and f"{Verdict.VALID}" == "valid"
