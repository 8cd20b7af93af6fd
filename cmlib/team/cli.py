"""``python -m cmlib team`` (``make team``): the team deployment on this machine until Ctrl-C."""
from __future__ import annotations

import argparse
import contextlib
import shlex
import shutil
import signal
import sys
from types import FrameType
from typing import TextIO

from ..sandbox.faults import parse_rate
from .plan import DEFAULT_APP_PORTS, DEFAULT_RATE_LIMIT, TeamPlan, build_plan, locate_servers
from .running import fresh_config, make_team_folder
from .spec import TeamError
from .supervisor import Supervisor, port_open


def _ports(text: str) -> tuple[int, ...]:
    try:
        ports = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: use port numbers separated by commas, e.g. 8501,8502") from None
    if not ports or any(not 1 <= p <= 65535 for p in ports) or len(set(ports)) != len(ports):
        raise argparse.ArgumentTypeError(f"{text!r}: use distinct ports 1-65535, e.g. 8501,8502")
    return ports


def _rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _latency(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of milliseconds") from None
    if not 0 <= value < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError("must be a number of milliseconds, 0 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cmlib team",
        description="Run the team deployment locally: redis-server and Postgres in a temporary folder, one sandbox "
                    "with a rate limit, app replicas and one worker, all on one account. Ctrl-C stops everything.")
    p.add_argument("--app-ports", type=_ports, default=DEFAULT_APP_PORTS, metavar="P1,P2",
                   help="one app replica per port (default 8501,8502)")
    p.add_argument("--rate-limit", type=_rate, default=DEFAULT_RATE_LIMIT, metavar="N/s",
                   help="the sandbox account's rate limit, shared by every replica and the worker (default 50/s)")
    p.add_argument("--sandbox-latency-ms", type=_latency, default=0.0, metavar="MS",
                   help="a fixed delay per sandbox request, to watch (or cancel) a run as it goes (default 0)")
    p.add_argument("--no-worker", action="store_true", help="start no durable-jobs worker")
    p.add_argument("--start-timeout", type=float, default=90.0, metavar="SECONDS",
                   help="how long each start-up stage may take (default 90)")
    p.add_argument("--dry-run", action="store_true", help="print the commands and settings, start nothing")
    return p


def describe_plan(plan: TeamPlan, out: TextIO) -> None:
    """The plan as a person reads it; secret values are masked."""
    for spec in plan.processes:
        user = f" (as {spec.run_as})" if spec.run_as else ""
        for step in spec.setup:
            print(f"[stage {spec.stage}] {spec.name} set-up{user}: {shlex.join(step)}", file=out)
        print(f"[stage {spec.stage}] {spec.name}{user}: {shlex.join(spec.argv)}", file=out)
        for step in spec.after_ready:
            print(f"[stage {spec.stage}] {spec.name} when ready: {shlex.join(step)}", file=out)
        for k, v in sorted(spec.public_env().items()):
            print(f"    {k}={v}", file=out)


def _summary(plan: TeamPlan, out: TextIO) -> None:
    rows = [(f"app replica {i}", url) for i, url in enumerate(plan.app_urls, start=1)]
    rows += [("sandbox (CM_API_URL)", plan.sandbox_url), ("CM_REDIS_URL", plan.redis_url),
             ("CM_DATABASE_URL", plan.database_url)]
    width = max(len(label) for label, _ in rows)
    print("\nThe team is running:", file=out)
    for label, value in rows:
        print(f"  {label:<{width}} : {value}", file=out)
    print("Ctrl-C stops every process (twice: without waiting).\n", file=out, flush=True)


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """Exit status: 0 after a requested stop, 1 when start-up failed or a process exited, 2 bad arguments."""
    out = out or sys.stdout
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        servers = locate_servers()
    except TeamError as exc:
        print(f"cannot start the team: {exc}", file=sys.stderr)
        return 1
    busy = [p for p in args.app_ports if port_open(p)]
    if busy and not args.dry_run:
        print(f"cannot start the team: port {', '.join(map(str, busy))} is in use (is `make run` running?); "
              "choose others with --app-ports", file=sys.stderr)
        return 1
    folder = make_team_folder()
    try:
        plan = build_plan(fresh_config(folder, servers, app_ports=args.app_ports, rate_limit=args.rate_limit,
                                       worker=not args.no_worker, sandbox_latency_ms=args.sandbox_latency_ms))
        if args.dry_run:
            describe_plan(plan, out)
            return 0
        return _run(plan, Supervisor(plan.processes, out=out, start_timeout=args.start_timeout), out)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(plan: TeamPlan, sup: Supervisor, out: TextIO) -> int:
    def on_signal(signum: int, frame: FrameType | None) -> None:
        if sup.stop_requested:
            sup.hurry()
        else:
            sup.say(f"{signal.Signals(signum).name}: stopping every process")
            sup.request_stop()

    # SIGHUP too: the children run in sessions of their own, so a closed terminal would otherwise
    # leave them running without their supervisor.
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        try:
            started = sup.start()
        except TeamError as exc:
            sup.say(f"start-up failed: {exc}")
            return 1
        if not started:
            return 0
        _summary(plan, out)
        return sup.watch()
    finally:
        sup.stop()
        for s, handler in previous.items():
            with contextlib.suppress(TypeError, ValueError):
                signal.signal(s, handler)
