"""The running sandbox: a seeded store, fault knobs and an HTTP server on a loopback port.

Used three ways: as a context manager in tests (port 0 picks a free port), by the CLI
(``python -m cmlib sandbox``), and through :func:`get_demo_sandbox`, the one process-wide
instance the app and CLI fall back to when no credentials are configured.
"""
from __future__ import annotations

import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from . import demo
from .api import BASE_PATH, Endpoints
from .faults import FaultInjector, Faults, parse_rate
from .seed import build_world
from .server import RequestCounter, SandboxHTTPServer, ServerContext
from .store import Store


def _require_loopback(host: str) -> str:
    """The sandbox accepts fixed demo keys, so it must never listen beyond this machine."""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = host == "localhost"
    if not ok:
        raise ValueError(f"the sandbox only listens on a loopback address, not {host!r}")
    return host


class Sandbox:
    """A local Campaign Monitor v3.3 emulator. ``Sandbox(seed=7).start()`` or ``with Sandbox() as sb``."""

    def __init__(
        self,
        seed: int = 7,
        latency_ms: float = 0.0,
        port: int = 0,
        *,
        host: str = "127.0.0.1",
        now: datetime | None = None,
        jitter_ms: float = 0.0,
        rate_limit: float | str | None = None,
        rate_limit_headers: bool = True,
        error_rate: float = 0.0,
        malformed_rate: float = 0.0,
        hang_rate: float = 0.0,
        hang_seconds: float = 5.0,
        fail_list_ids: Iterable[str] = (),
        write_answer_fault: str | None = None,
        down: bool = False,
        fault_seed: int | None = None,
        rate_clock: Callable[[], float] | None = None,
    ) -> None:
        self.seed = seed
        self.host = _require_loopback(host)
        self._requested_port = int(port)
        self.data = Store(build_world(seed, now))
        self._injector = FaultInjector(
            Faults(latency_ms=latency_ms, jitter_ms=jitter_ms, rate_limit=parse_rate(rate_limit),
                   rate_limit_headers=rate_limit_headers, error_rate=error_rate, malformed_rate=malformed_rate,
                   hang_rate=hang_rate, hang_seconds=hang_seconds, fail_list_ids=set(fail_list_ids),
                   write_answer_fault=write_answer_fault, down=down),
            seed=seed if fault_seed is None else fault_seed,
            clock=rate_clock,  # the rate-limit windows' clock (tests: a fake one)
        )
        self._counter = RequestCounter()
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ctx: ServerContext | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread. Idempotent; returns self."""
        with self._lock:
            if self._server is not None:
                return self
            ctx = ServerContext(Endpoints(self.data), self._injector, self._counter)
            server = SandboxHTTPServer((self.host, self._requested_port), ctx)
            thread = threading.Thread(target=server.serve_until_stopped, name=f"cm-sandbox-{server.server_port}",
                                      daemon=True)
            thread.start()
            self._server, self._thread, self._ctx = server, thread, ctx
        return self

    def stop(self) -> None:
        """Stop serving, wake sleeping handlers (latency/hang) and close every connection."""
        with self._lock:
            server, thread, ctx = self._server, self._thread, self._ctx
            self._server = self._thread = self._ctx = None
        if server is None:
            return
        assert ctx is not None and thread is not None
        ctx.stopping.set()
        server.wake()
        thread.join(timeout=2)
        server.server_close()
        server.close_connections()

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.base_url if self.running else "stopped"
        return f"Sandbox(seed={self.seed}, {where})"

    # ------------------------------------------------------------------ addresses & identities
    @property
    def port(self) -> int:
        if self._server is None:
            if self._requested_port:
                return self._requested_port
            raise RuntimeError("the sandbox is not started (port 0 is chosen at start)")
        return int(self._server.server_port)

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/api/v3.3`` -- what a client's base URL / createsend base_uri takes."""
        return self.root_url + BASE_PATH

    account_api_key = demo.ACCOUNT_API_KEY
    client_api_key = demo.CLIENT_API_KEY
    main_client_id = demo.MAIN_CLIENT_ID
    other_client_id = demo.OTHER_CLIENT_ID

    # ------------------------------------------------------------------ faults
    @property
    def faults(self) -> Faults:
        return self._injector.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._injector.faults = value

    def set_faults(self, **changes: Any) -> Faults:
        """``sb.set_faults(latency_ms=100, rate_limit="50/s")``; unknown names raise TypeError."""
        self._injector.faults.update(**changes)
        return self._injector.faults

    def reset_faults(self) -> None:
        """All knobs off (as ``Faults()``), rate-limit windows emptied, fault generator reseeded."""
        self._injector.faults = Faults()
        self._injector.reseed()

    # ------------------------------------------------------------------ counters
    @property
    def requests_served(self) -> int:
        return self._counter.snapshot()[0]

    @property
    def request_counts(self) -> Counter[str]:
        """A snapshot: requests received per endpoint kind (``"history"``, ``"add"``, ...)."""
        return self._counter.snapshot()[1]

    @property
    def status_counts(self) -> Counter[int]:
        """A snapshot: answers sent per HTTP status (429s, 500s, ...)."""
        return self._counter.snapshot()[2]

    def reset_counts(self) -> None:
        self._counter.reset()


_demo_lock = threading.Lock()
_demo: Sandbox | None = None


def get_demo_sandbox(**kwargs: Any) -> Sandbox:
    """The process-wide demo sandbox (seed 7, free loopback port), started on first use.

    ``kwargs`` go to :class:`Sandbox` only when it is first created.
    """
    global _demo
    with _demo_lock:
        if _demo is None or not _demo.running:
            kwargs.setdefault("seed", 7)
            _demo = Sandbox(**kwargs).start()
        return _demo
