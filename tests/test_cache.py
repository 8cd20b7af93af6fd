"""The HTTP cache: per-credential partitions, no key on disk, invalidation, forced refresh."""
from __future__ import annotations

import base64

import responses

from cmlib import cache as cache_mod
from cmlib.cache import CacheSettings, EmailKeyIndex, email_horizon
from cmlib.client import CampaignMonitor, ClientOptions

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
