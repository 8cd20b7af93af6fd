"""The team started from Python: what ``python -m cmlib team`` runs, for a test or a script.

:func:`running_team` is a context manager: it makes the temporary folder, picks free ports and
fresh secrets (:func:`fresh_config`, which the CLI uses too), starts every stage, yields a
:class:`RunningTeam` with the URLs, and on the way out -- also after a failed start or an
exception in the ``with`` body -- stops every process it started and removes the folder. A
test therefore never leaves a Postgres or a Streamlit behind, whatever goes wrong.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .plan import DEFAULT_RATE_LIMIT, ServerBinaries, TeamConfig, TeamPlan, build_plan, locate_servers
from .spec import Role
from .supervisor import Supervisor, free_port

__all__ = ["RunningTeam", "fresh_config", "make_team_folder", "running_team"]


def make_team_folder() -> Path:
    """A new temporary folder for one run; the caller removes it."""
    folder = Path(tempfile.mkdtemp(prefix="cm-team-"))
    os.chmod(folder, 0o711)  # the postgres user must reach its own subfolder; nobody may list the rest
    return folder


def fresh_config(folder: Path, servers: ServerBinaries, *, app_ports: tuple[int, ...],
                 rate_limit: str = DEFAULT_RATE_LIMIT, worker: bool = True,
                 sandbox_latency_ms: float = 0.0) -> TeamConfig:
    """A run's settings: free ports for the servers and new secrets, shared by this run's replicas only."""
    return TeamConfig(
        folder=folder, servers=servers, redis_port=free_port(), postgres_port=free_port(),
        sandbox_port=free_port(), cookie_secret=secrets.token_urlsafe(32), cache_salt=secrets.token_hex(16),
        app_ports=app_ports, rate_limit=rate_limit, worker=worker, sandbox_latency_ms=sandbox_latency_ms,
    )


@dataclass(frozen=True)
class RunningTeam:
    """A started team: its plan (URLs, settings) and the supervisor that owns its processes."""

    plan: TeamPlan
    supervisor: Supervisor
    folder: Path

    @property
    def app_urls(self) -> tuple[str, ...]:
        return self.plan.app_urls

    @property
    def sandbox_url(self) -> str:
        return self.plan.sandbox_url

    def pids(self, role: Role) -> list[int]:
        """The process ids of one role (e.g. the worker, to kill it in a test)."""
        names = {p.name for p in self.plan.by_role(role)}
        return [pid for name, pid in self.supervisor.pids.items() if name in names]


@contextlib.contextmanager
def running_team(*, app_ports: tuple[int, ...] | None = None, replicas: int = 2, rate_limit: str = DEFAULT_RATE_LIMIT,
                 worker: bool = True, sandbox_latency_ms: float = 0.0, out: TextIO | None = None,
                 environ: Mapping[str, str] | None = None, start_timeout: float = 90.0) -> Iterator[RunningTeam]:
    """Start a team and stop it on exit. ``app_ports`` default to ``replicas`` free ports (never
    8501/8502 by chance of a running ``make run``: those are in use and so not free).

    Raises :class:`~.spec.ServerMissing` before starting anything when a server is not installed,
    and :class:`~.spec.StartupFailed` (after stopping what did start) when a process fails to start.
    """
    servers = locate_servers()
    ports = app_ports if app_ports is not None else tuple(free_port() for _ in range(replicas))
    folder = make_team_folder()
    try:
        plan = build_plan(fresh_config(folder, servers, app_ports=ports, rate_limit=rate_limit, worker=worker,
                                       sandbox_latency_ms=sandbox_latency_ms))
        sup = Supervisor(plan.processes, out=out, start_timeout=start_timeout, environ=environ)
        try:
            sup.start()
            yield RunningTeam(plan, sup, folder)
        finally:
            sup.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
