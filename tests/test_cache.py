"""The HTTP cache: per-credential partitions, no key on disk, invalidation, forced refresh."""
from __future__ import annotations

import base64

import pytest
import responses

from cmlib import cache as cache_mod
from cmlib.cache import CacheSettings, EmailKeyIndex, email_horizon
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import UnexpectedResponseError

BASE = "https://api.test/api/v3.3"
CID = "c1"
KEY_A = "key-AAAA-1111-first-credential"
KEY_B = "key-BBBB-2222-second-credential"


def client(key, tmp_path, **expiry):
    settings = CacheSettings(path=tmp_path / "cache" / "http", salt_path=tmp_path / "cache" / "salt")
    settings.expiry.update(expiry)
    return CampaignMonitor(key, BASE, options=ClientOptions(rate=None), cache=settings)


def membership(name):
    return [{"ListID": "l1", "ListName": name, "SubscriberState": "Active", "DateSubscriberAdded": "2024-01-01 10:00"}]


@responses.activate
def test_two_keys_never_share_entries(tmp_path):
    a, b = client(KEY_A, tmp_path), client(KEY_B, tmp_path)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=membership("seen by A"))
    assert a.lists_for_email(CID, "p@x.com")[0].list_name == "seen by A"
    responses.replace(responses.GET, f"{BASE}/clients/{CID}/listsforemail.json", json=membership("seen by B"))
    assert b.lists_for_email(CID, "p@x.com")[0].list_name == "seen by B"
    # both answers are now cached, each in its own partition
    assert a.lists_for_email(CID, "p@x.com")[0].list_name == "seen by A"
    assert b.lists_for_email(CID, "p@x.com")[0].list_name == "seen by B"
    assert len(responses.calls) == 2


@responses.activate
def test_key_is_not_readable_from_cache_file(tmp_path):
    a = client(KEY_A, tmp_path)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=membership("L"))
    a.lists_for_email(CID, "p@x.com")
    a.close()
    blobs = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert blobs, "cache file was written"
    for secret in (KEY_A.encode(), base64.b64encode(f"{KEY_A}:x".encode())):
        assert secret not in blobs


@responses.activate
def test_cache_hit_fresh_read_and_invalidation(tmp_path):
    a = client(KEY_A, tmp_path)
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=membership("v1"))
    assert a.lists_for_email(CID, "P@x.com")[0].list_name == "v1"
    responses.replace(responses.GET, url, json=membership("v2"))
    assert a.lists_for_email(CID, "P@x.com")[0].list_name == "v1"  # cached
    assert a.lists_for_email(CID, "P@x.com", fresh=True)[0].list_name == "v2"  # forced
    responses.replace(responses.GET, url, json=membership("v3"))
    assert a.lists_for_email(CID, "P@x.com")[0].list_name == "v2"  # refreshed entry cached
    assert a.invalidate_email("p@X.com") >= 1  # case-insensitive
    assert a.lists_for_email(CID, "P@x.com")[0].list_name == "v3"


@responses.activate
def test_invalidation_only_touches_that_email(tmp_path):
    a = client(KEY_A, tmp_path)
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=membership("v1"))
    a.lists_for_email(CID, "one@x.com")
    a.lists_for_email(CID, "two+tag@x.com")
    assert len(responses.calls) == 2
    a.invalidate_email("two+tag@x.com")
    a.lists_for_email(CID, "one@x.com")
    a.lists_for_email(CID, "two+tag@x.com")
    assert len(responses.calls) == 3


@responses.activate
def test_writes_invalidate_the_address(tmp_path):
    a = client(KEY_A, tmp_path)
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=membership("before"))
    responses.post(f"{BASE}/subscribers/l1/unsubscribe.json", body="")
    a.lists_for_email(CID, "p@x.com")
    a.unsubscribe("l1", "p@x.com")
    responses.replace(responses.GET, url, json=membership("after"))
    assert a.lists_for_email(CID, "p@x.com")[0].list_name == "after"


@responses.activate
def test_zero_expiry_means_not_cached(tmp_path):
    a = client(KEY_A, tmp_path, listsforemail=0)
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=membership("v1"))
    a.lists_for_email(CID, "p@x.com")
    a.lists_for_email(CID, "p@x.com")
    assert len(responses.calls) == 2


@responses.activate
def test_errors_and_broken_bodies_are_not_cached(tmp_path):
    a = client(KEY_A, tmp_path)
    a.options.retry = type(a.options.retry)(max_attempts=1)
    url = f"{BASE}/clients/{CID}/lists.json"
    responses.get(url, body="[{broken", status=200)
    import pytest

    from cmlib.errors import UnexpectedResponseError

    with pytest.raises(UnexpectedResponseError):
        a.lists(CID)
    responses.replace(responses.GET, url, json=[{"ListID": "l1", "Name": "ok"}])
    assert a.lists(CID)[0].name == "ok"


def test_memory_backend_is_swappable(tmp_path):
    s = CacheSettings(backend="memory", salt_path=tmp_path / "salt")
    c = CampaignMonitor(KEY_A, BASE, cache=s)
    assert type(c.session.cache).__name__ == "BaseCache"


