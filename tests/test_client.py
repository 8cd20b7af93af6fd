"""The API client against recorded bodies (responses): every call, every error, retries."""
from __future__ import annotations

import base64
import json
import logging

import pytest
import requests
import responses
from responses import matchers

from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import (
    APIError,
    AuthenticationError,
    InvalidEmailError,
    NotInListError,
    RateLimitedError,
    ServerError,
    SubscriberStateError,
    SuppressedError,
    TimeoutError,
    TransportError,
    UnexpectedResponseError,
)
from cmlib.retry import RetryPolicy
from tests.fixtures import fixture, fixture_text

BASE = "https://api.test/api/v3.3"
KEY = "sekret-api-key-1234"
CID = "4a397ccaaa55eb4e6aa1221e1e2d7122"
LID = "ab4a2b57c7c8f1ba62f898a1af1a575b"


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self):
        return self.now

    def sleep(self, s):
        self.sleeps.append(s)
        self.now += s


@pytest.fixture
def ft():
    return FakeTime()


def make(ft, **opts):
    o = ClientOptions(rate=None, **opts)
    return CampaignMonitor(KEY, BASE, options=o, cache=None, sleep=ft.sleep, clock=ft.clock, rng=lambda: 0.5)


def err_body(code, msg):
    return {"Code": code, "Message": msg}


# ---------------------------------------------------------------- every read
@responses.activate
def test_every_read_call_parses_fixture(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=fixture("clients.json"))
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    responses.get(f"{BASE}/clients/{CID}/lists.json", json=fixture("lists.json"))
    responses.get(f"{BASE}/lists/{LID}.json", json=fixture("list_details.json"))
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=fixture("listsforemail.json"))
    responses.get(f"{BASE}/subscribers/{LID}.json", json=fixture("subscriber_details_with_tracking_preference.json"))
    responses.get(f"{BASE}/subscribers/{LID}/history.json", json=fixture("subscriber_history.json"))
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json=fixture("campaigns.json"))
    responses.get(f"{BASE}/clients/{CID}/suppressionlist.json", json=fixture("suppressionlist.json"))

    assert [x.client_id for x in c.clients()][1] == "a206def0582eec7dae47d937a4109cb2"
    assert c.client_details(CID).time_zone.startswith("(GMT+10:00)")
    assert len(c.lists(CID)) == 2
    assert c.list_details(LID).unsubscribe_setting == "AllClientLists"
    assert c.lists_for_email(CID, "subscriber@example.com")[1].state == "Unsubscribed"
    assert c.subscriber(LID, "subscriber@example.com").consent_to_track == "Yes"
    assert c.history(LID, "subscriber@example.com")[0].clicks == 3
    assert c.campaigns(CID).total_number_of_records == 49
    assert len(c.suppression_list(CID).results) == 5
    assert c.is_suppressed(CID, "SUBSCRIBER@example.com").reason == "Unsubscribed"


@responses.activate
def test_basic_auth_with_key_and_x(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=[])
    c.clients()
    sent = responses.calls[0].request.headers["Authorization"]
    assert sent == "Basic " + base64.b64encode(f"{KEY}:x".encode()).decode()


@responses.activate
def test_plus_address_is_url_encoded(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    c.lists_for_email(CID, "a+b@x.com")
    assert "email=a%2Bb%40x.com" in responses.calls[0].request.url


@responses.activate
def test_subscriber_asks_for_tracking_preference(ft):
    c = make(ft)
    responses.get(f"{BASE}/subscribers/{LID}.json", json=fixture("subscriber_details.json"),
                  match=[matchers.query_param_matcher({"email": "s@x.com", "includetrackingpreference": "true"})])
    detail = c.subscriber(LID, "s@x.com")  # the mock answers only when both parameters are sent
    assert len(responses.calls) == 1
    assert detail.email == "subscriber@example.com" and detail.state == "Active"


@responses.activate
def test_campaign_pages_are_followed(ft):
    c = make(ft)
    p1 = fixture("campaigns.json") | {"NumberOfPages": 2, "PageNumber": 1}
    p2 = fixture("campaigns.json") | {"NumberOfPages": 2, "PageNumber": 2}
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json=p1,
                  match=[matchers.query_param_matcher({"page": "1"}, strict_match=False)])
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json=p2,
                  match=[matchers.query_param_matcher({"page": "2"}, strict_match=False)])
    assert len(list(c.iter_campaigns(CID))) == 4


