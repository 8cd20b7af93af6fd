"""HTTP transport for the sandbox: stdlib ThreadingHTTPServer, one daemon thread per connection.

Owns what only exists on the wire: keep-alive, Content-Length, the request counters and the
faults (latency, hangs, proxy HTML 500s, 429s with or without headers, failing lists, truncated
JSON). It never logs: request lines carry email addresses and headers carry API keys.
"""
from __future__ import annotations

import contextlib
import selectors
import socket
import socketserver
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .api import ApiResponse, Endpoints, Route, match_route
from .errors import ApiError
from .faults import FaultInjector

JSON_TYPE = "application/json; charset=utf-8"
HTML_502 = (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>"
            b"<body><h1>Bad Gateway</h1><p>The upstream server did not answer in time.</p></body></html>")
HTML_500 = (b"<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
            b"<body><h1>Internal Server Error</h1><p>The server encountered an internal error.</p>"
            b"</body></html>")
XML_404 = (b'<?xml version="1.0" encoding="utf-8"?><Result><Code>404</Code>'
           b"<Message>The sandbox only speaks JSON: add .json to the path</Message></Result>")


class RequestCounter:
    """Requests received, in total, per endpoint kind and per answered status (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self.by_kind: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()

    def count(self, kind: str) -> None:
        with self._lock:
            self.total += 1
            self.by_kind[kind] += 1

    def answered(self, status: int) -> None:
        with self._lock:
            self.by_status[status] += 1

    def snapshot(self) -> tuple[int, Counter[str], Counter[int]]:
        with self._lock:
            return self.total, Counter(self.by_kind), Counter(self.by_status)

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_kind.clear()
            self.by_status.clear()


@dataclass
class ServerContext:
    endpoints: Endpoints
    injector: FaultInjector
    counter: RequestCounter
    stopping: threading.Event = field(default_factory=threading.Event)


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client reuses connections
    disable_nagle_algorithm = True  # headers and body go in separate writes
    timeout = 120  # drop idle keep-alive connections eventually
    server_version = "cmlib-sandbox"
    sys_version = ""

    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Silenced: a request line holds email addresses and must not land in a log."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    # ------------------------------------------------------------------ one request
    def _serve(self) -> None:
        ctx = self.server.ctx
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return self._send(400, b"", None)
        body = self.rfile.read(length) if length > 0 else b""
        url = urlsplit(self.path)
        route = match_route(self.command, url.path)
        kind = route.kind if route and route.json_suffix else ("not_json" if route else "unknown")
        ctx.counter.count(kind)

        inj, faults = ctx.injector, ctx.injector.faults
        if faults.down:  # the API is gone: no status line, the connection just closes
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        delay = inj.delay_seconds()
        if delay > 0:
            ctx.stopping.wait(delay)
        if inj.roll(faults.hang_rate):
            ctx.stopping.wait(faults.hang_seconds)  # the client has usually given up by now
        if route is None:
            return self._send(404, b"", None)
        if not route.json_suffix:
            return self._send(404, XML_404, "application/xml; charset=utf-8")
        if inj.roll(faults.error_rate):
            return self._send(500, HTML_500, "text/html; charset=utf-8")
        self._answer(ctx, route, parse_qs(url.query, keep_blank_values=True), body)

    def _answer(self, ctx: ServerContext, route: Route, query: dict[str, list[str]], body: bytes) -> None:
        inj, faults = ctx.injector, ctx.injector.faults
        extra: dict[str, str] = {}
        try:
            principal = ctx.endpoints.authenticate(self.headers.get("Authorization"))
            decision = inj.rate_check(principal.key_id)
            if decision is not None and faults.rate_limit_headers:
                extra = decision.headers()
            if decision is not None and not decision.allowed:
                raise ApiError(429)
            list_id = route.params.get("list_id")
            if list_id and list_id in faults.fail_list_ids:
                raise ApiError(500)
            resp = ctx.endpoints.call(route, principal, query, body)
        except ApiError as err:
            resp = ApiResponse(err.status, err.body)
        except Exception:  # a sandbox bug must look like the API's own 500, not a dropped socket
            resp = ApiResponse(500, ApiError(500).body)
        payload = resp.payload()
        if faults.write_answer_fault and self.command != "GET" and resp.status < 500:
            return self._lose_write_answer(ctx, faults.write_answer_fault, faults.hang_seconds)
        if resp.status in (200, 201) and payload and inj.roll(faults.malformed_rate):
            payload = payload[: max(1, len(payload) // 2)]
        self._send(resp.status, payload, JSON_TYPE if payload or resp.status >= 400 else None, extra)

    def _lose_write_answer(self, ctx: ServerContext, mode: str, hang_seconds: float) -> None:
        """The write was applied above; the answer is lost on its way back (a proxy's 502 or a hang)."""
        if mode == "hang":
            ctx.stopping.wait(hang_seconds)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return None
        return self._send(502, HTML_502, "text/html; charset=utf-8")

    def _send(self, status: int, payload: bytes, content_type: str | None,
              headers: dict[str, str] | None = None) -> None:
        self.server.ctx.counter.answered(status)
        try:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if payload:
                self.wfile.write(payload)
        except (TimeoutError, BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True  # the client hung up (e.g. after its read timeout)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of 32+ concurrent connects must not hit SYN retries
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], ctx: ServerContext) -> None:
        self.ctx = ctx
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        super().__init__(address, SandboxHandler)

    def serve_until_stopped(self) -> None:
        """Like serve_forever, but :meth:`wake` ends it at once instead of after a poll interval
        (tests start and stop a sandbox per test, so a 0.5 s shutdown would add up)."""
        with selectors.DefaultSelector() as sel:
            sel.register(self, selectors.EVENT_READ)
            sel.register(self._wake_r, selectors.EVENT_READ)
            while not self.ctx.stopping.is_set():
                for key, _ in sel.select(timeout=1.0):
                    if key.fileobj is self._wake_r or self.ctx.stopping.is_set():
                        return
                    # socketserver's own step after a ready select; private, so typeshed omits it.
                    self._handle_request_noblock()  # type: ignore[attr-defined]

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def server_close(self) -> None:
        super().server_close()
        for s in (self._wake_r, self._wake_w):
            s.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def close_connections(self) -> None:
        """Wake every handler blocked on an idle keep-alive connection so its thread ends."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-request is normal here; stay quiet about that only."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)
