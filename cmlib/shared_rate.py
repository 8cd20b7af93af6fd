"""One rate budget per credential for every process: a token bucket kept in Redis.

Campaign Monitor's limit is per account, so N replicas (and CLI runs, and workers) with N
in-process buckets together exceed it. With ``CM_REDIS_URL`` set, every
:class:`~cmlib.ratelimit.RateBudget` of a credential reserves its slots here instead
(:func:`cmlib.ratelimit.limiter_for` wires it in):

* **One atomic script per acquire** (``EVALSHA`` through redis-py's ``register_script``), on
  **Redis's clock** (``TIME`` inside the script): replicas' clocks never have to agree.
* **Next-slot reservation** (the generic cell rate algorithm): the script hands the caller the
  next free slot and moves the bucket's "theoretical arrival time" one interval on, so callers
  are served first come first served and sleep exactly until their slot -- no polling, no
  rejected retries. ``tau`` is how far ahead of the pace a caller may go (the burst): a person's
  fan-out may use it, bulk work never does.
* **A shared pause**: after a 429 the ``X-RateLimit-Reset`` the API announced is written as a
  "paused until" key (Redis time, expiring with the pause); every reservation lands after it,
  and the first slots after a pause are spaced at the pace, never a burst into the fresh window.
  Slots reserved before the pause still go out (at most the in-flight cap of each process).
* **Keys by credential fingerprint** (:func:`cmlib.breaker.credential_fingerprint`), never the
  key; they carry a hash tag (``{fingerprint}``) so a cluster keeps one credential's keys on one
  node, and expire once they no longer hold anything back.

What stays per process: the lanes (a process serves its interactive callers before its bulk
work), the in-flight cap, and the learning (:class:`~cmlib.pacing.Pacer`), whose result is
shared through :class:`RedisRateMemory` so each replica starts from what any replica learned.

A Redis outage does not stop the app: a budget whose reservation fails falls back to its own
in-process bucket for :data:`FALLBACK_SECONDS` (logged), then tries Redis again.
"""
from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from . import deployment
from .pacing import LearnedRate, RateSource

log = logging.getLogger("cmlib.shared_rate")

FALLBACK_SECONDS = 5.0  # after a failed reservation, the in-process bucket is used this long
LEARNED_TTL = 30 * 24 * 3600  # a learned rate nobody used for a month is forgotten
_US = 1_000_000

# KEYS: tat (the bucket's theoretical arrival time, µs of Redis time), pause (paused until, µs).
# ARGV: interval µs (0: not paced, only the pause holds), tau µs (how far ahead of the pace this
# caller may go), max wait µs (-1: no limit; a slot further away is refused, nothing reserved).
# Returns {granted 0/1, wait µs, slot µs, paused 0/1 (the slot waits for a pause, not the pace)}.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
local tat = now
local slot
if interval <= 0 then
  slot = math.max(now, pause)
else
  tat = tonumber(redis.call('GET', KEYS[1]) or '0')
  if pause > now then
    slot = math.max(pause, tat)
  else
    slot = math.max(now, tat - tau)
  end
end
local wait = slot - now
local paused = 0
if pause > now then
  paused = 1
end
if max_wait >= 0 and wait > max_wait then
  return {0, wait, slot, paused}
end
if interval > 0 then
  tat = math.max(tat, slot) + interval
  redis.call('SET', KEYS[1], string.format('%d', tat), 'PX', math.floor((tat - now) / 1000) + 1000)
end
return {1, wait, slot, paused}
"""

# KEYS: pause. ARGV: seconds µs. Pauses until now + seconds unless already paused longer;
# returns how long the pause now lasts, µs.
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seconds = tonumber(ARGV[1])
local untl = now + seconds
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if seconds > 0 and untl > cur then
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.max(1, math.floor((seconds + 999) / 1000)))
  cur = untl
end
return math.max(0, cur - now)
"""


def _keys(fingerprint: str) -> tuple[str, str, str]:
    base = f"cm:rate:{{{fingerprint}}}"
    return f"{base}:tat", f"{base}:pause", f"{base}:learned"


@dataclass(frozen=True)
class Reservation:
    """A slot the shared bucket handed out (or refused: ``granted`` False, nothing reserved)."""

    granted: bool
    wait: float  # seconds from now (Redis time) until the slot
    slot: float  # the slot, seconds of Redis time (for tests and diagnostics)
    paused: bool = False  # the wait is a 429's pause, not the pace


