"""One process of the team: what runs, with which settings, when it is ready, how it stops.

Plain data, so a plan can be checked by a test without starting anything.
"""
from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

INSTALL_HINT = "apt-get install -y redis-server postgresql"


class TeamError(Exception):
    """Base class: the team could not be started or kept running."""


class ServerMissing(TeamError):
    """redis-server or Postgres is not installed; the message says how to install it."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} is not installed (install with: {INSTALL_HINT})")
        self.what = what


class StartupFailed(TeamError):
    """A process exited, a set-up step failed or a readiness check timed out while starting."""


class Role(StrEnum):
    REDIS = "redis"
    POSTGRES = "postgres"
    SANDBOX = "sandbox"
    APP = "app"
    WORKER = "worker"


@dataclass(frozen=True)
class ReadyCheck:
    """When a started process counts as ready; every part given must pass (none: as soon as it runs)."""

    port: int | None = None  # accepts TCP connections on 127.0.0.1
    http_path: str | None = None  # GET http://127.0.0.1:<port><path> answers 200
    command: tuple[str, ...] = ()  # exits 0 (polled: pg_isready)


@dataclass(frozen=True)
class ProcessSpec:
    """A long-running child of the supervisor.

    ``env`` is added to the supervisor's own environment; names in ``secret_env`` are never
    printed (the shared cookie secret). ``workdir`` is created before ``setup`` runs and owned
    by ``run_as``, which is only set when the supervisor is root (Postgres refuses root).
    """

    name: str
    role: Role
    argv: tuple[str, ...]
    env: Mapping[str, str] = field(default_factory=dict)
    secret_env: frozenset[str] = frozenset()
    stage: int = 0
    ready: ReadyCheck = ReadyCheck()
    setup: tuple[tuple[str, ...], ...] = ()  # run once, in order, before the process starts
    after_ready: tuple[tuple[str, ...], ...] = ()  # run once, in order, when it is ready
    workdir: Path | None = None
    cwd: Path | None = None
    run_as: str | None = None
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout: float = 15.0  # then SIGKILL
    url: str | None = None  # what the operator is shown (never with a secret in it)

    def public_env(self) -> dict[str, str]:
        """``env`` with every secret value masked: what may be printed or logged."""
        return {k: ("***" if k in self.secret_env else v) for k, v in self.env.items()}
