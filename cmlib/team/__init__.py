"""``python -m cmlib team``: the whole team deployment on one machine, without Docker.

Redis and Postgres run as plain processes in a temporary folder on free ports, beside one
sandbox with a rate limit, two app replicas and one durable-jobs worker, all pointed at that
one sandbox so they share one account's data and one limit, as replicas do in production.
Ctrl-C stops them in reverse order and removes the folder. ``deploy/docker-compose.yml`` starts
the same roles with the same settings; this package is how they are tried out and tested here.

- :mod:`.spec`: what one process is (command, environment, readiness, how to stop it);
- :mod:`.plan`: the team's processes for given ports and folder (pure: tested without starting);
- :mod:`.supervisor`: starts a plan stage by stage, watches it, stops it;
- :mod:`.running`: the team started from Python (tests), stopped on exit whatever happens;
- :mod:`.cli`: the command line.
"""
from __future__ import annotations

from .plan import (
    TeamConfig,
    TeamPlan,
    build_plan,
    locate_redis_server,
    locate_servers,
    postgres_spec,
    redis_spec,
)
from .running import RunningTeam, running_team
from .spec import ProcessSpec, ReadyCheck, Role, ServerMissing, StartupFailed, TeamError
from .supervisor import Supervisor, free_port

__all__ = [
    "ProcessSpec",
    "ReadyCheck",
    "Role",
    "RunningTeam",
    "ServerMissing",
    "StartupFailed",
    "Supervisor",
    "TeamConfig",
    "TeamError",
    "TeamPlan",
    "build_plan",
    "free_port",
    "locate_redis_server",
    "locate_servers",
    "postgres_spec",
    "redis_spec",
    "running_team",
]
