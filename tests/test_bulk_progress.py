"""How far a run has got: an estimate from the recent rate (fake clock), one reading that feeds
the bar and the counters, a "preparing" phase instead of a silent 0 / N, the suppression list
read once per run, and what a finished run shares instead of copying."""
from __future__ import annotations

import threading

import pytest

from cmlib.bulk.control import JobState
from cmlib.bulk.csv_input import parse_pasted
from cmlib.bulk.jobs import BulkJob
from cmlib.bulk.matrix import COL_SUPPRESSED_SINCE, COL_SUPPRESSION_REASON, build_matrix, summarise
from cmlib.bulk.progress import Progress, RateMeter
from cmlib.bulk.tally import ResultTally
from cmlib.bulk.validate import validate_table
from tests.sandbox_fixtures import make_client


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def burst_then_steady(meter: RateMeter, clock: Clock, until: float, *, burst: int = 40, rate: float = 20.0,
                      start: float = 100.0) -> int:
    """The shape of a real run: ``burst`` results almost at once (the budget's bucket is full),
    then ``rate`` per second. Records one result at a time up to ``until``; returns how many."""
    done = 0
    for i in range(burst):
        clock.t = start + 0.05 + i * 0.001
        done += 1
        meter.record(done)
    step = 1 / rate
    t = start + 0.05 + step
    while t <= until + 1e-9:
        clock.t = t
        done += 1
        meter.record(done)
        t += step
    clock.t = until
    return done


@pytest.mark.parametrize("at", [2.1, 5.2])
def test_the_estimate_follows_the_recent_rate_not_the_opening_burst(at):
    """Before: "about 3 s left" at 2.1 s and again at 5.2 s of a run that ended at 9.9 s -- the
    opening burst stayed in a 10-second average. The recent rate, never above the budget, is right."""
    clock = Clock()
    meter = RateMeter(clock=clock, max_rate=20.0)
    total = 300
    done = burst_then_steady(meter, clock, 100.0 + at)
    truth = (total - done) / 20.0
    assert meter.eta(done, total) == pytest.approx(truth, rel=0.1)

    old = RateMeter(window=10.0, clock=clock)  # the old meter: a long window, no budget
    clock.t = 100.0
    old.started = clock.t
    burst_then_steady(old, clock, 100.0 + at)
    assert old.eta(done, total) < truth * 0.75  # it promised an end far too early


def test_without_a_budget_the_recent_window_forgets_the_burst():
    clock = Clock()
    meter = RateMeter(clock=clock)  # no rate budget (rate "off")
    done = burst_then_steady(meter, clock, 105.2)
    assert meter.rate(done) == pytest.approx(20.0, rel=0.1)


def test_the_cap_follows_a_pace_that_changes_during_the_run():
    """A learned pace (cmlib.pacing) moves during a run: the cap is read when the rate is."""
    clock = Clock()
    pace = [20.0]
    meter = RateMeter(clock=clock, max_rate=lambda: pace[0])
    done = burst_then_steady(meter, clock, 105.2, rate=30.0)
    assert meter.rate(done) == pytest.approx(20.0)
    pace[0] = 50.0
    assert meter.rate(done) == pytest.approx(30.0, rel=0.1)
    pace[0] = None  # not paced at all
    assert meter.rate(done) == pytest.approx(30.0, rel=0.1)


def test_a_stall_lowers_the_rate_and_unknown_is_said_not_guessed():
    clock = Clock()
    meter = RateMeter(clock=clock)
    assert meter.eta(0, 10) is None  # nothing known yet
    done = burst_then_steady(meter, clock, 104.0, burst=1, rate=10.0)
    before = meter.rate(done)
    clock.t += 2.0  # no result for two seconds
    assert meter.rate(done) < before * 0.7
    assert meter.eta(10, 10) == 0.0


def test_progress_words_while_preparing_paused_or_cancelling():
    p = Progress(JobState.RUNNING, 0, 18, 0, 0.3, 0.0, None, preparing=True)
    assert p.describe() == "0 / 18 addresses · preparing: loading the client's lists and suppression list"
    c = Progress(JobState.CANCELLING, 176, 300, 3, 9.0, 20.0, 6.0, looked_up=173)
    assert c.describe() == "176 / 300 addresses · 20.0/s · cancelling: the lookups in flight finish · 3 failed"
    assert not c.finished and Progress(JobState.DONE, 1, 1, 0, 1.0, 1.0, 0.0).finished


def addresses_input(addresses):
    return validate_table(parse_pasted("\n".join(addresses)))


