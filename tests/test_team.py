"""``make team`` (``python -m cmlib team``): the plan it starts, the supervisor that runs it, and one real run."""
from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cmlib.deployment import CACHE_SALT_ENV, DATABASE_URL_ENV, REDIS_URL_ENV
from cmlib.sandbox import CLIENT_API_KEY, MAIN_CLIENT_ID
from cmlib.team import (
    ProcessSpec,
    ReadyCheck,
    Role,
    ServerMissing,
    StartupFailed,
    Supervisor,
    TeamConfig,
    build_plan,
    free_port,
    locate_servers,
)
from cmlib.team import cli as team_cli
from cmlib.team.plan import COOKIE_SECRET_ENV, ServerBinaries

ROOT = Path(__file__).resolve().parent.parent
SECRET = "cookie-secret-for-the-test"
SALT = "salt-for-the-test"


def config(tmp_path: Path, **kw) -> TeamConfig:
    kw.setdefault("run_as_postgres", "postgres")
    return TeamConfig(folder=tmp_path, servers=ServerBinaries(Path("/opt/redis-server"), Path("/opt/pg/bin")),
                      redis_port=7001, postgres_port=7002, sandbox_port=7003, cookie_secret=SECRET,
                      cache_salt=SALT, python="/venv/python", **kw)


# ---------------------------------------------------------------------------------------- the plan
def test_plan_starts_servers_first_and_stops_them_last(tmp_path):
    plan = build_plan(config(tmp_path))
    assert [p.name for p in plan.processes] == ["redis", "postgres", "sandbox", "app-1", "app-2", "worker"]
    assert [p.stage for p in plan.processes] == [0, 0, 0, 1, 1, 1]
    assert [p.role for p in plan.processes] == [Role.REDIS, Role.POSTGRES, Role.SANDBOX, Role.APP, Role.APP,
                                               Role.WORKER]


def test_plan_servers_run_in_the_folder_on_their_ports(tmp_path):
    plan = build_plan(config(tmp_path))
    redis, postgres = plan.by_role(Role.REDIS)[0], plan.by_role(Role.POSTGRES)[0]
    assert redis.argv[0] == "/opt/redis-server"
    assert redis.argv[redis.argv.index("--port") + 1] == "7001"
    assert redis.argv[redis.argv.index("--dir") + 1] == str(tmp_path / "redis")
    assert redis.ready.port == 7001
    assert plan.redis_url == "redis://127.0.0.1:7001/0"

    assert postgres.run_as == "postgres"  # Postgres refuses to run as root
    assert postgres.stop_signal == signal.SIGINT  # its fast shutdown
    assert postgres.setup[0][0] == "/opt/pg/bin/initdb"
    assert postgres.argv[0] == "/opt/pg/bin/postgres"
    assert postgres.argv[postgres.argv.index("-p") + 1] == "7002"
    assert str(postgres.workdir).startswith(str(tmp_path))
    assert postgres.after_ready == (("/opt/pg/bin/createdb", "-h", "127.0.0.1", "-p", "7002", "-U", "postgres",
                                     "cm"),)
    assert plan.database_url == "postgresql+psycopg://postgres@127.0.0.1:7002/cm"


def test_plan_one_rate_limited_sandbox(tmp_path):
    plan = build_plan(config(tmp_path, rate_limit="20/s"))
    (sandbox,) = plan.by_role(Role.SANDBOX)
    assert sandbox.argv == ("/venv/python", "-m", "cmlib", "sandbox", "--port", "7003", "--rate-limit", "20/s")
    assert plan.sandbox_url == "http://127.0.0.1:7003/api/v3.3"


def test_plan_replicas_and_worker_share_one_deployment_and_one_account(tmp_path):
    plan = build_plan(config(tmp_path))
    apps, (worker,) = plan.by_role(Role.APP), plan.by_role(Role.WORKER)
    assert [a.argv for a in apps] == [
        ("/venv/python", "-m", "streamlit", "run", "serve.py", "--server.address", "127.0.0.1", "--server.headless",
         "true", "--browser.gatherUsageStats", "false", "--server.port", str(port)) for port in (8501, 8502)]
    assert [a.ready.http_path for a in apps] == ["/_stcore/health"] * 2
    assert plan.app_urls == ("http://127.0.0.1:8501", "http://127.0.0.1:8502")
    assert worker.argv == ("/venv/python", "-m", "cmlib", "worker")
    expected = {REDIS_URL_ENV: "redis://127.0.0.1:7001/0",
                DATABASE_URL_ENV: "postgresql+psycopg://postgres@127.0.0.1:7002/cm",
                CACHE_SALT_ENV: SALT, "CM_API_URL": "http://127.0.0.1:7003/api/v3.3",
                "CM_API_KEY": CLIENT_API_KEY, "CM_CLIENT_ID": MAIN_CLIENT_ID}
    for spec in (*apps, worker):
        assert {k: spec.env[k] for k in expected} == expected, spec.name
        assert spec.cwd == ROOT
    # One cookie secret for every replica (sessions survive a reconnect to the other one) ...
    assert [a.env[COOKIE_SECRET_ENV] for a in apps] == [SECRET, SECRET]
    # ... but a data folder each: nothing may rely on a disk shared between replicas.
    folders = {s.env["CM_DATA_DIR"] for s in (*apps, worker)}
    assert len(folders) == 3 and all(f.startswith(str(tmp_path)) for f in folders)


