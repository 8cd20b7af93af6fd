"""The team started from Python (:func:`cmlib.team.running_team`, what the browser tests use) and
the sandbox latency knob of ``make team``."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from cmlib.team import Role, TeamConfig, build_plan, locate_servers, running_team
from cmlib.team import cli as team_cli
from cmlib.team.plan import ServerBinaries
from cmlib.team.spec import ServerMissing

BINARIES = ServerBinaries(Path("/opt/redis-server"), Path("/opt/pg/bin"))


def _config(tmp_path: Path, **kw) -> TeamConfig:
    return TeamConfig(folder=tmp_path, servers=BINARIES, redis_port=7001, postgres_port=7002, sandbox_port=7003,
                      cookie_secret="c", cache_salt="s", python="/venv/python", run_as_postgres=None, **kw)


def test_the_sandbox_latency_knob_reaches_the_sandbox_only_when_set(tmp_path):
    (slow,) = build_plan(_config(tmp_path, sandbox_latency_ms=40)).by_role(Role.SANDBOX)
    assert slow.argv[-2:] == ("--latency-ms", "40")
    (plain,) = build_plan(_config(tmp_path)).by_role(Role.SANDBOX)
    assert "--latency-ms" not in plain.argv


def test_the_cli_passes_the_latency_on_and_refuses_a_bad_one(monkeypatch, capsys):
    monkeypatch.setattr(team_cli, "locate_servers", lambda: BINARIES)
    out = io.StringIO()
    assert team_cli.main(["--dry-run", "--sandbox-latency-ms", "25"], out=out) == 0
    assert "--latency-ms 25" in out.getvalue()
    assert team_cli.main(["--sandbox-latency-ms", "-1"]) == 2
    assert "0 or more" in capsys.readouterr().err


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_running_team_stops_every_process_and_removes_its_folder_even_when_the_body_fails():
    from tests.servers import _missing

    try:
        locate_servers()
    except ServerMissing as exc:
        _missing(exc.what)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    out = io.StringIO()
    seen: dict = {}

    def fail_inside_the_team() -> None:
        with running_team(replicas=0, worker=False, out=out, environ=env) as team:
            seen.update(pids=dict(team.supervisor.pids), folder=team.folder)
            assert set(seen["pids"]) == {"redis", "postgres", "sandbox"}
            assert team.pids(Role.SANDBOX) == [seen["pids"]["sandbox"]]
            assert team.app_urls == ()
            assert team.folder.is_dir()
            raise RuntimeError("the test's own failure")

    with pytest.raises(RuntimeError, match="the test's own failure"):
        fail_inside_the_team()
    assert all(_gone(pid) for pid in seen["pids"].values()), out.getvalue()
    assert not seen["folder"].exists()