def test_one_reading_feeds_the_bar_and_the_counters_while_cancelling(sandbox):
    """Before: "176 / 300" beside "looked up 133" -- the bar and the counters were read at
    different moments. Every reading now adds up, however often it is taken mid-run."""
    sandbox.set_faults(latency_ms=150)
    known = sandbox.data.emails(sandbox.main_client_id)[:60]
    job = BulkJob(make_client(sandbox, sandbox.client_api_key, max_in_flight=8), sandbox.main_client_id,
                  addresses_input([*known, "nobody@example.com"])).start()
    assert job.wait(lambda p: p.done >= 5, timeout=30)
    job.cancel()
    readings = []
    while not job.finished:
        readings.append(job.progress())
        job.wait(lambda p: p.finished or p.done > readings[-1].done, timeout=5)
    readings.append(job.progress())
    assert any(r.state == JobState.CANCELLING for r in readings)
    for r in readings:
        assert r.done == r.looked_up + r.errors
        assert r.describe().startswith(f"{r.done:,} / 61 addresses")
    snap = job.snapshot()
    last = readings[-1]
    assert last.done == len(snap.results) and last.looked_up == sum(1 for x in snap.results.values() if x.ok)


def test_a_run_says_it_is_preparing_until_the_reference_data_is_in(sandbox):
    """Before: an 18-address run showed 0/18 with no word for a second, then jumped to done."""
    client = make_client(sandbox, sandbox.client_api_key)
    gate = threading.Event()
    real_lists = client.lists

    def slow_lists(client_id, **kw):
        gate.wait(10)
        return real_lists(client_id, **kw)

    client.lists = slow_lists  # type: ignore[method-assign]
    job = BulkJob(client, sandbox.main_client_id, addresses_input(sandbox.data.emails(sandbox.main_client_id)[:18]))
    job.start()
    p = job.progress()
    assert p.preparing and "preparing" in p.describe() and p.eta is None
    gate.set()
    assert job.join(30)
    p = job.progress()
    assert not p.preparing and (p.done, p.total) == (18, 18)


def test_the_suppression_list_is_read_once_and_shown_per_row(sandbox):
    addresses = ["suppressed@example.com", "Complaints@Example.net", "anna@example.com", "nobody@example.com",
                 "complaints@example.net"]
    sandbox.reset_counts()
    job = BulkJob(make_client(sandbox, sandbox.client_api_key), sandbox.main_client_id,
                  addresses_input(addresses)).start()
    assert job.join(30) and job.state == JobState.DONE
    assert sandbox.request_counts["suppressionlist"] == 1  # one pass per run, not one per address
    assert job.progress().suppressed == 2  # distinct addresses: the duplicate row counts once
    snap = job.snapshot()
    df = build_matrix(snap).set_index("Row")  # rows 1..5 in the order given
    assert df.loc[1, COL_SUPPRESSION_REASON] == "Unsubscribed"
    assert df.loc[2, COL_SUPPRESSION_REASON] == "Spam Complaint"  # any casing
    assert df.loc[5, COL_SUPPRESSION_REASON] == "Spam Complaint"  # the duplicate row too
    assert df.loc[3, COL_SUPPRESSION_REASON] == "" and df.loc[4, COL_SUPPRESSION_REASON] == ""
    since = df.loc[1, COL_SUPPRESSED_SINCE]
    expected = next(s.date for s in snap.suppression if s.email == "suppressed@example.com")
    assert since.to_pydatetime() == expected
    _, counts = summarise(snap)
    assert counts.suppressed == 2


def test_a_suppression_list_that_cannot_be_read_is_a_note_not_a_failure(sandbox):
    from cmlib.errors import ServerError

    client = make_client(sandbox, sandbox.client_api_key)

    def broken(*a, **kw):
        raise ServerError("HTTP 500: HTML 500 response", status=500)

    client.suppression_list = broken  # type: ignore[method-assign]
    job = BulkJob(client, sandbox.main_client_id, addresses_input(["suppressed@example.com"])).start()
    assert job.join(30) and job.state == JobState.DONE
    snap = job.snapshot()
    assert any(n.startswith("Could not load the client's suppression list") for n in snap.notes)
    assert snap.results["suppressed@example.com"].ok and job.progress().suppressed == 0


def test_a_finished_run_shares_its_results_and_builds_its_summary_once(sandbox):
    job = BulkJob(make_client(sandbox, sandbox.client_api_key), sandbox.main_client_id,
                  addresses_input(["anna@example.com", "nobody@example.com"])).start()
    assert job.join(30)
    a, b = job.snapshot(), job.snapshot()
    assert a.results is b.results and a.tally is b.tally  # no copy of 100,000 results per rerun
    built = []

    def build():
        built.append(1)
        return summarise(a)

    first = job.memo("summary", a.version, build)
    assert job.memo("summary", b.version, build) is first and len(built) == 1
    assert job.memo("summary", (99, JobState.DONE), build) is not first and len(built) == 2


def test_the_tally_matches_a_count_of_the_results(sandbox):
    known = sandbox.data.emails(sandbox.main_client_id)[:30]
    job = BulkJob(make_client(sandbox, sandbox.client_api_key), sandbox.main_client_id,
                  addresses_input([*known, "nobody@example.com"])).start()
    assert job.join(30)
    snap = job.snapshot()
    counted = ResultTally.of(snap.results.values())
    assert snap.tally is not None
    assert (snap.tally.looked_up, snap.tally.failed, snap.tally.on_no_list) == (
        counted.looked_up, counted.failed, counted.on_no_list)
    assert snap.tally.by_list == counted.by_list