class SharedBucket:
    """A credential's token bucket in Redis; what a :class:`~cmlib.ratelimit.RateBudget` reserves
    its slots from. Thread-safe (redis-py's client is)."""

    def __init__(self, client: redis.Redis, fingerprint: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._tat_key, self._pause_key, _ = _keys(fingerprint)
        self._reserve = client.register_script(_RESERVE)
        self._pause = client.register_script(_PAUSE)
        self._clock = clock
        self._lock = threading.Lock()
        self._down_until = -math.inf

    def available(self) -> bool:
        """False for :data:`FALLBACK_SECONDS` after a failure: the budget uses its own bucket."""
        with self._lock:
            return self._clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        """A call failed: fall back to the in-process bucket for a while (logged once per outage)."""
        with self._lock:
            first = self._clock() >= self._down_until
            self._down_until = self._clock() + FALLBACK_SECONDS
        if first:
            # The exception's type only: a redis error message may carry the URL and its password.
            log.warning("shared rate budget: Redis failed (%s); pacing in this process alone for %.0f s",
                        type(exc).__name__, FALLBACK_SECONDS)

    def reserve(self, interval: float, tau: float = 0.0, max_wait: float | None = None) -> Reservation:
        """The next slot: ``interval`` seconds per request (0: unpaced, only a pause holds),
        up to ``tau`` seconds ahead of the pace; refused when further than ``max_wait`` away.
        Raises ``redis.RedisError`` when Redis fails."""
        limit = -1 if max_wait is None else max(0, int(max_wait * _US))
        granted, wait, slot, paused = self._reserve(keys=[self._tat_key, self._pause_key],
                                                    args=[max(0, round(interval * _US)), max(0, round(tau * _US)),
                                                          limit])
        return Reservation(bool(granted), int(wait) / _US, int(slot) / _US, bool(paused))

    def pause(self, seconds: float) -> float:
        """Hold every process back for ``seconds`` (Redis time); returns how long the pause lasts."""
        return int(self._pause(keys=[self._pause_key], args=[max(0, round(seconds * _US))])) / _US

    def paused_for(self) -> float:
        """Seconds every process is still held back (0 when not paused)."""
        left = int(self._client.pttl(self._pause_key))
        return max(0.0, left / 1000)


class RedisRateMemory:
    """What each credential's budget learned, in Redis: every replica starts from what any
    replica learned (:class:`~cmlib.pacing.RateMemory`). Plain JSON under the credential's
    fingerprint; an unreadable entry is forgotten, never trusted."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def recall(self, credential: str) -> LearnedRate | None:
        try:
            raw = self._client.get(_keys(credential)[2])
        except redis.RedisError as exc:
            log.warning("learned rate: Redis failed (%s); starting from the default pace", type(exc).__name__)
            return None
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return LearnedRate(float(data["rate"]), RateSource(data["source"]), _opt_float(data.get("ceiling")),
                               _opt_int(data.get("limit")), _opt_float(data.get("window")))
        except (ValueError, TypeError, KeyError):
            return None

    def remember(self, credential: str, learned: LearnedRate) -> None:
        data = {"rate": learned.rate, "source": learned.source.value, "ceiling": learned.ceiling,
                "limit": learned.limit, "window": learned.window}
        try:
            self._client.set(_keys(credential)[2], json.dumps(data), ex=LEARNED_TTL)
        except redis.RedisError as exc:
            log.warning("learned rate: Redis failed (%s); not shared this time", type(exc).__name__)

    def clear(self) -> None:
        """Forget every credential's learned rate (tests)."""
        try:
            names = list(self._client.scan_iter(match="cm:rate:*:learned", count=500))
            if names:
                self._client.delete(*names)
        except redis.RedisError as exc:
            log.warning("learned rate: Redis failed (%s) while clearing", type(exc).__name__)


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


# --------------------------------------------------------------------------- per deployment
_lock = threading.Lock()
_memories: dict[int, RedisRateMemory] = {}


def shared_bucket(fingerprint: str) -> SharedBucket | None:
    """The credential's bucket in Redis when ``CM_REDIS_URL`` is set, else None (in-process pacing)."""
    client = deployment.shared_redis()
    return SharedBucket(client, fingerprint) if client is not None else None


def shared_rate_memory() -> RedisRateMemory | None:
    """The learned-rate memory in Redis when ``CM_REDIS_URL`` is set, else None."""
    client = deployment.shared_redis()
    if client is None:
        return None
    with _lock:
        memory = _memories.get(id(client))
        if memory is None or memory._client is not client:
            memory = _memories[id(client)] = RedisRateMemory(client)
        return memory


def is_shared_memory(memory: object) -> bool:
    with _lock:
        return any(memory is m for m in _memories.values())


deployment.on_reset(_memories.clear)
