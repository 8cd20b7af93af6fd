"""Who may change settings and subscriptions: the optional admin password and its lock-out.

The password comes from the deployment (``CM_ADMIN_PASSWORD``, or ``admin_password`` at the top
level or in ``[campaign_monitor]`` of secrets.toml), never from the Settings page itself: an
operator who could set the password could also remove it.

Wrong guesses are counted per *source*, process-wide, because a reload starts a new Streamlit
session and must not buy fresh tries:

- where the client's address is known (:func:`identify_caller`: Streamlit's peer address, or
  the ``X-Forwarded-For`` of a proxy listed in ``CM_TRUSTED_PROXIES``), five misses lock that
  address -- IPv4 address, or IPv6 /64 -- for a minute, and nobody else;
- where it is not (the app is reached over localhost, or through a proxy that does not say
  who the client is), every caller behind that one address looks alike. Locking them would
  let anyone rotating sessions lock the real admin out, so instead the tries from that shared
  source are *slowed down*: a few free misses, then each further try must wait a doubling
  delay (1 s, 2 s, 4 s … at most 30 s) that wears off again when the guessing stops. Guessing
  stays slow; the admin waits seconds, never a lock-out.

The clock is injectable so all of this is tested without sleeping.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from . import lazy_text as later
from .config import load_secrets

log = logging.getLogger("cmlib.access")

ENV_ADMIN_PASSWORD = "CM_ADMIN_PASSWORD"
ENV_TRUSTED_PROXIES = "CM_TRUSTED_PROXIES"
MAX_FAILURES = 5  # misses in a row from one known address before it is locked
LOCKOUT_SECONDS = 60.0
SHARED_FREE_MISSES = 5  # misses from a shared source before tries are slowed down
SLOWDOWN_BASE_SECONDS = 1.0  # the first wait; it doubles with every further miss
SLOWDOWN_MAX_SECONDS = 30.0
SLOWDOWN_DECAY_SECONDS = 60.0  # every quiet minute forgives one miss of a shared source
_PRUNE_ABOVE = 4096  # tracked sources before stale entries are dropped


class GateStatus(StrEnum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"  # a known address after too many misses: not even compared
    SLOWED = "slowed"  # a shared source must wait a few seconds before its next try


OK = GateStatus.OK
WRONG = GateStatus.WRONG
LOCKED = GateStatus.LOCKED
SLOWED = GateStatus.SLOWED


class SourceKind(StrEnum):
    ADDRESS = "address"  # one client's address: a lock there hits only that client
    SHARED = "shared"  # many clients look alike (localhost, an untrusted proxy): slow down, never lock


@dataclass(frozen=True)
class Caller:
    """What wrong guesses are counted against. ``key`` names the source, never a session."""

    key: str
    kind: SourceKind = SourceKind.ADDRESS

    @property
    def shared(self) -> bool:
        return self.kind is SourceKind.SHARED

    def __str__(self) -> str:
        return self.key


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


def trusted_proxies(env: Mapping[str, str] | None = None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """The reverse proxies (addresses or CIDR ranges in ``CM_TRUSTED_PROXIES``, comma-separated)
    whose ``X-Forwarded-For`` names the real client. Entries that are not addresses are ignored."""
    env = os.environ if env is None else env
    nets = []
    for item in (env.get(ENV_TRUSTED_PROXIES) or "").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            log.warning("%s: %r is not an address or range; ignored", ENV_TRUSTED_PROXIES, item[:60])
    return tuple(nets)


def _parse_ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a peer or a forwarded-for entry (``1.2.3.4``, ``1.2.3.4:5678``, ``[::1]:80``)."""
    text = (text or "").strip().strip('"')
    if not text:
        return None
    if text.startswith("[") and "]" in text:
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _address_key(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """One key per client: the IPv4 address, or the IPv6 /64 (what one household or host gets)."""
    if isinstance(ip, ipaddress.IPv6Address):
        return "ip:" + str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return f"ip:{ip}"


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: Sequence[Any]) -> bool:
    return any(ip.version == net.version and ip in net for net in trusted)


