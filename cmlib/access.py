"""Who may change settings and subscriptions: the optional admin password and its lock-out.

The password comes from the deployment (``CM_ADMIN_PASSWORD``, or ``admin_password`` at the top
level or in ``[campaign_monitor]`` of secrets.toml), never from the Settings page itself: an
operator who could set the password could also remove it.

The lock-out is process-wide, keyed by whatever identifies the caller best (the UI passes the
client IP when Streamlit knows it, else the session id), so reloading the page -- which starts
a new Streamlit session -- does not give five fresh tries from the same address. Streamlit
hides the IP of local connections (and a reverse proxy on the same host looks local), so a
second, global budget caps guessing however many sessions are opened: 20 misses within a
minute from anyone lock everyone out for a minute. The clock is injectable so the locks can be
tested without sleeping.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping

from .config import load_secrets

ENV_ADMIN_PASSWORD = "CM_ADMIN_PASSWORD"
MAX_FAILURES = 5
LOCKOUT_SECONDS = 60.0
GLOBAL_MAX_FAILURES = 20  # misses within GLOBAL_WINDOW_SECONDS, all callers together
GLOBAL_WINDOW_SECONDS = 60.0

OK = "ok"
WRONG = "wrong"
LOCKED = "locked"


def admin_password(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> str | None:
    """The configured admin password, or None when writes are open to every user of the app."""
    env = os.environ if env is None else env
    value = (env.get(ENV_ADMIN_PASSWORD) or "").strip()
    if value:
        return value
    secrets = load_secrets() if secrets is None else secrets
    top = secrets.get("admin_password")
    if isinstance(top, str) and top.strip():
        return top.strip()
    section = secrets.get("campaign_monitor")
    if isinstance(section, Mapping):
        nested = section.get("admin_password")
        if isinstance(nested, str) and nested.strip():
            return nested.strip()
    return None


def admin_password_source(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> str | None:
    """Where the admin password is set ("environment variable CM_ADMIN_PASSWORD" / "secrets.toml")."""
    env = os.environ if env is None else env
    if (env.get(ENV_ADMIN_PASSWORD) or "").strip():
        return f"environment variable {ENV_ADMIN_PASSWORD}"
    if admin_password(env={}, secrets=secrets) is not None:
        return "secrets.toml"
    return None


def password_fingerprint(password: str) -> str:
    """A stable, non-reversible tag for "the password that was unlocked" (kept in session state)."""
    return hashlib.sha256(b"cm-admin-gate\0" + password.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GateResult:
    status: str  # OK / WRONG / LOCKED
    tries_left: int = 0
    seconds_left: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def locked(self) -> bool:
        return self.status == LOCKED

    @property
    def message(self) -> str:
        if self.status == OK:
            return "Unlocked."
        if self.status == LOCKED:
            secs = max(1, int(self.seconds_left + 0.999))
            return f"Too many wrong passwords: locked for {secs} more second{'s' if secs != 1 else ''}."
        tries = "try" if self.tries_left == 1 else "tries"
        return f"Wrong admin password ({self.tries_left} {tries} left before a one-minute lock)."


class AdminGate:
    """Compares admin passwords in constant time and locks a caller out after repeated misses.

    ``max_failures`` wrong passwords in a row lock that caller for ``lockout_seconds``; a try
    while locked is not even compared (and does not extend the lock). A correct password
    resets the caller's count. ``global_max_failures`` misses by anyone within
    ``global_window`` seconds lock every caller for ``lockout_seconds`` (None disables it).
    """

    def __init__(
        self,
        password: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = MAX_FAILURES,
        lockout_seconds: float = LOCKOUT_SECONDS,
        global_max_failures: int | None = GLOBAL_MAX_FAILURES,
        global_window: float = GLOBAL_WINDOW_SECONDS,
    ) -> None:
        if not password:
            raise ValueError("AdminGate needs a non-empty password")
        self._password = password.encode("utf-8")
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self._failures: dict[Hashable, int] = {}
        self._locked_until: dict[Hashable, float] = {}
        self.global_max_failures = global_max_failures
        self.global_window = global_window
        self._recent_failures: deque[float] = deque()
        self._global_locked_until = 0.0
        self._lock = threading.Lock()

    def status(self, who: Hashable = "") -> GateResult:
        """Whether ``who`` may try now (WRONG with tries left) or is locked (LOCKED)."""
        with self._lock:
            return self._status(who, self.clock())

    def _status(self, who: Hashable, now: float) -> GateResult:
        if now < self._global_locked_until:
            return GateResult(LOCKED, 0, self._global_locked_until - now)
        until = self._locked_until.get(who)
        if until is not None:
            if now < until:
                return GateResult(LOCKED, 0, until - now)
            del self._locked_until[who]
            self._failures.pop(who, None)
        return GateResult(WRONG, self.max_failures - self._failures.get(who, 0))

    def check(self, attempt: str, who: Hashable = "") -> GateResult:
        with self._lock:
            now = self.clock()
            current = self._status(who, now)
            if current.locked:
                return current
            if hmac.compare_digest((attempt or "").encode("utf-8"), self._password):
                self._failures.pop(who, None)
                return GateResult(OK, self.max_failures)
            if self._global_miss(now):
                return GateResult(LOCKED, 0, self.lockout_seconds)
            failures = self._failures.get(who, 0) + 1
            if failures >= self.max_failures:
                self._failures.pop(who, None)
                self._locked_until[who] = now + self.lockout_seconds
                return GateResult(LOCKED, 0, self.lockout_seconds)
            self._failures[who] = failures
            return GateResult(WRONG, self.max_failures - failures)

    def _global_miss(self, now: float) -> bool:
        """Count a miss against the global budget; True when that locks everyone."""
        if not self.global_max_failures:
            return False
        recent = self._recent_failures
        recent.append(now)
        while recent and recent[0] <= now - self.global_window:
            recent.popleft()
        if len(recent) >= self.global_max_failures:
            recent.clear()
            self._global_locked_until = now + self.lockout_seconds
            return True
        return False


_GATES: dict[str, AdminGate] = {}
_GATES_LOCK = threading.Lock()


def shared_gate(password: str) -> AdminGate:
    """The one process-wide gate for this password (a new password starts with clean counters)."""
    tag = password_fingerprint(password)
    with _GATES_LOCK:
        gate = _GATES.get(tag)
        if gate is None:
            gate = _GATES[tag] = AdminGate(password)
        return gate


def reset_shared_gates() -> None:
    """Forget every counter (tests; a restart does the same)."""
    with _GATES_LOCK:
        _GATES.clear()
