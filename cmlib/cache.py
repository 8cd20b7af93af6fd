"""HTTP caching with requests-cache, partitioned per credential.

requests-cache deliberately leaves ``Authorization`` out of its cache key (and redacts it
from what it stores). That keeps the key out of the cache file, but on its own it would let
two API keys read each other's cached answers. We add a partition to the key: an HMAC of the
Authorization header under a per-installation secret salt, so the same key always maps to the
same partition while the stored bytes never contain the key or a plain hash of it.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import requests
from requests.auth import _basic_auth_str
from requests.models import RequestEncodingMixin
from requests.utils import requote_uri

from . import deployment
from .config import data_dir
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .redis_cache import RedisAddressIndex

# Default expiry per endpoint, in seconds. Lists and campaigns change rarely; a subscriber's
# state is what support leads act on, so it is kept short.
DEFAULT_EXPIRY: dict[str, int] = {
    "clients": 600,
    "lists": 600,
    "list_details": 600,
    "campaigns": 600,
    "suppressionlist": 120,
    "listsforemail": 60,
    "subscriber": 60,
    "history": 120,
}

# Endpoint name -> regex on the URL path (after the base URL).
ENDPOINT_PATTERNS: dict[str, str] = {
    "listsforemail": r"/clients/[^/]+/listsforemail\.json",
    "suppressionlist": r"/clients/[^/]+/suppressionlist\.json",
    "campaigns": r"/clients/[^/]+/campaigns\.json",
    "lists": r"/clients/[^/]+/lists\.json",
    "clients": r"/clients(/[^/]+)?\.json",
    "history": r"/subscribers/[^/]+/history\.json",
    "subscriber": r"/subscribers/[^/]+\.json",
    "list_details": r"/lists/[^/]+\.json",
}


@dataclass
class CacheSettings:
    """How responses are cached. ``backend`` is any requests-cache backend name or instance."""

    enabled: bool = True
    backend: Any = "sqlite"
    path: Path | None = None  # sqlite/filesystem location; default <data>/cache/http_cache.sqlite
    expiry: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EXPIRY))
    salt_path: Path | None = None

    def cache_name(self) -> str:
        if self.path is not None:
            return str(self.path)
        d = data_dir() / "cache"
        d.mkdir(parents=True, exist_ok=True)
        return str(d / "http_cache")

    def urls_expire_after(self) -> dict:
        out: dict = {}
        for name, pattern in ENDPOINT_PATTERNS.items():
            seconds = self.expiry.get(name, DEFAULT_EXPIRY.get(name, 60))
            out[re.compile(pattern + r"(\?|$)")] = seconds
        return out


def _salt(path: Path | None) -> bytes:
    """A random per-installation salt, created once (0600) beside the cache."""
    path = path or (data_dir() / "cache" / "partition.salt")
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value.hex())
        return value


def partition_of(auth_header: str, salt: bytes) -> str:
    return hmac.new(salt, auth_header.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


class CacheKeys:
    """The cache key of a request: its method, URL (query parameters sorted) and body, and the
    credential's partition (an HMAC of its Authorization header, never the header itself).

    requests-cache's own key normalises the URL with url-normalize (an IDNA pass over the host,
    every component re-quoted) and was computed twice per request, ~0.4 ms CPU each on a cold
    lookup's 34 requests. Requests prepared by ``requests`` need none of it: its URL is already
    quoted, and sorting the decoded query makes the key independent of parameter order. The same
    key is computed straight from a URL and its parameters (:meth:`for_get`) for the cache probe,
    without preparing a request.
    """

    MAX_PARTITIONS = 64  # Authorization headers whose partition is remembered (one per credential in use)

    def __init__(self, salt: bytes) -> None:
        self._salt = salt
        self._partitions: dict[str, str] = {}

    def partition(self, authorization: str) -> str:
        known = self._partitions.get(authorization)
        if known is None:
            if len(self._partitions) >= self.MAX_PARTITIONS:
                self._partitions.clear()
            known = self._partitions[authorization] = partition_of(authorization, self._salt)
        return known

    def __call__(self, request: Any, **_: Any) -> str:
        """requests-cache's ``key_fn``: the key of a prepared request."""
        headers = getattr(request, "headers", None) or {}
        auth = headers.get("Authorization", "") if hasattr(headers, "get") else ""
        return self._key(getattr(request, "method", None) or "GET", getattr(request, "url", None) or "",
                         getattr(request, "body", None), auth)

    def for_get(self, url: str, params: Any, authorization: str) -> str:
        """The key ``GET url`` with ``params`` gets once prepared (as :meth:`__call__` computes it)."""
        if params:
            encoded = RequestEncodingMixin._encode_params(params)  # type: ignore[attr-defined]  # as requests encodes
            url = f"{url}{'&' if '?' in url else '?'}{encoded}" if encoded else url
        return self._key("GET", url, None, authorization)

    def _key(self, method: str, url: str, body: Any, authorization: str) -> str:
        scheme, netloc, path, query, _ = urlsplit(url)
        parts = [method.upper(), scheme.lower(), netloc.lower(), requote_uri(path or "/"),
                 urlencode(sorted(parse_qsl(query, keep_blank_values=True))), self.partition(authorization)]
        digest = hashlib.sha256("\n".join(parts).encode("utf-8"))
        if body:
            digest.update(b"\n" + (body if isinstance(body, bytes) else str(body).encode("utf-8")))
        return digest.hexdigest()[:32]


