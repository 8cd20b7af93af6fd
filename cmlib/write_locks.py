"""One writer at a time per (client, address): so two sessions never send the same change twice.

Campaign Monitor has no idempotency keys. Two operators (two browser sessions of one Streamlit
process, or two threads of a bulk job) who untick the same list of the same address within a
few milliseconds would both re-read "Active", both send the unsubscribe and both report
"done". :func:`cmlib.subscriptions.apply.apply_plan` therefore holds a lock for
``(client id, address)`` around "re-read, decide, write, read back"; whoever comes second
re-reads the state the first one produced and reports "already so" without sending anything.

The lock sits behind a small interface, :class:`WriteLocks` (one method, ``hold``): the
in-process registry by default, and :class:`RedisWriteLocks` (``SET key token NX PX``, released
only by its own token) when ``CM_REDIS_URL`` makes several replicas share one account. Keys name
the address only through a hash (:attr:`WriteKey.token`), so a shared store never holds an email
address in its key space.

The in-process registry keeps one entry per key *in use*: an entry is created by the first
waiter and removed when the last holder or waiter leaves, so it never grows with the number
of addresses ever changed (bounded by the number of writes in flight).
"""
from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from . import deployment
from .errors import Explained
from .i18n import N_, Language, t

if TYPE_CHECKING:  # imported on first use: the embedded default never pays for the redis import
    import redis

log = logging.getLogger("cmlib.write_locks")

DEFAULT_WAIT_SECONDS = 90.0  # longer than one write plus its read-back at the client's timeouts


@dataclass(frozen=True)
class WriteKey:
    """What is serialised: one address of one client (the address compared case-insensitively)."""

    client_id: str
    email: str

    @classmethod
    def of(cls, client_id: str, email: str) -> WriteKey:
        return cls(client_id.strip(), email.strip().lower())

    @property
    def token(self) -> str:
        """A stable name for a shared store: no address in clear."""
        digest = hashlib.sha256(f"{self.client_id}\0{self.email}".encode()).hexdigest()
        return f"cm-write:{digest}"


BUSY_MESSAGE = N_("another change of this address was still in progress after {seconds} s")


class WriteLockTimeout(Explained):
    """Another change of the same address kept the lock for longer than the caller would wait.

    ``str()`` is English (logs); :meth:`describe` says it in a person's language."""

    def __init__(self, key: WriteKey, waited: float) -> None:
        super().__init__(BUSY_MESSAGE.format(seconds=f"{waited:.0f}"))
        self.key = key
        self.waited = waited

    def describe(self, lang: Language | str | None = None) -> str:
        return t(BUSY_MESSAGE, lang=lang, seconds=round(self.waited))


class WriteLocks(Protocol):
    """Mutual exclusion per :class:`WriteKey`. Implementations: :class:`LocalWriteLocks` (one
    process), :class:`RedisWriteLocks` (every replica). ``hold`` raises :class:`WriteLockTimeout` when the key stays
    taken for ``timeout`` seconds."""

    def hold(self, key: WriteKey, *, timeout: float = DEFAULT_WAIT_SECONDS) -> AbstractContextManager[None]: ...


@dataclass
class _Entry:
    lock: threading.Lock
    users: int = 0  # holders + waiters


