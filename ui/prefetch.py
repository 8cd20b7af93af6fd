"""The web server's side of :mod:`cmlib.prefetch`: a deep link's page request starts its lookup.

``serve.py`` puts :class:`DeepLinkPrefetch` in front of Streamlit. On a ``GET`` of the Lookup
page or the helpdesk panel whose query names addresses, it starts the lookup the page is about
to ask for, on the page's own connection, while the browser is still loading Streamlit's
JavaScript; the page's lookup then waits for it and takes its outcome instead of sending the
same requests (see :func:`page_lookup`). The request itself is never delayed: the work goes to
a thread.

Who may trigger one: with single sign-on configured nobody does, since the request arrives
before anyone is signed in (it would let an anonymous visitor spend the account's API budget).
Otherwise anyone who can open the page can run the same lookup by opening it. At most one runs
per connection and set of addresses, with the page's cap on addresses, and at most
:data:`cmlib.prefetch.MAX_RUNNING` at once.
"""
from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cmlib.prefetch import PREFETCHES, PrefetchKey, emails_in_query
from cmlib.runtime import Connection
from ui.base_path import base_path

log = logging.getLogger("ui.prefetch")

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PAGES = ("", "lookup", "panel")  # the default page (Lookup), its own path, the helpdesk panel
MAX_ADDRESSES = 20  # ui.profile.MAX_ADDRESSES, not imported: the server must not import the page
EARLY_WAIT_S = 30.0  # an early lookup ends within the client's interactive deadline (25 s)


def key_for(conn: Connection, emails: list[str]) -> PrefetchKey:
    return PrefetchKey.of(id(conn), emails)


def page_lookup(conn: Connection, emails: list[str], fresh: list[str],
                on_profile: Callable[[Any], None] | None = None) -> Any:
    """What a page submits to its pool for its lookup: the outcome of a deep link's early lookup
    of the same addresses on this connection (:meth:`cmlib.prefetch.Prefetches.after`), else
    ``lookup_many``. A refresh (``fresh``) never takes an early lookup's outcome."""
    service = conn.lookup_service()
    lookup = functools.partial(service.lookup_many, emails, fresh=fresh, suppression=True, time_zone=True)
    if fresh:
        return lookup(on_profile=on_profile)
    return PREFETCHES.after(key_for(conn, emails), EARLY_WAIT_S, lookup, on_profile=on_profile)


def start_early(conn: Connection, emails: list[str]) -> bool:
    """Start the page's lookup of ``emails`` on ``conn`` ahead of the page; True when it started."""
    service = conn.lookup_service()
    return PREFETCHES.start(key_for(conn, emails), lambda on_profile: conn.executor.submit(
        service.lookup_many, emails, fresh=[], suppression=True, time_zone=True, on_profile=on_profile), owner=conn)


def page_of(path: str, base: str) -> str | None:
    """``""``, ``"lookup"`` or ``"panel"`` when ``path`` asks for one of those pages, else None."""
    if base and not (path == base or path.startswith(base + "/")):
        return None
    rest = path[len(base):].strip("/")
    return rest if rest in PAGES else None


def start_for(query: str) -> bool:
    """Start the early lookup for a page's query string; True when one started. Never raises:
    the page does the lookup anyway and reports what goes wrong."""
    try:
        emails = emails_in_query(query, MAX_ADDRESSES)
        if not emails:
            return False
        from ui.access import auth_configured

        if auth_configured():
            return False
        from ui.connection import get_connection

        return start_early(get_connection(), emails)
    except Exception as exc:
        log.warning("a deep link's early lookup did not start: %s", type(exc).__name__)
        return False


class DeepLinkPrefetch:
    """ASGI middleware (``st.App(middleware=[Middleware(DeepLinkPrefetch)])``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._base: str | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("method") == "GET":
            query = scope.get("query_string", b"").decode("latin-1")
            if "email=" in query:
                if self._base is None:
                    self._base = base_path()
                if page_of(str(scope.get("path", "")), self._base) is not None:
                    asyncio.get_running_loop().run_in_executor(None, start_for, query)
        await self.app(scope, receive, send)