# ---------------------------------------------------------------- the per-address key index
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_key_index_forgets_addresses_whose_answers_expired():
    clock = Clock()
    index = EmailKeyIndex(120, clock=clock)
    assert index.add("A@x.com", "k1") == [] and index.add("a@x.com", "k2") == []
    clock.now = 100
    index.add("b@x.com", "k3")
    clock.now = 200  # a's answers (cached at 0) expired at 120; b's (100) are still good
    index.add("c@x.com", "k4")
    assert len(index) == 2
    assert index.pop("a@x.com") == set()
    assert index.pop("B@X.com") == {"k3"}
    assert len(index) == 1


def test_past_its_bound_the_key_index_hands_back_what_must_be_deleted():
    clock = Clock()
    index = EmailKeyIndex(120, max_addresses=2, clock=clock)
    index.add("a@x.com", "a1")
    index.add("a@x.com", "a2")
    index.add("b@x.com", "b1")
    index.add("a@x.com", "a3")  # a is now the most recently cached: b goes first
    assert index.add("c@x.com", "c1") == ["b1"]
    assert sorted(index.add("d@x.com", "d1")) == ["a1", "a2", "a3"]
    assert len(index) == 2


def test_the_horizon_is_the_longest_expiry_of_an_answer_naming_an_address():
    s = CacheSettings(backend="memory")
    s.expiry.update(listsforemail=30, subscriber=90, history=300, lists=3600)
    assert email_horizon(s) == 300  # lists never name an address
    assert email_horizon(None) == 0 and email_horizon(CacheSettings(enabled=False)) == 0


@responses.activate
def test_an_address_pushed_out_of_the_index_is_not_served_stale(tmp_path, monkeypatch):
    """Bounded without losing correctness: what the index forgets is deleted from the cache."""
    monkeypatch.setattr(cache_mod, "SCAN_LIMIT", -1)  # no fallback scan: the index alone decides
    a = client(KEY_A, tmp_path)
    a._email_keys = EmailKeyIndex(120, max_addresses=1)
    url = f"{BASE}/clients/{CID}/listsforemail.json"
    responses.get(url, json=membership("v1"))
    a.lists_for_email(CID, "one@x.com")
    a.lists_for_email(CID, "two@x.com")  # pushes one@ out, and its cached answer with it
    assert a.indexed_address_count == 1
    responses.replace(responses.GET, url, json=membership("v2"))
    assert a.lists_for_email(CID, "two@x.com")[0].list_name == "v1"  # still cached
    assert a.lists_for_email(CID, "one@x.com")[0].list_name == "v2"  # asked again, not stale
    a.invalidate_email("two@x.com")  # found through the index, without a scan
    assert a.lists_for_email(CID, "two@x.com")[0].list_name == "v2"


def _spy(monkeypatch, cache, name):
    """Count calls of one cache backend method, still doing what it does."""
    calls: list[tuple] = []
    real = getattr(cache, name)

    def spy(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(cache, name, spy)
    return calls


@responses.activate
def test_a_cold_get_reads_the_cache_once_and_deletes_nothing(tmp_path, monkeypatch):
    """Issue 15: the cache layer's cost on a cold lookup. The probe that lets a hit skip the rate
    slot is the only cache read of a miss (the request that follows does not read again), and a
    miss writes nothing but the answer (no delete of the absent key under the write lock)."""
    c = client(KEY_A, tmp_path)
    cache = c.session.cache
    reads = _spy(monkeypatch, cache, "get_response")
    deletes = _spy(monkeypatch, cache, "delete")
    saves = _spy(monkeypatch, cache, "save_response")
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=membership("Newsletter"))
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "Newsletter"
    assert (len(reads), len(deletes), len(saves)) == (1, 0, 1)
    # ...and the stored answer is served from the cache, without a request
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "Newsletter"
    assert len(responses.calls) == 1


@responses.activate
def test_a_non_json_200_is_still_never_kept(tmp_path):
    """The filter still drops a truncated/HTML 200 (only the probe's synthetic miss is exempt)."""
    c = client(KEY_A, tmp_path)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", body="<html>oops</html>", status=200)
    with pytest.raises(UnexpectedResponseError):  # every try malformed; what matters is what is kept
        c.lists_for_email(CID, "p@x.com")
    responses.replace(responses.GET, f"{BASE}/clients/{CID}/listsforemail.json", json=membership("Newsletter"))
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "Newsletter"


@responses.activate
def test_the_probe_never_serves_an_expired_answer(tmp_path, monkeypatch):
    """The cache probe reads the entry itself (one key, one read): it must apply the expiry just
    as requests-cache does. The clock requests-cache reads is moved past the entry's expiry."""
    from datetime import timedelta

    import requests_cache.models.response as rc_response

    c = client(KEY_A, tmp_path, listsforemail=60)
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=membership("first"))
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "first"
    responses.replace(responses.GET, f"{BASE}/clients/{CID}/listsforemail.json", json=membership("second"))
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "first"  # within 60 s: the cached answer
    real_now = rc_response.utcnow
    monkeypatch.setattr(rc_response, "utcnow", lambda: real_now() + timedelta(seconds=61))
    assert c.lists_for_email(CID, "p@x.com")[0].list_name == "second"
    assert len(responses.calls) == 2
