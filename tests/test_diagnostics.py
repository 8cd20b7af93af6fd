"""Test connection, health and cache info against recorded API answers (responses)."""
from __future__ import annotations

import pytest
import requests
import responses
from urllib3.exceptions import LocationParseError

from cmlib import diagnostics
from cmlib.cache import DEFAULT_EXPIRY, CacheSettings
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.diagnostics import Problem
from cmlib.retry import RetryPolicy
from cmlib.urls import ApiUrlError, check_api_url
from tests.fixtures import fixture

BASE = "https://api.test/api/v3.3"
KEY = "diag-secret-key-9876"
CID = "4a397ccaaa55eb4e6aa1221e1e2d7122"
OTHER = "a206def0582eec7dae47d937a4109cb2"


def _auth_error(code: int, message: str) -> dict:
    return {"json": {"Code": code, "Message": message}, "status": 401}


def _run(client_id: str = CID, key: str = KEY):
    report = diagnostics.check_connection(key, client_id, BASE, timeout=2)
    assert KEY not in report.message and KEY not in repr(report)
    return report


def _client_key_setup():
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    responses.get(f"{BASE}/clients/{CID}/lists.json", json=fixture("lists.json"))
    responses.get(f"{BASE}/clients.json", **_auth_error(100, "Invalid API Key"))


@responses.activate
def test_success_with_client_key_names_company_country_timezone_and_lists():
    _client_key_setup()
    report = _run()
    assert report.ok and report.problem is Problem.NONE
    assert report.client.company_name == "Client One"
    assert report.list_count == 2
    assert report.clients == ()  # a client key cannot list clients: no picker
    assert "Client One" in report.message
    assert "Australia" in report.message
    assert "Canberra" in report.message
    assert "2 lists" in report.message
    assert report.latency_ms is not None and report.latency_ms >= 0


@responses.activate
def test_success_with_account_key_reports_the_clients():
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    responses.get(f"{BASE}/clients/{CID}/lists.json", json=fixture("lists.json"))
    responses.get(f"{BASE}/clients.json", json=fixture("clients.json"))
    report = _run()
    assert report.ok and report.is_account_key
    assert [c.name for c in report.clients] == ["Client One", "Client Two"]
    assert "account-level" in report.message


@responses.activate
def test_invalid_key_code_100():
    responses.get(f"{BASE}/clients/{CID}.json", **_auth_error(100, "Invalid API Key"))
    report = _run()
    assert not report.ok
    assert report.problem is Problem.INVALID_KEY and report.error_code == 100
    assert "Invalid API key (Code 100)" in report.message


@responses.activate
def test_bad_auth_header_code_50():
    responses.get(f"{BASE}/clients/{CID}.json",
                  **_auth_error(50, "Must supply a valid HTTP Basic Authorization header"))
    report = _run()
    assert report.problem is Problem.BAD_AUTH_HEADER
    assert "Code 50" in report.message


@responses.activate
def test_client_not_yours_code_102_with_client_key_offers_no_picker():
    responses.get(f"{BASE}/clients/{OTHER}.json", **_auth_error(102, "Invalid ClientID"))
    responses.get(f"{BASE}/clients.json", **_auth_error(100, "Invalid API Key"))
    report = _run(client_id=OTHER)
    assert report.problem is Problem.CLIENT_NOT_FOUND
    assert "Code 102" in report.message and OTHER in report.message
    assert report.clients == ()


@responses.activate
def test_client_not_found_with_account_key_offers_the_clients():
    responses.get(f"{BASE}/clients/nope.json", **_auth_error(102, "Invalid ClientID"))
    responses.get(f"{BASE}/clients.json", json=fixture("clients.json"))
    report = _run(client_id="nope")
    assert report.problem is Problem.CLIENT_NOT_FOUND
    assert len(report.clients) == 2
    assert "choose one" in report.message


@responses.activate
def test_without_client_id_an_account_key_lists_clients_to_choose_from():
    responses.get(f"{BASE}/clients.json", json=fixture("clients.json"))
    report = _run(client_id="")
    assert not report.ok
    assert report.problem is Problem.MISSING_CLIENT_ID
    assert [c.client_id for c in report.clients] == [CID, OTHER]
    assert "2 clients" in report.message


@responses.activate
def test_without_client_id_a_refused_key_says_so_and_hints_at_client_keys():
    responses.get(f"{BASE}/clients.json", **_auth_error(100, "Invalid API Key"))
    report = _run(client_id="")
    assert report.problem is Problem.INVALID_KEY
    assert "client-level key" in report.message


@responses.activate
def test_network_failure_is_named_and_retried_once():
    responses.get(f"{BASE}/clients/{CID}.json", body=requests.exceptions.ConnectionError("refused"))
    report = _run()
    assert report.problem is Problem.NETWORK
    assert "Cannot reach the API at api.test" in report.message
    assert len(responses.calls) == 2  # RetryPolicy(max_attempts=2)