def test_plan_never_shows_secrets(tmp_path):
    plan = build_plan(config(tmp_path))
    out = io.StringIO()
    team_cli.describe_plan(plan, out)
    text = out.getvalue()
    for spec in plan.processes:
        assert SECRET not in " ".join(spec.argv)  # not in a process list either
    assert SECRET not in text and SALT not in text and CLIENT_API_KEY not in text
    assert "STREAMLIT_SERVER_COOKIE_SECRET=***" in text
    assert "initdb" in text and "createdb" in text and "--rate-limit 50/s" in text


def test_plan_without_worker_and_with_other_ports(tmp_path):
    plan = build_plan(config(tmp_path, worker=False, app_ports=(9001, 9002, 9003)))
    assert not plan.by_role(Role.WORKER)
    assert [a.env["CM_DATA_DIR"] for a in plan.by_role(Role.APP)] == [str(tmp_path / f"app-{i}") for i in (1, 2, 3)]
    assert plan.app_urls == tuple(f"http://127.0.0.1:{p}" for p in (9001, 9002, 9003))


def test_plan_postgres_as_the_current_user_when_not_root(tmp_path):
    plan = build_plan(config(tmp_path, run_as_postgres=None))
    assert plan.by_role(Role.POSTGRES)[0].run_as is None


# ---------------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("bad", [["--app-ports", "8501,x"], ["--app-ports", "8501,8501"], ["--app-ports", "0"],
                                 ["--rate-limit", "fast"]])
def test_cli_refuses_bad_arguments(bad, capsys):
    assert team_cli.main(bad) == 2
    assert "error" in capsys.readouterr().err


def test_cli_names_the_install_command_when_a_server_is_missing(monkeypatch, capsys):
    def missing() -> ServerBinaries:
        raise ServerMissing("redis-server")

    monkeypatch.setattr(team_cli, "locate_servers", missing)
    assert team_cli.main([]) == 1
    assert "apt-get install -y redis-server postgresql" in capsys.readouterr().err


def test_cli_dry_run_starts_nothing(monkeypatch):
    monkeypatch.setattr(team_cli, "locate_servers",
                        lambda: ServerBinaries(Path("/opt/redis-server"), Path("/opt/pg/bin")))
    monkeypatch.setattr(team_cli, "Supervisor", None)  # would raise if it were used
    out = io.StringIO()
    assert team_cli.main(["--dry-run", "--no-worker"], out=out) == 0
    assert "app-2" in out.getvalue() and "worker" not in out.getvalue()


# ---------------------------------------------------------------------------------------- the supervisor
LISTENER = """
import signal, socket, sys, time
port, ignore_term = int(sys.argv[1]), sys.argv[2] == "ignore"
if ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen()
print("listening", flush=True)
while True:
    time.sleep(0.05)
"""


def listener(name: str, stage: int, *, ignore_term: bool = False) -> ProcessSpec:
    port = free_port()
    return ProcessSpec(name=name, role=Role.APP, stage=stage, ready=ReadyCheck(port=port), stop_timeout=0.5,
                       argv=(sys.executable, "-c", LISTENER, str(port), "ignore" if ignore_term else "-"))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def lines_with(text: str, word: str) -> list[str]:
    return [line.split("|")[0].strip() for line in text.splitlines() if word in line]


