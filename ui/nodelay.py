"""Send every answer of the app's web server at once: TCP_NODELAY on its connections.

Streamlit (1.67, the Starlette/uvicorn server) binds its listening socket itself with
``socket.socket(family)``, whose protocol number is 0, and hands it to uvicorn. Accepted
connections inherit that 0, and asyncio (3.11) turns Nagle's algorithm off only for a socket
that says ``IPPROTO_TCP``. With Nagle on, the body of every response after the first on a
keep-alive connection waits for the browser's delayed ACK, about 40 ms: a new browser session
loads Streamlit's ~60 JavaScript files six at a time in steps of ~45 ms instead of ~5 ms (0.4 s
instead of 0.07 s), and WebSocket deltas stall the same way. uvicorn's ``--workers`` path has the
same bug (uvicorn issue 3149). Tornado, Streamlit's server before 1.67, set the option itself.

:func:`install` wraps asyncio's hook so an accepted TCP socket gets TCP_NODELAY whatever protocol
number it reports. ``app.py`` calls it at the top of every run, so it is in place from the first
script run: the connections a browser opens after that (every later page load, session and
WebSocket) answer without the wait. The very first page a fresh server sends cannot be helped
from here, because no app code runs before it.
"""
from __future__ import annotations

import asyncio.base_events
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()
_original: Callable[[Any], None] | None = None


def _is_tcp(sock: Any) -> bool:
    return (getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6)
            and getattr(sock, "type", None) == socket.SOCK_STREAM)


def _set_nodelay(sock: Any) -> None:
    """asyncio's own check first (it may learn better), then the option for any TCP socket."""
    if _original is not None:
        _original(sock)
    if _is_tcp(sock):
        with contextlib.suppress(OSError):  # a socket closed under us: nothing to speed up
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def install() -> None:
    """Idempotent; process-wide (every asyncio server in the process accepts this way)."""
    global _original
    with _lock:
        current = getattr(asyncio.base_events, "_set_nodelay", None)
        if current is _set_nodelay or current is None:  # installed, or a Python without the hook
            return
        _original = current
        asyncio.base_events._set_nodelay = _set_nodelay  # type: ignore[attr-defined]


def installed() -> bool:
    return getattr(asyncio.base_events, "_set_nodelay", None) is _set_nodelay
