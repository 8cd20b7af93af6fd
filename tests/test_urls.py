"""Which API URLs a key may be sent to (issue 10 #1, #12): the rules of cmlib.urls."""
from __future__ import annotations

import pytest

from cmlib.errors import ConfigurationError
from cmlib.urls import (
    ApiUrlError,
    UrlProblem,
    check_api_url,
    display_url,
    normalize_api_url,
    require_api_url,
    same_api_url,
)

ALLOWED = [
    ("https://api.createsend.com/api/v3.3", "https://api.createsend.com/api/v3.3"),
    ("  HTTPS://API.CreateSend.com:443/api/v3.3/ ", "https://api.createsend.com/api/v3.3"),
    ("https://cm-proxy.internal.example:8443/api/v3.3", "https://cm-proxy.internal.example:8443/api/v3.3"),
    ("https://10.1.2.3/api/v3.3", "https://10.1.2.3/api/v3.3"),  # https to a private proxy: the admin's call
    ("http://127.0.0.1:8765/api/v3.3", "http://127.0.0.1:8765/api/v3.3"),  # the sandbox
    ("http://127.9.9.9:1/x", "http://127.9.9.9:1/x"),
    ("http://localhost:8765/api/v3.3", "http://localhost:8765/api/v3.3"),
    ("http://[::1]:8765/api/v3.3", "http://[::1]:8765/api/v3.3"),
    ("http://127.0.0.1:80/api/v3.3/", "http://127.0.0.1/api/v3.3"),
]


@pytest.mark.parametrize(("url", "normal"), ALLOWED)
def test_allowed_urls_and_their_normal_form(url, normal):
    check = check_api_url(url)
    assert check.ok, check.message
    assert check.url == normal == normalize_api_url(url) == require_api_url(url)


REFUSED = [
    # link-local and cloud metadata, in every spelling the resolver accepts
    ("http://169.254.169.254/latest/meta-data", UrlProblem.METADATA),
    ("https://169.254.169.254/api/v3.3", UrlProblem.METADATA),
    ("https://169.254.1.1/", UrlProblem.METADATA),
    ("https://2852039166/", UrlProblem.METADATA),
    ("https://0xa9.0xfe.0xa9.0xfe/", UrlProblem.METADATA),
    ("https://0251.0376.0251.0376/", UrlProblem.METADATA),
    ("https://169.254.169.254./", UrlProblem.METADATA),
    ("https://[::ffff:169.254.169.254]/", UrlProblem.METADATA),
    ("https://[64:ff9b::a9fe:a9fe]/", UrlProblem.METADATA),
    ("https://[fe80::1]/", UrlProblem.METADATA),
    ("https://[fe80::1%25eth0]/", UrlProblem.METADATA),
    ("https://[fd00:ec2::254]/", UrlProblem.METADATA),
    ("https://100.100.100.200/", UrlProblem.METADATA),
    ("https://168.63.129.16/", UrlProblem.METADATA),
    ("http://metadata.google.internal/computeMetadata/v1/", UrlProblem.METADATA),
    ("https://METADATA.google.internal./", UrlProblem.METADATA),
    ("https://metadata.goog/", UrlProblem.METADATA),
    ("https://0.0.0.0/", UrlProblem.RESERVED),
    ("https://224.0.0.1/", UrlProblem.RESERVED),
    # not http(s)
    ("ftp://api.createsend.com/api/v3.3", UrlProblem.NOT_HTTP),
    ("file:///etc/passwd", UrlProblem.NOT_HTTP),
    ("javascript:alert(1)", UrlProblem.NOT_HTTP),
    ("gopher://127.0.0.1:6379/_", UrlProblem.NOT_HTTP),
    ("api.createsend.com/api/v3.3", UrlProblem.NOT_HTTP),
    # credentials in the URL
    ("https://user:pass@api.createsend.com/api/v3.3", UrlProblem.CREDENTIALS),
    ("https://api.createsend.com@169.254.169.254/", UrlProblem.CREDENTIALS),
    # plain http to another machine sends the key in clear text
    ("http://api.createsend.com/api/v3.3", UrlProblem.INSECURE),
    ("http://10.0.0.7:8080/api/v3.3", UrlProblem.INSECURE),
    # malformed
    ("", UrlProblem.EMPTY),
    ("https://" + "a" * 5000 + "/api/v3.3", UrlProblem.TOO_LONG),
    ("https://" + "a" * 70 + ".com/api/v3.3", UrlProblem.MALFORMED),
    ("https://" + ".".join(["a" * 60] * 5) + "/", UrlProblem.MALFORMED),
    ("https://exa mple.com/", UrlProblem.MALFORMED),
    ("https://example.com/\u2060api", UrlProblem.MALFORMED),
    ("https://example.com:99999/", UrlProblem.MALFORMED),
    ("https://example.com:0/", UrlProblem.MALFORMED),
    ("https://example.com:abc/", UrlProblem.MALFORMED),
    ("http://[::1/", UrlProblem.MALFORMED),
    ("https:///api/v3.3", UrlProblem.MALFORMED),
    ("https://-bad-.example/", UrlProblem.MALFORMED),
    ("https://ex\u00e4mple.com/", UrlProblem.MALFORMED),
    ("https://api.createsend.com/api/v3.3?x=1", UrlProblem.QUERY),
    ("https://api.createsend.com/api/v3.3#frag", UrlProblem.QUERY),
]


