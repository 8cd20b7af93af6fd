"""Issue 15: the SQLite HTTP cache stores answers on its own writer thread (cmlib.write_behind),
and its keys are computed without preparing a request (cmlib.cache.CacheKeys).

The writer is held and released with events (never a sleep): what must hold is that a read sees
every earlier store, that no store lands after an invalidation of its address (a stale state
after a subscription change is the worst outcome), and that the writer ends with its owner.
"""
from __future__ import annotations

import threading

import pytest
import requests
import responses

from cmlib import cache as cache_mod
from cmlib.cache import CacheKeys, CacheSettings
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.write_behind import WRITER_THREAD_NAME, WriteBehindSQLiteCache

BASE = "https://api.test/api/v3.3"
CID = "c1"
KEY = "key-AAAA-1111-first-credential"
EMAIL = "p@x.com"
URL = f"{BASE}/clients/{CID}/listsforemail.json"


def settings(tmp_path) -> CacheSettings:
    return CacheSettings(path=tmp_path / "cache" / "http", salt_path=tmp_path / "cache" / "salt")


def client(tmp_path) -> CampaignMonitor:
    return CampaignMonitor(KEY, BASE, options=ClientOptions(rate=None), cache=settings(tmp_path))


def membership(name):
    return [{"ListID": "l1", "ListName": name, "SubscriberState": "Active", "DateSubscriberAdded": "2024-01-01 10:00"}]


def in_writer() -> bool:
    return threading.current_thread().name == WRITER_THREAD_NAME


def stored_rows(tmp_path) -> list[str]:
    """The keys in the cache file, read by a separate connection (what another process would see)."""
    other = WriteBehindSQLiteCache(str(tmp_path / "cache" / "http"))
    try:
        return list(other.responses.keys())
    finally:
        other.close()


class HeldWriter:
    """Holds the writer thread where it is told to, until released; says when it got there."""

    def __init__(self) -> None:
        self.there = threading.Event()
        self.release = threading.Event()

    def hold(self) -> None:
        if in_writer():
            self.there.set()
            assert self.release.wait(timeout=30), "the test never released the writer"

    @classmethod
    def at(cls, writer, step: str, monkeypatch) -> HeldWriter:
        """Hold ``writer`` (the cache's) at ``step``: "flush" (before it takes what waits) or
        "store" (holding a batch and the row lock, before the INSERTs)."""
        held, real = cls(), getattr(writer, step)
        monkeypatch.setattr(writer, step, lambda *args: (held.hold(), real(*args))[1])
        return held


class WatchedLock:
    """The cache's row lock, telling when a thread other than the writer asks for it."""

    def __init__(self, real) -> None:
        self.real = real
        self.asked = threading.Event()

    def __enter__(self):
        if not in_writer():
            self.asked.set()
        return self.real.__enter__()

    def __exit__(self, *exc):
        return self.real.__exit__(*exc)


def writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == WRITER_THREAD_NAME]


# --------------------------------------------------------------------------- the sqlite backend is the write-behind one
def test_the_sqlite_cache_stores_on_its_own_writer_and_close_ends_it(tmp_path):
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("Newsletter"))
        c = client(tmp_path)
        cache = c.session.cache
        assert isinstance(cache, WriteBehindSQLiteCache)
        assert c.lists_for_email(CID, EMAIL)[0].list_name == "Newsletter"
        assert cache.writer_alive  # started by the first store
        c.close()  # the owner closes the session, which closes the cache and its writer
    assert not cache.writer_alive and cache.pending_count == 0
    assert cache._writer.thread not in threading.enumerate()
    assert len(stored_rows(tmp_path)) == 1  # what waited was stored before the writer ended


def test_a_cache_dropped_without_close_still_ends_its_writer(tmp_path):
    """The thread holds the writer, not the cache: a forgotten cache is collected and its writer
    stores what waits and ends."""
    import gc

    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("Newsletter"))
        c = client(tmp_path)
        c.lists_for_email(CID, EMAIL)
        thread = c.session.cache._writer.thread
        assert thread is not None
        del c
        gc.collect()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert len(stored_rows(tmp_path)) == 1


