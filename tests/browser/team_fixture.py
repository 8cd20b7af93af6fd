"""The real team deployment for a browser test module: Redis, Postgres, one rate-limited sandbox,
two app replicas on free ports and one worker, started once per module through the launcher
(:func:`cmlib.team.running_team`, what ``make team`` runs) and stopped at the end even when a
test fails.

A missing redis-server or Postgres skips locally and fails under ``CI=true`` (the rule of
tests/servers.py); a missing browser follows tests/browser/conftest.py's ``CM_REQUIRE_BROWSER``
rule, through the ``chromium_executable`` fixture the module's ``team`` fixture asks for first.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cmlib.team import RunningTeam, ServerMissing, StartupFailed, locate_servers, running_team

TEAM_RATE_LIMIT = "20/s"  # the account's limit: a run of a thousand addresses goes on long enough to cancel it


@dataclass(frozen=True)
class Team:
    running: RunningTeam
    log: Path

    @property
    def a(self) -> str:
        return self.running.app_urls[0]

    @property
    def b(self) -> str:
        return self.running.app_urls[1]

    def log_tail(self, lines: int = 60) -> str:
        """The team's last output lines (every process's, prefixed with its name), for a failure message."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _team_environ(folder: Path) -> dict[str, str]:
    """This environment without any ``CM_*`` setting (a developer's key or cache backend must not
    leak into the team), and no secrets.toml: the team is configured by its plan alone."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env["CM_SECRETS_PATH"] = str(folder / "no-secrets.toml")
    return env


def start_team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    """The body of a module-scoped ``team`` fixture (``yield from start_team(tmp_path_factory)``):
    started once, stopped after the module's last test whatever happened."""
    from tests.servers import _missing

    try:
        locate_servers()
    except ServerMissing as exc:
        _missing(exc.what)
    folder = tmp_path_factory.mktemp("team")
    log = folder / "team.log"
    with open(log, "w", encoding="utf-8") as out:
        try:
            with running_team(replicas=2, rate_limit=TEAM_RATE_LIMIT, out=out, environ=_team_environ(folder),
                              start_timeout=120.0) as running:
                yield Team(running, log)
        except StartupFailed as exc:
            out.flush()
            pytest.fail(f"the team did not start: {exc}\n{log.read_text(errors='replace')[-4000:]}", pytrace=False)