def make_key_fn(salt: bytes) -> CacheKeys:
    return CacheKeys(salt)


def _probe_authorization(session: requests.Session) -> str | None:
    """The Authorization header ``session`` would send, or None when only preparing a request can
    tell (a custom auth object, or credentials from the environment's netrc)."""
    auth = session.auth
    if isinstance(auth, tuple) and len(auth) == 2:
        return _basic_auth_str(*auth)
    if auth is None and not session.trust_env:
        return str(session.headers.get("Authorization", ""))
    return None


def _is_json_body(response: requests.Response) -> bool:
    """Only cache a body that parses: a truncated or HTML 200 must not stick for minutes."""
    try:
        response.json()
        return True
    except ValueError:
        return False


REDIS_BACKEND = "redis"


def effective_backend(configured: str) -> str:
    """The backend to use for ``configured`` (``CM_CACHE_BACKEND`` or the saved setting).

    With ``CM_REDIS_URL`` set, several replicas serve the same account: a cache of their own
    (sqlite, memory, filesystem) would keep serving what another replica just changed, so the
    cache is the shared Redis one unless caching is off.
    """
    if configured != "off" and deployment.redis_url() is not None:
        return REDIS_BACKEND
    return configured


_REDIS_BACKEND_MODULE = "requests_cache.backends.redis"


def load_requests_cache() -> None:
    """Import requests-cache, without its Redis backend unless this process may use Redis.

    requests-cache imports every backend whose library is installed, and redis-py is (for the
    team deployment): ~50 ms that an embedded app would pay before its first page is drawn for a
    backend it never uses. Imported here, on the first cached session, not with this module.
    Our Redis cache (:mod:`cmlib.redis_cache`) imports that backend module directly, which
    still works afterwards; only requests-cache's own ``backend="redis"`` shortcut, which we
    never use, stays unavailable in such a process.
    """
    if "requests_cache" in sys.modules or "redis" in sys.modules or deployment.redis_url() is not None:
        return  # loaded already, or Redis is (or may be) used: the caller's plain import does it
    sys.modules[_REDIS_BACKEND_MODULE] = None  # type: ignore[assignment]  # makes "from .redis import" fail
    try:
        import requests_cache  # noqa: F401
    finally:
        if _REDIS_BACKEND_MODULE in sys.modules and sys.modules[_REDIS_BACKEND_MODULE] is None:
            del sys.modules[_REDIS_BACKEND_MODULE]