@responses.activate
def test_timeout_is_named():
    responses.get(f"{BASE}/clients/{CID}.json", body=requests.exceptions.ReadTimeout("slow"))
    report = _run()
    assert report.problem is Problem.TIMEOUT
    assert "Timed out" in report.message


def test_unreachable_port_is_a_network_problem():
    report = diagnostics.check_connection(KEY, CID, "http://127.0.0.1:9/api/v3.3", timeout=2)
    assert report.problem in (Problem.NETWORK, Problem.TIMEOUT)
    assert "127.0.0.1:9" in report.message


@responses.activate
def test_html_page_instead_of_json_points_at_the_url():
    responses.get(f"{BASE}/clients/{CID}.json", body="<html>Not here</html>", status=404,
                  content_type="text/html")
    report = _run()
    assert report.problem is Problem.UNEXPECTED
    assert "API URL" in report.message


@responses.activate
def test_lists_failure_after_client_found_is_reported_with_the_client():
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    responses.get(f"{BASE}/clients/{CID}/lists.json", json={"Code": 500, "Message": "Boom"}, status=500)
    report = _run()
    assert not report.ok and report.problem is Problem.SERVER
    assert report.client is not None
    assert "lists could not be read" in report.message


def test_missing_key_and_bad_url_need_no_network():
    assert diagnostics.check_connection("  ", CID, BASE).problem is Problem.MISSING_KEY
    report = diagnostics.check_connection(KEY, CID, "api.createsend.com")
    assert report.problem is Problem.BAD_URL


def test_the_test_client_has_no_cache_and_a_short_retry_policy():
    cm = diagnostics.make_check_client(KEY, BASE, timeout=3)
    assert cm.cache_settings is None
    assert not hasattr(cm.session, "cache")
    assert cm.options.retry.max_attempts == 2
    assert cm.timeout == (3, 3)


# ---------------------------------------------------------------------------- health


def _client(**kw) -> CampaignMonitor:
    return CampaignMonitor(KEY, BASE, options=ClientOptions(retry=RetryPolicy(max_attempts=1), rate=None), **kw)


