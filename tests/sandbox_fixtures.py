"""Shared pytest fixtures for tests that talk to the local Campaign Monitor sandbox.

tests/conftest.py loads this module as a pytest plugin, so the fixtures reach every test module
without a re-import. Every ``sandbox`` is a fresh, started Sandbox on a free loopback port with
seed 7 and a pinned "now", so data and dates are identical on every run; building one is cheap
after the first (the seeded world is cached and only subscriber rows are copied).
"""
from __future__ import annotations

import http.client
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.retry import NO_RETRY
from cmlib.sandbox import Sandbox

SANDBOX_SEED = 7
SANDBOX_NOW = datetime(2025, 6, 2, 12, 0)


def make_sandbox(**kwargs: Any) -> Sandbox:
    """An unstarted Sandbox with the test defaults (seed 7, pinned now), overridable."""
    kwargs.setdefault("seed", SANDBOX_SEED)
    kwargs.setdefault("now", SANDBOX_NOW)
    return Sandbox(**kwargs)


def make_client(sb: Sandbox, api_key: str | None = None, **options: Any) -> CampaignMonitor:
    """Our client against the sandbox: no cache, no retries, no client-side pacing by default."""
    options.setdefault("retry", NO_RETRY)
    options.setdefault("rate", None)
    options.setdefault("read_timeout", 5.0)
    return CampaignMonitor(api_key or sb.account_api_key, sb.base_url, options=ClientOptions(**options), cache=None)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """A fresh sandbox per test: writes and fault knobs never leak into the next test."""
    with make_sandbox() as sb:
        yield sb


@pytest.fixture
def cm(sandbox: Sandbox) -> Iterator[CampaignMonitor]:
    """Our client with the account-level key."""
    client = make_client(sandbox)
    yield client
    client.close()


@pytest.fixture
def raw(sandbox: Sandbox) -> Iterator[Callable[..., requests.Response]]:
    """``raw("GET", "/clients.json", params=..., json=..., auth=...)``: plain HTTP, to see statuses and headers.

    ``auth`` defaults to the account key; pass ``auth=None`` to send no Authorization header.
    """
    session = requests.Session()
    default_auth = (sandbox.account_api_key, "x")
    sentinel = object()

    def call(method: str, path: str, *, auth: Any = sentinel, timeout: float = 5.0, **kw: Any) -> requests.Response:
        return session.request(method, sandbox.base_url + path, auth=default_auth if auth is sentinel else auth,
                               timeout=timeout, **kw)

    yield call
    session.close()


@pytest.fixture
def createsend_auth(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The official ``createsend`` wrapper pointed at the sandbox over plain HTTP.

    createsend.createsend does ``from createsend.utils import VerifiedHTTPSConnection`` and builds
    ``VerifiedHTTPSConnection(parsed_base_uri.netloc, timeout=...)`` per request, so swapping that
    name for ``http.client.HTTPConnection`` and setting ``CreateSend.base_uri`` is enough.
    """
    import createsend
    import createsend.createsend as cs_mod

    monkeypatch.setattr(cs_mod, "VerifiedHTTPSConnection", http.client.HTTPConnection)
    monkeypatch.setattr(createsend.CreateSend, "base_uri", sandbox.base_url)
    monkeypatch.setattr(cs_mod.CreateSendBase, "timeout", 10)
    return {"api_key": sandbox.account_api_key}


def point_app_at(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure the app (through the environment, as a deployment would) to use ``sb``."""
    monkeypatch.setenv("CM_API_KEY", sb.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sb.main_client_id)
    monkeypatch.setenv("CM_API_URL", sb.base_url)
    monkeypatch.setenv("CM_CACHE_BACKEND", "memory")


@pytest.fixture
def app_env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The app pointed at a fresh sandbox, with an in-memory cache and quick, bounded retries."""
    from cmlib import runtime
    from cmlib.retry import RetryPolicy

    point_app_at(sandbox, monkeypatch)
    real_connect = runtime.connect

    def quick_connect(credentials: Any = None, **kw: Any) -> Any:
        kw.setdefault("options", ClientOptions(retry=RetryPolicy(max_attempts=2, base_delay=0.01,
                                                                 rate_limit_fallback=0.01, max_delay=0.05),
                                               rate=None, max_in_flight=16, read_timeout=5.0))
        return real_connect(credentials, **kw)

    monkeypatch.setattr(runtime, "connect", quick_connect)
    return sandbox