# ---------------------------------------------------------------- writes
@responses.activate
def test_add_subscriber_body_and_result(ft):
    c = make(ft)
    responses.post(f"{BASE}/subscribers/{LID}.json", body=fixture_text("add_subscriber.json"), status=201)
    added = c.add_subscriber(LID, "subscriber@example.com", resubscribe=True, consent_to_track="Yes")
    assert added == "subscriber@example.com"
    body = json.loads(responses.calls[0].request.body)
    assert body["Resubscribe"] is True and body["ConsentToTrack"] == "Yes"
    assert body["EmailAddress"] == "subscriber@example.com"


def test_add_subscriber_rejects_bad_consent(ft):
    with pytest.raises(ValueError, match="consent_to_track must be one of"):
        make(ft).add_subscriber(LID, "a@x.com", consent_to_track="maybe")


@responses.activate
def test_unsubscribe_and_delete(ft):
    c = make(ft)
    responses.post(f"{BASE}/subscribers/{LID}/unsubscribe.json", body="")
    responses.delete(f"{BASE}/subscribers/{LID}.json", body="")
    c.unsubscribe(LID, "a@x.com")
    c.delete_subscriber(LID, "a+b@x.com")
    assert json.loads(responses.calls[0].request.body) == {"EmailAddress": "a@x.com"}
    assert "email=a%2Bb%40x.com" in responses.calls[1].request.url


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(("status", "code", "cls"), [
    (401, 50, AuthenticationError), (401, 100, AuthenticationError), (401, 102, AuthenticationError),
    (401, 120, AuthenticationError), (401, 121, AuthenticationError), (401, 122, AuthenticationError),
    (400, 1, InvalidEmailError), (400, 203, NotInListError), (400, 204, SuppressedError),
    (400, 205, SubscriberStateError), (400, 206, SubscriberStateError), (400, 207, SubscriberStateError),
    (400, 214, APIError), (400, 215, APIError), (400, 801, APIError), (418, 418, APIError),
])
@responses.activate
def test_error_codes_map_to_classes(ft, status, code, cls):
    c = make(ft)
    responses.get(f"{BASE}/subscribers/{LID}.json", json=err_body(code, "msg"), status=status)
    with pytest.raises(cls) as ei:
        c.subscriber(LID, "a@x.com")
    e = ei.value
    assert (e.status, e.code, e.message) == (status, code, "msg")
    assert e.endpoint == f"GET /subscribers/{LID}.json"
    assert e.email == "a@x.com" and e.list_id == LID
    assert KEY not in str(e) and KEY not in repr(e)


@responses.activate
def test_state_error_names_state(ft):
    c = make(ft)
    responses.post(f"{BASE}/subscribers/{LID}.json", json=err_body(206, "Unsubscribed"), status=400)
    with pytest.raises(SubscriberStateError) as ei:
        c.add_subscriber(LID, "a@x.com")
    assert ei.value.state == "Unsubscribed"


@responses.activate
def test_expired_oauth_fixture(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=fixture("expired_oauth_token_api_error.json"), status=401)
    with pytest.raises(AuthenticationError) as ei:
        c.clients()
    assert ei.value.code == 121 and "Expired" in ei.value.reason


@responses.activate
def test_html_502_from_proxy_is_server_error_after_retries(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", body="<html><body>502 Bad Gateway</body></html>",
                  status=502, content_type="text/html")
    with pytest.raises(ServerError) as ei:
        c.clients()
    assert ei.value.status == 502 and "HTML" in ei.value.message
    assert len(responses.calls) == 5  # bounded retries
    assert len(ft.sleeps) == 4


@responses.activate
def test_server_500_fixture(ft):
    c = make(ft, retry=RetryPolicy(max_attempts=1))
    responses.get(f"{BASE}/clients.json", json=fixture("sample_server_error.json"), status=500)
    with pytest.raises(ServerError) as ei:
        c.clients()
    assert ei.value.code == 500


@responses.activate
def test_malformed_json_and_empty_404(ft):
    c = make(ft, retry=RetryPolicy(max_attempts=1))
    responses.get(f"{BASE}/clients.json", body='[{"ClientID": ', status=200)
    with pytest.raises(UnexpectedResponseError, match="malformed JSON"):
        c.clients()
    responses.get(f"{BASE}/lists/nope.json", body="", status=404)
    with pytest.raises(UnexpectedResponseError, match="empty 404"):
        c.list_details("nope")


