"""Every long-lived object has an owner that closes it, and nothing grows with use.

Many lookups, connections opened and closed, lookup services created and closed on one client:
afterwards the per-address key index, the profile memo, the invalidation listeners, the pools
and the threads are where they started. Against recorded shapes (``responses``), so no server
threads blur the thread count.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import responses

from cmlib import runtime
from cmlib.cache import CacheSettings
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.config import Credentials
from cmlib.errors import ConfigurationError
from cmlib.lookup import LookupService
from cmlib.ratelimit import budget_count
from cmlib.retry import RetryPolicy

BASE = "https://api.test/api/v3.3"
CID = "client1"
KEY = "lifetimes-key-0123456789abcdef"
OUR_THREADS = ("cm-lookup", "cm-conn", "cm_")  # the pools' thread name prefixes


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def mock_api() -> None:
    """Any address is on one list, with one received campaign."""
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json={
        "Results": [{"CampaignID": "c1", "Name": "C1", "Subject": "Hello", "SentDate": "2026-01-05 10:00:00",
                     "WebVersionURL": "https://cm/t/c1", "TotalRecipients": 10}],
        "ResultsOrderedBy": "SentDate", "OrderDirection": "desc", "PageNumber": 1, "PageSize": 1000,
        "RecordsOnThisPage": 1, "TotalNumberOfRecords": 1, "NumberOfPages": 1})
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[
        {"ListID": "L1", "ListName": "News", "SubscriberState": "Active", "DateSubscriberAdded": "2025-01-01 09:00"}])
    responses.get(f"{BASE}/lists/L1.json", json={"ListID": "L1", "Title": "News", "ConfirmedOptIn": False,
                                                 "UnsubscribeSetting": "OnlyThisList"})
    responses.get(f"{BASE}/subscribers/L1.json", json={
        "EmailAddress": "x@x.com", "Name": "N", "Date": "2026-01-06 10:00:00", "ListJoinedDate": "2025-01-01 09:00:00",
        "State": "Active", "CustomFields": [], "ReadsEmailWith": "", "ConsentToTrack": "Yes"})
    responses.get(f"{BASE}/subscribers/L1/history.json", json=[
        {"ID": "c1", "Type": "Campaign", "Name": "C1", "Actions": [
            {"Event": "Open", "Date": "2026-01-05 11:00:00", "IPAddress": "1.1.1.1", "Detail": ""}]}])


@pytest.fixture
def api() -> Iterator[None]:
    responses.start()
    mock_api()
    yield
    responses.stop()
    responses.reset()


def options() -> ClientOptions:
    return ClientOptions(rate=None, retry=RetryPolicy(max_attempts=1))


def memory_cache() -> CacheSettings:
    return CacheSettings(backend="memory")


def no_new_thread_since(baseline: set[threading.Thread]) -> bool:
    """Every thread alive now was alive before (a thread of an earlier test may have ended)."""
    return set(threading.enumerate()) <= baseline and threading.active_count() <= len(baseline)


def our_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]


def join_our_threads() -> None:
    """Wait for the pools' threads to end (they were told to; this waits on them, not on a clock)."""
    for t in our_threads():
        t.join(timeout=10)


def creds() -> Credentials:
    return Credentials(api_key=KEY, client_id=CID, api_url=BASE)


# --------------------------------------------------------------------------- many lookups
def test_many_lookups_keep_the_key_index_the_memo_and_the_listeners_flat(api):
    ft = FakeTime()
    client = CampaignMonitor(KEY, BASE, options=options(), cache=memory_cache(), clock=ft.clock, sleep=ft.sleep)
    svc = LookupService(client, CID, clock=ft.clock)
    per_round = 30
    counts = []
    for r in range(5):
        for i in range(per_round):
            [profile] = svc.lookup_many([f"user{r}.{i}@example.com"])
            assert profile.lists and not profile.all_problems()
        counts.append((client.indexed_address_count, svc.memo_size, client.invalidation_listener_count))
        ft.now += 10 * 60  # past every expiry: what was cached in this round can no longer be served
    # before: the index grew by one address per lookup, forever (150 here), the memo likewise
    assert counts == [(per_round, per_round, 1)] * 5
    svc.close()
    assert client.invalidation_listener_count == 0
    client.close()


def test_a_write_still_forgets_the_address_everywhere_after_the_bound(api):
    client = CampaignMonitor(KEY, BASE, options=options(), cache=memory_cache())
    svc = LookupService(client, CID)
    svc.lookup_many(["anna@example.com"])
    calls = len(responses.calls)
    svc.lookup_many(["anna@example.com"])
    assert len(responses.calls) == calls  # memo
    client.invalidate_email("Anna@Example.com")
    svc.lookup_many(["anna@example.com"])
    # memo dropped and every cached answer naming her deleted: listsforemail, subscriber, history again
    fetched = [c.request.url.split("?")[0].removeprefix(BASE) for c in responses.calls[calls:]]
    assert sorted(fetched) == ["/clients/client1/listsforemail.json", "/subscribers/L1.json",
                               "/subscribers/L1/history.json"]
    svc.close()
    client.close()


# --------------------------------------------------------------------------- lookup services on one client
def test_lookup_services_created_and_closed_on_one_client_leave_no_listener_and_no_thread(api):
    baseline = set(threading.enumerate())
    client = CampaignMonitor(KEY, BASE, options=options(), cache=memory_cache())
    for i in range(20):
        with LookupService(client, CID, max_workers=4) as svc:
            svc.lookup_many([f"u{i}@example.com"])
            assert client.invalidation_listener_count == 1
        assert client.invalidation_listener_count == 0
    join_our_threads()
    assert our_threads() == []
    assert no_new_thread_since(baseline)
    client.close()


