"""Each fault knob of the sandbox, as seen on the wire and by our client."""
from __future__ import annotations

import threading

import pytest
import requests

from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import ServerError, TimeoutError, UnexpectedResponseError
from cmlib.retry import RetryPolicy
from cmlib.sandbox import DEMO_CUSTOMERS, Faults, Sandbox
from cmlib.sandbox.faults import FaultInjector
from tests.sandbox_fixtures import make_client, make_sandbox

RL_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


def _news(sb: Sandbox) -> str:
    return sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id


def test_knobs_settable_at_start_and_at_run_time():
    sb = make_sandbox(latency_ms=5, jitter_ms=2, rate_limit="50/s", rate_limit_headers=False, error_rate=0.1,
                      malformed_rate=0.2, hang_rate=0.3, hang_seconds=1, fail_list_ids=["abc"])
    f = sb.faults
    assert (f.latency_ms, f.jitter_ms, f.rate_limit, f.rate_limit_headers) == (5, 2, 50.0, False)
    assert (f.error_rate, f.malformed_rate, f.hang_rate, f.hang_seconds, f.fail_list_ids) == (0.1, 0.2, 0.3, 1, {"abc"})
    sb.faults.rate_limit = "3000/min"
    assert sb.faults.rate_limit == 50.0
    sb.set_faults(latency_ms=100, fail_list_ids={"x", "y"})
    assert sb.faults.latency_ms == 100 and sb.faults.fail_list_ids == {"x", "y"}
    with pytest.raises(TypeError, match="unknown fault knob"):
        sb.set_faults(latncy_ms=1)
    with pytest.raises(ValueError, match="error_rate must be between 0 and 1"):
        sb.set_faults(error_rate=1.5)
    with pytest.raises(ValueError, match="rate limit must look like"):
        sb.faults.rate_limit = "lots"
    sb.reset_faults()
    assert sb.faults == Faults()
    sb.faults = Faults(latency_ms=7)
    assert sb.faults.latency_ms == 7


class RecordingStop(threading.Event):
    """The server's stop event, which is what it waits on for latency: records each wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(0)  # answer at once: the test checks the hold, not the wall clock


def test_latency_holds_every_answer(sandbox, raw):
    sandbox.faults.latency_ms = 100
    stop = sandbox._ctx.stopping = RecordingStop()
    assert raw("GET", "/clients.json").status_code == 200
    assert raw("GET", "/clients.json").status_code == 200
    assert stop.waits == [pytest.approx(0.1), pytest.approx(0.1)]


def test_jitter_adds_a_varying_delay_within_its_bound():
    injector = FaultInjector(Faults(latency_ms=100, jitter_ms=60), seed=3)
    delays = [injector.delay_seconds() for _ in range(50)]
    assert all(0.1 <= d < 0.16 for d in delays)
    assert len(set(delays)) == 50  # it varies
    again = FaultInjector(Faults(jitter_ms=60), seed=3)
    assert [again.delay_seconds() for _ in range(3)] == pytest.approx([d - 0.1 for d in delays[:3]])  # seeded


class FakeClock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_with_headers_per_key():
    clock = FakeClock()
    with make_sandbox(rate_limit="3/s", rate_clock=clock) as sb, requests.Session() as http:
        def get(key: str = sb.account_api_key) -> requests.Response:
            return http.get(sb.base_url + "/clients.json", auth=(key, "x"), timeout=5)

        answers = [get() for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
        limited = answers[-1]
        assert limited.json() == {"Code": 429, "Message": "Rate limit exceeded"}
        assert limited.headers["X-RateLimit-Limit"] == "3"
        # Seconds until the window resets (not a timestamp): the whole 1 s window, as no time passed.
        assert limited.headers["X-RateLimit-Reset"] == "1"
        assert "Retry-After" not in limited.headers
        assert get(sb.client_api_key).status_code == 200  # another key has its own budget
        clock.now += 0.6
        refused = get()
        assert (refused.status_code, refused.headers["X-RateLimit-Reset"]) == (429, "1")  # ceil(0.4)
        clock.now += 0.4  # the window is over
        assert get().status_code == 200
        assert sb.status_counts[429] == 2


def test_rate_limit_without_headers(sandbox, raw):
    sandbox.set_faults(rate_limit=1, rate_limit_headers=False)
    ok, limited = raw("GET", "/clients.json"), raw("GET", "/clients.json")
    assert (ok.status_code, limited.status_code) == (200, 429)
    assert not any(h in r.headers for r in (ok, limited) for h in RL_HEADERS)
    assert limited.json()["Code"] == 429


def test_our_client_rides_out_429s_with_the_reset_header():
    """One clock for the sandbox's windows and the client's waits: the client's one wait of the
    reset header's second (plus its spread) is exactly what reopens the window."""
    clock = FakeClock()
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    with make_sandbox(rate_limit="4/s", rate_clock=clock) as sb:
        options = ClientOptions(retry=RetryPolicy(max_attempts=6, base_delay=0.05, max_total_wait=10), rate=None,
                                read_timeout=5.0)
        client = CampaignMonitor(sb.account_api_key, sb.base_url, options=options, cache=None, sleep=sleep,
                                 clock=clock, rng=lambda: 0.5)
        email = DEMO_CUSTOMERS["with_campaigns"][0]
        try:
            results = [client.lists_for_email(sb.main_client_id, email) for _ in range(8)]
        finally:
            client.close()
        assert all(len(r) == 3 for r in results)
        assert (sb.status_counts[429], sb.status_counts[200]) == (1, 8)
        assert slept == [pytest.approx(1.025)]  # X-RateLimit-Reset 1 s + 0.5 x base_delay


