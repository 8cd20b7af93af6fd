"""One writer at a time per (client, address): so two sessions never send the same change twice.

Campaign Monitor has no idempotency keys. Two operators (two browser sessions of one Streamlit
process, or two threads of a bulk job) who untick the same list of the same address within a
few milliseconds would both re-read "Active", both send the unsubscribe and both report
"done". :func:`cmlib.subscriptions.apply.apply_plan` therefore holds a lock for
``(client id, address)`` around "re-read, decide, write, read back"; whoever comes second
re-reads the state the first one produced and reports "already so" without sending anything.

The lock sits behind a small interface, :class:`WriteLocks` (one method, ``hold``), so a
shared store can replace the in-process registry once several app processes run side by side
(a Redis ``SET key token NX PX`` lock with a fencing token is the intended one). Keys name the
address only through a hash (:attr:`WriteKey.token`), so a shared store never holds an email
address in its key space.

The in-process registry keeps one entry per key *in use*: an entry is created by the first
waiter and removed when the last holder or waiter leaves, so it never grows with the number
of addresses ever changed (bounded by the number of writes in flight).
"""
from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

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


class WriteLockTimeout(Exception):
    """Another change of the same address kept the lock for longer than the caller would wait."""

    def __init__(self, key: WriteKey, waited: float) -> None:
        super().__init__(f"another change of this address was still in progress after {waited:.0f} s")
        self.key = key
        self.waited = waited


class WriteLocks(Protocol):
    """Mutual exclusion per :class:`WriteKey`. Implementations: :class:`LocalWriteLocks` (one
    process), later a shared store. ``hold`` raises :class:`WriteLockTimeout` when the key stays
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


_default: WriteLocks = LocalWriteLocks()
_default_guard = threading.Lock()


def write_locks() -> WriteLocks:
    """The process-wide lock registry every session's writes go through."""
    return _default


def set_write_locks(locks: WriteLocks) -> WriteLocks:
    """Replace the process-wide registry (a shared store, or a test's instrumented one); returns
    the previous one so it can be put back."""
    global _default
    with _default_guard:
        previous, _default = _default, locks
    return previous
