"""Turn configuration into a ready connection: real account, or the demo sandbox.

The app and the CLI both call :func:`connect`, so "no credentials anywhere" means the same
thing in both: start the local sandbox in the background and use its demo client.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .cache import DEFAULT_EXPIRY, CacheSettings, effective_backend
from .client import CampaignMonitor, ClientOptions
from .config import SOURCE_DEMO, Credentials, SettingsStore, ignored_env_url, resolve_credentials
from .errors import ConfigurationError
from .lookup import CLOSED_REASON, LookupService
from .pacing import LEARN, Lane
from .urls import require_api_url

if TYPE_CHECKING:
    from .subscriptions.catalog import ListCatalog

log = logging.getLogger("cmlib.runtime")


def demo_credentials() -> Credentials:
    from .sandbox import get_demo_sandbox

    sb = get_demo_sandbox()
    return Credentials(api_key=sb.client_api_key, client_id=sb.main_client_id, api_url=sb.base_url,
                       source=SOURCE_DEMO)


def current_credentials(store: SettingsStore | None = None) -> Credentials:
    return resolve_credentials(store=store) or demo_credentials()


def cache_settings(store: SettingsStore | None = None) -> CacheSettings:
    """Cache configuration: ``CM_CACHE_BACKEND`` (sqlite/memory/filesystem/off; Redis with ``CM_REDIS_URL``)
    and saved expiries."""
    saved = (store or SettingsStore()).load()
    backend = effective_backend(os.environ.get("CM_CACHE_BACKEND") or saved.get("cache_backend") or "sqlite")
    expiry = dict(DEFAULT_EXPIRY)
    for k, v in (saved.get("cache_expiry") or {}).items():
        if k in expiry:
            with contextlib.suppress(TypeError, ValueError):
                expiry[k] = max(0, int(v))
    return CacheSettings(enabled=backend != "off", backend=backend if backend != "off" else "sqlite", expiry=expiry)


CONNECTION_WORKERS = 32
"""Threads of a connection's page-level pool at most; started on demand, so an idle app has none."""


@dataclass
class Connection:
    """A client with everything built on it for one credential: the owner of their lifetimes.

    The app keeps one per credential (ui/connection.py) and closes it when it drops it; the CLI
    and a bulk run open their own (``with connect(...) as conn``). ``close()`` releases the
    lookup service, the page-level pool and the HTTP session; the credential's rate budget and
    breaker are shared with other connections and stay. Work already running when it closes
    finishes; anything started on a closed connection raises a
    :class:`~cmlib.errors.ConfigurationError` that says to try again.
    """

    client: CampaignMonitor
    credentials: Credentials
    extra: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # things a CLI should tell its user (e.g. "CM_API_URL is ignored")
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _closed: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    @property
    def is_demo(self) -> bool:
        return self.credentials.is_demo

    @property
    def closed(self) -> bool:
        return self._closed

    def _require_open(self) -> None:
        if self._closed:
            raise ConfigurationError(CLOSED_REASON)

    @property
    def executor(self) -> ThreadPoolExecutor:
        """A small pool for page-level fan-out (the dialog's snapshot, a background lookup).

        Owned here, so no view starts threads of its own; separate from the lookup pool, whose
        tasks must never wait on tasks queued behind them in the same pool.
        """
        with self._lock:
            self._require_open()
            pool = self.extra.get("executor")
            if pool is None:
                pool = self.extra["executor"] = ThreadPoolExecutor(max_workers=CONNECTION_WORKERS,
                                                                   thread_name_prefix="cm-conn")
            return pool

    def close(self) -> None:
        """Release everything this connection owns: lookup service, list catalog, pools, HTTP
        session. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            svc = self.extra.pop("lookup_service", None)
            catalog = self.extra.pop("list_catalog", None)
            pool = self.extra.pop("executor", None)
        if svc is not None:
            svc.close()
        if catalog is not None:
            catalog.close()
        if pool is not None:
            pool.shutdown(wait=False)  # queued page tasks still run (and fail politely); never block the closer
        self.client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def list_catalog(self) -> ListCatalog:
        """The client's lists with their settings, read in the background for the subscription
        dialog (:mod:`cmlib.subscriptions.catalog`); one per connection, closed with it."""
        from .subscriptions.catalog import ListCatalog, catalog_max_age

        with self._lock:
            self._require_open()
            catalog = self.extra.get("list_catalog")
            if catalog is None:
                catalog = self.extra["list_catalog"] = ListCatalog(
                    self.client, self.client_id, max_age=catalog_max_age(self.client.cache_settings))
            return catalog

    def lookup_service(self, max_workers: int | None = None) -> LookupService:
        """One service per connection, so its in-memory profile memo is shared by every rerun."""
        with self._lock:
            self._require_open()
            svc = self.extra.get("lookup_service")
            if svc is None:
                svc = self.extra["lookup_service"] = LookupService(self.client, self.client_id)
            if max_workers:
                svc.max_workers = max_workers
            return svc


def connect(
    credentials: Credentials | None = None,
    *,
    cache: CacheSettings | bool | None = True,
    options: ClientOptions | None = None,
    store: SettingsStore | None = None,
) -> Connection:
    """A client for the given (or configured, or demo) credentials.

    ``cache=True`` uses the configured cache, ``False``/``None`` none, or pass CacheSettings.
    Raises :class:`cmlib.urls.ApiUrlError` (a ConfigurationError) when the configured API URL
    is one the key must not be sent to (plain http to another host, a metadata address, a
    malformed URL): every caller already reports a CMError from here as "cannot connect".
    """
    creds = credentials or current_credentials(store)
    require_api_url(creds.api_url)
    notes: tuple[str, ...] = ()
    if credentials is None:
        note = ignored_env_url(creds)
        if note:
            log.warning(note)
            notes = (note,)
    if cache is True:
        cache_cfg: CacheSettings | None = cache_settings(store)
    elif cache is False:
        cache_cfg = None
    else:
        cache_cfg = cache
    # Interactive defaults: a lookup's fan-out (a few dozen calls) goes out at once, then
    # requests are spaced at the credential's learned pace (cmlib.pacing). A bulk run passes its
    # own options (its own in-flight cap, retries, timeouts, the bulk lane) and shares the
    # credential's rate budget with this client, behind its lookups (cmlib.ratelimit).
    opts = options or ClientOptions(rate=LEARN, max_in_flight=32, burst=40, lane=Lane.INTERACTIVE)
    client = CampaignMonitor(creds.api_key, creds.api_url, options=opts, cache=cache_cfg)
    return Connection(client=client, credentials=creds, notes=notes)
