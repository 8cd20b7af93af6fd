"""A deep link's early lookup (cmlib/prefetch.py, ui/prefetch.py; issue 15).

The registry and the query parsing alone; the middleware with a stand-in ASGI app; and against
the sandbox, that the early lookup and the page's own lookup send each request once.
"""
from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

import pytest

from cmlib.prefetch import KEEP_S, MAX_KEPT, Prefetches, PrefetchKey, emails_in_query
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
def _never(on_profile):
    pytest.fail("the page sent its own lookup although the early one ended")


def test_one_early_lookup_per_key_while_it_runs_and_a_new_request_starts_a_new_one():
    reg, job = Prefetches(), Future()
    assert reg.start(KEY, lambda _: job)
    assert not reg.start(KEY, lambda _: pytest.fail("a second lookup of the same addresses was sent"))
    assert reg.running(KEY)
    job.set_result(["profiles"])
    assert not reg.running(KEY)
    again = Future()
    assert reg.start(KEY, lambda _: again)  # a later request for the page: a new lookup
    again.set_result(["newer"])
    assert reg.after(KEY, 30.0, _never) == ["newer"]


def test_an_ended_early_lookup_waits_a_little_for_its_page_then_is_dropped():
    now = [0.0]  # the fake clock
    reg = Prefetches(clock=lambda: now[0])
    for i, stay in enumerate((KEEP_S - 1, KEEP_S + 1)):
        key, job = PrefetchKey.of("conn", [f"a{i}@x.com"]), Future()
        reg.start(key, lambda _, job=job: job)
        job.set_result(["early"])
        now[0] += stay
        expected = ["early"] if stay < KEEP_S else ["page's own"]
        assert reg.after(key, 30.0, lambda on_profile: ["page's own"]) == expected


def test_ended_early_lookups_kept_are_bounded():
    reg = Prefetches()
    keys = [PrefetchKey.of("conn", [f"a{i}@x.com"]) for i in range(MAX_KEPT + 5)]
    for key in keys:
        job = Future()
        reg.start(key, lambda _, job=job: job)
        job.set_result(["early"])
    assert reg.after(keys[0], 30.0, lambda on_profile: ["own"]) == ["own"]  # the oldest went
    assert reg.after(keys[-1], 30.0, _never) == ["early"]


def test_at_most_a_few_early_lookups_run_at_once():
    reg, jobs = Prefetches(limit=2), [Future() for _ in range(3)]
    keys = [PrefetchKey.of("conn", [f"a{i}@x.com"]) for i in range(3)]
    assert reg.start(keys[0], lambda _: jobs[0]) and reg.start(keys[1], lambda _: jobs[1])
    assert not reg.start(keys[2], lambda _: pytest.fail("a third early lookup ran"))  # its page looks up itself
    jobs[0].set_result(None)
    assert reg.start(keys[2], lambda _: jobs[2])


def test_the_page_waits_for_the_early_lookup_and_takes_its_profiles():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    result = []
    worker = threading.Thread(target=lambda: result.append(reg.after(KEY, 30.0, _never)))
    worker.start()
    assert result == []  # cannot have returned: the early lookup has not ended
    early.set_result(["profile a", "profile b"])
    worker.join(timeout=30)
    assert result == [["profile a", "profile b"]]


def test_the_error_an_early_lookup_ended_with_is_the_pages():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    early.set_exception(RuntimeError("Campaign Monitor rejected the API key"))
    with pytest.raises(RuntimeError, match="rejected"):  # not the same calls, retries and waits once more
        reg.after(KEY, 30.0, _never)


def test_an_early_lookup_still_running_after_the_wait_leaves_the_page_to_look_up_itself():
    reg, early = Prefetches(), Future()
    reg.start(KEY, lambda _: early)
    assert reg.after(KEY, 0.0, lambda on_profile: "looked up itself") == "looked up itself"
    early.set_result(None)


def test_a_page_waiting_for_the_early_lookup_hears_each_address_once_as_it_arrives():
    reg, early, feed = Prefetches(), Future(), []
    reg.start(KEY, lambda on_profile: feed.append(on_profile) or early)
    (announce,) = feed
    announce("a@x.com")  # before the page joins: replayed to it
    heard, joined = [], threading.Event()

    def on_profile(profile):
        heard.append(profile)
        joined.set()

    worker = threading.Thread(target=lambda: reg.after(KEY, 30.0, _never, on_profile=on_profile))
    worker.start()
    assert joined.wait(30)  # the replay reached the page
    announce("b@y.com")  # while it waits: handed on
    early.set_result(["a", "b"])
    worker.join(timeout=30)
    assert heard == ["a@x.com", "b@y.com"]
    announce("late")  # the page has left: nobody hears it
    assert heard == ["a@x.com", "b@y.com"]


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
    monkeypatch.setattr(ui_prefetch, "base_path", lambda: "")

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


def _lookup_cost(sandbox, credentials, emails) -> int:
    """Requests one lookup sends on its own (a connection without cache, closed after)."""
    from cmlib import runtime

    with runtime.connect(credentials, cache=False) as alone:
        before = sandbox.requests_served
        alone.lookup_service().lookup_many(emails, suppression=True, time_zone=True)
        return sandbox.requests_served - before


def test_with_caching_off_the_page_still_sends_nothing_again(app_env):
    from cmlib import runtime
    from ui.connection import get_connection

    emails = list(DEMO_CUSTOMERS["three_addresses"])
    one_lookup = _lookup_cost(app_env, get_connection().credentials, emails)
    with runtime.connect(get_connection().credentials, cache=False) as conn:
        before = app_env.requests_served
        assert ui_prefetch.start_early(conn, emails)
        profiles = ui_prefetch.page_lookup(conn, emails, [])
        assert app_env.requests_served - before == one_lookup
        assert all(not p.failed for p in profiles)
        # a refresh fetches again, whatever an early lookup read
        before = app_env.requests_served
        ui_prefetch.page_lookup(conn, emails, emails)
        assert app_env.requests_served - before > 0


def test_an_api_failing_during_the_early_lookup_is_reported_by_the_page_not_asked_twice(app_env, monkeypatch):
    from cmlib import runtime
    from ui.connection import get_connection

    emails = list(DEMO_CUSTOMERS["three_addresses"])
    with runtime.connect(get_connection().credentials, cache=False) as conn:
        service = conn.lookup_service()
        calls = []
        real = service.lookup_many
        monkeypatch.setattr(service, "lookup_many", lambda *a, **kw: calls.append(a) or real(*a, **kw))
        app_env.set_faults(error_rate=1.0)  # every request answers an HTML 500, after the client's retries
        assert ui_prefetch.start_early(conn, emails)
        profiles = ui_prefetch.page_lookup(conn, emails, [])
    assert len(calls) == 1  # the early lookup's retries and waits were not gone through again
    assert all(p.failed or p.all_problems() for p in profiles)  # what failed is said, per address
