"""A typed Campaign Monitor v3.3 client over ``requests``.

What the official wrapper lacks and support work needs: timeouts on every call, bounded
retries that honour the API's rate-limit reset, a shared limiter so concurrent lookups never
hammer the API, a per-credential cache, typed results, and errors that say which endpoint
failed without ever containing the API key.
"""
from __future__ import annotations

import contextvars
import json
import logging
import os
import random
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

import requests
from requests.adapters import HTTPAdapter

from . import cache as cache_mod
from .breaker import DEFAULT_PROBE_INTERVAL, DEFAULT_THRESHOLD, CircuitBreaker, breaker_for
from .cache import CacheSettings
from .config import DEFAULT_API_URL
from .errors import (
    ApiUnavailableError,
    CMError,
    RateLimitedError,
    TimeoutError,
    TransportError,
    UnexpectedResponseError,
    error_for,
)
from .models import (
    Campaign,
    ClientDetails,
    ClientRef,
    HistoryItem,
    ListDetail,
    ListMembership,
    ListRef,
    Page,
    SubscriberDetail,
    SuppressedAddress,
    parse_list,
)
from .ratelimit import RateLimiter
from .retry import RetryPolicy

log = logging.getLogger("cmlib.client")

CONSENT_VALUES = ("Yes", "No", "Unchanged")

INTERACTIVE_DEADLINE = 25.0
"""Seconds an interactive call may take across all its retries: a person waiting on a page is
told within 30 s, instead of after read timeout × attempts (212 s with every request hanging)."""


@dataclass(frozen=True)
class Deadline:
    """An absolute time by which every call made under it must have ended, retries included."""

    at: float
    seconds: float
    clock: Callable[[], float] = time.monotonic

    def remaining(self) -> float:
        return self.at - self.clock()


_DEADLINE: contextvars.ContextVar[Deadline | None] = contextvars.ContextVar("cm_deadline", default=None)


@contextmanager
def call_deadline(seconds: float | None, *,
                  clock: Callable[[], float] = time.monotonic) -> Iterator[Deadline | None]:
    """Every request made inside (in this thread, and in workers started through
    :func:`cmlib.concurrency.run_many`, which carry the context along) ends by ``seconds`` from
    now: read timeouts are shortened and retries stop when the time is up. ``None``: no limit.
    An enclosing, earlier deadline wins."""
    if seconds is None:
        yield _DEADLINE.get()
        return
    mine = Deadline(clock() + max(0.0, seconds), float(seconds), clock)
    outer = _DEADLINE.get()
    if outer is not None and outer.remaining() <= mine.remaining():
        yield outer
        return
    token = _DEADLINE.set(mine)
    try:
        yield mine
    finally:
        _DEADLINE.reset(token)


@dataclass(frozen=True)
class CallStats:
    """What the last HTTP exchange looked like (for the Settings health panel)."""

    endpoint: str
    status: int | None
    latency_ms: float
    from_cache: bool
    at: datetime
    rate_limit_limit: int | None = None
    rate_limit_remaining: int | None = None
    rate_limit_reset: float | None = None


def _int_header(headers: Any, name: str) -> int | None:
    try:
        v = headers.get(name)
        return int(float(v)) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _float_header(headers: Any, name: str) -> float | None:
    try:
        v = headers.get(name)
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class ClientOptions:
    """Tuning knobs, all with sensible defaults."""

    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate: float | None = 10.0  # requests per second, shared by every thread
    max_in_flight: int = 8
    burst: int = 1  # requests allowed at once before spacing at `rate` kicks in
    pool_size: int = 32
    # Circuit breaker (cmlib.breaker), shared per credential: used by the first client of a
    # credential in the process to create it.
    breaker_threshold: int = DEFAULT_THRESHOLD  # connection failures/timeouts in a row that open it
    breaker_probe_interval: float = DEFAULT_PROBE_INTERVAL  # seconds between probes while open
    # Seconds an interactive lookup (LookupService) may take, retries included; None: no limit.
    interactive_deadline: float | None = INTERACTIVE_DEADLINE


