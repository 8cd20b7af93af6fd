"""Fault knobs: the ways the real API (or what sits in front of it) misbehaves.

Each knob exists because client code must survive it: latency (concurrency pays off), 429s
with and without X-RateLimit headers (users hit them looping over lists), proxy 500s with an
HTML body, a 200 with truncated JSON, a connection that answers after the client gave up, and
lists whose every request fails. Random knobs draw from their own seeded generator, so a test
that makes requests one at a time sees the same faults on every run.
"""
from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

_RATE_FIELDS = ("error_rate", "malformed_rate", "hang_rate")
WRITE_ANSWER_FAULTS = (None, "502", "hang")
_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:/\s*(s|sec|second|m|min|minute|h|hour))?\s*$", re.I)
_PER = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


def parse_rate(value: Any) -> float | None:
    """``"50/s"``, ``"3000/min"``, ``50`` or ``None`` -> requests per second (None = unlimited)."""
    if value is None or value is False:
        return None
    if isinstance(value, (int, float)):
        return float(value) if value > 0 else None
    text = str(value).strip().lower()
    if text in ("", "0", "off", "none", "unlimited"):
        return None
    m = _RATE_RE.match(text)
    if not m:
        raise ValueError(f"rate limit must look like '50/s' or '3000/min', got {value!r}")
    per_second = float(m.group(1)) / _PER[(m.group(2) or "s").lower()]
    return per_second if per_second > 0 else None


@dataclass
class Faults:
    """Mutable at run time: ``sb.faults.latency_ms = 100`` takes effect on the next request."""

    latency_ms: float = 0.0  # fixed delay before every answer
    jitter_ms: float = 0.0  # plus uniform 0..jitter_ms
    rate_limit: float | None = None  # requests per second per API key ("50/s" accepted)
    rate_limit_headers: bool = True  # False: 429s and 200s carry no X-RateLimit-* headers
    error_rate: float = 0.0  # share of requests answered 500 with an HTML body
    malformed_rate: float = 0.0  # share of 200s whose JSON body is cut in half
    hang_rate: float = 0.0  # share of requests held hang_seconds before answering
    hang_seconds: float = 5.0
    fail_list_ids: set[str] = field(default_factory=set)  # every request on these lists: 500 JSON
    # What a proxy in front of the API does to the answer of a write (POST/PUT/DELETE) that the
    # API *applied*: "502" answers an HTML 502, "hang" holds the answer hang_seconds and then
    # drops the connection. The client cannot tell from the answer whether anything happened.
    write_answer_fault: str | None = None
    down: bool = False  # "down from now on": every connection is closed without an answer

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "rate_limit":
            value = parse_rate(value)
        elif name == "fail_list_ids":
            value = {value} if isinstance(value, str) else set(value or ())
        elif name in _RATE_FIELDS:
            value = float(value or 0.0)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        elif name in ("latency_ms", "jitter_ms", "hang_seconds"):
            value = max(0.0, float(value or 0.0))
        elif name in ("rate_limit_headers", "down"):
            value = bool(value)
        elif name == "write_answer_fault":
            value = (str(value).strip().lower() or None) if value else None
            if value not in WRITE_ANSWER_FAULTS:
                raise ValueError(f"write_answer_fault must be one of {sorted(v for v in WRITE_ANSWER_FAULTS if v)}")
        object.__setattr__(self, name, value)

    def update(self, **changes: Any) -> None:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown fault knob(s): {', '.join(unknown)}")
        for k, v in changes.items():
            setattr(self, k, v)


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.remaining),
                "X-RateLimit-Reset": str(self.reset_seconds)}


class KeyedRateLimiter:
    """Fixed windows per API key, like the headers describe: a budget that resets every window.

    A rate of at least 1/s uses 1-second windows of ``round(rate)`` requests; a slower rate one
    request per ``1/rate`` seconds. Refused requests do not consume the budget.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def check(self, key: str, rate: float) -> RateDecision:
        window = 1.0 if rate >= 1 else 1.0 / rate
        limit = max(1, round(rate * window))
        with self._lock:
            now = self._clock()
            start, used = self._windows.get(key, (now, 0))
            if now - start >= window:
                start, used = now, 0
            reset = max(0, math.ceil(window - (now - start)))
            if used >= limit:
                self._windows[key] = (start, used)
                return RateDecision(False, limit, 0, reset)
            used += 1
            self._windows[key] = (start, used)
            return RateDecision(True, limit, limit - used, reset)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


class FaultInjector:
    """Draws the per-request faults from a seeded generator and holds the rate-limit windows."""

    def __init__(self, faults: Faults, seed: int = 0, *, clock: Callable[[], float] | None = None) -> None:
        """``clock`` (monotonic seconds) times the rate-limit windows; a test passes a fake one so
        a window resets when the test says so, not after a real second."""
        self.faults = faults
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.limiter = KeyedRateLimiter(clock or time.monotonic)

    def reseed(self, seed: int | None = None) -> None:
        with self._lock:
            self._rng = random.Random(self._seed if seed is None else seed)
        self.limiter.reset()

    def _draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def roll(self, rate: float) -> bool:
        """True with probability ``rate``; draws nothing when the knob is off."""
        return rate > 0 and self._draw() < rate

    def delay_seconds(self) -> float:
        f = self.faults
        jitter = f.jitter_ms * self._draw() if f.jitter_ms > 0 else 0.0
        return (f.latency_ms + jitter) / 1000.0

    def rate_check(self, key_id: str) -> RateDecision | None:
        """None when rate limiting is off."""
        rate = self.faults.rate_limit
        return self.limiter.check(key_id, rate) if rate else None
