"""A typed Campaign Monitor v3.3 client over ``requests``: the transport.

What the official wrapper lacks and support work needs: timeouts on every call, bounded
retries that honour the API's rate-limit reset, a rate budget shared by every client of the
credential that learns the account's limit and serves a person's lookups before bulk work, so
concurrent lookups and bulk runs never hammer the API together, a per-credential
cache, typed results (:mod:`cmlib.endpoints`), and errors that say which endpoint failed without
ever containing the API key (:mod:`cmlib.responses`).

Who owns what: a client owns its HTTP session (``close()``), its in-flight cap and its index of
cached keys per address. The rate budget (:func:`cmlib.ratelimit.limiter_for`) and the circuit
breaker (:func:`cmlib.breaker.breaker_for`) belong to the credential and are shared.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import random
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy

from . import cache as cache_mod
from .breaker import DEFAULT_PROBE_INTERVAL, DEFAULT_THRESHOLD, BreakerStatus, CircuitBreaker, breaker_for
from .cache import CacheSettings
from .config import DEFAULT_API_URL
from .deadline import INTERACTIVE_DEADLINE, Deadline, call_deadline, current_deadline
from .endpoints import CONSENT_VALUES, Endpoints
from .errors import (
    ApiUnavailableError,
    CMError,
    RateLimitedError,
    TimeoutError,
    TransportError,
    UnexpectedResponseError,
)
from .pacing import LEARN, Lane, RateSetting, RateSignal
from .ratelimit import RateLimiter, SlotWaitTooLong, limiter_for
from .responses import CallStats, error_from_response, float_header, int_header, transport_reason
from .retry import RetryPolicy

# Re-exported: callers import these from the client, where they used to live.
__all__ = ["CONSENT_VALUES", "INTERACTIVE_DEADLINE", "CallStats", "CampaignMonitor", "ClientOptions", "Deadline",
           "call_deadline"]

log = logging.getLogger("cmlib.client")

OPEN_AHEAD_BACKOFF = 60.0  # seconds without opening connections ahead after one could not be opened


class _Transport(HTTPAdapter):
    """requests' adapter, telling its client when a request really goes out through it: that is
    when connections are opened ahead (:meth:`CampaignMonitor.open_connections`), so a burst the
    cache answers opens none, and a test double that replaces ``send`` (the ``responses``
    library) never gets here."""

    def __init__(self, on_send: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Weak: the client owns the session that owns this; a strong reference back would keep a
        # forgotten client (and its cache's writer) alive until a garbage collection pass.
        self._on_send = weakref.WeakMethod(on_send)

    def get_connection_with_tls_context(self, request: requests.PreparedRequest, verify: bool | str | None,
                                        proxies: Mapping[str, str] | None = None,
                                        cert: tuple[str, str] | str | None = None) -> Any:
        # requests' hook for adapter subclasses, called by send() for every request it sends
        on_send = self._on_send()
        if on_send is not None:
            on_send()
        return super().get_connection_with_tls_context(request, verify, proxies, cert)


@dataclass
class ClientOptions:
    """Tuning knobs, all with sensible defaults.

    ``rate`` and ``burst`` describe the credential's rate budget, which every client of the
    credential in the process shares (:mod:`cmlib.ratelimit`): the first client of a credential
    creates it with these values, later ones use it as it is. ``rate`` is ``LEARN`` (find the
    account's budget from its headers or by probing, :mod:`cmlib.pacing`), a number of requests
    per second (a cap: learning only ever lowers it), or ``None`` (no pacing). ``max_in_flight``
    is this client's own cap on requests open at once; ``lane`` says whether its calls are a
    person's (served first) or a bulk run's (what the person leaves).
    """

    connect_timeout: float = 5.0
    read_timeout: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate: RateSetting = LEARN  # requests per second, shared by every client of the credential
    max_in_flight: int = 8  # this client's own
    burst: int = 1  # requests allowed at once before spacing at `rate` kicks in
    lane: Lane = Lane.INTERACTIVE  # whose calls these are, for the order the shared budget serves them
    pool_size: int = 32
    # Circuit breaker (cmlib.breaker), shared per credential: used by the first client of a
    # credential in the process to create it.
    breaker_threshold: int = DEFAULT_THRESHOLD  # connection failures/timeouts in a row that open it
    breaker_probe_interval: float = DEFAULT_PROBE_INTERVAL  # seconds between probes while open
    # Seconds an interactive lookup (LookupService) may take, retries included; None: no limit.
    interactive_deadline: float | None = INTERACTIVE_DEADLINE


class CampaignMonitor(Endpoints):
    """One credential, one connection pool, one cache partition; the credential's shared rate
    budget and breaker unless ``limiter``/``breaker`` are given."""

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
        adapter = _Transport(self._on_send, pool_connections=4, pool_maxsize=self.options.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # The credential's one rate budget in the process, behind this client's own in-flight cap.
        self._owns_limiter = limiter is None
        self.limiter = limiter or limiter_for(self.base_url, api_key, rate=self.options.rate,
                                              max_in_flight=self.options.max_in_flight, burst=self.options.burst,
                                              clock=clock, sleep=sleep, lane=self.options.lane)
        # One breaker per credential in the process, found by a hash of (URL, key), so every
        # client of the same account learns about an outage at once.
        self.breaker = breaker or breaker_for(self.base_url, api_key, threshold=self.options.breaker_threshold,
                                              probe_interval=self.options.breaker_probe_interval)
        self.last_call: CallStats | None = None
        self.last_rate_limit: CallStats | None = None
        self._stats_lock = threading.Lock()
        self.calls_made = 0  # real HTTP exchanges (cache hits excluded)
        # Cached keys per address, bounded (see EmailKeyIndex; in Redis for the cache every replica
        # shares): invalidation never scans the cache.
        self._email_keys = cache_mod.address_index(self.session, cache, clock=clock)
        self._invalidation_listeners: list[Callable[[str], None]] = []
        # An opening of connections waiting for the next request to go out (open_connections).
        self._deferred_open: tuple[int, Callable[[Callable[[], None]], object] | None] | None = None
        self._opening = 0  # connections being opened ahead (open_connections)
        self._open_ahead_from = float("-inf")  # no opening ahead before this (clock), after a failure

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
            at=datetime.now(UTC),
            rate_limit_limit=int_header(headers, "X-RateLimit-Limit"),
            rate_limit_remaining=int_header(headers, "X-RateLimit-Remaining"),
            rate_limit_reset=float_header(headers, "X-RateLimit-Reset"),
        )
        with self._stats_lock:
            self.last_call = stats
            if stats.rate_limit_limit is not None or stats.rate_limit_remaining is not None:
                self.last_rate_limit = stats
            if not stats.from_cache:
                self.calls_made += 1

    def open_connections(self, count: int, *, submit: Callable[[Callable[[], None]], object] | None = None) -> None:
        """Open connections to the API ahead of a burst of requests, so each does not open its own.

        Against the real API a new connection costs two round trips (TCP, then TLS) before its
        request is even sent, so a lookup's second wave on a cold pool would take three round
        trips instead of one; opened while the first wave waits, they cost none. Only
        connections are opened: no HTTP request is sent, so nothing counts against the rate
        budget and the breaker hears nothing.

        The opening starts as the next request goes out through the transport: a burst the
        cache answers opens nothing, and neither does a transport replaced by a test double.
        ``count`` 0 withdraws an opening still waiting (the burst is over). Up to ``count``
        idle connections are then made ready in the pool (at most what may be in flight at once
        and what the pool keeps); ``submit`` runs each opening (an executor's ``submit``, so they
        open in parallel), by default they open one after another. Best effort, never a burden:
        none through a proxy (its tunnel is set up per request), none while the breaker is open
        or an earlier batch is still opening, none for ``OPEN_AHEAD_BACKOFF`` seconds after one
        failed; a connection that fails is left closed for its request to open and report.
        """
        count = min(count, self.options.pool_size, self.options.max_in_flight)
        with self._stats_lock:
            self._deferred_open = (count, submit) if count > 0 else None

    def _on_send(self) -> None:
        """Called by the transport as each request goes out (:class:`_Transport`)."""
        if self._deferred_open is None:
            return
        with self._stats_lock:
            deferred, self._deferred_open = self._deferred_open, None
        if deferred is not None:
            self._open_now(*deferred)

    def _open_now(self, count: int, submit: Callable[[Callable[[], None]], object] | None) -> int:
        """Open up to ``count`` connections now; how many are being opened."""
        if self.breaker.check() is not None or select_proxy(self.base_url, self.session.proxies):
            return 0
        pool = self._connection_pool()
        if pool is None:
            return 0
        with self._stats_lock:
            if self._opening or self._clock() < self._open_ahead_from:
                return 0
            # urllib3's pool calls (the ones its own urlopen uses): every connection is taken
            # first, so no opening re-takes one already opened; each goes back once ready.
            try:
                taken = [pool._get_conn() for _ in range(count)]
            except Exception as exc:  # e.g. closed meanwhile: the requests will say so themselves
                log.debug("no connections opened ahead: %s", type(exc).__name__)
                return 0
            closed = [conn for conn in taken if conn.is_closed]
            self._opening = len(closed)
        for conn in taken:
            if not conn.is_closed:
                pool._put_conn(conn)
        run = submit or (lambda fn: fn())
        for conn in closed:
            try:
                run(functools.partial(self._open, pool, conn))
            except RuntimeError:  # the executor was shut down meanwhile
                self._give_back(pool, conn, failed=False)
        return len(closed)

    def _connection_pool(self) -> Any:
        """The urllib3 pool requests sends this client's calls through (same TLS settings, same key),
        or None when the transport is not requests' own adapter."""
        adapter = self.session.get_adapter(self.base_url)
        if not isinstance(adapter, HTTPAdapter):
            return None
        prepared = requests.Request("GET", self.base_url + "/").prepare()
        try:  # the base class's: asking for the pool is not a request going out
            return HTTPAdapter.get_connection_with_tls_context(adapter, prepared, self.session.verify, None,
                                                               self.session.cert)
        except (requests.exceptions.RequestException, ValueError):
            return None

    def _open(self, pool: Any, conn: Any) -> None:
        failed = False
        try:
            conn.timeout = self.options.connect_timeout
            conn.connect()
        except Exception as exc:  # its request opens it again and reports why
            log.debug("opening a connection ahead failed: %s", type(exc).__name__)
            conn.close()
            failed = True
        finally:
            self._give_back(pool, conn, failed=failed)

    def _give_back(self, pool: Any, conn: Any, *, failed: bool) -> None:
        pool._put_conn(conn)  # a closed pool closes it instead
        with self._stats_lock:
            self._opening -= 1
            if failed:
                self._open_ahead_from = self._clock() + OPEN_AHEAD_BACKOFF

    def _unavailable(self, status: BreakerStatus | None, endpoint: str, ctx: dict) -> ApiUnavailableError:
        if status is None:  # a refused permit always carries its status; never seen, but say something true
            status = self.breaker.status()
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
            hit = cache_mod.cached_answer(self.session, url, kw.get("params"))
            if hit is not None:
                self._record(endpoint, hit, started)
                return self._body(hit, method, endpoint, ctx)
            # A miss was just seen: the request below need not read the cache a second time
            # (it still stores the answer). One SQLite read per miss instead of two.
            kw["force_refresh"] = True
        refused = self.breaker.check()  # fail fast, before queueing for a rate slot
        if refused is not None:
            raise self._unavailable(refused, endpoint, ctx)
        deadline = current_deadline()
        try:
            with self.limiter.slot(time_left=deadline.remaining if deadline is not None else None) as grant:
                permit = self.breaker.acquire()
                if not permit.granted:
                    raise self._unavailable(permit.status, endpoint, ctx)
                started = time.perf_counter()
                try:
                    resp = self.session.request(method, url, timeout=timeout, **kw)
                except requests.exceptions.RequestException as exc:
                    self.breaker.record_failure(transport_reason(exc, timeout), permit)
                    raise
                except BaseException:
                    self.breaker.release(permit)
                    raise
                # Any HTTP answer, 429 and 5xx included, proves the API is reachable.
                self.breaker.record_answer(permit)
                # ...and tells the credential's budget how fast it may go (headers, 429s).
                self.limiter.observe(grant, RateSignal.from_headers(resp.status_code, resp.headers))
        except SlotWaitTooLong as exc:
            # Paused by the API's own reset (or paced) for longer than this call may wait.
            raise RateLimitedError(f"rate limited: {exc}, longer than the time left; not sent",
                                   status=429, endpoint=endpoint, reset_seconds=exc.wait, **ctx) from None
        except requests.exceptions.Timeout as exc:
            self._record(endpoint, None, started)
            raise TimeoutError(transport_reason(exc, timeout), endpoint=endpoint, **ctx) from None
        except requests.exceptions.RequestException as exc:
            self._record(endpoint, None, started)
            raise TransportError(transport_reason(exc, timeout), endpoint=endpoint, **ctx) from None
        self._record(endpoint, resp, started)
        self._remember_key(resp, ctx.get("email"))
        return self._body(resp, method, endpoint, ctx)

    def _body(self, resp: requests.Response, method: str, endpoint: str, ctx: dict) -> Any:
        if resp.status_code >= 400:
            raise error_from_response(resp, endpoint, ctx)
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
            evicted = self._email_keys.add(email, key)
            if evicted:  # pushed out of the bounded index: must not stay servable unindexed
                self._delete_cached(evicted)

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
        ctx: dict[str, Any] = {"email": email, "list_id": list_id}
        kw: dict[str, Any] = {}
        if params:
            kw["params"] = params
        if body is not None:
            kw["data"] = json.dumps(body)
            kw["headers"] = {"Content-Type": "application/json"}
        if fresh and method == "GET" and hasattr(self.session, "cache"):
            kw["force_refresh"] = True
        policy = self.options.retry
        deadline = current_deadline()
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
                if isinstance(err, RateLimitedError) and err.reset_seconds is None and not self.limiter.learns:
                    # No reset announced and nothing to learn with (pacing off): hold every caller of
                    # the key back for the backoff. An announced reset already paused the budget
                    # (RateBudget.observe); a learning budget slowed its pace instead.
                    self.limiter.pause_for(delay)
                log.warning("retry %d/%d for %s after %s; waiting %.2fs",
                            attempt, policy.max_attempts, endpoint, err.reason, delay)
                waited += delay
                self._sleep(delay)

    # ------------------------------------------------------------------ cache
    def _delete_cached(self, keys: list[str]) -> None:
        try:
            cache_mod.delete_keys(self.session, keys)
        except Exception as exc:  # a cache problem must never fail the call that triggered it
            log.warning("cache delete failed: %s", type(exc).__name__)

    def invalidate_email(self, email: str) -> int:
        """Forget every cached answer about this address (used after writes and by refresh)."""
        target = email.strip().lower()
        for listener in list(self._invalidation_listeners):
            listener(target)
        try:
            known = self._email_keys.pop(target)
            return cache_mod.invalidate_email(self.session, target, known_keys=known)
        except Exception as exc:  # a cache problem must never turn a done write into an error
            log.warning("cache invalidation failed: %s", type(exc).__name__)
            return 0

    def add_invalidation_listener(self, fn: Callable[[str], None]) -> None:
        """Called with the lower-cased address whenever it is invalidated (in-memory caches above
        us). Whoever adds one removes it when done (:meth:`remove_invalidation_listener`)."""
        with self._stats_lock:
            self._invalidation_listeners = [*self._invalidation_listeners, fn]

    def remove_invalidation_listener(self, fn: Callable[[str], None]) -> None:
        """Undo :meth:`add_invalidation_listener` (a closed LookupService stops listening)."""
        with self._stats_lock:
            self._invalidation_listeners = [f for f in self._invalidation_listeners if f != fn]

    @property
    def invalidation_listener_count(self) -> int:
        return len(self._invalidation_listeners)

    @property
    def indexed_address_count(self) -> int:
        """Addresses whose cached keys are indexed (bounded; for lifetime tests and diagnostics)."""
        return len(self._email_keys)

    def clear_cache(self) -> None:
        cache_mod.clear(self.session)
        self._email_keys.clear()
        for listener in list(self._invalidation_listeners):
            listener("")

    def cache_size_bytes(self) -> int | None:
        return cache_mod.cache_size_bytes(self.session)

    def close(self) -> None:
        """Close the HTTP session (its connections and, for a sqlite cache, its database handle)
        and give back this client's hold on the credential's rate budget; the budget stays while
        another client of the credential is open, and so does the breaker. Idempotent."""
        self.session.close()
        if self._owns_limiter:
            self.limiter.close()