class CampaignMonitor:
    """One credential, one connection pool, one limiter, one cache partition."""

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_API_URL,
        *,
        options: ClientOptions | None = None,
        cache: CacheSettings | None = None,
        session: requests.Session | None = None,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        if not api_key:
            from .errors import ConfigurationError

            raise ConfigurationError("No API key configured")
        from .urls import require_api_url  # the key never goes to a URL cmlib.urls refuses

        require_api_url(base_url)
        self.options = options or ClientOptions()
        self.base_url = base_url.rstrip("/")
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self.cache_settings = cache
        self.session = session or cache_mod.build_session(cache)
        self.session.auth = (api_key, "x")
        # Every request goes to one host, so resolve proxy and CA settings from the environment
        # once instead of on every call (requests re-reads os.environ per request otherwise).
        self.session.proxies.update(requests.utils.get_environ_proxies(self.base_url))
        ca_bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if ca_bundle:
            self.session.verify = ca_bundle
        self.session.trust_env = False
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.options.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.limiter = limiter or RateLimiter(
            self.options.rate, self.options.max_in_flight, burst=self.options.burst, clock=clock, sleep=sleep
        )
        # One breaker per credential in the process, found by a hash of (URL, key), so every
        # client of the same account learns about an outage at once.
        self.breaker = breaker or breaker_for(self.base_url, api_key, threshold=self.options.breaker_threshold,
                                              probe_interval=self.options.breaker_probe_interval)
        self.last_call: CallStats | None = None
        self.last_rate_limit: CallStats | None = None
        self._stats_lock = threading.Lock()
        self.calls_made = 0  # real HTTP exchanges (cache hits excluded)
        self._email_keys: dict[str, set[str]] = {}
        self._invalidation_listeners: list[Callable[[str], None]] = []

    def __repr__(self) -> str:
        return f"CampaignMonitor(base_url={self.base_url!r})"

    # ------------------------------------------------------------------ transport
    @property
    def timeout(self) -> tuple[float, float]:
        return (self.options.connect_timeout, self.options.read_timeout)

    def _record(self, endpoint: str, resp: requests.Response | None, started: float) -> None:
        headers = resp.headers if resp is not None else {}
        stats = CallStats(
            endpoint=endpoint,
            status=resp.status_code if resp is not None else None,
            latency_ms=(time.perf_counter() - started) * 1000,
            from_cache=bool(getattr(resp, "from_cache", False)),
            at=datetime.now(timezone.utc),
            rate_limit_limit=_int_header(headers, "X-RateLimit-Limit"),
            rate_limit_remaining=_int_header(headers, "X-RateLimit-Remaining"),
            rate_limit_reset=_float_header(headers, "X-RateLimit-Reset"),
        )
        with self._stats_lock:
            self.last_call = stats
            if stats.rate_limit_limit is not None or stats.rate_limit_remaining is not None:
                self.last_rate_limit = stats
            if not stats.from_cache:
                self.calls_made += 1

    def _error_from_response(self, resp: requests.Response, endpoint: str, ctx: dict) -> CMError:
        status = resp.status_code
        code = message = None
        body: Any = None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and ("Code" in body or "Message" in body):
            try:
                code = int(body.get("Code")) if body.get("Code") is not None else None
            except (TypeError, ValueError):
                code = None
            message = str(body.get("Message") or "").strip() or None
        if message is None:
            ctype = resp.headers.get("Content-Type", "")
            text = (resp.text or "").strip()
            if not text:
                message = f"empty {status} response"
            elif "html" in ctype.lower() or text[:1] == "<":
                message = f"HTML {status} response instead of JSON (a proxy or outage page)"
            else:
                message = f"non-JSON {status} response"
        extra: dict[str, Any] = {}
        if status == 429 or code == 429:
            extra = dict(
                reset_seconds=_float_header(resp.headers, "X-RateLimit-Reset"),
                limit=_int_header(resp.headers, "X-RateLimit-Limit"),
                remaining=_int_header(resp.headers, "X-RateLimit-Remaining"),
            )
            err = RateLimitedError(message or "rate limited", status=status, code=code, endpoint=endpoint, **ctx, **extra)
            return err
        result_data = body.get("ResultData") if isinstance(body, dict) else None
        return error_for(status, code, message, endpoint=endpoint, result_data=result_data, **ctx)

    def _unavailable(self, status: Any, endpoint: str, ctx: dict) -> ApiUnavailableError:
        return ApiUnavailableError(f"{status.describe()}; nothing was sent", since=status.down_since,
                                   retry_in=status.next_probe_in, endpoint=endpoint, **ctx)

    def _once(self, method: str, path: str, endpoint: str, ctx: dict,
              timeout: tuple[float, float] | None = None, **kw: Any) -> Any:
        url = self.base_url + path
        timeout = timeout or self.timeout
        started = time.perf_counter()
        resp = None
        if method == "GET" and not kw.get("force_refresh") and hasattr(self.session, "cache"):
            # A cache hit costs the API nothing: serve it without waiting for a rate slot.
            hit = self.session.request(method, url, timeout=timeout, only_if_cached=True, **kw)
            # A miss is a synthetic 504; only 200s are ever stored, so 504 always means "not cached".
            if getattr(hit, "from_cache", False) and hit.status_code != 504:
                self._record(endpoint, hit, started)
                return self._body(hit, method, endpoint, ctx)
        refused = self.breaker.check()  # fail fast, before queueing for a rate slot
        if refused is not None:
            raise self._unavailable(refused, endpoint, ctx)
        try:
            with self.limiter.slot():
                permit = self.breaker.acquire()
                if not permit.granted:
                    raise self._unavailable(permit.status, endpoint, ctx)
                started = time.perf_counter()
                try:
                    resp = self.session.request(method, url, timeout=timeout, **kw)
                except requests.exceptions.RequestException as exc:
                    self.breaker.record_failure(self._transport_reason(exc, timeout), permit)
                    raise
                except BaseException:
                    self.breaker.release(permit)
                    raise
                # Any HTTP answer, 429 and 5xx included, proves the API is reachable.
                self.breaker.record_answer(permit)
        except requests.exceptions.Timeout as exc:
            self._record(endpoint, None, started)
            raise TimeoutError(self._transport_reason(exc, timeout), endpoint=endpoint, **ctx) from None
        except requests.exceptions.RequestException as exc:
            self._record(endpoint, None, started)
            raise TransportError(self._transport_reason(exc, timeout), endpoint=endpoint, **ctx) from None
        self._record(endpoint, resp, started)
        self._remember_key(resp, ctx.get("email"))
        return self._body(resp, method, endpoint, ctx)

    @staticmethod
    def _transport_reason(exc: BaseException, timeout: tuple[float, float]) -> str:
        if isinstance(exc, requests.exceptions.Timeout):
            kind = "connect" if isinstance(exc, requests.exceptions.ConnectTimeout) else "read"
            return f"{kind} timeout after {timeout[0 if kind == 'connect' else 1]:g}s"
        return f"connection failed: {type(exc).__name__}"

    def _body(self, resp: requests.Response, method: str, endpoint: str, ctx: dict) -> Any:
        if resp.status_code >= 400:
            raise self._error_from_response(resp, endpoint, ctx)
        if not resp.content or not resp.content.strip():
            if method == "GET":
                raise UnexpectedResponseError(f"empty {resp.status_code} response", status=resp.status_code,
                                              endpoint=endpoint, **ctx)
            return None
        try:
            return resp.json()
        except ValueError:
            if method != "GET":
                return None  # unsubscribe/delete answer with nothing useful; the write happened
            raise UnexpectedResponseError(
                f"malformed JSON in {resp.status_code} response", status=resp.status_code, endpoint=endpoint, **ctx
            ) from None

    def _remember_key(self, resp: requests.Response, email: str | None) -> None:
        """Index cache keys by address, so invalidating one address never scans the cache."""
        key = getattr(resp, "cache_key", None)
        if key and email:
            with self._stats_lock:
                self._email_keys.setdefault(email.strip().lower(), set()).add(key)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict | None = None,
        body: Any = None,
        fresh: bool = False,
        email: str | None = None,
        list_id: str | None = None,
    ) -> Any:
        """One API call with retries. ``path`` starts with ``/`` and ends in ``.json``."""
        endpoint = f"{method} {path}"
        ctx = {"email": email, "list_id": list_id}
        kw: dict[str, Any] = {}
        if params:
            kw["params"] = params
        if body is not None:
            kw["data"] = json.dumps(body)
            kw["headers"] = {"Content-Type": "application/json"}
        if fresh and method == "GET" and hasattr(self.session, "cache"):
            kw["force_refresh"] = True
        policy = self.options.retry
        deadline = _DEADLINE.get()
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            timeout = self.timeout
            if deadline is not None:
                left = deadline.remaining()
                if left <= 0:  # e.g. queued behind other work until the time was up: do not send late
                    raise TimeoutError(f"no answer within the {deadline.seconds:g} s allowed (not sent: the time "
                                       "was up)", endpoint=endpoint, **ctx)
                timeout = (min(timeout[0], left), min(timeout[1], left))
            cut_short = timeout != self.timeout  # this try only had what was left of the deadline
            try:
                return self._once(method, path, endpoint, ctx, timeout, **kw)
            except CMError as err:
                if deadline is not None and isinstance(err, TimeoutError) and (
                        cut_short or deadline.remaining() <= 0.001):
                    raise TimeoutError(f"no answer within the {deadline.seconds:g} s allowed ({err.reason})",
                                       endpoint=endpoint, **ctx) from None
                if attempt >= policy.max_attempts or not policy.should_retry(method, err):
                    raise
                if isinstance(err, TransportError) and self.breaker.check() is not None:
                    raise  # this failure opened the breaker: a retry would only be refused after the wait
                delay = policy.delay(attempt, err, self._rng)
                if waited + delay > policy.max_total_wait:
                    raise
                if deadline is not None and delay >= deadline.remaining():
                    raise  # no time left for another try: say why now
                if isinstance(err, RateLimitedError):
                    self.limiter.pause_for(delay)
                log.warning("retry %d/%d for %s after %s; waiting %.2fs",
                            attempt, policy.max_attempts, endpoint, err.reason, delay)
                waited += delay
                self._sleep(delay)

    # ------------------------------------------------------------------ reads
    def clients(self) -> list[ClientRef]:
        return parse_list(self.request("GET", "/clients.json"), ClientRef.from_api)

    def client_details(self, client_id: str, *, fresh: bool = False) -> ClientDetails:
        data = self.request("GET", f"/clients/{client_id}.json", fresh=fresh)
        return ClientDetails.from_api(data if isinstance(data, dict) else {})

    def lists(self, client_id: str, *, fresh: bool = False) -> list[ListRef]:
        return parse_list(self.request("GET", f"/clients/{client_id}/lists.json", fresh=fresh), ListRef.from_api)

    def list_details(self, list_id: str, *, fresh: bool = False) -> ListDetail:
        data = self.request("GET", f"/lists/{list_id}.json", fresh=fresh, list_id=list_id)
        return ListDetail.from_api(data if isinstance(data, dict) else {})

    def lists_for_email(self, client_id: str, email: str, *, fresh: bool = False) -> list[ListMembership]:
        data = self.request("GET", f"/clients/{client_id}/listsforemail.json", params={"email": email},
                            fresh=fresh, email=email)
        return parse_list(data, ListMembership.from_api)

    def subscriber(self, list_id: str, email: str, *, fresh: bool = False) -> SubscriberDetail:
        data = self.request("GET", f"/subscribers/{list_id}.json",
                            params={"email": email, "includetrackingpreference": "true"},
                            fresh=fresh, email=email, list_id=list_id)
        return SubscriberDetail.from_api(data if isinstance(data, dict) else {})

    def history(self, list_id: str, email: str, *, fresh: bool = False) -> list[HistoryItem]:
        data = self.request("GET", f"/subscribers/{list_id}/history.json", params={"email": email},
                            fresh=fresh, email=email, list_id=list_id)
        return parse_list(data, HistoryItem.from_api)

    def campaigns(self, client_id: str, *, page: int = 1, page_size: int = 1000,
                  order_direction: str = "desc", fresh: bool = False) -> Page[Campaign]:
        data = self.request("GET", f"/clients/{client_id}/campaigns.json",
                            params={"page": page, "pagesize": page_size, "orderdirection": order_direction},
                            fresh=fresh)
        return Page.from_api(data if isinstance(data, dict) else {}, Campaign.from_api)

    def iter_campaigns(self, client_id: str, *, page_size: int = 1000, max_pages: int = 50,
                       fresh: bool = False) -> Iterator[Campaign]:
        """Sent campaigns, newest first, across pages."""
        page = 1
        while page <= max_pages:
            p = self.campaigns(client_id, page=page, page_size=page_size, fresh=fresh)
            yield from p.results
            if not p.has_more:
                return
            page += 1

    def suppression_list(self, client_id: str, *, page: int = 1, page_size: int = 1000,
                         fresh: bool = False) -> Page[SuppressedAddress]:
        data = self.request("GET", f"/clients/{client_id}/suppressionlist.json",
                            params={"page": page, "pagesize": page_size}, fresh=fresh)
        return Page.from_api(data if isinstance(data, dict) else {}, SuppressedAddress.from_api)

    def is_suppressed(self, client_id: str, email: str, *, max_pages: int = 20,
                      fresh: bool = False) -> SuppressedAddress | None:
        target = email.strip().lower()
        page = 1
        while page <= max_pages:
            p = self.suppression_list(client_id, page=page, fresh=fresh)
            for s in p.results:
                if s.email.lower() == target:
                    return s
            if not p.has_more:
                return None
            page += 1
        return None

    # ------------------------------------------------------------------ writes
    def add_subscriber(
        self,
        list_id: str,
        email: str,
        *,
        name: str = "",
        custom_fields: list[dict] | None = None,
        resubscribe: bool = False,
        consent_to_track: str = "Unchanged",
        restart_autoresponders: bool = False,
    ) -> str:
        if consent_to_track not in CONSENT_VALUES:
            raise ValueError(f"consent_to_track must be one of {CONSENT_VALUES}")
        body: dict[str, Any] = {
            "EmailAddress": email,
            "CustomFields": custom_fields or [],
            "Resubscribe": bool(resubscribe),
            "RestartSubscriptionBasedAutoresponders": bool(restart_autoresponders),
            "ConsentToTrack": consent_to_track,
        }
        if name:  # an empty Name could wipe the stored one on an update
            body["Name"] = name
        data = self.request("POST", f"/subscribers/{list_id}.json", body=body, email=email, list_id=list_id)
        self.invalidate_email(email)
        return data if isinstance(data, str) else email

    def unsubscribe(self, list_id: str, email: str) -> None:
        self.request("POST", f"/subscribers/{list_id}/unsubscribe.json", body={"EmailAddress": email},
                     email=email, list_id=list_id)
        self.invalidate_email(email)

    def delete_subscriber(self, list_id: str, email: str) -> None:
        self.request("DELETE", f"/subscribers/{list_id}.json", params={"email": email},
                     email=email, list_id=list_id)
        self.invalidate_email(email)

    # ------------------------------------------------------------------ cache
    def invalidate_email(self, email: str) -> int:
        """Forget every cached answer about this address (used after writes and by refresh)."""
        target = email.strip().lower()
        for listener in list(self._invalidation_listeners):
            listener(target)
        with self._stats_lock:
            known = self._email_keys.pop(target, set())
        try:
            return cache_mod.invalidate_email(self.session, target, known_keys=known)
        except Exception as exc:  # a cache problem must never turn a done write into an error
            log.warning("cache invalidation failed: %s", type(exc).__name__)
            return 0

    def add_invalidation_listener(self, fn: Callable[[str], None]) -> None:
        """Called with the lower-cased address whenever it is invalidated (in-memory caches above us)."""
        self._invalidation_listeners.append(fn)

    def remove_invalidation_listener(self, fn: Callable[[str], None]) -> None:
        """Undo :meth:`add_invalidation_listener` (a closed LookupService stops listening)."""
        try:
            self._invalidation_listeners.remove(fn)
        except ValueError:
            pass

    @property
    def invalidation_listener_count(self) -> int:
        return len(self._invalidation_listeners)

    def clear_cache(self) -> None:
        cache_mod.clear(self.session)
        with self._stats_lock:
            self._email_keys.clear()
        for listener in list(self._invalidation_listeners):
            listener("")

    def cache_size_bytes(self) -> int | None:
        return cache_mod.cache_size_bytes(self.session)

    def close(self) -> None:
        self.session.close()