def build_session(settings: CacheSettings | None) -> requests.Session:
    """A plain Session when caching is off, else a CachedSession with our key and expiries
    (on the shared Redis cache for the ``redis`` backend, :mod:`cmlib.redis_cache`)."""
    if settings is None or not settings.enabled:
        return requests.Session()
    load_requests_cache()
    import requests_cache

    extra: dict[str, Any] = {}
    backend: Any = settings.backend
    if backend == "sqlite":
        extra["wal"] = True  # concurrent lookups write many responses at once
        extra["fast_save"] = True  # no fsync per response: losing a cache entry on a crash is harmless
        salt = _salt(settings.salt_path)
    elif backend == REDIS_BACKEND:
        from .redis_cache import SharedRedisCache, partition_salt

        client = deployment.shared_redis()
        if client is None:
            raise ConfigurationError("the redis cache backend needs CM_REDIS_URL")
        salt = partition_salt(client)
        backend = SharedRedisCache(client, horizon=email_horizon(settings))
    else:
        salt = _salt(settings.salt_path)
    if backend == "sqlite":
        from .write_behind import WriteBehindSQLiteCache

        # Answers are stored by the cache's own writer thread, closed with the session.
        backend = WriteBehindSQLiteCache(settings.cache_name(), **extra)
        extra = {}
    elif isinstance(backend, str):
        extra["cache_name"] = settings.cache_name()
    return requests_cache.CachedSession(
        backend=backend,
        **extra,
        expire_after=60,
        urls_expire_after=settings.urls_expire_after(),
        allowable_codes=(200,),
        allowable_methods=("GET",),
        key_fn=make_key_fn(salt),
        filter_fn=_is_json_body,
    )


def cached_answer(session: requests.Session, url: str, params: dict | None = None) -> Any | None:
    """The stored, unexpired answer to ``GET url`` or ``None``: the cache probe of
    :meth:`cmlib.client.CampaignMonitor._once`, done as one key computation and one read.

    Same key as requests-cache computes (our :class:`CacheKeys`, from the URL, the parameters
    and the session's credentials, without preparing a request) and the same rule as it applies
    with our settings (an entry is served until its ``expires``; cache headers are not
    honoured). Going through ``session.request(only_if_cached=True)`` instead cost a whole
    second request preparation and cache-policy pass per request, measured ~1 ms CPU each."""
    cache = getattr(session, "cache", None)
    if cache is None:
        return None
    keys = getattr(getattr(session, "settings", None), "key_fn", None)
    authorization = _probe_authorization(session) if isinstance(keys, CacheKeys) else None
    if isinstance(keys, CacheKeys) and authorization is not None:
        key = keys.for_get(url, params, authorization)
    else:
        key = cache.create_key(session.prepare_request(requests.Request("GET", url, params=params)))
    answer = cache.get_response(key)
    if answer is None or answer.is_expired:
        return None
    return answer


def emails_in_url(url: str) -> list[str]:
    q = parse_qs(urlsplit(url).query)
    return [v.lower() for v in q.get("email", [])]


SCAN_LIMIT = 5000

# Endpoints whose URL names an address (``?email=``): what an address's invalidation drops.
EMAIL_ENDPOINTS = ("listsforemail", "subscriber", "history")
MAX_INDEXED_ADDRESSES = 10_000


def email_horizon(settings: CacheSettings | None) -> float:
    """How long an answer naming an address can be served from the cache (the longest expiry
    of those endpoints, and the session's default for any other URL that names one)."""
    if settings is None or not settings.enabled:
        return 0.0
    return float(max([60, *(settings.expiry.get(n, DEFAULT_EXPIRY.get(n, 60)) for n in EMAIL_ENDPOINTS)]))