def test_html_500(sandbox, raw):
    sandbox.faults.error_rate = 1.0
    r = raw("GET", "/clients.json")
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("text/html")
    assert r.text.lstrip().startswith("<!DOCTYPE html>")
    with pytest.raises(ServerError) as exc:
        make_client(sandbox).clients()
    assert exc.value.status == 500 and exc.value.code is None and "HTML" in exc.value.message
    r = raw("POST", f"/subscribers/{_news(sandbox)}.json",
            json={"EmailAddress": "w@example.com", "ConsentToTrack": "Yes"})
    assert r.status_code == 500 and sandbox.data.state_of(_news(sandbox), "w@example.com") is None  # nothing written


def test_malformed_json(sandbox, raw):
    sandbox.faults.malformed_rate = 1.0
    r = raw("GET", "/clients.json")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    with pytest.raises(requests.JSONDecodeError):
        r.json()
    assert int(r.headers["Content-Length"]) == len(r.content) > 0
    with pytest.raises(UnexpectedResponseError) as exc:
        make_client(sandbox).lists(sandbox.main_client_id)
    assert exc.value.status == 200
    # A write still happens even when its answer is broken, as with a real truncated response.
    news = _news(sandbox)
    added = make_client(sandbox).add_subscriber(news, "broken@example.com", consent_to_track="Yes")
    assert added == "broken@example.com"
    assert sandbox.data.state_of(news, "broken@example.com") == "Active"


def test_hang_past_the_client_timeout(sandbox, raw):
    sandbox.set_faults(hang_rate=1.0, hang_seconds=3)
    client = make_client(sandbox, read_timeout=0.3)
    # The held request is answered after 3 s; a TimeoutError means the client's own 0.3 s ended it.
    with pytest.raises(TimeoutError, match=r"read timeout after 0\.3s"):
        client.clients()
    with pytest.raises(requests.exceptions.ReadTimeout):
        raw("GET", "/clients.json", timeout=0.2)
    sandbox.faults.hang_rate = 0.0
    assert client.clients()  # the server is still fine


def test_failing_list_ids(sandbox, raw):
    news = _news(sandbox)
    offers = sandbox.data.list_by_name(sandbox.main_client_id, "Offers").list_id
    sandbox.faults.fail_list_ids.add(news)
    email = DEMO_CUSTOMERS["with_campaigns"][0]
    for method, path, kw in [
        ("GET", f"/lists/{news}.json", {}),
        ("GET", f"/subscribers/{news}.json", {"params": {"email": email}}),
        ("GET", f"/subscribers/{news}/history.json", {"params": {"email": email}}),
        ("POST", f"/subscribers/{news}.json", {"json": {"EmailAddress": "z@example.com", "ConsentToTrack": "Yes"}}),
        ("POST", f"/subscribers/{news}/unsubscribe.json", {"json": {"EmailAddress": email}}),
        ("DELETE", f"/subscribers/{news}.json", {"params": {"email": email}}),
    ]:
        r = raw(method, path, **kw)
        assert r.status_code == 500 and r.json() == {"Code": 500, "Message": "Sorry, we've run into a problem"}, path
    assert sandbox.data.state_of(news, email) == "Active" and sandbox.data.state_of(news, "z@example.com") is None
    assert raw("GET", f"/subscribers/{offers}.json", params={"email": email}).status_code == 200
    rows = raw("GET", f"/clients/{sandbox.main_client_id}/listsforemail.json", params={"email": email})
    assert rows.status_code == 200 and len(rows.json()) == 3


def test_faults_are_reproducible_for_a_seed():
    def statuses(fault_seed: int) -> list[int]:
        with make_sandbox(error_rate=0.5, malformed_rate=0.3, fault_seed=fault_seed) as sb:
            s = requests.Session()
            out = []
            for _ in range(30):
                r = s.get(sb.base_url + "/clients.json", auth=(sb.account_api_key, "x"), timeout=5)
                ok_json = True
                try:
                    r.json()
                except ValueError:
                    ok_json = False
                out.append(r.status_code * 10 + ok_json)
            return out

    first = statuses(11)
    assert first == statuses(11)
    assert first != statuses(12)
    assert {v // 10 for v in first} == {200, 500}


def test_faulted_requests_are_counted(sandbox, raw):
    sandbox.faults.error_rate = 1.0
    for _ in range(3):
        raw("GET", f"/clients/{sandbox.main_client_id}/lists.json")
    assert sandbox.requests_served == 3 and sandbox.request_counts["lists"] == 3 and sandbox.status_counts[500] == 3