@pytest.mark.parametrize(("url", "problem"), REFUSED)
def test_refused_urls_say_why(url, problem):
    check = check_api_url(url)
    assert check.problem is problem, (url[:80], check)
    assert not check.ok and check.message and not check.url
    assert len(check.message) < 400  # a sentence, never the 5,000 characters back
    with pytest.raises(ApiUrlError) as info:
        require_api_url(url)
    assert isinstance(info.value, ConfigurationError) and info.value.check.problem is problem


def test_messages_never_repeat_a_password_from_the_url():
    check = check_api_url("https://admin:hunter2@api.createsend.com/api/v3.3")
    assert "hunter2" not in check.message and "admin" not in check.message
    assert display_url("https://admin:hunter2@host.example/x") == "https://…@host.example/x"


def test_a_name_that_resolves_to_a_metadata_address_is_refused_before_connecting():
    seen = []

    def resolver(host):
        seen.append(host)
        return ["93.184.216.34", "169.254.169.254"] if host == "rebind.example" else ["93.184.216.34"]

    check = check_api_url("https://rebind.example/api/v3.3", resolve=resolver)
    assert check.problem is UrlProblem.METADATA
    assert "rebind.example" in check.message and "169.254.169.254" in check.message
    assert check_api_url("https://fine.example/api/v3.3", resolve=resolver).ok
    assert check_api_url("https://nowhere.example/x", resolve=lambda h: []).ok  # the connection will say
    assert check_api_url("http://127.0.0.1:9/x", resolve=resolver).ok and seen == ["rebind.example", "fine.example"]


def test_same_url_ignores_case_default_port_and_trailing_slash():
    assert same_api_url("https://API.createsend.com:443/api/v3.3/", "https://api.createsend.com/api/v3.3")
    assert same_api_url("http://127.0.0.1:8765/api/v3.3", "http://127.0.0.1:8765/api/v3.3/")
    assert not same_api_url("http://127.0.0.1:8765/api/v3.3", "http://127.0.0.1:8766/api/v3.3")
    assert not same_api_url("http://127.0.0.1:8765/api/v3.3", "http://localhost:8765/api/v3.3")
    assert not same_api_url("https://api.createsend.com/api/v3.3", "https://api.createsend.com/API/v3.3")
    assert not same_api_url("http://169.254.169.254/", "http://169.254.169.254/")  # unusable is never "same"
