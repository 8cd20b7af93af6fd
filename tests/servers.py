"""Real Redis and Postgres servers for the deployment tests, started as plain processes.

No Docker here: ``redis-server`` and Postgres (Debian packages ``redis-server`` and
``postgresql``) run in a temporary folder on free ports, one of each per test session, and a
fresh database per test. When a server is missing the tests skip with the install command as the
reason; under ``CI=true`` (``.ci/run`` installs both) a missing server is a failure, never a
silent skip. Postgres refuses to run as root, so as root it runs as the ``postgres`` user.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import redis

INSTALL_HINT = "apt-get install -y redis-server postgresql"


def _missing(what: str) -> None:
    reason = f"{what} is not installed (install with: {INSTALL_HINT})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"deployment tests are required under CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 30.0) -> None:
    # Start-up readiness is a poll on the port, bounded; nothing is asserted about its speed.
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode} during start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    folder: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_redis() -> RedisServer:
    exe = shutil.which("redis-server")
    if not exe:
        _missing("redis-server")
    folder = Path(tempfile.mkdtemp(prefix="cm-redis-"))
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder), "--save", "",
         "--appendonly", "no", "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait_port(port, proc, "redis-server")
    return RedisServer(port, proc, folder)


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _as_postgres() -> dict:
    """Popen arguments that drop root to the ``postgres`` user (Postgres refuses root)."""
    if os.geteuid() != 0:
        return {}
    return {"user": "postgres", "group": "postgres", "extra_groups": []}


@dataclass
class PostgresServer:
    port: int
    folder: Path
    bin: Path
    proc: subprocess.Popen | None = None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(self.folder / "data"), "-p", str(self.port),
             "-k", str(self.folder), "-h", "127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **_as_postgres(),
        )
        _wait_port(self.port, self.proc, "postgres")
        # The port answers a little before the server accepts logins.
        end = time.monotonic() + 30
        while True:
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True, check=False)
            if ready.returncode == 0 or time.monotonic() > end:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        """A fast shutdown (SIGINT), as an operator's restart would do."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def create_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name],
                       check=True, capture_output=True)
        return self.url(name)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PostgresServer:
    pg_bin = _pg_bin()
    if pg_bin is None:
        _missing("postgresql")
    assert pg_bin is not None
    folder = Path(tempfile.mkdtemp(prefix="cm-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    subprocess.run([str(pg_bin / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "-A", "trust",
                    "-E", "UTF8", "--locale", "C.UTF-8"],
                   check=True, capture_output=True, **_as_postgres())
    server = PostgresServer(free_port(), folder, pg_bin)
    server.start()
    return server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = start_redis()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL with an empty database for this test."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_mode(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[redis.Redis]:
    """The deployment mode on a fresh Redis (``CM_REDIS_URL`` set, process-wide clients fresh);
    yields a raw client to look inside it."""
    import redis as redis_lib

    from cmlib import deployment

    monkeypatch.setenv("CM_REDIS_URL", redis_url)
    deployment.reset_for_tests()
    raw = redis_lib.Redis.from_url(redis_url)
    yield raw
    raw.close()
    deployment.reset_for_tests()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = start_postgres()
    yield server
    server.destroy()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of a fresh database for this test (``postgresql+psycopg://…``)."""
    return postgres_server.create_database()
