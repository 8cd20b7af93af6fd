"""Which deployment mode this process runs in, and the one shared Redis client per URL.

Two environment variables switch the team deployment on; with neither set nothing changes
(embedded SQLite, in-memory limiter, in-process jobs, and ``make run`` needs no server):

- ``CM_REDIS_URL``: shared, throwaway state (HTTP cache, account-wide rate budget, write locks).
- ``CM_DATABASE_URL``: durable, shared records (audit log, saved settings, bulk jobs on Postgres).

The Redis client is process-wide because redis-py's client owns a thread-safe connection pool:
one pool per URL keeps the number of connections bounded however many sessions and threads the
process runs. This module owns those clients: :func:`close_shared` closes them (process
shutdown), :func:`reset_for_tests` also forgets what other modules built on them (tests change
the environment between cases). Sessions and budgets borrow the client and never close it.
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported on first use: the embedded default never pays for the redis import
    import redis

REDIS_URL_ENV = "CM_REDIS_URL"
DATABASE_URL_ENV = "CM_DATABASE_URL"
CACHE_SALT_ENV = "CM_CACHE_SALT"
SOCKET_TIMEOUT = 5.0  # seconds: a Redis that stops answering fails a command instead of hanging it

_lock = threading.Lock()
_clients: dict[str, redis.Redis] = {}


def redis_url() -> str | None:
    """``CM_REDIS_URL``, or None (the embedded default) when unset or blank."""
    return (os.environ.get(REDIS_URL_ENV) or "").strip() or None


def database_url() -> str | None:
    """``CM_DATABASE_URL``, or None: the embedded SQLite file in the data folder is then used."""
    return (os.environ.get(DATABASE_URL_ENV) or "").strip() or None


def cache_salt() -> str | None:
    """``CM_CACHE_SALT``: the cache-partition salt shared by every replica, when configured."""
    return (os.environ.get(CACHE_SALT_ENV) or "").strip() or None


def uses_postgres() -> bool:
    """True when ``CM_DATABASE_URL`` names Postgres (durable jobs need it; SQLite stays single-process)."""
    url = database_url()
    return url is not None and url.lower().startswith("postgresql")


def shared_redis() -> redis.Redis | None:
    """The process-wide client for ``CM_REDIS_URL`` (created lazily), or None without it.

    Connecting is lazy in redis-py: this never blocks on the network, the first command does.
    Responses stay bytes (``decode_responses`` off) because the HTTP cache stores bytes. Every
    command on it is quick (cache reads, one script per rate slot, lock attempts), so a socket
    timeout bounds how long a hung Redis can hold a request: blocking commands need a client of
    their own.
    """
    url = redis_url()
    if url is None:
        return None
    import redis

    with _lock:
        client = _clients.get(url)
        if client is None:
            client = redis.Redis.from_url(url, health_check_interval=30, socket_connect_timeout=SOCKET_TIMEOUT,
                                          socket_timeout=SOCKET_TIMEOUT)
            _clients[url] = client
        return client


def close_shared() -> None:
    """Close every shared client (process shutdown); a later :func:`shared_redis` reconnects."""
    with _lock:
        clients = list(_clients.values())
        _clients.clear()
    if not clients:
        return
    import redis

    for client in clients:
        with contextlib.suppress(redis.RedisError):
            client.close()


def reset_for_tests() -> None:
    """Forget the process-wide clients and everything cached per deployment (tests change env between cases)."""
    close_shared()
    for hook in tuple(_reset_hooks):
        hook()


_reset_hooks: list[Callable[[], None]] = []


def on_reset(hook: Callable[[], None]) -> None:
    """Register a callable run by :func:`reset_for_tests` (modules caching Redis-backed objects use it)."""
    if hook not in _reset_hooks:
        _reset_hooks.append(hook)
