"""The app's web server answers without waiting for the browser's delayed ACK (ui.nodelay).

Streamlit binds its listening socket with protocol number 0; asyncio then leaves Nagle's
algorithm on for every accepted connection, and each response after the first on a keep-alive
connection waits ~40 ms. These tests build the same situation with a plain asyncio server: no
timing, only the socket option an accepted connection ends up with.
"""
from __future__ import annotations

import asyncio
import asyncio.base_events
import socket
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import nodelay

ROOT = Path(__file__).resolve().parent.parent


def accepted_nodelay() -> int:
    """TCP_NODELAY on the server side of a connection accepted the way Streamlit's server
    accepts: from a listener it bound itself with ``socket.socket(family)`` (protocol 0)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        listener = socket.socket(socket.AF_INET)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        assert listener.proto == 0
        got: asyncio.Future[int] = loop.create_future()

        class Report(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                got.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Report, sock=listener)
        _reader, writer = await asyncio.open_connection(*listener.getsockname()[:2])
        value = await got
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    return asyncio.run(main())


def test_without_it_such_a_connection_keeps_nagle_on(monkeypatch):
    """The reason the module exists (if a Python release fixes asyncio, this test says so)."""
    original = nodelay._original or asyncio.base_events._set_nodelay
    monkeypatch.setattr(asyncio.base_events, "_set_nodelay", original)
    assert accepted_nodelay() == 0


def test_installed_every_accepted_tcp_connection_gets_nodelay(monkeypatch):
    monkeypatch.setattr(asyncio.base_events, "_set_nodelay", nodelay._original or asyncio.base_events._set_nodelay)
    nodelay.install()
    nodelay.install()  # idempotent: wrapped once
    assert nodelay.installed()
    assert nodelay._original is not nodelay._set_nodelay
    assert accepted_nodelay() == 1


def test_a_socket_that_is_not_tcp_is_left_alone():
    left, right = socket.socketpair()  # AF_UNIX
    try:
        nodelay._set_nodelay(left)  # no setsockopt on a Unix socket, no error
    finally:
        left.close()
        right.close()


def test_the_app_installs_it_on_its_first_run(app_env, monkeypatch):
    monkeypatch.setattr(asyncio.base_events, "_set_nodelay", nodelay._original or asyncio.base_events._set_nodelay)
    assert not nodelay.installed()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert nodelay.installed()
