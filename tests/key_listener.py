"""A local HTTP server that records every request it gets -- the "attacker's server" of issue 10 #1.

It answers like a friendly Campaign Monitor (200 with a client list) so that a leak would look
like a success to the app; the tests assert it never receives the saved key (or anything).
"""
from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Listener:
    server: ThreadingHTTPServer
    requests: list[dict] = field(default_factory=list)
    got_one: threading.Event = field(default_factory=threading.Event)

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/api/v3.3"

    def authorizations(self) -> list[str]:
        return [r["authorization"] for r in self.requests if r["authorization"]]

    def received_key(self, key: str) -> bool:
        """True when any request carried ``key`` (as Basic auth, or anywhere in its headers)."""
        for r in self.requests:
            auth = r["authorization"]
            if key in r["raw"]:
                return True
            if auth.lower().startswith("basic "):
                try:
                    if key in base64.b64decode(auth.split(" ", 1)[1]).decode("utf-8", "replace"):
                        return True
                except ValueError:
                    continue
        return False


def _handler(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            listener.requests.append({"method": self.command, "path": self.path,
                                      "authorization": self.headers.get("Authorization", ""),
                                      "raw": str(self.headers)})
            listener.got_one.set()
            body = json.dumps([{"ClientID": "leak", "Name": "Leaked"}]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _record

        def log_message(self, *args: object) -> None:  # quiet
            pass

    return Handler


def start_listener() -> Listener:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    listener = Listener(server)
    server.RequestHandlerClass = _handler(listener)
    threading.Thread(target=server.serve_forever, daemon=True, name="key-listener").start()
    return listener


def stop_listener(listener: Listener) -> None:
    listener.server.shutdown()
    listener.server.server_close()


def listening() -> Iterator[Listener]:
    """For a pytest fixture: ``yield from listening()``."""
    listener = start_listener()
    try:
        yield listener
    finally:
        stop_listener(listener)