def test_a_service_made_only_for_the_campaign_index_holds_nothing(api):
    """What a with-activity bulk run does once per run: before, each run left a listener behind."""
    client = CampaignMonitor(KEY, BASE, options=options(), cache=memory_cache())
    for _ in range(3):
        assert set(LookupService(client, CID).campaign_index()) == {"c1"}
    assert client.invalidation_listener_count == 0
    assert our_threads() == []
    client.close()


def test_closing_a_service_lets_a_running_lookup_finish_and_refuses_new_ones(api):
    client = CampaignMonitor(KEY, BASE, options=options(), cache=None)
    svc = LookupService(client, CID, max_workers=4)
    entered, go = threading.Event(), threading.Event()

    def slow_history(request):
        entered.set()
        go.wait(10)
        return 200, {}, "[]"

    responses.remove(responses.GET, f"{BASE}/subscribers/L1/history.json")
    responses.add_callback(responses.GET, f"{BASE}/subscribers/L1/history.json", callback=slow_history)
    box: dict[str, object] = {}
    worker = threading.Thread(target=lambda: box.update(p=svc.lookup_many(["a@example.com"])))
    worker.start()
    assert entered.wait(10)  # the second wave is running on the pool
    svc.close()
    with pytest.raises(ConfigurationError, match="try again"):
        svc.lookup_many(["b@example.com"])
    go.set()
    worker.join(10)
    [profile] = box["p"]  # type: ignore[misc]
    assert profile.lists and not profile.failed  # finished, on the pool close() left to it
    join_our_threads()
    assert our_threads() == []  # the last running lookup shut the pool down
    client.close()


# --------------------------------------------------------------------------- connections
def test_connections_opened_and_closed_share_one_budget_and_leave_nothing_running(api):
    baseline = set(threading.enumerate())
    interactive = runtime.connect(creds(), cache=memory_cache())
    for i in range(5):
        bulk_options = ClientOptions(rate=5.0, max_in_flight=4, burst=1, retry=RetryPolicy(max_attempts=1))
        with runtime.connect(creds(), cache=memory_cache(), options=bulk_options) as conn:
            # the bulk connection spends the interactive connection's budget, under its own cap
            assert conn.client.limiter.budget is interactive.client.limiter.budget
            assert conn.client.limiter.max_in_flight == 4
            assert conn.client.limiter.rate == interactive.client.limiter.rate == 20.0
            conn.lookup_service().lookup_many([f"bulk{i}@example.com"])
            assert conn.executor.submit(lambda: 42).result() == 42
            assert budget_count() == 1
        assert conn.closed and conn.client.invalidation_listener_count == 0
    interactive.lookup_service().lookup_many(["anna@example.com"])
    interactive.close()
    assert budget_count() == 0  # the last open client of the credential gave it back
    join_our_threads()
    assert our_threads() == []
    assert no_new_thread_since(baseline)


def test_a_closed_connection_refuses_new_work_with_a_reason(api):
    conn = runtime.connect(creds(), cache=False)
    svc = conn.lookup_service()
    conn.close()
    conn.close()  # idempotent
    assert svc.closed
    with pytest.raises(ConfigurationError, match="settings change; try again"):
        conn.lookup_service()
    with pytest.raises(ConfigurationError, match="try again"):
        _ = conn.executor


def test_the_app_closes_the_connections_its_cache_drops(api, monkeypatch):
    from ui import connection

    made: list[runtime.Connection] = []
    real_connect = runtime.connect

    def tracking_connect(credentials: Credentials | None = None, **kw: object) -> runtime.Connection:
        conn = real_connect(credentials, cache=False)
        made.append(conn)
        return conn

    monkeypatch.setattr(runtime, "connect", tracking_connect)
    connection.reset_connections()
    first = connection._connect(creds())
    assert connection._connect(creds()) is first  # one per credential
    first.lookup_service().lookup_many(["anna@example.com"])
    connection.reset_connections()  # e.g. the Settings page saved new credentials
    assert made == [first] and first.closed
    assert first.client.invalidation_listener_count == 0
    second = connection._connect(creds())
    assert second is not first and not second.closed
    connection.reset_connections()
    assert second.closed


def test_releasing_a_connection_never_raises(monkeypatch):
    from ui import connection

    class Broken(runtime.Connection):
        def close(self) -> None:
            raise OSError("disk gone")

    client = CampaignMonitor(KEY, BASE, options=options(), cache=None)
    connection.release(Broken(client=client, credentials=creds()))  # logged, not raised
    connection.release(object())  # not ours: ignored
    client.close()


# --------------------------------------------------------------------------- the Lookup page
def test_the_lookup_page_works_on_pools_its_connection_owns_and_closes(app_env):
    """No thread per lookup: the page's lookups run on the connection's pool and the lookup
    service's pool, and saving settings (which drops the connection) stops them."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from cmlib.sandbox import DEMO_CUSTOMERS
    from ui import connection

    page = str(Path(__file__).resolve().parent.parent / "pages" / "lookup.py")
    at = AppTest.from_file(page, default_timeout=30)
    for emails in (list(DEMO_CUSTOMERS["three_addresses"]), ["anna@example.com"], ["nobody@example.net"]):
        at.query_params["email"] = emails
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert len(at.tabs) == len(emails)
    conn = connection.get_connection()
    assert {"executor", "lookup_service"} <= set(conn.extra)  # the page used the connection's own pools
    assert [t for t in threading.enumerate() if t.name == "lookup"] == []  # no ad-hoc thread per lookup
    connection.reset_connections()  # what the Settings page does after a save
    assert conn.closed and conn.client.invalidation_listener_count == 0
    join_our_threads()
    assert our_threads() == []
