"""The HTTP cache shared by replicas through Redis (``CM_REDIS_URL``), against a real redis-server.

Two "replicas" are two clients with their own sessions (and, where it matters, a subprocess):
they share entries of one credential, never another's, and a write on one invalidates what the
other would serve. Entries are JSON (never pickle) and expire shortly after their expiry.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import responses

from cmlib import cache as cache_mod
from cmlib import deployment, diagnostics, redis_cache
from cmlib.cache import CacheSettings, EmailKeyIndex, effective_backend
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.redis_cache import INDEX_PREFIX, NAMESPACE, SALT_KEY, TTL_OFFSET, RedisAddressIndex

BASE = "https://api.test/api/v3.3"
CID = "c1"
KEY_A = "key-AAAA-1111-first-credential"
KEY_B = "key-BBBB-2222-second-credential"
URL = f"{BASE}/clients/{CID}/listsforemail.json"
ROOT = Path(__file__).resolve().parent.parent



def replica(key=KEY_A, **expiry):
    settings = CacheSettings(backend=effective_backend("sqlite"))
    settings.expiry.update(expiry)
    return CampaignMonitor(key, BASE, options=ClientOptions(rate=None), cache=settings)


def membership(name):
    return [{"ListID": "l1", "ListName": name, "SubscriberState": "Active", "DateSubscriberAdded": "2024-01-01 10:00"}]


def entry_names(raw) -> list[bytes]:
    return list(raw.scan_iter(match=f"{NAMESPACE}:*"))


def test_the_backend_is_redis_only_in_the_deployment_mode(redis_url, monkeypatch):
    from cmlib import runtime

    assert effective_backend("sqlite") == "sqlite" and effective_backend("memory") == "memory"
    assert runtime.cache_settings().backend == "sqlite"
    monkeypatch.setenv("CM_REDIS_URL", redis_url)
    # A per-replica cache would keep serving what another replica changed: Redis, unless off.
    assert effective_backend("memory") == "redis" and effective_backend("off") == "off"
    assert runtime.cache_settings().backend == "redis"
    monkeypatch.setenv("CM_CACHE_BACKEND", "off")
    assert not runtime.cache_settings().enabled


@responses.activate
def test_replicas_share_a_credentials_entries_and_only_its_own(redis_mode):
    a, b, other = replica(), replica(), replica(KEY_B)
    responses.get(URL, json=membership("v1"))
    assert a.lists_for_email(CID, "p@x.com")[0].list_name == "v1"
    responses.replace(responses.GET, URL, json=membership("v2"))
    assert b.lists_for_email(CID, "p@x.com")[0].list_name == "v1"  # A's entry, served to B
    assert other.lists_for_email(CID, "p@x.com")[0].list_name == "v2"  # another key: its own partition
    assert len(responses.calls) == 2
    assert b.calls_made == 0 and a.session is not b.session
    for c in (a, b, other):
        c.close()
    assert redis_mode.ping()  # closing a session leaves the deployment's shared connection pool alone
    assert replica().lists_for_email(CID, "p@x.com")[0].list_name == "v1"


@responses.activate
def test_a_write_on_one_replica_invalidates_what_the_other_serves(redis_mode):
    a, b = replica(), replica()
    responses.get(URL, json=membership("v1"))
    responses.get(f"{BASE}/subscribers/l1.json", json={"EmailAddress": "p@x.com", "State": "Active"})
    b.lists_for_email(CID, "p@x.com")
    b.lists_for_email(CID, "other@x.com")
    responses.replace(responses.GET, URL, json=membership("v2"))
    assert b.lists_for_email(CID, "p@x.com")[0].list_name == "v1"  # cached
    assert a.invalidate_email("p@X.com") == 1  # A never looked it up: B's entry, found through Redis
    assert b.lists_for_email(CID, "p@x.com")[0].list_name == "v2"
    assert len(responses.calls) == 3
    assert b.lists_for_email(CID, "other@x.com")[0].list_name == "v1"  # another address is untouched


@responses.activate
def test_the_address_index_names_no_address_and_expires(redis_mode):
    b = replica(listsforemail=60)
    responses.get(URL, json=membership("v1"))
    b.lists_for_email(CID, "Someone.Private@x.com")
    [name] = list(redis_mode.scan_iter(match=f"{INDEX_PREFIX}*"))
    assert b"private" not in name.lower() and b"@" not in name
    horizon = cache_mod.email_horizon(b.cache_settings)
    assert 0 < redis_mode.pttl(name) <= (horizon + TTL_OFFSET) * 1000
    assert redis_mode.smembers(name) == {name_of_entry(redis_mode).encode()}
    assert b.indexed_address_count == 1
    b.clear_cache()
    assert not entry_names(redis_mode) and not list(redis_mode.scan_iter(match=f"{INDEX_PREFIX}*"))


def name_of_entry(raw) -> str:
    [name] = entry_names(raw)
    return name.decode().removeprefix(f"{NAMESPACE}:")


@responses.activate
def test_entries_are_json_never_pickle_and_expire_shortly_after_expiry(redis_mode):
    a = replica(listsforemail=60)
    responses.get(URL, json=membership("v1"))
    a.lists_for_email(CID, "p@x.com")
    [name] = entry_names(redis_mode)
    stored = redis_mode.get(name)
    assert not stored.startswith(b"\x80")  # pickle's protocol marker
    document = json.loads(stored)  # plain JSON: whoever writes to Redis cannot make the app run code
    assert document["status_code"] == 200 and document["url"].startswith(URL)
    ttl = redis_mode.ttl(name)
    assert 60 < ttl <= 60 + TTL_OFFSET  # expires with the entry, not an hour after it
    for secret in (KEY_A.encode(), base64.b64encode(f"{KEY_A}:x".encode())):
        assert secret not in stored


def test_one_salt_for_every_replica_created_once(redis_mode, redis_url):
    client = deployment.shared_redis()
    first = redis_cache.partition_salt(client)
    assert redis_cache.partition_salt(client) == first and len(first) == 32
    assert redis_mode.ttl(SALT_KEY) == -1  # kept: replicas started later must find the same one
    env = {**os.environ, "CM_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    env.pop("CM_CACHE_SALT", None)
    out = subprocess.run([sys.executable, "-c", "from cmlib import deployment, redis_cache; "
                          "print(redis_cache.partition_salt(deployment.shared_redis()).hex())"],
                         env=env, capture_output=True, text=True, check=True, timeout=60)
    assert bytes.fromhex(out.stdout.strip()) == first  # another process: the same partition


def test_a_configured_salt_wins(redis_mode, monkeypatch):
    monkeypatch.setenv("CM_CACHE_SALT", "team-salt-from-configuration")
    assert redis_cache.partition_salt(deployment.shared_redis()) == b"team-salt-from-configuration"
    assert redis_mode.get(SALT_KEY) is None


def test_the_size_is_unknown_on_redis_and_the_settings_page_says_so(redis_mode):
    a = replica()
    assert a.cache_size_bytes() is None
    info = diagnostics.cache_info(a)
    assert info.enabled and info.backend == "redis" and info.describe_size() == "size unknown for this backend"


def test_without_the_url_the_index_stays_in_the_process(tmp_path):
    settings = CacheSettings(path=tmp_path / "http", salt_path=tmp_path / "salt")
    c = CampaignMonitor(KEY_A, BASE, options=ClientOptions(rate=None), cache=settings)
    assert isinstance(c._email_keys, EmailKeyIndex) and not cache_mod.is_shared(c.session)
    c.close()


@responses.activate
def test_a_redis_outage_is_a_cache_miss_not_an_error(monkeypatch):
    from tests.servers import free_port

    monkeypatch.setenv("CM_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    monkeypatch.setenv("CM_CACHE_SALT", "configured")  # building the session needs no Redis then
    deployment.reset_for_tests()
    try:
        a = replica()
        assert isinstance(a._email_keys, RedisAddressIndex)
        responses.get(URL, json=membership("v1"))
        assert a.lists_for_email(CID, "p@x.com")[0].list_name == "v1"
        assert a.lists_for_email(CID, "p@x.com")[0].list_name == "v1"
        assert len(responses.calls) == 2  # no cache, but answers
        assert a.invalidate_email("p@x.com") == 0  # logged, never raised after a done write
        a.close()
    finally:
        deployment.reset_for_tests()


def test_a_write_through_replica_a_is_seen_by_a_lookup_on_replica_b(redis_mode, app_env):
    """Against the sandbox, with the app's own cache settings (the fixture's CM_CACHE_BACKEND=memory
    gives way to Redis in the deployment mode): B's cached "Active" does not survive A's write."""
    from cmlib import runtime

    sb = app_env
    settings = runtime.cache_settings()
    assert settings.backend == "redis"
    a, b = (CampaignMonitor(sb.client_api_key, sb.base_url, options=ClientOptions(rate=None), cache=settings)
            for _ in range(2))
    email = "anna@example.com"
    newsletter = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id

    def state_on_b() -> str:
        return {m.list_id: m.state for m in b.lists_for_email(sb.main_client_id, email)}[newsletter]

    assert state_on_b() == "Active"
    served = sb.requests_served
    assert state_on_b() == "Active" and sb.requests_served == served  # B's answer now comes from the cache
    a.unsubscribe(newsletter, email)
    assert state_on_b() == "Unsubscribed"
    a.close()
    b.close()
