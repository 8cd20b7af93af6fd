"""deploy/ cannot run here (no Docker): these checks keep it in step with ``make team``'s plan."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cmlib.deployment import CACHE_SALT_ENV, DATABASE_URL_ENV, REDIS_URL_ENV
from cmlib.team import Role, TeamConfig, build_plan
from cmlib.team.plan import COOKIE_SECRET_ENV, STREAMLIT_FLAGS, ServerBinaries

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def plan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("team")
    return build_plan(TeamConfig(folder=folder, servers=ServerBinaries(Path("/r"), Path("/pg")), redis_port=1,
                                 postgres_port=2, sandbox_port=3, cookie_secret="c", cache_salt="s"))


def haproxy() -> str:
    return (DEPLOY / "haproxy.cfg").read_text(encoding="utf-8")


def test_compose_has_the_roles_make_team_starts(compose, plan):
    services = compose["services"]
    assert {"redis", "postgres", "worker", "lb"} <= set(services)
    apps = sorted(s for s in services if s.startswith("app-"))
    assert apps == [a.name for a in plan.by_role(Role.APP)] == ["app-1", "app-2"]
    assert services["worker"]["command"] == ["python", *plan.by_role(Role.WORKER)[0].argv[1:]]


def test_every_replica_and_the_worker_get_the_shared_settings(compose, plan):
    services = compose["services"]
    team_vars = {REDIS_URL_ENV, DATABASE_URL_ENV, CACHE_SALT_ENV, "CM_API_KEY", "CM_CLIENT_ID", "CM_API_URL"}
    plan_app_env = set(plan.by_role(Role.APP)[0].env) - {"CM_DATA_DIR", "PYTHONUNBUFFERED"}
    assert plan_app_env == team_vars | {COOKIE_SECRET_ENV}  # what make team sets, the compose file sets too
    envs = {name: services[name]["environment"] for name in ("app-1", "app-2", "worker")}
    for name, env in envs.items():
        assert team_vars <= set(env), name
        assert env[DATABASE_URL_ENV].startswith("postgresql+psycopg://"), name
        assert env[REDIS_URL_ENV].startswith("redis://redis:"), name
    assert envs["app-1"] == envs["app-2"]  # one cookie secret, one salt, one account
    assert COOKIE_SECRET_ENV in envs["app-1"]


def test_the_load_balancer_is_sticky_and_knows_every_replica(compose):
    cfg = haproxy()
    assert re.search(r"^\s*cookie SERVERID insert\b", cfg, re.M)
    assert re.search(r"^\s*timeout tunnel\s+\d+h\b", cfg, re.M)  # WebSockets stay open for hours
    servers = re.findall(r"^\s*server (\S+) (\S+):8501\b.*\bcookie (\S+)", cfg, re.M)
    assert [(name, host, cookie) for name, host, cookie in servers] == [("app-1", "app-1", "app-1"),
                                                                       ("app-2", "app-2", "app-2")]
    lb = compose["services"]["lb"]
    trusted = compose["services"]["app-1"]["environment"]["CM_TRUSTED_PROXIES"]
    assert lb["networks"]["team"]["ipv4_address"] == trusted
    assert "8501" not in str(compose["services"]["app-1"].get("ports", ""))  # only lb is published


def test_the_image_runs_the_app_as_make_team_does():
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    cmd = re.search(r"^CMD (\[.*?\])", dockerfile, re.M | re.S)
    assert cmd
    argv = yaml.safe_load(cmd.group(1).replace("\\\n", ""))
    assert argv[:5] == ["python", "-m", "streamlit", "run", "serve.py"]
    flags = dict(zip(argv[5::2], argv[6::2], strict=True))
    expected = dict(zip(STREAMLIT_FLAGS[::2], STREAMLIT_FLAGS[1::2], strict=True))
    assert flags == {**expected, "--server.address": "0.0.0.0", "--server.port": "8501"}
    assert "cookieSecret" not in dockerfile.split("CMD", 1)[1]  # from the environment, never argv
    assert re.search(r"^USER (?!root)\S+", dockerfile, re.M)


def test_the_image_leaves_secrets_out():
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line.strip() for line in ignore if line.strip() and not line.startswith("#")]
    assert rules[0] == "**"  # everything out, then only what the image needs back in
    allowed = {r[1:] for r in rules if r.startswith("!")}
    assert not any("secrets" in a or a.startswith((".data", ".venv", "tests")) for a in allowed)