class EmailKeyIndex:
    """Which cache keys hold answers about which address, so invalidating one address deletes
    exactly those keys without scanning the cache.

    Bounded, so it cannot grow by one entry per address ever looked up:

    * by age: an address whose last answer was cached more than ``horizon`` seconds ago is
      dropped -- its answers have expired, and requests-cache never serves an expired answer
      (an expired entry is refetched, and the refetch is indexed again);
    * by count: past ``max_addresses`` addresses, the least recently cached is dropped and its
      keys are handed back to be deleted from the cache at once, so no answer the index
      forgot can be served stale after a write.

    Thread-safe; ``clock`` is monotonic seconds (injectable for tests).
    """

    def __init__(self, horizon: float, *, max_addresses: int = MAX_INDEXED_ADDRESSES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.horizon = max(0.0, float(horizon))
        self.max_addresses = max(1, int(max_addresses))
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, tuple[float, set[str]]] = OrderedDict()  # oldest first

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def add(self, email: str, key: str) -> list[str]:
        """Index ``key`` under ``email``; returns keys that must be deleted from the cache now
        (addresses pushed out by the count bound)."""
        target = email.strip().lower()
        now = self._clock()
        evicted: list[str] = []
        with self._lock:
            entry = self._keys.pop(target, None)
            keys = entry[1] if entry is not None else set()
            keys.add(key)
            self._keys[target] = (now, keys)
            while self._keys:  # drop what has expired, oldest first
                first = next(iter(self._keys.values()))
                if now - first[0] <= self.horizon:
                    break
                self._keys.popitem(last=False)
            while len(self._keys) > self.max_addresses:
                evicted.extend(self._keys.popitem(last=False)[1][1])
        return evicted

    def pop(self, email: str) -> set[str]:
        """The keys of ``email`` (which are forgotten here)."""
        with self._lock:
            entry = self._keys.pop(email.strip().lower(), None)
        return entry[1] if entry is not None else set()

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


def is_shared(session: requests.Session) -> bool:
    """Whether the session's cache is the one every replica shares (Redis)."""
    shared = sys.modules.get(f"{__package__}.redis_cache")  # never imported: no shared cache (and no redis import)
    return shared is not None and isinstance(getattr(session, "cache", None), shared.SharedRedisCache)


def address_index(session: requests.Session, settings: CacheSettings | None, *,
                  clock: Callable[[], float] = time.monotonic) -> EmailKeyIndex | RedisAddressIndex:
    """Where a client indexes its cached keys per address: in Redis for the shared cache (so a
    write on any replica finds what every replica cached), else in the process."""
    cache = getattr(session, "cache", None)
    index = getattr(cache, "address_index", None)
    if index is not None and is_shared(session):
        return index
    return EmailKeyIndex(email_horizon(settings), clock=clock)


def delete_keys(session: requests.Session, keys: list[str]) -> None:
    cache = getattr(session, "cache", None)
    if cache is not None and keys:
        cache.delete(*keys)


def invalidate_email(session: requests.Session, email: str, known_keys: set[str] | None = None) -> int:
    """Drop every cached response whose query names this email (all lists, all partitions).

    ``known_keys`` (indexed by the client as it cached them) go at once; entries cached by an
    earlier process are found by a scan, skipped for very large caches whose short subscriber
    expiries make them stale-proof anyway. The shared Redis cache is never scanned: its index
    (:class:`cmlib.redis_cache.RedisAddressIndex`) holds what every replica cached.
    """
    cache = getattr(session, "cache", None)
    if cache is None:
        return 0
    target = email.strip().lower()
    keys = set(known_keys or ())
    try:
        small = not is_shared(session) and len(cache.responses) <= SCAN_LIMIT
    except Exception:
        small = True
    if small:
        keys.update(
            r.cache_key
            for r in cache.filter(valid=True, expired=True, invalid=True)
            if target in emails_in_url(getattr(r, "url", "") or "")
        )
    if keys:
        cache.delete(*keys)
    return len(keys)


def cache_size_bytes(session: requests.Session) -> int | None:
    cache = getattr(session, "cache", None)
    path = getattr(getattr(cache, "responses", None), "db_path", None)
    try:
        return os.path.getsize(path) if path else None
    except OSError:
        return None


def clear(session: requests.Session) -> None:
    cache = getattr(session, "cache", None)
    if cache is not None:
        cache.clear()