def test_supervisor_starts_stage_by_stage_and_stops_in_reverse():
    specs = [listener("b1", 1), listener("a1", 0), listener("a2", 0, ignore_term=True)]
    out = io.StringIO()
    sup = Supervisor(specs, out=out)
    try:
        assert sup.start() is True
        pids = sup.pids
        assert set(pids) == {"a1", "a2", "b1"}
        text = out.getvalue()
        # stage 1 started only once every process of stage 0 answered
        assert text.index("b1 | started") > max(text.index("a1 | ready"), text.index("a2 | ready"))
        assert lines_with(text, "| started") == ["a1", "a2", "b1"]
        assert "listening" in text  # children's output passes through, prefixed
    finally:
        sup.stop()
    assert lines_with(out.getvalue(), "| stopped") == ["b1", "a2", "a1"]
    assert all(gone(pid) for pid in pids.values())  # also a2, which ignored SIGTERM
    sup.stop()  # idempotent


def test_supervisor_reports_a_child_that_dies_while_starting():
    dead = ProcessSpec(name="dead", role=Role.WORKER, argv=(sys.executable, "-c", "raise SystemExit(3)"),
                       ready=ReadyCheck(port=free_port()))
    sup = Supervisor([listener("ok", 0), dead])
    try:
        with pytest.raises(StartupFailed, match="dead exited with 3"):
            sup.start()
        pids = sup.pids
    finally:
        sup.stop()
    assert all(gone(pid) for pid in pids.values())


def test_supervisor_reports_a_failed_setup_step():
    spec = ProcessSpec(name="db", role=Role.POSTGRES, argv=(sys.executable, "-c", "pass"),
                       setup=((sys.executable, "-c", "import sys; sys.exit('initdb: no space left')"),))
    sup = Supervisor([spec])
    with pytest.raises(StartupFailed, match="no space left"):
        sup.start()
    assert sup.pids == {}  # the process itself never started
    sup.stop()


def test_supervisor_watch_ends_when_a_child_exits_or_a_stop_is_requested():
    short = ProcessSpec(name="short", role=Role.WORKER, argv=(sys.executable, "-c", "import time; time.sleep(0.3)"))
    with Supervisor([short]) as sup:
        assert sup.watch() == 1
    with Supervisor([listener("long", 0)]) as sup:
        threading.Timer(0.2, sup.request_stop).start()
        assert sup.watch() == 0


def test_supervisor_hurry_kills_without_waiting():
    stubborn = dataclasses.replace(listener("stubborn", 0, ignore_term=True), stop_timeout=3600.0)
    sup = Supervisor([stubborn], out=io.StringIO())
    sup.start()
    pid = sup.pids["stubborn"]
    sup.hurry()  # as a second Ctrl-C does; without it stop() would wait an hour
    sup.stop()
    assert gone(pid)


# ---------------------------------------------------------------------------------------- a real team
def _require_servers() -> None:
    """The same rule as tests/servers.py: skip locally with the install command, fail under CI=true."""
    from tests.servers import _missing

    try:
        locate_servers()
    except ServerMissing as exc:
        _missing(exc.what)


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_make_team_starts_everything_and_stops_it_on_ctrl_c():
    _require_servers()
    ports = [free_port(), free_port()]
    # No settings of the developer's leak in; the test's own secrets path stays (no secrets.toml).
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_") or k == "CM_SECRETS_PATH"}
    proc = subprocess.Popen([sys.executable, "-m", "cmlib", "team", "--app-ports", ",".join(map(str, ports))],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or ()], daemon=True).start()
    try:
        end = time.monotonic() + 240  # a bound, not a measurement: the machine may be busy
        while not any("The team is running" in x for x in seen):
            assert proc.poll() is None, "".join(seen)
            assert time.monotonic() < end, "".join(seen)
            with contextlib.suppress(queue.Empty):
                seen.append(lines.get(timeout=1))
        pids = {m[1]: int(m[2]) for x in seen if (m := re.match(r"(\S+)\s+\| started \(pid (\d+)\)", x))}
        assert set(pids) == {"redis", "postgres", "sandbox", "app-1", "app-2", "worker"}
        for port in ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as resp:
                assert resp.status == 200
        apps = [_environ(pids["app-1"]), _environ(pids["app-2"])]
        worker = _environ(pids["worker"])
        for var in (REDIS_URL_ENV, DATABASE_URL_ENV, CACHE_SALT_ENV, "CM_API_URL", "CM_CLIENT_ID"):
            assert apps[0][var] == apps[1][var] == worker[var]
        assert apps[0][COOKIE_SECRET_ENV] == apps[1][COOKIE_SECRET_ENV]
        folder = Path(apps[0]["CM_DATA_DIR"]).parent
        assert folder.is_dir()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rest = "".join(seen) + "".join(lines.get() for _ in range(lines.qsize()))
    assert all(gone(pid) for pid in pids.values()), rest
    assert not folder.exists()
