"""A counter every replica reads, bumped when something they keep in memory went stale.

A replica keeps a client's suppression list in memory (reading every page of it for each lookup
would cost more than the lookup). A Resubscribe made on another replica takes an address off
that list; without a shared signal this replica would go on showing the address as suppressed
until its copy expired. With ``CM_REDIS_URL`` set, a write bumps a counter in Redis and every
replica compares it (one GET, ~0.1 ms) with the counter its copy was built at.

Keys name the client only through a hash. When Redis does not answer, :meth:`current` says
"unknown" (None) and the caller keeps its usual expiry: an outage of the shared store must not
turn every lookup into a full re-read of the suppression list.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Protocol

from . import deployment

log = logging.getLogger("cmlib.shared_generation")
KEY_TTL_SECONDS = 7 * 24 * 3600  # long after any copy it guards has expired anyway


class Generation(Protocol):
    def current(self) -> int | None: ...

    def bump(self) -> None: ...


class RedisGeneration:
    def __init__(self, client, name: str) -> None:  # client: redis.Redis
        self.client = client
        self.key = f"cm:gen:{name}"

    def current(self) -> int | None:
        try:
            value = self.client.get(self.key)
        except Exception as exc:  # redis.RedisError and socket errors: unknown, keep the usual expiry
            log.warning("shared generation %s unreadable: %s", self.key, type(exc).__name__)
            return None
        try:
            return int(value or 0)
        except ValueError:
            return None

    def bump(self) -> None:
        try:
            pipe = self.client.pipeline()
            pipe.incr(self.key)
            pipe.expire(self.key, KEY_TTL_SECONDS)
            pipe.execute()
        except Exception as exc:
            log.warning("shared generation %s not bumped: %s", self.key, type(exc).__name__)


def suppression_generation(client_id: str) -> Generation | None:
    """The shared counter of one client's suppression list, or None in the embedded mode."""
    client = deployment.shared_redis()
    if client is None:
        return None
    digest = hashlib.sha256(f"suppression\0{client_id.strip()}".encode()).hexdigest()[:24]
    return RedisGeneration(client, f"supp:{digest}")
