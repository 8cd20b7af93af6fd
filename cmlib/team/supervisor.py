"""Start a list of processes stage by stage, watch them, stop them in reverse order.

The supervisor owns its children: each one runs in a session of its own, so a Ctrl-C in the
terminal reaches only the supervisor, which then stops the children one by one, newest first
(the apps before the databases they write to), each with its own signal and a timeout before
SIGKILL. Their output is passed through line by line, prefixed with the child's name.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

from .spec import ProcessSpec, StartupFailed

POLL = 0.1


def free_port() -> int:
    """A port nothing listens on right now (another process may still take it before we do)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _http_ok(port: int, path: str) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return int(resp.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _as_user(user: str | None) -> dict[str, Any]:
    return {"user": user, "group": user, "extra_groups": []} if user else {}


@dataclass
class _Child:
    spec: ProcessSpec
    proc: subprocess.Popen[str]
    reader: threading.Thread


class Supervisor:
    """Owner of a team's processes: ``start()``, then ``watch()``, and always ``stop()``.

    ``request_stop()`` (from a signal handler) ends ``start()`` and ``watch()`` early;
    ``hurry()`` (a second Ctrl-C) makes ``stop()`` kill what is still running instead of waiting.
    ``environ`` is what every child starts from (default: this process's environment), so a test
    can keep its own ``CM_*`` settings out of the team.
    """

    def __init__(self, specs: Sequence[ProcessSpec], *, out: TextIO | None = None,
                 start_timeout: float = 90.0, environ: Mapping[str, str] | None = None) -> None:
        self.specs = sorted(specs, key=lambda s: s.stage)  # stable: the plan's order within a stage
        self.start_timeout = start_timeout
        self._environ = dict(os.environ if environ is None else environ)
        self._out = out if out is not None else sys.stdout
        self._out_lock = threading.RLock()  # re-entrant: a signal handler may say() while the main thread does
        self._children: list[_Child] = []
        self._stop = threading.Event()
        self._hurry = threading.Event()
        self._width = max((len(s.name) for s in specs), default=0)

    # ------------------------------------------------------------------ control
    def request_stop(self) -> None:
        self._stop.set()

    def hurry(self) -> None:
        self._stop.set()
        self._hurry.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    @property
    def pids(self) -> dict[str, int]:
        return {c.spec.name: c.proc.pid for c in self._children}

    def say(self, text: str, name: str = "team") -> None:
        with self._out_lock:
            print(f"{name:<{self._width}} | {text}", file=self._out, flush=True)

    # ------------------------------------------------------------------ start
    def start(self) -> bool:
        """Start every stage and wait until it is ready; False when a stop was requested meanwhile.

        Raises :class:`StartupFailed` when a process exits, a step fails or a check times out;
        whatever was started stays owned here, for :meth:`stop`.
        """
        for stage in sorted({s.stage for s in self.specs}):
            group = [self._launch(s) for s in self.specs if s.stage == stage and not self._stop.is_set()]
            deadline = time.monotonic() + self.start_timeout
            for child in group:
                if not self._wait_ready(child, deadline):
                    return False
                for step in child.spec.after_ready:
                    self._run_step(child.spec, step)
            if self._stop.is_set():
                return False
        return True

    def _launch(self, spec: ProcessSpec) -> _Child:
        if spec.workdir is not None:
            spec.workdir.mkdir(parents=True, exist_ok=True)
            if spec.run_as:
                shutil.chown(spec.workdir, spec.run_as, spec.run_as)
        for step in spec.setup:
            self._run_step(spec, step)
        try:
            proc = subprocess.Popen(
                list(spec.argv), cwd=spec.cwd, env={**self._environ, **spec.env}, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1,
                start_new_session=True, **_as_user(spec.run_as),
            )
        except OSError as exc:
            raise StartupFailed(f"{spec.name}: cannot start {spec.argv[0]}: {exc.strerror or exc}") from None
        reader = threading.Thread(target=self._relay, args=(spec.name, proc), name=f"team-{spec.name}", daemon=True)
        child = _Child(spec, proc, reader)
        self._children.append(child)
        reader.start()
        self.say(f"started (pid {proc.pid})", spec.name)
        return child

    def _relay(self, name: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.say(line.rstrip("\n"), name)

    def _run_step(self, spec: ProcessSpec, step: tuple[str, ...]) -> None:
        try:
            done = subprocess.run(list(step), capture_output=True, text=True, errors="replace", check=False,
                                  **_as_user(spec.run_as))
        except OSError as exc:
            raise StartupFailed(f"{spec.name}: cannot run {step[0]}: {exc.strerror or exc}") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
            raise StartupFailed(f"{spec.name}: {os.path.basename(step[0])} failed ({done.returncode}): "
                                + " / ".join(tail))

    def _is_ready(self, spec: ProcessSpec) -> bool:
        check = spec.ready
        if check.port is not None and not port_open(check.port):
            return False
        if check.port is not None and check.http_path and not _http_ok(check.port, check.http_path):
            return False
        return not check.command or subprocess.run(list(check.command), capture_output=True,
                                                   check=False).returncode == 0

    def _wait_ready(self, child: _Child, deadline: float) -> bool:
        """Poll the readiness check (bounded by ``deadline``); nothing is assumed about how long it takes."""
        while not self._stop.is_set():
            rc = child.proc.poll()
            if rc is not None:
                raise StartupFailed(f"{child.spec.name} exited with {rc} while starting")
            if self._is_ready(child.spec):
                self.say(f"ready: {child.spec.url}" if child.spec.url else "ready", child.spec.name)
                return True
            if time.monotonic() > deadline:
                raise StartupFailed(f"{child.spec.name} was not ready within {self.start_timeout:g} s")
            self._stop.wait(POLL)
        return False

    # ------------------------------------------------------------------ run
    def watch(self) -> int:
        """Block until a stop is requested (0) or a child exits by itself (1)."""
        while not self._stop.wait(0.2):
            for child in self._children:
                rc = child.proc.poll()
                if rc is not None:
                    self.say(f"exited with {rc}: stopping the team", child.spec.name)
                    return 1
        return 0

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop every child, newest first, and wait for each. Idempotent."""
        while self._children:
            child = self._children.pop()
            self._stop_one(child)
            child.reader.join(5)

    def _stop_one(self, child: _Child) -> None:
        proc, spec = child.proc, child.spec
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(spec.stop_signal)
            deadline = time.monotonic() + spec.stop_timeout
            while proc.poll() is None and time.monotonic() < deadline and not self._hurry.is_set():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(POLL)
        # Its session may hold helpers of its own (Postgres backends): none may outlive it.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.say(f"stopped (exit {proc.returncode})", spec.name)

    def __enter__(self) -> Supervisor:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
