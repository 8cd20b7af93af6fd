"""The HTTP cache shared by every replica: requests-cache's Redis backend, made safe to share.

Used instead of the per-process SQLite file when ``CM_REDIS_URL`` is set (see
:func:`cmlib.cache.build_session`). What sharing needs beyond ``RedisCache`` itself:

* **JSON, never pickle.** Whoever can write to Redis must not be able to run code in the app,
  so responses are stored with requests-cache's JSON serializer (bodies base64-encoded).
* **Entries expire.** Redis deletes an entry ``TTL_OFFSET`` seconds after it stops being served
  (requests-cache's default offset is an hour of dead entries).
* **One partition salt for all replicas.** The per-credential partition of the cache key is an
  HMAC under a salt; replicas with different salts never share an entry. The salt is
  ``CM_CACHE_SALT`` when configured, else one random value created once in Redis (``SET NX``),
  so every replica agrees without a per-host file.
* **Invalidation reaches every replica.** After a write, every cached answer about the address
  must go, whichever replica cached it. :class:`RedisAddressIndex` keeps, per address, a Redis
  set of the cache keys holding answers about it (named by a hash of the address, never the
  address; expiring with the answers), so an invalidation deletes exactly those keys instead of
  scanning the cache.
* **A Redis outage is a cache miss, not an error.** Reads and stores that fail are logged and
  skipped: the lookup goes to the API instead of failing.

The Redis client is the process-wide one of :mod:`cmlib.deployment`, which owns and closes it: a
session closing must not close a connection pool every other session uses.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from typing import Any

import redis
from requests_cache.backends.redis import RedisCache, RedisDict
from requests_cache.models import CachedResponse

from . import deployment

log = logging.getLogger("cmlib.redis_cache")

NAMESPACE = "cm:http"  # response keys: "cm:http:<cache key>"
INDEX_PREFIX = "cm:http-idx:"  # per-address index: "cm:http-idx:<hash of the address>"
SALT_KEY = "cm:http-salt"
TTL_OFFSET = 30  # seconds an expired entry lingers in Redis before Redis deletes it
_INDEX_TAG = b"cm-address-index"  # HMAC key of index names when no CM_CACHE_SALT is configured
_WARN_EVERY = 60.0


class _Warner:
    """Logs a Redis failure at most once a minute per kind: an outage must not flood the log."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}

    def __call__(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(what, -_WARN_EVERY) < _WARN_EVERY:
                return
            self._last[what] = now
        # The exception's type only: a redis error message may carry the URL (and its password).
        log.warning("shared cache: %s failed (%s); answering without the cache", what, type(exc).__name__)


_warn = _Warner()


def partition_salt(client: redis.Redis) -> bytes:
    """The cache-partition salt every replica uses: ``CM_CACHE_SALT``, else the one in Redis.

    The first replica to ask creates a random salt with ``SET NX GET`` (one round trip); every
    later one reads it. It has no TTL: with an evicting Redis, use a ``volatile-*`` policy (cache
    entries have TTLs, the salt has none) or configure ``CM_CACHE_SALT``.
    """
    configured = deployment.cache_salt()
    if configured:
        return configured.encode("utf-8")
    mine = secrets.token_hex(32)
    try:
        previous = client.set(SALT_KEY, mine, nx=True, get=True)
    except redis.ResponseError:  # Redis before 7.0 refuses NX with GET: two round trips
        client.set(SALT_KEY, mine, nx=True)
        previous = client.get(SALT_KEY)
    value = previous if previous is not None else mine
    return bytes.fromhex(value.decode() if isinstance(value, bytes) else str(value))


def index_name(email: str) -> str:
    """The Redis key of an address's index: an HMAC of the address, never the address.

    Not keyed by the partition salt: a replica that created a new salt after a Redis restart must
    still find (and invalidate) what the older replicas indexed.
    """
    key = (deployment.cache_salt() or "").encode("utf-8") or _INDEX_TAG
    digest = hmac.new(key, email.strip().lower().encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return INDEX_PREFIX + digest


class RedisAddressIndex:
    """Which cache keys hold answers about which address, kept in Redis for every replica.

    The same interface as :class:`cmlib.cache.EmailKeyIndex` (``add``, ``pop``, ``clear``,
    ``len``). One Redis set per address, whose TTL (``horizon``: the longest an answer naming an
    address is served, plus the entries' own TTL offset) is renewed by each add, so the index
    never outlives the answers it points to and needs no count bound.
    """

    def __init__(self, client: redis.Redis, horizon: float) -> None:
        self._client = client
        self.horizon_ms = max(1000, int((horizon + TTL_OFFSET) * 1000))

    def add(self, email: str, key: str) -> list[str]:
        """Index ``key`` under ``email``. Nothing is ever pushed out (the TTL bounds it): []."""
        name = index_name(email)
        try:
            pipe = self._client.pipeline(transaction=False)
            pipe.sadd(name, key)
            pipe.pexpire(name, self.horizon_ms)
            pipe.execute()
        except redis.RedisError as exc:
            _warn("indexing an answer", exc)
        return []

    def pop(self, email: str) -> set[str]:
        """The keys indexed under ``email`` by any replica (forgotten here, atomically)."""
        name = index_name(email)
        pipe = self._client.pipeline(transaction=True)
        pipe.smembers(name)
        pipe.delete(name)
        members, _ = pipe.execute()
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    def clear(self) -> None:
        """Forget every address's index (the whole cache was cleared)."""
        batch: list[Any] = []
        for name in self._client.scan_iter(match=INDEX_PREFIX + "*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                self._client.delete(*batch)
                batch.clear()
        if batch:
            self._client.delete(*batch)

    def __len__(self) -> int:
        """Addresses indexed (by every replica). Scans the index's key space: diagnostics and tests only."""
        try:
            return sum(1 for _ in self._client.scan_iter(match=INDEX_PREFIX + "*", count=500))
        except redis.RedisError:
            return 0


class _Responses(RedisDict):
    """requests-cache's Redis storage, writing with ``SET ... EX`` (its ``SETEX`` is deprecated in redis-py)."""

    def __setitem__(self, key: str, item: Any) -> None:
        expires_delta = getattr(item, "expires_delta", None)
        ttl = None if expires_delta is None else int(expires_delta) + self.ttl_offset
        self.connection.set(self._bkey(key), self.serialize(item), ex=ttl if ttl and ttl > 0 else None)


class SharedRedisCache(RedisCache):
    """``RedisCache`` on the process-wide client, JSON-serialised, with expiring entries and an
    address index; Redis failures read as misses."""

    def __init__(self, client: redis.Redis, *, horizon: float) -> None:
        super().__init__(namespace=NAMESPACE, connection=client, serializer="json", ttl=True, ttl_offset=TTL_OFFSET)
        self.responses = _Responses(NAMESPACE, connection=client, serializer="json", ttl=True, ttl_offset=TTL_OFFSET)
        self.address_index = RedisAddressIndex(client, horizon)

    def get_response(self, key: str, default: Any = None) -> CachedResponse | None:
        try:
            return super().get_response(key, default)
        except redis.RedisError as exc:
            _warn("reading an answer", exc)
            return default

    def save_response(self, response: Any, cache_key: str | None = None, expires: Any = None) -> None:
        try:
            super().save_response(response, cache_key, expires)
        except redis.RedisError as exc:
            _warn("storing an answer", exc)

    def clear(self) -> None:
        super().clear()
        self.address_index.clear()

    def close(self) -> None:
        """Nothing to close: the connection pool is :mod:`cmlib.deployment`'s, shared by every session."""
