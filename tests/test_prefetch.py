"""A deep link's early lookup (cmlib/prefetch.py, ui/prefetch.py; issue 15).

The registry and the query parsing alone; the middleware with a stand-in ASGI app; and against
the sandbox, that the early lookup and the page's own lookup send each request once.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from cmlib.prefetch import Prefetches, PrefetchKey, emails_in_query
from cmlib.sandbox import DEMO_CUSTOMERS
from ui import prefetch as ui_prefetch

KEY = PrefetchKey.of("conn", ["A@x.com", "b@y.com"])


# ------------------------------------------------------------------------------ the query
def test_the_query_gives_the_addresses_the_page_would_look_up():
    query = "email=ivan%40example.com&email=IVAN.WORK@example.com,%20not-an-address&lang=ru"
    assert emails_in_query(query, 20) == ["ivan@example.com", "IVAN.WORK@example.com"]
    assert emails_in_query("email=maria+news@x.com", 20) == ["maria+news@x.com"]  # "+" read as a space, restored
    assert emails_in_query("email=a@x.com&email=a@x.com", 20) == ["a@x.com"]  # duplicates once
    assert emails_in_query("&".join(f"email=a{i}@x.com" for i in range(30)), 20) == [f"a{i}@x.com" for i in range(20)]
    assert emails_in_query("lang=ru", 20) == [] and emails_in_query("email=", 20) == []


def test_a_key_does_not_depend_on_the_spelling_of_an_address():
    assert PrefetchKey.of("conn", ["a@x.com", "B@Y.com"]) == KEY
    assert PrefetchKey.of("other", ["a@x.com", "b@y.com"]) != KEY


# ------------------------------------------------------------------------------ the registry
def test_one_early_lookup_per_key_and_it_is_forgotten_when_it_ends():
    reg, job = Prefetches(), Future()
    assert reg.start(KEY, lambda _: job)
    assert not reg.start(KEY, lambda _: pytest.fail("a second lookup of the same addresses was sent"))
    assert reg.running(KEY) and not reg.wait(KEY, timeout=0)
    job.set_result(None)
    assert not reg.running(KEY) and reg.wait(KEY, timeout=0)
    again = Future()
    assert reg.start(KEY, lambda _: again)  # a later link starts a new one


def test_the_page_lookup_waits_for_the_early_one_then_runs():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    ran, result = threading.Event(), []
    page = lambda on_profile: ran.set() or "page"  # noqa: E731
    worker = threading.Thread(target=lambda: result.append(reg.after(KEY, 30.0, page)))
    worker.start()
    assert not ran.is_set()  # cannot have run: the early lookup has not ended
    early.set_result(None)
    worker.join(timeout=30)
    assert ran.is_set() and result == ["page"]


def test_a_failed_early_lookup_is_not_raised_to_the_page():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    early.set_exception(RuntimeError("boom"))
    assert reg.after(KEY, 30.0, lambda on_profile: "page looked up itself") == "page looked up itself"


def test_a_refresh_does_not_wait():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    assert reg.after(KEY, 0.0, lambda on_profile: "now") == "now"  # timeout 0: the refresh goes ahead at once
    early.set_result(None)


def test_a_page_waiting_for_the_early_lookup_hears_each_address_once_as_it_arrives():
    reg, early, feed = Prefetches(), Future(), []
    reg.start(KEY, lambda on_profile: feed.append(on_profile) or early)
    (announce,) = feed
    announce("a@x.com")  # before the page joins: replayed to it
    heard, joined, calls = [], threading.Event(), []

    def on_profile(profile):
        heard.append(profile)
        joined.set()

    def page_lookup(on_profile):
        calls.append(on_profile)
        return "profiles"

    worker = threading.Thread(target=lambda: reg.after(KEY, 30.0, page_lookup, on_profile=on_profile))
    worker.start()
    assert joined.wait(30)  # the replay reached the page
    announce("b@y.com")  # while it waits: handed on
    early.set_result(None)
    worker.join(timeout=30)
    assert heard == ["a@x.com", "b@y.com"]
    assert calls == [None]  # the page's own lookup (from the cache) does not announce them again


def test_without_an_early_lookup_the_page_lookup_announces_its_own_profiles():
    reg, calls = Prefetches(), []
    assert reg.after(KEY, 30.0, lambda on_profile: calls.append(on_profile) or "p", on_profile=print) == "p"
    assert calls == [print]


# ------------------------------------------------------------------------------ the middleware
@pytest.mark.parametrize(("path", "base", "page"), [
    ("/", "", ""), ("/lookup", "", "lookup"), ("/panel/", "", "panel"), ("/bulk", "", None),
    ("/static/js/index.js", "", None), ("/_stcore/health", "", None),
    ("/cm/", "/cm", ""), ("/cm/panel", "/cm", "panel"), ("/panel", "/cm", None), ("/cmx/panel", "/cm", None),
])
def test_which_requests_are_pages(path, base, page):
    assert ui_prefetch.page_of(path, base) == page


def _request(path: str, query: str, method: str = "GET") -> dict:
    return {"type": "http", "method": method, "path": path, "query_string": query.encode()}


def test_the_middleware_starts_a_lookup_for_a_page_request_and_always_passes_the_request_on(monkeypatch):
    started, passed = [], []
    monkeypatch.setattr(ui_prefetch, "start_for", started.append)
    monkeypatch.setattr(ui_prefetch, "_base_path", lambda: "")

    async def inner(scope, receive, send):
        passed.append(scope["path"])

    async def run_all():
        mw = ui_prefetch.DeepLinkPrefetch(inner)
        for scope in (_request("/", "email=a@x.com"), _request("/static/x.js", "email=a@x.com"),
                      _request("/", "email=a@x.com", method="POST"), _request("/panel", "lang=ru"),
                      {"type": "websocket", "path": "/_stcore/stream", "query_string": b"email=a@x.com"}):
            await mw(scope, None, None)
        await asyncio.sleep(0)  # let the executor's call be scheduled
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, lambda: None)  # the default executor has run what was queued before

    asyncio.run(run_all())
    assert passed == ["/", "/static/x.js", "/", "/panel", "/_stcore/stream"]
    assert started == ["email=a@x.com"]


def test_with_single_sign_on_no_request_starts_a_lookup(monkeypatch):
    import ui.access
    import ui.connection

    monkeypatch.setattr(ui.access, "auth_configured", lambda: True)
    monkeypatch.setattr(ui.connection, "get_connection", lambda: pytest.fail("an anonymous request used the API"))
    assert ui_prefetch.start_for("email=a@x.com") is False


def test_a_failure_to_start_is_logged_never_raised(monkeypatch, caplog):
    import ui.connection

    def broken():
        raise OSError("no sandbox port")

    monkeypatch.setattr(ui.connection, "get_connection", broken)
    assert ui_prefetch.start_for("email=a@x.com") is False
    assert "did not start: OSError" in caplog.text


# ------------------------------------------------------------------------------ with the sandbox
def test_the_early_lookup_and_the_page_send_each_request_once(app_env):
    from cmlib import runtime
    from cmlib.prefetch import PREFETCHES
    from ui.connection import get_connection

    emails = list(DEMO_CUSTOMERS["three_addresses"])
    conn = get_connection()
    alone = runtime.connect(conn.credentials, cache=False)  # what one lookup costs, on its own
    before = app_env.requests_served
    alone.lookup_service().lookup_many(emails, suppression=True, time_zone=True)
    one_lookup = app_env.requests_served - before
    alone.close()

    key = ui_prefetch.key_for(conn, emails)
    before = app_env.requests_served
    assert ui_prefetch.start_for("&".join(f"email={e}" for e in emails))
    heard = []
    profiles = ui_prefetch.page_lookup(conn, emails, [], on_profile=heard.append)  # waits; the cache answers
    assert not PREFETCHES.running(key)
    assert [p.email.lower() for p in profiles] == [e.lower() for e in emails]
    assert all(not p.failed for p in profiles)
    assert app_env.requests_served - before == one_lookup  # the page sent none of them again
    assert sorted(p.email.lower() for p in heard) == sorted(e.lower() for e in emails)  # each address once