class LocalWriteLocks:
    """A process-wide registry of per-key locks; entries live only while someone holds or waits.

    ``on_contended(key)`` is called (outside the registry's own lock) when an acquire has to
    wait because another writer holds the key: a hook for logging and for tests that need to
    know the second writer is queued.
    """

    def __init__(self, *, on_contended: Callable[[WriteKey], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._guard = threading.Lock()
        self._entries: dict[WriteKey, _Entry] = {}
        self.on_contended = on_contended
        self._clock = clock

    def in_use(self) -> int:
        """Keys currently held or waited for (0 when no write is in flight). A method, not
        ``__len__``: an idle registry must not be falsy (``locks or default`` would skip it)."""
        with self._guard:
            return len(self._entries)

    def is_held(self, key: WriteKey) -> bool:
        with self._guard:
            entry = self._entries.get(key)
            return entry is not None and entry.lock.locked()

    @contextmanager
    def hold(self, key: WriteKey, *, timeout: float = DEFAULT_WAIT_SECONDS) -> Iterator[None]:
        with self._guard:
            entry = self._entries.get(key)
            if entry is None:
                entry = self._entries[key] = _Entry(threading.Lock())
            entry.users += 1
        started = self._clock()
        try:
            acquired = entry.lock.acquire(blocking=False)
            if not acquired:
                hook = self.on_contended
                if hook is not None:
                    hook(key)
                acquired = entry.lock.acquire(timeout=max(0.0, timeout))
            if not acquired:
                raise WriteLockTimeout(key, self._clock() - started)
            try:
                yield
            finally:
                entry.lock.release()
        finally:
            with self._guard:
                entry.users -= 1
                if entry.users <= 0 and self._entries.get(key) is entry:
                    del self._entries[key]


# ---------------------------------------------------------------------------- across replicas
LEASE_SECONDS = DEFAULT_WAIT_SECONDS + 30.0
"""How long a Redis lock outlives a holder that died: longer than anyone waits for it, so a
live holder never needs to renew it, yet a crashed replica's lock frees itself."""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisWriteLocks:
    """Mutual exclusion per :class:`WriteKey` across every replica sharing one Redis.

    A holder sets ``cm-write:<hash>`` to a random token with ``SET NX PX`` (the lease,
    :data:`LEASE_SECONDS`) and releases it with a script that deletes the key only while it still
    holds *its* token: a holder whose lease ran out never frees the lock of whoever took it next.

    In-process contention queues on a :class:`LocalWriteLocks` first, so threads of one replica
    wait on a local lock instead of polling Redis; only the replica's one contender polls, every
    ``poll`` seconds (writes rarely contend). When Redis is unreachable the local lock alone is
    held (logged): the app keeps writing, exclusive within the replica.
    """

    def __init__(self, client: redis.Redis, *, on_contended: Callable[[WriteKey], None] | None = None,
                 lease: float = LEASE_SECONDS, poll: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._client = client
        self._release = client.register_script(_RELEASE)
        self._local = LocalWriteLocks(clock=clock)
        self._local.on_contended = self._contended
        self.on_contended = on_contended
        self.lease_ms = max(1, int(lease * 1000))
        self.poll = max(0.001, poll)
        self._clock = clock
        self._sleep = sleep

    def _contended(self, key: WriteKey) -> None:
        hook = self.on_contended
        if hook is not None:
            hook(key)

    def is_held(self, key: WriteKey) -> bool:
        """Whether any replica holds ``key`` now."""
        return bool(self._client.exists(key.token))

    @contextmanager
    def hold(self, key: WriteKey, *, timeout: float = DEFAULT_WAIT_SECONDS) -> Iterator[None]:
        import redis

        started = self._clock()
        with self._local.hold(key, timeout=timeout):
            token = secrets.token_hex(16)
            try:
                held = self._take(key, token, timeout, started)
            except redis.RedisError as exc:
                log.warning("write lock: Redis unavailable (%s); holding the replica's own lock only",
                            type(exc).__name__)
                held = False
            try:
                yield
            finally:
                if held:
                    try:
                        self._release(keys=[key.token], args=[token])
                    except redis.RedisError as exc:  # the lease frees it
                        log.warning("write lock: release failed (%s); it expires with its lease", type(exc).__name__)

    def _take(self, key: WriteKey, token: str, timeout: float, started: float) -> bool:
        if self._client.set(key.token, token, nx=True, px=self.lease_ms):
            return True
        self._contended(key)
        while True:
            left = timeout - (self._clock() - started)
            if left <= 0:
                raise WriteLockTimeout(key, self._clock() - started)
            self._sleep(min(self.poll, left))
            if self._client.set(key.token, token, nx=True, px=self.lease_ms):
                return True


_local_default = LocalWriteLocks()
_chosen: WriteLocks | None = None  # set by set_write_locks
_shared: dict[int, RedisWriteLocks] = {}  # by id of the deployment's client
_default_guard = threading.Lock()


def _automatic() -> WriteLocks:
    client = deployment.shared_redis()
    if client is None:
        return _local_default
    with _default_guard:
        locks = _shared.get(id(client))
        if locks is None or locks._client is not client:
            locks = _shared[id(client)] = RedisWriteLocks(client)
        return locks


deployment.on_reset(_shared.clear)


def write_locks() -> WriteLocks:
    """The lock registry every session's writes go through: the one given to
    :func:`set_write_locks`, else Redis locks shared by every replica when ``CM_REDIS_URL`` is
    set, else the process-wide registry."""
    chosen = _chosen
    return chosen if chosen is not None else _automatic()


def set_write_locks(locks: WriteLocks) -> WriteLocks:
    """Use ``locks`` from now on (a test's instrumented registry); returns the registry used before
    so it can be put back. Putting back an automatic one (local or Redis) goes back to choosing by
    the environment."""
    global _chosen
    previous = write_locks()
    automatic = locks is _local_default or any(locks is s for s in list(_shared.values()))
    with _default_guard:
        _chosen = None if automatic else locks
    return previous