def test_an_idle_cache_starts_no_thread(tmp_path):
    before = set(writer_threads())
    c = client(tmp_path)
    assert set(writer_threads()) == before
    c.close()


# --------------------------------------------------------------------------- reads see earlier stores
def test_a_read_of_a_waiting_answer_stores_it_first(tmp_path, monkeypatch):
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("Newsletter"))
        c = client(tmp_path)
        cache = c.session.cache
        held = HeldWriter.at(cache._writer, "flush", monkeypatch)
        c.lists_for_email(CID, EMAIL)
        assert held.there.wait(timeout=30)  # the writer woke for the answer and is held before storing it
        assert cache.pending_count == 1
        # served from the cache (no second request), the waiting answer stored by the read itself
        assert c.lists_for_email(CID, EMAIL)[0].list_name == "Newsletter"
        assert len(rsps.calls) == 1 and cache.pending_count == 0
        held.release.set()
        c.close()
    assert len(stored_rows(tmp_path)) == 1


# --------------------------------------------------------------------------- no store lands after an invalidation
@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "indexed-only"])
def test_an_invalidation_drops_an_answer_still_waiting_to_be_stored(tmp_path, monkeypatch, scan):
    """The answer is waiting (the writer is held before it takes it) when the address is
    invalidated: it must never reach the file afterwards, and the next read asks the API."""
    if not scan:
        monkeypatch.setattr(cache_mod, "SCAN_LIMIT", -1)  # the client's key index alone
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("before"))
        c = client(tmp_path)
        cache = c.session.cache
        held = HeldWriter.at(cache._writer, "flush", monkeypatch)
        c.lists_for_email(CID, EMAIL)
        assert held.there.wait(timeout=30) and cache.pending_count == 1
        c.invalidate_email(EMAIL)  # e.g. right after a subscription change
        assert cache.pending_count == 0
        held.release.set()  # the writer goes on: nothing of that address is left to store
        rsps.replace(responses.GET, URL, json=membership("after"))
        assert c.lists_for_email(CID, EMAIL)[0].list_name == "after"
        assert len(rsps.calls) == 2
        c.invalidate_email(EMAIL)
        c.close()
    assert stored_rows(tmp_path) == []


@pytest.mark.parametrize("scan", [True, False], ids=["scanned", "indexed-only"])
def test_an_invalidation_waits_for_a_store_in_progress_then_deletes_it(tmp_path, monkeypatch, scan):
    """The writer is in the middle of storing the answer when the invalidation comes: the
    invalidation waits for that store and deletes after it, so the answer does not survive."""
    if not scan:
        monkeypatch.setattr(cache_mod, "SCAN_LIMIT", -1)  # the client's key index alone
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("before"))
        c = client(tmp_path)
        cache = c.session.cache
        writer = cache._writer
        held = HeldWriter.at(writer, "store", monkeypatch)
        watched = WatchedLock(writer.io)
        monkeypatch.setattr(writer, "io", watched)
        c.lists_for_email(CID, EMAIL)
        assert held.there.wait(timeout=30)  # the writer holds the batch and the row lock
        invalidated = threading.Event()
        worker = threading.Thread(target=lambda: (c.invalidate_email(EMAIL), invalidated.set()))
        worker.start()
        assert watched.asked.wait(timeout=30)  # the invalidation is waiting for the row lock
        assert not invalidated.is_set()
        held.release.set()
        worker.join(timeout=30)
        assert invalidated.is_set()
        rsps.replace(responses.GET, URL, json=membership("after"))
        assert c.lists_for_email(CID, EMAIL)[0].list_name == "after"  # the stored answer was deleted
        c.invalidate_email(EMAIL)
        c.close()
    assert stored_rows(tmp_path) == []


