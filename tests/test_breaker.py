"""The circuit breaker (cmlib.breaker) on a fake clock, and the client with it: fail fast while
Campaign Monitor is not answering, probe, resume; never trip on HTTP answers (429, HTML 500,
broken JSON); one breaker per credential; an interactive deadline across retries."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests
import responses

from cmlib import breaker as breaker_mod
from cmlib.breaker import (
    BreakerState,
    CircuitBreaker,
    breaker_for,
    credential_fingerprint,
    not_answering,
)
from cmlib.client import CampaignMonitor, ClientOptions, call_deadline
from cmlib.errors import ApiUnavailableError, ServerError, TimeoutError, TransportError, UnexpectedResponseError
from cmlib.retry import NO_RETRY, RetryPolicy

BASE = "https://api.test/api/v3.3"
KEY = "sekret-api-key-1234"
CID = "4a397ccaaa55eb4e6aa1221e1e2d7122"
DOWN_AT = datetime(2025, 6, 2, 14, 2, 30, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s


@pytest.fixture
def fc() -> FakeClock:
    return FakeClock()


def breaker(fc: FakeClock, threshold: int = 3, interval: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(threshold, interval, clock=fc, now=lambda: DOWN_AT)


# ---------------------------------------------------------------- the state machine
def test_opens_after_threshold_failures_in_a_row_then_refuses(fc):
    b = breaker(fc)
    for _ in range(2):
        assert b.acquire().granted
        b.record_failure("connection failed: ConnectionError")
    assert b.state is BreakerState.CLOSED and b.check() is None
    assert b.acquire().granted
    b.record_failure("read timeout after 20s")
    assert b.state is BreakerState.OPEN
    refused = b.acquire()
    assert not refused.granted and refused.status is not None
    assert refused.status.down_since == DOWN_AT and refused.status.next_probe_in == 10.0
    assert refused.status.describe() == "Campaign Monitor is not answering since 14:02 UTC (read timeout after 20s)"
    assert b.check() is not None


def test_any_answer_resets_the_count_so_scattered_failures_never_open_it(fc):
    b = breaker(fc)
    for _ in range(10):
        b.record_failure("connection failed: ConnectionError")
        b.record_failure("connection failed: ConnectionError")
        b.record_answer(b.acquire())  # a 200, a 429 or a 500: the API is reachable
    assert b.state is BreakerState.CLOSED and b.status().consecutive_failures == 0


def test_half_open_lets_exactly_one_probe_through_and_an_answer_closes_it(fc):
    b = breaker(fc)
    for _ in range(3):
        b.record_failure("connection failed: ConnectionError")
    fc.advance(9.9)
    assert not b.acquire().granted and b.seconds_until_probe() == pytest.approx(0.1)
    fc.advance(0.1)
    assert b.seconds_until_probe() == 0
    probe = b.acquire()
    assert probe.granted and probe.probe and b.state is BreakerState.HALF_OPEN
    other = b.acquire()
    assert not other.granted  # everyone else still fails fast while the probe is out
    assert b.seconds_until_probe() == 10.0
    b.record_answer(probe)
    assert b.state is BreakerState.CLOSED and b.acquire().granted and b.seconds_until_probe() is None
    assert b.status().down_since is None


def test_a_failed_probe_reopens_for_another_interval(fc):
    b = breaker(fc)
    for _ in range(3):
        b.record_failure("connection failed: ConnectionError")
    fc.advance(10)
    probe = b.acquire()
    fc.advance(2)
    b.record_failure("read timeout after 2s", probe)
    assert b.state is BreakerState.OPEN and b.seconds_until_probe() == 10.0
    assert b.status().down_since == DOWN_AT  # still the moment it stopped answering
    fc.advance(10)
    assert b.acquire().probe


def test_an_old_call_failing_while_the_probe_is_out_does_not_steal_the_decision(fc):
    b = breaker(fc)
    for _ in range(3):
        b.record_failure("connection failed: ConnectionError")
    fc.advance(10)
    probe = b.acquire()
    b.record_failure("read timeout after 20s")  # sent before the breaker opened
    assert b.state is BreakerState.HALF_OPEN
    b.record_answer(probe)
    assert b.state is BreakerState.CLOSED


def test_release_hands_the_probe_back(fc):
    b = breaker(fc)
    for _ in range(3):
        b.record_failure("connection failed: ConnectionError")
    fc.advance(10)
    probe = b.acquire()
    b.release(probe)  # e.g. the caller was interrupted before anything was learnt
    assert b.state is BreakerState.OPEN and b.acquire().probe


def test_not_answering_message():
    assert not_answering(None) == "Campaign Monitor is not answering"
    assert not_answering(DOWN_AT) == "Campaign Monitor is not answering since 14:02 UTC"


def test_one_breaker_per_credential_keyed_by_a_hash_never_the_key():
    a = breaker_for(BASE, KEY)
    assert breaker_for(BASE + "/", KEY) is a
    assert breaker_for(BASE, "another-key") is not a
    assert breaker_for("https://other.test/api/v3.3", KEY) is not a
    assert all(KEY not in k for k in breaker_mod._registry)
    assert credential_fingerprint(BASE, KEY) in breaker_mod._registry
    c1 = CampaignMonitor(KEY, BASE, cache=None)
    c2 = CampaignMonitor(KEY, BASE, options=ClientOptions(rate=None), cache=None)
    assert c1.breaker is c2.breaker is a
    assert KEY not in repr(a.status())


# ---------------------------------------------------------------- the client with a breaker
def client(fc: FakeClock, b: CircuitBreaker | None = None, **opts) -> CampaignMonitor:
    opts.setdefault("retry", NO_RETRY)
    return CampaignMonitor(KEY, BASE, options=ClientOptions(rate=None, **opts), cache=None, sleep=fc.sleep,
                           clock=fc, rng=lambda: 0.5, breaker=b if b is not None else breaker(fc))


def dead(url: str) -> None:
    responses.get(url, body=requests.exceptions.ConnectionError("refused"))


@responses.activate
def test_connection_failures_open_it_and_then_nothing_is_sent(fc):
    c = client(fc)
    dead(f"{BASE}/clients.json")
    for _ in range(3):
        with pytest.raises(TransportError) as exc:
            c.clients()
        assert not isinstance(exc.value, ApiUnavailableError)
    sent = len(responses.calls)
    with pytest.raises(ApiUnavailableError) as exc:
        c.clients()
    assert len(responses.calls) == sent  # failed fast: no request at all
    assert exc.value.reason.startswith("Campaign Monitor is not answering since 14:02 UTC")
    assert "nothing was sent" in exc.value.reason and exc.value.since == DOWN_AT
    assert exc.value.endpoint == "GET /clients.json"
    assert KEY not in str(exc.value) and KEY not in repr(exc.value)
    # a write is refused the same way, before anything goes out: it certainly did not happen
    with pytest.raises(ApiUnavailableError):
        c.unsubscribe("L1", "a@example.com")
    assert len(responses.calls) == sent


@responses.activate
def test_it_probes_after_the_interval_and_resumes_by_itself(fc):
    c = client(fc)
    dead(f"{BASE}/clients.json")
    for _ in range(3):
        with pytest.raises(TransportError):
            c.clients()
    responses.replace(responses.GET, f"{BASE}/clients.json", json=[{"ClientID": CID, "Name": "Acme"}])
    with pytest.raises(ApiUnavailableError):
        c.clients()
    fc.advance(10)
    assert [r.client_id for r in c.clients()] == [CID]  # the probe is answered: closed again
    assert c.breaker.state is BreakerState.CLOSED
    assert c.clients()


@responses.activate
def test_timeouts_count_as_failures(fc):
    c = client(fc)
    responses.get(f"{BASE}/clients.json", body=requests.exceptions.ReadTimeout("slow"))
    for _ in range(3):
        with pytest.raises(TimeoutError):
            c.clients()
    with pytest.raises(ApiUnavailableError) as exc:
        c.clients()
    assert "read timeout" in exc.value.reason


@responses.activate
@pytest.mark.parametrize("answer", [
    {"status": 429, "json": {"Code": 429, "Message": "Rate limit exceeded"}, "headers": {"X-RateLimit-Reset": "1"}},
    {"status": 500, "body": "<html><body>Internal Server Error</body></html>", "content_type": "text/html"},
    {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"},
    {"status": 200, "body": '{"broken": ', "content_type": "application/json"},
], ids=["429", "html-500", "html-502", "malformed"])
def test_http_answers_never_trip_it(fc, answer):
    c = client(fc, retry=RetryPolicy(max_attempts=3, base_delay=0.01, rate_limit_fallback=0.01))
    responses.get(f"{BASE}/clients.json", **answer)
    for _ in range(10):
        with pytest.raises((ServerError, UnexpectedResponseError, Exception)) as exc:
            c.clients()
        assert not isinstance(exc.value, TransportError)
    assert c.breaker.state is BreakerState.CLOSED
    assert len(responses.calls) == 30  # every try was sent


@responses.activate
def test_an_open_breaker_is_not_retried_with_backoff(fc):
    c = client(fc, retry=RetryPolicy(max_attempts=5, base_delay=1.0))
    dead(f"{BASE}/clients.json")
    with pytest.raises(TransportError):
        c.clients()  # 3 failures open it; the 4th try is refused and ends the call at once
    assert len(responses.calls) == 3
    assert len(fc.sleeps) == 2  # backoff only between the real tries
    with pytest.raises(ApiUnavailableError):
        c.clients()
    assert len(fc.sleeps) == 2


@responses.activate
def test_every_client_of_the_credential_learns_at_once(fc):
    shared = breaker(fc)
    a, b = client(fc, shared), client(fc, shared)
    dead(f"{BASE}/clients.json")
    for _ in range(3):
        with pytest.raises(TransportError):
            a.clients()
    with pytest.raises(ApiUnavailableError):
        b.clients()


# ---------------------------------------------------------------- the interactive deadline
class HangingSession(requests.Session):
    """Every request "hangs" for its whole read timeout on the fake clock, then times out."""

    def __init__(self, fc: FakeClock) -> None:
        super().__init__()
        self.fc = fc
        self.timeouts: list[float] = []

    def request(self, method, url, timeout=None, **kw):  # type: ignore[override]  # a fake: records timeouts only
        self.timeouts.append(timeout[1])
        self.fc.advance(timeout[1])
        raise requests.exceptions.ReadTimeout("no answer")


def test_a_deadline_bounds_every_retry_and_says_why(fc):
    session = HangingSession(fc)
    c = CampaignMonitor(KEY, BASE, options=ClientOptions(rate=None, read_timeout=20.0, retry=RetryPolicy()),
                        cache=None, session=session, sleep=fc.sleep, clock=fc, rng=lambda: 0.5,
                        breaker=breaker(fc, threshold=100))
    start = fc()
    with call_deadline(25, clock=fc), pytest.raises(TimeoutError) as exc:
        c.clients()
    assert fc() - start <= 25.0
    assert session.timeouts[0] == 20.0 and session.timeouts[-1] < 20.0  # the last try gets what is left
    assert exc.value.reason.startswith("no answer within the 25 s allowed (read timeout after")
    # without a deadline the same call would take read timeout × attempts plus backoff
    fc.t, session.timeouts = 0.0, []
    with pytest.raises(TimeoutError):
        c.clients()
    assert fc() > 100 and len(session.timeouts) == 5


def test_an_outer_earlier_deadline_wins(fc):
    with call_deadline(5, clock=fc) as outer:
        with call_deadline(30, clock=fc) as inner:
            assert inner is outer
        with call_deadline(None) as same:
            assert same is outer


@responses.activate
def test_a_call_that_starts_after_its_deadline_is_not_sent(fc):
    c = client(fc)
    responses.get(f"{BASE}/clients.json", json=[])
    with call_deadline(5, clock=fc):
        fc.advance(6)
        with pytest.raises(TimeoutError) as exc:
            c.clients()
    assert len(responses.calls) == 0 and "not sent: the time was up" in exc.value.reason
    assert c.breaker.state is BreakerState.CLOSED  # nothing was learnt about the API