def identify_caller(
    peer_ip: str | None,
    headers: Mapping[str, Sequence[str]] | None = None,
    trusted: Sequence[Any] = (),
) -> Caller:
    """The source a login attempt comes from.

    ``peer_ip`` is what Streamlit reports (``st.context.ip_address``: None for localhost; with
    Streamlit's own server a proxy on 127.0.0.1 that sends ``X-Forwarded-For`` already yields
    the client's address here). ``headers`` maps lower-case names to every value sent.

    - no address, or loopback: a local proxy or local use -- callers cannot be told apart;
    - the peer is a trusted proxy: the right-most forwarded address that is not itself a
      trusted proxy is the client (a client can prepend anything, never append);
    - the peer sent forwarding headers the server did not act on (``X-Forwarded-For`` without
      the peer in it, ``Forwarded``, ``X-Real-IP``): the peer is a proxy standing for many
      clients, so it is a shared source of its own (a client faking the header only puts
      itself in a slowed-down pool of its own);
    - otherwise the peer's address.
    """
    hdrs = {k.lower(): list(v) for k, v in (headers or {}).items()}
    peer = _parse_ip(peer_ip)
    if peer is None or peer.is_loopback:
        return Caller("shared:local", SourceKind.SHARED)
    chain = [entry for value in hdrs.get("x-forwarded-for", []) for entry in value.split(",") if entry.strip()]
    if _trusted(peer, trusted):
        for entry in reversed(chain):
            ip = _parse_ip(entry)
            if ip is None:
                break  # garbage in the chain: trust nothing further left
            if not _trusted(ip, trusted):
                return Caller(_address_key(ip), SourceKind.ADDRESS)
        return Caller(f"shared:{_address_key(peer)}", SourceKind.SHARED)
    forwarded = chain or hdrs.get("forwarded") or hdrs.get("x-real-ip")
    if forwarded and peer not in [_parse_ip(entry) for entry in chain]:
        return Caller(f"shared:{_address_key(peer)}", SourceKind.SHARED)
    return Caller(_address_key(peer), SourceKind.ADDRESS)


@dataclass(frozen=True)
class GateResult:
    status: GateStatus
    tries_left: int = 0  # before a lock (known address) or before tries are slowed (shared source)
    seconds_left: float = 0.0  # of the lock, or of the wait before the next try
    shared: bool = False

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def locked(self) -> bool:
        return self.status == LOCKED

    @property
    def slowed(self) -> bool:
        return self.status == SLOWED

    @staticmethod
    def _seconds(value: float) -> str:
        secs = max(1, int(value + 0.999))
        return later.nt("{n} more second", "{n} more seconds", secs)

    @property
    def message(self) -> str:
        """What the admin reads (a :class:`~cmlib.lazy_text.LazyText`: English as the string, the
        page says it in the reader's language)."""
        if self.status == OK:
            return later.t("Unlocked.")
        if self.status == LOCKED:
            return later.t("Too many wrong passwords: locked for {seconds}.", seconds=self._seconds(self.seconds_left))
        if self.status == SLOWED:
            return later.t("Too many wrong passwords recently: wait {seconds} before the next try.",
                           seconds=self._seconds(self.seconds_left))
        if self.shared:
            if self.seconds_left > 0:
                return later.t("Wrong admin password. Wait {seconds} before the next try (tries slow down after "
                               "repeated misses).", seconds=self._seconds(self.seconds_left))
            return later.nt("Wrong admin password ({n} try left before tries slow down).",
                            "Wrong admin password ({n} tries left before tries slow down).", self.tries_left)
        return later.nt("Wrong admin password ({n} try left before a one-minute lock).",
                        "Wrong admin password ({n} tries left before a one-minute lock).", self.tries_left)


@dataclass
class _Streak:
    """Misses of one shared source: how many (at the last miss) and when the last one was."""

    misses: int
    last: float