def test_a_read_while_its_answer_is_being_stored_waits_for_it_and_hits(tmp_path, monkeypatch):
    """The writer has taken the answer out of the queue and is committing it when the same
    request comes again: the read waits for that commit and is served from the cache, instead of
    missing in the gap between "no longer waiting" and "stored"."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(URL, json=membership("before"))
        c = client(tmp_path)
        writer = c.session.cache._writer
        held = HeldWriter.at(writer, "store", monkeypatch)
        watched = WatchedLock(writer.io)
        monkeypatch.setattr(writer, "io", watched)
        c.lists_for_email(CID, EMAIL)
        assert held.there.wait(timeout=30)  # the batch is out of the queue, not yet committed
        rsps.replace(responses.GET, URL, json=membership("after"))
        answers: list[str] = []
        reader = threading.Thread(target=lambda: answers.append(c.lists_for_email(CID, EMAIL)[0].list_name))
        reader.start()
        assert watched.asked.wait(timeout=30)  # the read waits for the commit
        held.release.set()
        reader.join(timeout=30)
        assert answers == ["before"]  # served from the cache
        c.close()


def test_clear_drops_what_waits(tmp_path, monkeypatch):
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("before"))
        c = client(tmp_path)
        cache = c.session.cache
        held = HeldWriter.at(cache._writer, "flush", monkeypatch)
        c.lists_for_email(CID, EMAIL)
        assert held.there.wait(timeout=30)
        c.clear_cache()
        held.release.set()
        c.close()
    assert stored_rows(tmp_path) == []


def test_a_store_after_close_is_written_at_once(tmp_path):
    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("late"))
        c = client(tmp_path)
        cache = c.session.cache
        cache.close()  # e.g. a call still running when the connection was replaced
        c.lists_for_email(CID, EMAIL)
        assert cache.pending_count == 0 and not cache.writer_alive
        c.close()
    assert len(stored_rows(tmp_path)) == 1


def test_no_secret_reaches_the_file_through_the_writer(tmp_path):
    import base64

    with responses.RequestsMock() as rsps:
        rsps.get(URL, json=membership("L"))
        c = client(tmp_path)
        c.lists_for_email(CID, EMAIL)
        c.close()
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert blobs
    for secret in (KEY.encode(), base64.b64encode(f"{KEY}:x".encode())):
        assert secret not in blobs


# --------------------------------------------------------------------------- keys
@pytest.mark.parametrize("params", [
    None,
    {"email": "p@x.com"},
    {"email": "maria+news@x.com", "page": 2, "pagesize": 1000},
    {"pagesize": 1000, "email": "Ünïcode@x.com", "orderfield": "date"},
    {"email": "a b&c=d@x.com", "skip": None},
    [("email", "p@x.com"), ("email", "q@x.com")],
])
def test_the_probe_key_is_the_key_of_the_prepared_request(params):
    """The cache probe computes the key from the URL and parameters alone; it must be exactly the
    key requests-cache computes (through the same function) from the request it prepares."""
    keys = CacheKeys(b"salt")
    session = requests.Session()
    session.auth = (KEY, "x")
    prepared = session.prepare_request(requests.Request("GET", URL, params=params))
    authorization = prepared.headers["Authorization"]
    assert keys.for_get(URL, params, authorization) == keys(prepared)


def test_keys_differ_by_credential_and_by_query_but_not_by_parameter_order():
    keys = CacheKeys(b"salt")
    a = keys.for_get(URL, {"email": "p@x.com", "page": 1}, "Basic AAA")
    assert a == keys.for_get(URL, {"page": 1, "email": "p@x.com"}, "Basic AAA")
    assert a != keys.for_get(URL, {"email": "p@x.com", "page": 1}, "Basic BBB")
    assert a != keys.for_get(URL, {"email": "q@x.com", "page": 1}, "Basic AAA")
    assert a != CacheKeys(b"other salt").for_get(URL, {"email": "p@x.com", "page": 1}, "Basic AAA")
