"""The bulk run against the sandbox: right answers, one call per address, every row accounted
for under 429s, 5xx HTML and broken JSON, cancel keeps what finished, auth failures stop it."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from cmlib.bulk.control import JobState, RunControl, format_duration
from cmlib.bulk.csv_input import parse_pasted
from cmlib.bulk.engine import BulkLookup, LookupResult, run_lookups
from cmlib.bulk.jobs import BulkJob, JobRegistry, Progress, RateMeter
from cmlib.bulk.matrix import COL_ERROR, COL_STATUS, Status, build_matrix
from cmlib.bulk.validate import validate_table
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import AuthenticationError, ServerError
from cmlib.lookup import LookupService
from cmlib.retry import NO_RETRY, RetryPolicy
from cmlib.sandbox import DEMO_CUSTOMERS
from tests.sandbox_fixtures import make_client

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, max_total_wait=2.0,
                         rate_limit_fallback=0.05)
# Under faults: quick backoff, but an announced X-RateLimit-Reset (about 1 s) is waited out,
# so the outcome does not depend on how busy the machine is.
FAULT_RETRY = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=1.5, max_total_wait=4.0,
                          rate_limit_fallback=0.05)


def client_for(sb, **options) -> CampaignMonitor:
    options.setdefault("max_in_flight", 8)
    return make_client(sb, sb.client_api_key, **options)


def bulk_input(addresses):
    return validate_table(parse_pasted("\n".join(addresses)))


def truth(sb, email):
    return tuple((m.list_id, m.state) for m in sb.data.memberships(sb.main_client_id, email))


def run_job(sb, client, addresses, **kw) -> BulkJob:
    job = BulkJob(client, sb.main_client_id, bulk_input(addresses), **kw).start()
    assert job.join(60), "job did not finish"
    return job


# ---------------------------------------------------------------------------- correct answers, exact cost
def test_membership_run_is_right_and_costs_one_call_per_distinct_address(sandbox):
    known = sandbox.data.emails(sandbox.main_client_id)[:40]
    addresses = [*known, "nobody@example.com", "not an address", known[0].upper(), known[1]]
    sandbox.reset_counts()
    job = run_job(sandbox, client_for(sandbox), addresses)
    assert job.state == JobState.DONE
    snap = job.snapshot()
    assert set(snap.results) == {a.lower() for a in known} | {"nobody@example.com"}
    for email in known:
        res = snap.results[email.lower()]
        assert res.ok and res.memberships == truth(sandbox, email), email
    assert snap.results["nobody@example.com"].on_no_list
    counts = sandbox.request_counts
    assert counts["listsforemail"] == 41  # duplicates and the invalid row cost nothing
    assert counts["lists"] == 1
    assert counts["suppressionlist"] == 1  # one pass over the suppression list per run, not one per address
    assert set(counts) == {"listsforemail", "lists", "suppressionlist"}
    p = job.progress()
    assert (p.done, p.total, p.errors, p.fraction) == (41, 41, 0, 1.0)
    df = build_matrix(snap).set_index("Row")
    assert (df[COL_STATUS] == Status.OK).sum() == 41


def test_list_names_come_from_the_client_including_lists_nobody_is_on(sandbox):
    job = run_job(sandbox, client_for(sandbox), ["nobody@example.com"])
    names = set(job.snapshot().list_names.values())
    assert {lst.name for lst in sandbox.data.lists_of(sandbox.main_client_id)} <= names


def test_activity_matches_the_lookup_page_at_one_history_call_per_membership(sandbox):
    addresses = ["anna@example.com", "ivan.work@example.org", "leaver@example.com", "nobody@example.com"]
    memberships = sum(len(truth(sandbox, a)) for a in addresses)
    sandbox.reset_counts()
    job = run_job(sandbox, client_for(sandbox), addresses, with_activity=True)
    counts = sandbox.request_counts
    assert counts["listsforemail"] == 4
    assert counts["history"] == memberships
    assert counts["campaigns"] == 1
    assert "subscriber" not in counts  # the bulk run skips what the matrix does not show
    profiles = {p.email: p for p in LookupService(client_for(sandbox), sandbox.main_client_id).lookup_many(addresses)}
    snap = job.snapshot()
    for a in addresses:
        act, p = snap.results[a].activity, profiles[a]
        assert act is not None
        assert (act.received, act.opened, act.clicked) == (p.activity.received, p.activity.opened,
                                                          p.activity.clicked)
        if p.campaigns:
            assert act.last_campaign == (p.campaigns[0].subject or p.campaigns[0].name)
            assert act.last_sent == p.campaigns[0].sent
    assert snap.results["anna@example.com"].activity.received > 0
    assert snap.results["nobody@example.com"].activity.received == 0


def test_html_list_name_is_kept_as_data(sandbox):
    vip = DEMO_CUSTOMERS["html_list_name"][0]
    snap = run_job(sandbox, client_for(sandbox), [vip]).snapshot()
    names = {snap.list_names[lid] for lid, _ in snap.results[vip].memberships}
    assert "<img src=x onerror=alert(1)> **VIP** :red[x]" in names


# ---------------------------------------------------------------------------- faults: nothing is lost
@pytest.mark.parametrize("faults", [
    {"rate_limit": "25/s", "rate_limit_headers": True},
    {"rate_limit": "25/s", "rate_limit_headers": False},
    {"error_rate": 0.3},  # 500 with an HTML body
    {"malformed_rate": 0.3},  # 200 with truncated JSON
    {"error_rate": 0.15, "malformed_rate": 0.15, "rate_limit": "40/s", "rate_limit_headers": False},
], ids=["429-headers", "429-no-headers", "5xx-html", "malformed-json", "all-at-once"])
def test_every_row_is_accounted_for_under_faults(sandbox, faults):
    known = sandbox.data.emails(sandbox.main_client_id)[:60]
    addresses = [*known, "bad@@x", known[5].upper()]
    sandbox.set_faults(**faults)
    client = client_for(sandbox, retry=FAULT_RETRY, max_in_flight=8)
    job = run_job(sandbox, client, addresses, repass_delay=1.1)
    sandbox.reset_faults()
    snap = job.snapshot()
    assert len(snap.results) == 60  # one result per distinct valid address, none missing
    for email in known:
        res = snap.results[email.lower()]
        if res.ok:
            assert res.memberships == truth(sandbox, email), email  # never a silently wrong answer
        else:
            assert email in res.error and ("429" in res.error or "500" in res.error or "JSON" in res.error)
    df = build_matrix(snap)
    assert len(df) == len(addresses)
    assert set(df[COL_STATUS]) <= {Status.OK, Status.ERROR, "invalid", "duplicate"}
    # with retries and the final re-pass these fault rates are absorbed completely
    if "rate_limit" not in faults or faults.get("rate_limit_headers", True):
        assert all(r.ok for r in snap.results.values()), [r.error for r in snap.results.values() if not r.ok]


def test_a_lasting_outage_ends_as_explicit_errors_naming_address_and_reason(sandbox):
    sandbox.set_faults(error_rate=1.0)
    job = run_job(sandbox, client_for(sandbox, retry=NO_RETRY), ["anna@example.com", "ivan@example.com", "x@@"],
                  repass_delay=0.05)
    assert job.state == JobState.DONE
    df = build_matrix(job.snapshot()).set_index("Email")
    for email in ("anna@example.com", "ivan@example.com"):
        assert df.loc[email, COL_STATUS] == Status.ERROR
        err = df.loc[email, COL_ERROR]
        assert email in err and "HTML 500" in err and "re-pass" in err
    assert job.progress().errors == 2


class FlakyLookup(BulkLookup):
    """Fails each address's first try with a 503 (an outage longer than the client's retries)."""

    def __init__(self, fail_once=True, auth_fail_on=None):
        self.list_names, self.notes, self.with_activity = {}, [], False
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()
        self.fail_once = fail_once
        self.auth_fail_on = auth_fail_on

    def lookup(self, email, cancel=None):
        with self.lock:
            n = self.calls[email] = self.calls.get(email, 0) + 1
        if email == self.auth_fail_on:
            raise AuthenticationError("Invalid API Key", status=401, code=100, email=email)
        if self.fail_once and n == 1:
            raise ServerError("Service Unavailable", status=503, email=email)
        return LookupResult(email, (("L1", "Active"),))


def test_final_repass_recovers_transient_failures():
    lookup = FlakyLookup()
    emails = [f"u{i}@x.com" for i in range(20)]
    out = list(run_lookups(lookup, emails, lambda e: e, control=RunControl(), max_workers=4, repass_delay=0.01))
    assert sorted(t for t, _ in out) == sorted(emails)
    assert all(r.ok for _, r in out)
    assert all(n == 2 for n in lookup.calls.values())


def test_without_repass_transient_failures_are_reported():
    out = list(run_lookups(FlakyLookup(), ["a@x.com"], lambda e: e, control=RunControl(), repass=False))
    assert len(out) == 1 and not out[0][1].ok and "503" in out[0][1].error and "after retries" in out[0][1].error


def test_authentication_failure_mid_run_stops_and_says_so():
    lookup = FlakyLookup(fail_once=False, auth_fail_on="u3@x.com")
    control = RunControl()
    emails = [f"u{i}@x.com" for i in range(500)]
    out = dict(run_lookups(lookup, emails, lambda e: e, control=control, max_workers=1))
    assert control.fatal == "Code 100: Invalid API Key" and control.stopped
    assert "authentication failed" in out["u3@x.com"].error
    assert len(out) < 50  # it stopped instead of failing 500 times


def test_rejected_key_fails_the_job_before_any_lookup(sandbox):
    bad = CampaignMonitor("wrong-key", sandbox.base_url, options=ClientOptions(retry=NO_RETRY, rate=None), cache=None)
    sandbox.reset_counts()
    job = run_job(sandbox, bad, ["anna@example.com"])
    assert job.state == JobState.FAILED
    snap = job.snapshot()
    assert "Invalid API Key" in (snap.fatal or "")
    assert "authentication failed" in snap.not_run_reason()
    assert sandbox.request_counts["listsforemail"] == 0
    df = build_matrix(snap)
    assert df.loc[0, COL_STATUS] == Status.NOT_RUN and "authentication failed" in df.loc[0, COL_ERROR]


# ---------------------------------------------------------------------------- cancel
def test_cancel_stops_promptly_and_keeps_what_finished(sandbox):
    sandbox.set_faults(latency_ms=100)
    addresses = sandbox.data.emails(sandbox.main_client_id)[:200]
    job = BulkJob(client_for(sandbox, max_in_flight=4), sandbox.main_client_id, bulk_input(addresses)).start()
    assert job.wait(lambda p: p.done >= 8, timeout=30)
    done_at_cancel = job.progress().done
    job.cancel()
    assert job.join(30)
    assert job.state == JobState.CANCELLED
    snap = job.snapshot()
    done = len(snap.results)
    assert all(r.ok for r in snap.results.values())
    # Every lookup that started is kept (the calls made are exactly the results), and besides
    # those already done only the pool's window (4 workers × 4) can have been under way.
    assert sandbox.request_counts["listsforemail"] == done
    assert 8 <= done_at_cancel <= done <= done_at_cancel + 16 < 200
    df = build_matrix(snap)
    assert (df[COL_STATUS] == Status.OK).sum() == done
    not_run = df[df[COL_STATUS] == Status.NOT_RUN]
    assert len(not_run) == 200 - done
    assert set(not_run[COL_ERROR]) == {"Not looked up: the run was cancelled"}


class GatedLookup(BulkLookup):
    """The first ``free`` lookups answer at once; later ones wait for ``gate`` (in flight)."""

    def __init__(self, free=2):
        self.list_names, self.notes, self.with_activity = {}, [], False
        self.started = 0
        self.free = free
        self.gate = threading.Event()
        self.lock = threading.Lock()

    def lookup(self, email, cancel=None):
        with self.lock:
            self.started += 1
            n = self.started
        if n > self.free:
            assert self.gate.wait(30), "the test never opened the gate"
        return LookupResult(email, ())


def test_cancel_does_not_start_tasks_already_queued_in_the_window():
    lookup, control = GatedLookup(free=2), RunControl()
    out = []
    for task, _res in run_lookups(lookup, [f"u{i}@x.com" for i in range(100)], lambda e: e, control=control,
                                  max_workers=2):
        out.append(task)
        if len(out) == 2:
            control.cancel.set()  # two more are in flight (held at the gate), six queued behind them
            lookup.gate.set()
    # only the two in flight finish, and are kept; none of the queued window of 8 starts
    assert lookup.started == len(out) <= 4


def test_cancel_during_activity_keeps_the_memberships(sandbox):
    lookup = BulkLookup(client_for(sandbox), sandbox.main_client_id, with_activity=True)
    cancel = threading.Event()
    cancel.set()
    sandbox.reset_counts()
    res = lookup.lookup("anna@example.com", cancel)
    assert res.ok and res.memberships == truth(sandbox, "anna@example.com")
    assert "cancelled" in res.warning and sandbox.request_counts["history"] == 0


def test_results_are_visible_while_the_job_runs(sandbox):
    sandbox.set_faults(latency_ms=50)
    addresses = sandbox.data.emails(sandbox.main_client_id)[:60]
    job = BulkJob(client_for(sandbox, max_in_flight=2), sandbox.main_client_id, bulk_input(addresses)).start()
    assert job.wait(lambda p: p.done >= 4, timeout=30)
    snap = job.snapshot()
    assert not snap.finished and 4 <= len(snap.results) < 60
    assert "Not looked up yet" in build_matrix(snap)[COL_ERROR].tolist()
    job.cancel()
    assert job.join(30)


# ---------------------------------------------------------------------------- progress and registry
def test_progress_text_rate_and_eta():
    p = Progress(JobState.RUNNING, 1200, 3000, 3, 10.0, 120.0, 15.0)
    assert p.describe() == "1,200 / 3,000 addresses · 120.0/s · about 15 s left · 3 failed"
    assert Progress(JobState.DONE, 10, 10, 0, 1.0, 10.0, 0.0).describe() == "10 / 10 addresses · 10.0/s"
    assert format_duration(75) == "1 min 15 s" and format_duration(3725) == "1 h 02 min"
    assert format_duration(None) == "unknown"


def test_rate_meter_uses_the_recent_window():
    now = [0.0]
    m = RateMeter(window=10.0, clock=lambda: now[0])
    for i in range(101):
        now[0] = i * 0.5
        m.record(i * 10)  # 20 per second
    assert m.rate(1000) == pytest.approx(20.0, rel=0.05)


def test_registry_finds_jobs_and_drops_old_finished_ones(sandbox):
    reg = JobRegistry(max_jobs=2)
    client = client_for(sandbox)
    jobs = [run_job(sandbox, client, ["anna@example.com"]) for _ in range(3)]
    for j in jobs:
        reg.add(j)
    assert reg.get(jobs[0].id) is None and reg.get(jobs[2].id) is jobs[2]
    assert reg.get(None) is None and reg.get("nope") is None
    jobs[2].created_at = datetime.now(UTC) - timedelta(days=2)
    reg.add(jobs[1])
    assert reg.get(jobs[2].id) is None
    reg.remove(jobs[1].id)
    assert len(reg) == 0


# ---------------------------------------------------------------------------- Campaign Monitor goes away
class FakeClock:
    """Monotonic time that moves only when the run waits (thread-safe: several workers wait)."""

    def __init__(self):
        self.t = 5000.0
        self.lock = threading.Lock()
        self.waits = 0
        self._never = threading.Event()

    def __call__(self):
        with self.lock:
            return self.t

    def sleep(self, s):
        with self.lock:
            self.t += s
            self.waits += 1
        self._never.wait(0.001)  # yield to the other workers; no assertion depends on it


def outage_client(sb, clock, threshold=3, interval=10.0) -> CampaignMonitor:
    from cmlib.breaker import CircuitBreaker

    return CampaignMonitor(sb.client_api_key, sb.base_url, cache=None,
                           options=ClientOptions(retry=NO_RETRY, rate=None, read_timeout=5.0, max_in_flight=4),
                           breaker=CircuitBreaker(threshold, interval, clock=clock))


def test_an_outage_mid_run_pauses_it_and_it_resumes_when_the_api_is_back(sandbox):
    known = sandbox.data.emails(sandbox.main_client_id)[:60]
    clock = FakeClock()
    client = outage_client(sandbox, clock)
    lookup = BulkLookup(client, sandbox.main_client_id)
    events = []

    def sleep(s):
        clock.sleep(s)
        if clock.waits >= 40 and sandbox.faults.down:  # it has waited a while (fake time): the API is back
            sandbox.set_faults(down=False)

    control = RunControl(patience=600, clock=clock, sleep=sleep,
                         on_pause=lambda p: events.append(("pause", p)), on_resume=lambda: events.append("resume"))
    out = {}
    for email, res in run_lookups(lookup, known, lambda e: e, control=control, max_workers=4, repass_delay=0):
        out[email] = res
        if len(out) == 10:
            sandbox.set_faults(down=True)  # killed mid-run
    assert sorted(out) == sorted(known)  # every row accounted for
    assert [e for e, r in out.items() if not r.ok] == []  # none failed because of the outage
    for email in known:
        assert out[email].memberships == truth(sandbox, email)
    assert events[0][0] == "pause" and events[-1] == "resume"
    pause = events[0][1]
    assert pause.since is not None and pause.message(50).startswith("Campaign Monitor is not answering since ")
    assert control.pause is None and control.gave_up is None and not control.stopped
    assert client.breaker.status().is_open is False


def test_when_patience_runs_out_the_rest_is_not_looked_up_never_failed(sandbox):
    addresses = sandbox.data.emails(sandbox.main_client_id)[:30]
    clock = FakeClock()
    client = outage_client(sandbox, clock)
    sandbox.set_faults(down=True)
    sandbox.reset_counts()
    job = BulkJob(client, sandbox.main_client_id, bulk_input(addresses), patience=60, clock=clock,
                  sleep=clock.sleep, repass_delay=0).start()
    assert job.join(30)
    assert job.state == JobState.FAILED
    snap = job.snapshot()
    assert snap.gave_up.startswith("Campaign Monitor is not answering since ")
    assert "the run stopped after waiting 1 min 00 s" in snap.gave_up
    assert job.progress().errors == 0 and not any(not r.ok for r in snap.results.values())
    df = build_matrix(snap)
    assert (df[COL_STATUS] == Status.NOT_RUN).all()
    assert all(e.startswith("Not looked up: Campaign Monitor is not answering since ") for e in df[COL_ERROR])
    # while it waited, only the probes went out: one per interval, not a retry storm
    assert sandbox.requests_served <= 20


def test_the_job_says_it_is_paused_and_how_many_wait(sandbox):
    addresses = sandbox.data.emails(sandbox.main_client_id)[:12]
    clock = FakeClock()
    client = outage_client(sandbox, clock, threshold=3, interval=3600)
    sandbox.set_faults(down=True)
    gate = threading.Event()

    def sleep(s):
        gate.wait(10)  # hold the pause until the test has looked at it
        clock.sleep(s)

    job = BulkJob(client, sandbox.main_client_id, bulk_input(addresses), patience=None, clock=clock,
                  sleep=sleep, repass_delay=0).start()
    assert job.wait(lambda p: p.paused is not None, timeout=30)
    p = job.progress()
    assert p.paused is not None
    assert p.pause_message().startswith("Campaign Monitor is not answering since ")
    assert f"paused, {p.waiting} addresses waiting" in p.pause_message() and p.waiting == 12 - p.done
    assert "paused: Campaign Monitor is not answering" in p.describe() and "left" not in p.describe()
    job.cancel()
    gate.set()
    assert job.join(10) and job.state == JobState.CANCELLED
    assert job.progress().errors == 0  # the failures that opened the breaker are the outage's, not failed rows


def test_patience_from_the_environment():
    from cmlib.bulk.control import DEFAULT_PATIENCE, patience_from_env

    assert patience_from_env({}) == DEFAULT_PATIENCE == 300
    assert patience_from_env({"CM_BULK_PATIENCE": "45"}) == 45
    assert patience_from_env({"CM_BULK_PATIENCE": "off"}) is None
    assert patience_from_env({"CM_BULK_PATIENCE": "soon"}) == DEFAULT_PATIENCE
    assert patience_from_env({"CM_BULK_PATIENCE": "-5"}) == 0
