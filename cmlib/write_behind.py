"""The SQLite HTTP cache, storing answers on one background writer instead of in the caller.

Why: storing an answer (serialising it, then an ``INSERT`` in a write transaction on the one
connection every thread shares) cost each request of a cold lookup its own transaction, and
every cache read of the lookup's next wave waited behind those transactions. A cold 3-address
lookup paid ~55 ms for a cache it could not yet use. Here a request only hands its answer over
(built and redacted as before, so no secret ever reaches the writer); one writer thread stores
what has piled up in one transaction.

What must not change, and how it is kept:

* **A read sees every earlier store.** A read of a key still waiting to be stored first stores
  what waits (:meth:`flush`), then reads.
* **A store never lands after a delete of its key.** Deletes, ``clear`` and scans take the same
  lock the writer holds from taking a batch until it is committed: a waiting answer whose key is
  deleted is dropped, anything else waiting is stored first, then the rows are deleted. So an
  invalidation after a subscription change can never be undone by an answer read before it.
* **The writer has an owner.** It starts with the first store and ends with :meth:`close`
  (``CachedSession.close``, i.e. the client's ``close()``), which stores what is left; a store
  after ``close`` is written at once in the caller, as before. A cache dropped without
  ``close`` is still collected, and its writer then ends the same way.

Stores that fail are logged and dropped: a lost cache entry is a later miss, never an error.
"""
from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from requests import Response
from requests_cache.backends.sqlite import SQLiteCache
from requests_cache.cache_keys import redact_response
from requests_cache.models import CachedResponse

log = logging.getLogger("cmlib.write_behind")

WRITER_THREAD_NAME = "cm-cache-writer"


class _Writer:
    """The writer's state and thread, apart from the cache object: the thread holds this, not
    the cache, so a cache its owner forgot to close is still collected -- and then its writer
    stores what waits and ends (``weakref.finalize``) instead of waiting forever."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.io = threading.RLock()  # held by whoever changes rows: a batch, deletes, clear
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.pending: dict[str, CachedResponse] = {}  # key -> answer not yet stored (newest wins)
        self.storing: dict[str, CachedResponse] = {}  # the batch being stored now (under ``io``)
        self.thread: threading.Thread | None = None
        self.closed = False
        self.failed = 0

    def put(self, key: str, answer: CachedResponse) -> bool:
        """Hand ``answer`` over; False once closed (the caller stores it itself)."""
        with self.lock:
            if self.closed:
                return False
            self.pending[key] = answer
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=WRITER_THREAD_NAME, daemon=True)
                self.thread.start()
            self.wake.notify()
            return True

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.pending and not self.closed:
                    self.wake.wait()
                if not self.pending:  # closed and nothing left
                    return
            self.flush()

    def flush(self) -> None:
        """Store every answer waiting, now, in this thread (one transaction)."""
        with self.io:
            with self.lock:
                batch, self.pending = self.pending, {}
                self.storing = batch
            try:
                if batch:
                    self.store(batch)
            finally:
                with self.lock:
                    self.storing = {}

    def waiting(self, key: str) -> bool:
        """Is an answer for ``key`` handed over but not yet committed (waiting or being stored)?"""
        with self.lock:
            return key in self.pending or key in self.storing

    def store(self, batch: dict[str, CachedResponse]) -> None:
        """Under ``io``. Serialised before the write transaction, so readers wait only for the INSERTs."""
        storage = self.storage
        try:
            rows = [(key, storage.serialize(answer), getattr(answer, "expires_unix", None))
                    for key, answer in batch.items()]
            with storage.connection(commit=True) as con:
                con.executemany(f"INSERT OR REPLACE INTO {storage.table_name} (key,value,expires) VALUES (?,?,?)",
                                rows)
        except Exception as exc:  # a lost cache entry is a later miss, never an error
            self.failed += len(batch)
            log.warning("storing %d cached answers failed: %s", len(batch), type(exc).__name__)

    def drop(self, keys: Any) -> None:
        with self.lock:
            for key in keys:
                self.pending.pop(key, None)

    def stop(self) -> None:
        """End the thread after it stored what waits (joined unless called from it)."""
        with self.lock:
            self.closed = True
            self.wake.notify_all()
            thread = self.thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.flush()


class WriteBehindSQLiteCache(SQLiteCache):
    """requests-cache's SQLite backend with stores handed to one writer thread it owns.

    ``get_response`` reads the responses table only: redirect aliases (which the Campaign
    Monitor API never produces) are not followed, so a redirected answer is fetched again -- a
    miss is never stale.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer = _Writer(self.responses)
        self._finalizer = weakref.finalize(self, self._writer.stop)

    # ------------------------------------------------------------------ stores
    def save_response(self, response: Response, cache_key: str | None = None, expires: Any = None) -> None:
        if response.history:  # redirect aliases: the rare path, stored at once as requests-cache does
            with self._writer.io:
                self._writer.drop([cache_key] if cache_key else [])
                super().save_response(response, cache_key, expires)
            return
        key = cache_key or self.create_key(response.request)
        # Built and redacted here, in the caller: the writer never sees the live response (which the
        # caller goes on reading) nor an Authorization header.
        answer = redact_response(CachedResponse.from_response(response, expires=expires),
                                 self._settings.ignored_parameters)
        if not self._writer.put(key, answer):
            with self._writer.io:  # closed: no writer any more, store in the caller
                self.responses[key] = answer

    def flush(self) -> None:
        """Store every answer waiting, now, in this thread."""
        self._writer.flush()

    @property
    def pending_count(self) -> int:
        with self._writer.lock:
            return len(self._writer.pending)

    @property
    def writer_alive(self) -> bool:
        thread = self._writer.thread
        return thread is not None and thread.is_alive()

    @property
    def stores_failed(self) -> int:
        return self._writer.failed

    # ------------------------------------------------------------------ reads
    def get_response(self, key: str, default: Any = None) -> CachedResponse | None:
        if self._writer.waiting(key):
            self.flush()  # takes ``io``: also waits for a batch holding the key to be committed
        try:
            with self._writer.io:  # one connection for every thread: no read while close() closes it
                answer = self.responses.get(key)
        except Exception as exc:  # e.g. a row written by an incompatible version: a miss
            log.warning("reading a cached answer failed: %s", type(exc).__name__)
            return default
        return default if answer is None else answer

    def filter(self, *args: Any, **kwargs: Any) -> Iterator[CachedResponse]:
        """Scans (an address's invalidation) see what is still waiting too."""
        self.flush()
        yield from super().filter(*args, **kwargs)

    # ------------------------------------------------------------------ deletes
    def delete(self, *keys: str, expired: bool = False, vacuum: bool = False, **kwargs: Any) -> Any:
        """Waiting answers for ``keys`` are dropped, the rest stored, then the rows deleted, all
        under the writer's lock: no store of a deleted key can land afterwards. ``vacuum`` is off
        by default (requests-cache rewrote the whole file after every multi-key invalidation)."""
        with self._writer.io:
            self._writer.drop(keys)
            self.flush()
            return super().delete(*keys, expired=expired, vacuum=vacuum, **kwargs)

    def clear(self) -> None:
        with self._writer.io:
            with self._writer.lock:
                self._writer.pending.clear()
            super().clear()

    # ------------------------------------------------------------------ lifetime
    def close(self) -> None:
        """End the writer (what waits is stored first) and close the database. Idempotent; a
        store after this is written in the caller."""
        self._finalizer()  # the writer's stop, once
        with self._writer.io:  # never while another thread reads: SQLite crashes on a connection closed mid-query
            super().close()