@responses.activate
def test_health_reports_latency_and_rate_limit_headroom():
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"),
                  headers={"X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "250", "X-RateLimit-Reset": "30"})
    report = diagnostics.health(_client(), CID, is_demo=False)
    assert report.reachable and report.problem is Problem.NONE
    assert report.latency_ms is not None
    assert report.last_endpoint == f"GET /clients/{CID}.json"
    assert report.rate_limit is not None
    assert report.rate_limit.fraction_left == 0.25
    assert report.rate_limit.describe() == "250 of 1000 requests left, window resets in 30 s"
    assert report.mode == "Real Campaign Monitor account"


@responses.activate
def test_health_without_rate_limit_headers_has_no_headroom():
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    report = diagnostics.health(_client(), CID, is_demo=True)
    assert report.reachable and report.rate_limit is None
    assert report.mode.startswith("Demo data")


@responses.activate
def test_health_when_the_key_was_revoked():
    responses.get(f"{BASE}/clients/{CID}.json", **_auth_error(100, "Invalid API Key"))
    report = diagnostics.health(_client(), CID)
    assert not report.reachable
    assert report.problem is Problem.INVALID_KEY


@responses.activate
def test_health_bypasses_the_cache(tmp_path):
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    cm = _client(cache=CacheSettings(backend="memory", path=tmp_path / "c", salt_path=tmp_path / "salt"))
    diagnostics.health(cm, CID)
    diagnostics.health(cm, CID)
    assert len(responses.calls) == 2


# ---------------------------------------------------------------------------- cache


def test_cache_info_when_caching_is_off():
    info = diagnostics.cache_info(_client())
    assert not info.enabled and info.describe_size() == "caching is off"


def test_cache_info_for_sqlite_reports_size_and_expiry(tmp_path):
    settings = CacheSettings(backend="sqlite", path=tmp_path / "c", salt_path=tmp_path / "salt",
                             expiry={**DEFAULT_EXPIRY, "subscriber": 5})
    info = diagnostics.cache_info(_client(cache=settings))
    assert info.enabled and info.backend == "sqlite"
    assert info.expiry["subscriber"] == 5
    assert info.size_bytes is not None and info.size_bytes > 0
    assert info.describe_size().endswith(("bytes", "KB", "MB"))


def test_human_bytes():
    assert diagnostics.human_bytes(512) == "512 bytes"
    assert diagnostics.human_bytes(2048) == "2.0 KB"
    assert diagnostics.human_bytes(5 * 1024 * 1024) == "5.0 MB"


def test_validate_expiry_rejects_unknown_and_out_of_range():
    clean, errors = diagnostics.validate_expiry({"subscriber": "30", "lists": -1, "bogus": 3, "history": "x"})
    assert clean == {"subscriber": 30}
    assert len(errors) == 3


@responses.activate
def test_without_client_id_a_key_that_sees_one_client_is_checked_against_it():
    responses.get(f"{BASE}/clients.json", json=fixture("clients.json")[:1])
    responses.get(f"{BASE}/clients/{CID}.json", json=fixture("client_details.json"))
    responses.get(f"{BASE}/clients/{CID}/lists.json", json=fixture("lists.json"))
    report = _run(client_id="")
    assert report.ok and report.client_id == CID
    assert not report.is_account_key
    assert "account-level" not in report.message


def test_against_the_sandbox_each_credential_problem_is_told_apart(sandbox):
    url = sandbox.base_url
    ok = diagnostics.check_connection(sandbox.client_api_key, sandbox.main_client_id, url)
    assert ok.ok and ok.client.company_name == sandbox.data.client(sandbox.main_client_id).name
    assert ok.list_count == len(sandbox.data.lists_of(sandbox.main_client_id))
    # a key that decodes to an empty user name is a bad Basic header to the API
    assert diagnostics.check_connection(":", sandbox.main_client_id, url).problem is Problem.BAD_AUTH_HEADER
    assert diagnostics.check_connection("nope-1234", sandbox.main_client_id, url).problem is Problem.INVALID_KEY
    other = diagnostics.check_connection(sandbox.client_api_key, sandbox.other_client_id, url)
    assert other.problem is Problem.CLIENT_NOT_FOUND
    account = diagnostics.check_connection(sandbox.account_api_key, "", url)
    assert account.problem is Problem.MISSING_CLIENT_ID and account.is_account_key
    assert {c.client_id for c in account.clients} == {sandbox.main_client_id, sandbox.other_client_id}


# ------------------------------------------------------------- URLs the key must not go to (issue 10 #1, #12)


@pytest.mark.parametrize(("url", "fragment"), [
    ("https://" + "a" * 5000 + "/api/v3.3", "too long"),
    ("https://" + "a" * 70 + ".com/api/v3.3", "longer than 63"),
    ("http://169.254.169.254/api/v3.3", "metadata"),
    ("http://[fe80::1]/api/v3.3", "metadata"),
    ("https://user:pw@api.createsend.com/api/v3.3", "user name or password"),
    ("http://api.createsend.com/api/v3.3", "unencrypted"),
    ("http://[::1/api", "not a valid address"),
    ("https://x.example:99999/api", "port"),
])
def test_a_refused_url_is_a_typed_report_and_nothing_is_sent(url, fragment):
    sent = []
    report = diagnostics.check_connection(KEY, CID, url, resolve=lambda host: sent.append(host) or [])
    assert not report.ok and report.problem is Problem.BAD_URL
    assert fragment in report.message and len(report.message) < 400
    assert KEY not in report.message and "pw@" not in report.message


def test_a_host_resolving_to_a_metadata_address_is_refused_before_connecting():
    report = diagnostics.check_connection(KEY, CID, "https://innocent.example/api/v3.3",
                                         resolve=lambda host: ["169.254.169.254"])
    assert report.problem is Problem.BAD_URL and "resolves to 169.254.169.254" in report.message


class _Exploding:
    """A client whose HTTP stack raises what requests sometimes lets through."""

    base_url = "https://api.test/api/v3.3"
    last_call = None
    last_rate_limit = None

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def clients(self):
        raise self.exc

    def client_details(self, client_id, fresh=False):
        raise self.exc

    def close(self):
        pass


def test_an_unexpected_exception_from_the_http_stack_is_a_typed_failure():
    exc = LocationParseError("'" + "a" * 300 + "', label empty or too long")
    report = diagnostics.check_connection(KEY, CID, BASE, client=_Exploding(exc), resolve=None)
    assert report.problem is Problem.UNEXPECTED and "LocationParseError" in report.message
    assert "a" * 100 not in report.message
    report = diagnostics.check_connection(KEY, "", BASE, client=_Exploding(ValueError("boom")), resolve=None)
    assert report.problem is Problem.UNEXPECTED


def test_health_turns_an_unexpected_exception_into_a_report():
    report = diagnostics.health(_Exploding(LocationParseError("x")), CID)
    assert not report.reachable and report.problem is Problem.UNEXPECTED and "LocationParseError" in report.message


def test_the_client_itself_refuses_a_url_the_key_must_not_go_to():
    with pytest.raises(ApiUrlError):
        CampaignMonitor(KEY, "http://169.254.169.254/latest")
    problem, message = diagnostics.describe_error(ApiUrlError(check_api_url("ftp://x")))
    assert problem is Problem.BAD_URL and "not an http(s) address" in message


def test_messages_name_the_host_without_a_password():
    assert diagnostics._host("https://me:secret@api.test:8443/api") == "api.test:8443"
