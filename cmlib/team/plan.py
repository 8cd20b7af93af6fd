"""The team as data: which processes ``make team`` starts, in which order, with which settings.

Stage 0 holds what everything else needs (Redis, Postgres, the sandbox); stage 1 the app
replicas and the worker. Every app replica and the worker get the same deployment settings --
``CM_REDIS_URL``, ``CM_DATABASE_URL``, ``CM_CACHE_SALT``, one Streamlit cookie secret -- and the
same credentials for the one sandbox, so they behave as one account's replicas behind a load
balancer. ``deploy/docker-compose.yml`` mirrors this; keep the two in step.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..config import PROJECT_ROOT
from ..deployment import CACHE_SALT_ENV, DATABASE_URL_ENV, REDIS_URL_ENV
from ..sandbox.api import BASE_PATH
from ..sandbox.demo import CLIENT_API_KEY, MAIN_CLIENT_ID
from .spec import ProcessSpec, ReadyCheck, Role, ServerMissing

DEFAULT_APP_PORTS = (8501, 8502)
DEFAULT_RATE_LIMIT = "50/s"
DATABASE_NAME = "cm"
COOKIE_SECRET_ENV = "STREAMLIT_SERVER_COOKIE_SECRET"  # Streamlit's own variable for server.cookieSecret
STREAMLIT_FLAGS = ("--server.address", "127.0.0.1", "--server.headless", "true",
                   "--browser.gatherUsageStats", "false")


@dataclass(frozen=True)
class ServerBinaries:
    redis_server: Path
    pg_bin: Path  # the folder holding initdb, postgres, pg_isready, createdb


def locate_redis_server() -> Path:
    """The installed redis-server, or :class:`ServerMissing`."""
    redis = shutil.which("redis-server")
    if not redis:
        raise ServerMissing("redis-server")
    return Path(redis)


def locate_servers() -> ServerBinaries:
    """The installed redis-server and newest Postgres; :class:`ServerMissing` names what is not there."""
    redis = locate_redis_server()
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    pg_on_path = shutil.which("postgres")
    if found:
        pg_bin = Path(found[-1]).parent
    elif pg_on_path:
        pg_bin = Path(pg_on_path).parent
    else:
        raise ServerMissing("postgresql")
    return ServerBinaries(redis, pg_bin)


def _default_run_as() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def redis_spec(binary: Path, port: int, workdir: Path, *, stage: int = 0) -> ProcessSpec:
    """redis-server in the foreground on loopback, nothing saved to disk (it holds throwaway state)."""
    return ProcessSpec(
        name="redis", role=Role.REDIS, stage=stage, workdir=workdir,
        argv=(str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
              "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"),
        ready=ReadyCheck(port=port), url=f"redis://127.0.0.1:{port}/0",
    )


def postgres_spec(pg_bin: Path, port: int, workdir: Path, *, database: str | None = DATABASE_NAME,
                  run_as: str | None = None, stage: int = 0) -> ProcessSpec:
    """A fresh cluster (initdb, trust on loopback) and, once it answers, an empty ``database``.

    ``fsync=off``: the cluster lives only as long as this run. SIGINT is Postgres's fast shutdown.
    """
    data = workdir / "data"
    host = ("-h", "127.0.0.1", "-p", str(port))
    after = ((str(pg_bin / "createdb"), *host, "-U", "postgres", database),) if database else ()
    return ProcessSpec(
        name="postgres", role=Role.POSTGRES, stage=stage, workdir=workdir, run_as=run_as,
        setup=((str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                "--locale", "C.UTF-8"),),
        argv=(str(pg_bin / "postgres"), "-D", str(data), "-p", str(port), "-k", str(workdir), "-h", "127.0.0.1",
              "-c", "fsync=off", "-c", "max_connections=200"),
        ready=ReadyCheck(port=port, command=(str(pg_bin / "pg_isready"), *host, "-U", "postgres")),
        after_ready=after, stop_signal=signal.SIGINT, stop_timeout=20.0,
        url=f"postgresql+psycopg://postgres@127.0.0.1:{port}/{database or 'postgres'}",
    )


@dataclass(frozen=True)
class TeamConfig:
    """Everything a plan depends on; the CLI fills in free ports, a temp folder and fresh secrets."""

    folder: Path
    servers: ServerBinaries
    redis_port: int
    postgres_port: int
    sandbox_port: int
    cookie_secret: str = field(repr=False)
    cache_salt: str = field(repr=False)
    app_ports: tuple[int, ...] = DEFAULT_APP_PORTS
    rate_limit: str = DEFAULT_RATE_LIMIT
    python: str = sys.executable
    project_root: Path = PROJECT_ROOT
    run_as_postgres: str | None = field(default_factory=_default_run_as)
    worker: bool = True
    sandbox_latency_ms: float = 0.0  # a fixed delay per API request: slows runs down enough to watch (and cancel)


@dataclass(frozen=True)
class TeamPlan:
    processes: tuple[ProcessSpec, ...]
    redis_url: str
    database_url: str
    sandbox_url: str
    app_urls: tuple[str, ...]

    def by_role(self, role: Role) -> list[ProcessSpec]:
        return [p for p in self.processes if p.role == role]


def build_plan(cfg: TeamConfig) -> TeamPlan:
    """The processes of one team run, in start order (stops go in reverse)."""
    redis = redis_spec(cfg.servers.redis_server, cfg.redis_port, cfg.folder / "redis")
    postgres = postgres_spec(cfg.servers.pg_bin, cfg.postgres_port, cfg.folder / "postgres",
                             run_as=cfg.run_as_postgres)
    assert redis.url is not None and postgres.url is not None
    sandbox_url = f"http://127.0.0.1:{cfg.sandbox_port}{BASE_PATH}"
    sandbox = ProcessSpec(
        name="sandbox", role=Role.SANDBOX, cwd=cfg.project_root,
        argv=(cfg.python, "-m", "cmlib", "sandbox", "--port", str(cfg.sandbox_port), "--rate-limit", cfg.rate_limit,
              *(("--latency-ms", f"{cfg.sandbox_latency_ms:g}") if cfg.sandbox_latency_ms > 0 else ())),
        env={"PYTHONUNBUFFERED": "1"},
        ready=ReadyCheck(port=cfg.sandbox_port), stop_signal=signal.SIGINT, url=sandbox_url,
    )
    shared = {
        REDIS_URL_ENV: redis.url,
        DATABASE_URL_ENV: postgres.url,
        CACHE_SALT_ENV: cfg.cache_salt,
        # One account for every replica and the worker: the sandbox's client key and main client.
        "CM_API_URL": sandbox_url,
        "CM_API_KEY": CLIENT_API_KEY,
        "CM_CLIENT_ID": MAIN_CLIENT_ID,
        "PYTHONUNBUFFERED": "1",
    }
    secret = frozenset({CACHE_SALT_ENV, "CM_API_KEY"})
    apps = []
    for i, port in enumerate(cfg.app_ports, start=1):
        apps.append(ProcessSpec(
            name=f"app-{i}", role=Role.APP, stage=1, cwd=cfg.project_root,
            argv=(cfg.python, "-m", "streamlit", "run", "serve.py", *STREAMLIT_FLAGS, "--server.port", str(port)),
            # The same cookie secret on every replica, through Streamlit's environment variable
            # rather than --server.cookieSecret, so it never shows in a process list. Each replica
            # has a data folder of its own: nothing may depend on a disk shared between replicas.
            env={**shared, COOKIE_SECRET_ENV: cfg.cookie_secret, "CM_DATA_DIR": str(cfg.folder / f"app-{i}")},
            secret_env=secret | {COOKIE_SECRET_ENV},
            ready=ReadyCheck(port=port, http_path="/_stcore/health"),
            url=f"http://127.0.0.1:{port}",
        ))
    workers = []
    if cfg.worker:
        workers.append(ProcessSpec(
            name="worker", role=Role.WORKER, stage=1, cwd=cfg.project_root,
            argv=(cfg.python, "-m", "cmlib", "worker"),
            env={**shared, "CM_DATA_DIR": str(cfg.folder / "worker")}, secret_env=secret, stop_timeout=30.0,
        ))
    return TeamPlan(
        processes=(redis, postgres, sandbox, *apps, *workers),
        redis_url=redis.url, database_url=postgres.url, sandbox_url=sandbox_url,
        app_urls=tuple(a.url for a in apps if a.url),
    )