@responses.activate
def test_custom_error_code_kept(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=fixture("custom_api_error.json"), status=400)
    with pytest.raises(APIError) as ei:
        c.clients()
    assert ei.value.code == 98798 and ei.value.reason == "Code 98798: A crazy API error"


@responses.activate
def test_timeout_and_connection_reset_are_transport_errors(ft):
    c = make(ft, retry=RetryPolicy(max_attempts=1))
    responses.get(f"{BASE}/clients.json", body=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(TimeoutError, match="read timeout"):
        c.clients()
    responses.replace(responses.GET, f"{BASE}/clients.json", body=requests.exceptions.ConnectionError("reset"))
    with pytest.raises(TransportError, match="connection failed"):
        c.clients()


def test_timeouts_are_passed_on_every_request(ft, monkeypatch):
    c = make(ft, connect_timeout=1.5, read_timeout=7.0)
    seen = {}

    def fake_request(method, url, **kw):
        seen.update(kw)
        raise requests.exceptions.ConnectTimeout()

    monkeypatch.setattr(c.session, "request", fake_request)
    with pytest.raises(TimeoutError):
        c.clients()
    assert seen["timeout"] == (1.5, 7.0)


# ---------------------------------------------------------------- retries
@responses.activate
def test_429_honours_reset_header_then_succeeds(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=err_body(429, "Rate limit"), status=429,
                  headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"})
    responses.get(f"{BASE}/clients.json", json=[])
    assert c.clients() == []
    assert ft.sleeps[0] == pytest.approx(3.25)  # reset + jitter (rng=0.5 * base 0.5)
    assert c.last_rate_limit.rate_limit_reset == 3


@responses.activate
def test_429_without_headers_backs_off_and_gives_up_with_error(ft):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=err_body(429, "Rate limit"), status=429)
    with pytest.raises(RateLimitedError) as ei:
        c.clients()
    assert ei.value.reset_seconds is None and ei.value.status == 429
    assert len(responses.calls) == 5
    assert all(s >= 1.0 for s in ft.sleeps)  # never hammer right back
    assert sum(ft.sleeps) <= RetryPolicy().max_total_wait


@responses.activate
def test_backoff_grows_exponentially_and_total_wait_is_capped(ft):
    c = make(ft, retry=RetryPolicy(max_attempts=10, base_delay=1, max_delay=100, max_total_wait=10))
    responses.get(f"{BASE}/clients.json", json=err_body(500, "boom"), status=500)
    with pytest.raises(ServerError):
        c.clients()
    # full jitter with rng=0.5: 0.5, 1, 2, 4 ... stops before exceeding 10s in total
    assert ft.sleeps == [0.5, 1.0, 2.0, 4.0]


@responses.activate
def test_writes_are_not_retried_on_5xx(ft):
    c = make(ft)
    responses.post(f"{BASE}/subscribers/{LID}/unsubscribe.json", json=err_body(500, "boom"), status=500)
    with pytest.raises(ServerError):
        c.unsubscribe(LID, "a@x.com")
    assert len(responses.calls) == 1


@responses.activate
def test_writes_are_retried_on_429(ft):
    c = make(ft)
    responses.post(f"{BASE}/subscribers/{LID}.json", json=err_body(429, "added too many times too quickly"),
                   status=429)
    responses.post(f"{BASE}/subscribers/{LID}.json", json="a@x.com", status=201)
    assert c.add_subscriber(LID, "a@x.com") == "a@x.com"
    assert len(responses.calls) == 2


@responses.activate
def test_retry_logs_never_contain_the_key(ft, caplog):
    c = make(ft)
    responses.get(f"{BASE}/clients.json", json=err_body(500, "boom"), status=500)
    responses.get(f"{BASE}/clients.json", json=[])
    with caplog.at_level(logging.DEBUG):
        c.clients()
    assert "retry 1/5" in caplog.text
    assert KEY not in caplog.text
    assert base64.b64encode(f"{KEY}:x".encode()).decode() not in caplog.text


def test_no_key_is_a_configuration_error():
    from cmlib.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        CampaignMonitor("", BASE)


def test_proxy_and_ca_settings_are_read_once_from_the_environment(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/company.pem")
    c = CampaignMonitor(KEY, BASE, cache=None)
    assert c.session.proxies.get("https") == "http://proxy.internal:3128"
    assert c.session.verify == "/etc/ssl/company.pem"
    monkeypatch.setenv("NO_PROXY", "api.test")
    assert "https" not in CampaignMonitor(KEY, BASE, cache=None).session.proxies