class AdminGate:
    """Compares admin passwords in constant time; locks a known address, slows a shared source.

    A known address (:class:`Caller` of kind ADDRESS, or any plain hashable) is locked for
    ``lockout_seconds`` after ``max_failures`` misses in a row; a try while locked is not even
    compared and does not extend the lock; a correct password resets its count.

    A shared source gets ``shared_free_misses`` misses, then must wait ``slowdown_base`` ×
    2^(extra misses) seconds (at most ``slowdown_max``) after each miss before the next try is
    compared. Each ``slowdown_decay`` seconds without a miss forgives one. Nothing any caller
    does ever locks another source.
    """

    def __init__(
        self,
        password: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = MAX_FAILURES,
        lockout_seconds: float = LOCKOUT_SECONDS,
        shared_free_misses: int = SHARED_FREE_MISSES,
        slowdown_base: float = SLOWDOWN_BASE_SECONDS,
        slowdown_max: float = SLOWDOWN_MAX_SECONDS,
        slowdown_decay: float = SLOWDOWN_DECAY_SECONDS,
    ) -> None:
        if not password:
            raise ValueError("AdminGate needs a non-empty password")
        self._password = password.encode("utf-8")
        self.clock = clock
        self.max_failures = max_failures
        self.lockout_seconds = lockout_seconds
        self.shared_free_misses = shared_free_misses
        self.slowdown_base = slowdown_base
        self.slowdown_max = slowdown_max
        self.slowdown_decay = slowdown_decay
        self._failures: dict[Hashable, tuple[int, float]] = {}
        self._locked_until: dict[Hashable, float] = {}
        self._streaks: dict[Hashable, _Streak] = {}
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- shared sources
    def _delay_after(self, misses: int) -> float:
        if misses < self.shared_free_misses:
            return 0.0
        return min(self.slowdown_max, self.slowdown_base * 2 ** (misses - self.shared_free_misses))

    def _effective_misses(self, streak: _Streak | None, now: float) -> int:
        if streak is None:
            return 0
        if self.slowdown_decay <= 0:
            return streak.misses
        forgiven = int(max(0.0, now - streak.last) // self.slowdown_decay)
        return max(0, streak.misses - forgiven)

    def _shared_status(self, key: Hashable, now: float) -> GateResult:
        streak = self._streaks.get(key)
        misses = self._effective_misses(streak, now)
        if streak is not None:
            wait = streak.last + self._delay_after(streak.misses) - now
            if wait > 0:
                return GateResult(SLOWED, 0, wait, shared=True)
            if misses == 0:
                del self._streaks[key]
        return GateResult(WRONG, max(0, self.shared_free_misses - misses), 0.0, shared=True)

    def _shared_miss(self, key: Hashable, now: float) -> GateResult:
        misses = self._effective_misses(self._streaks.get(key), now) + 1
        self._streaks[key] = _Streak(misses, now)
        return GateResult(WRONG, max(0, self.shared_free_misses - misses), self._delay_after(misses), shared=True)

    # ---------------------------------------------------------------- known addresses
    def _address_status(self, key: Hashable, now: float) -> GateResult:
        until = self._locked_until.get(key)
        if until is not None:
            if now < until:
                return GateResult(LOCKED, 0, until - now)
            del self._locked_until[key]
            self._failures.pop(key, None)
        return GateResult(WRONG, self.max_failures - self._failures.get(key, (0, 0.0))[0])

    def _address_miss(self, key: Hashable, now: float) -> GateResult:
        failures = self._failures.get(key, (0, 0.0))[0] + 1
        if failures >= self.max_failures:
            self._failures.pop(key, None)
            self._locked_until[key] = now + self.lockout_seconds
            return GateResult(LOCKED, 0, self.lockout_seconds)
        self._failures[key] = (failures, now)
        return GateResult(WRONG, self.max_failures - failures)

    # ---------------------------------------------------------------- API
    @staticmethod
    def _key(who: Hashable) -> tuple[Hashable, bool]:
        if isinstance(who, Caller):
            return who.key, who.shared
        return who, False

    def status(self, who: Hashable = "") -> GateResult:
        """Whether ``who`` may try now (WRONG with tries left), must wait (SLOWED) or is LOCKED."""
        key, shared = self._key(who)
        with self._lock:
            now = self.clock()
            return self._shared_status(key, now) if shared else self._address_status(key, now)

    def check(self, attempt: str, who: Hashable = "") -> GateResult:
        key, shared = self._key(who)
        with self._lock:
            now = self.clock()
            current = self._shared_status(key, now) if shared else self._address_status(key, now)
            if current.locked or current.slowed:
                return current
            if hmac.compare_digest((attempt or "").encode("utf-8"), self._password):
                if not shared:  # a shared source's streak is not the admin's to clear
                    self._failures.pop(key, None)
                return GateResult(OK, self.max_failures, shared=shared)
            self._prune(now)
            return self._shared_miss(key, now) if shared else self._address_miss(key, now)

    def _prune(self, now: float) -> None:
        """Forget stale sources once many are tracked (an attacker rotating addresses)."""
        if len(self._failures) + len(self._locked_until) + len(self._streaks) < _PRUNE_ABOVE:
            return
        horizon = max(self.lockout_seconds, self.slowdown_decay) * 10
        self._locked_until = {k: v for k, v in self._locked_until.items() if v > now}
        self._failures = {k: v for k, v in self._failures.items() if now - v[1] < horizon}
        self._streaks = {k: v for k, v in self._streaks.items() if self._effective_misses(v, now) > 0
                         or v.last + self._delay_after(v.misses) > now}


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
