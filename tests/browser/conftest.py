"""A real Streamlit server on the sandbox, and headless Chromium to drive it.

The sandbox runs in this test process (a thread on 127.0.0.1); Streamlit runs as a subprocess on
a free port with the sandbox's credentials in its environment. Without /usr/bin/chromium (or
the playwright package) the browser tests are skipped with the reason, unless
CM_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure, never a silent skip.
"""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.sandbox_fixtures import make_sandbox

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
STARTUP_TIMEOUT = 90.0


def _unavailable(reason: str) -> None:
    if os.environ.get("CM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required (CM_REQUIRE_BROWSER=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningApp:
    url: str
    sandbox: object
    log: Path


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    return CHROMIUM


@contextlib.contextmanager
def serve_app(tmp: Path, sandbox: object, env_extra: dict[str, str]) -> Iterator[RunningApp]:
    """``streamlit run serve.py`` (as ``make run``) on a free port with no ``CM_*`` from our
    environment but ``env_extra``; waits for the server's health endpoint, stops the process (by pid) on exit."""
    log = tmp / "streamlit.log"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp / "data"), CM_SECRETS_PATH=str(tmp / "no-secrets.toml"),
               CM_CACHE_BACKEND="memory", PYTHONUNBUFFERED="1")
    env.update(env_extra)
    cmd = [sys.executable, "-m", "streamlit", "run", "serve.py", "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:  # polling the server's own health endpoint until it is up (startup, not a timing assert)
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                if requests.get(f"{base}/_stcore/health", timeout=2).text.strip() == "ok":
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy after {STARTUP_TIMEOUT:.0f}s:\n"
                            f"{log.read_text(errors='replace')}")
            time.sleep(0.25)
        yield RunningApp(url=base, sandbox=sandbox, log=log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def streamlit_app(chromium_executable, tmp_path_factory) -> Iterator[RunningApp]:
    """The app configured by environment for a fresh sandbox; stopped at the end of the module."""
    tmp = tmp_path_factory.mktemp("streamlit")
    with make_sandbox() as sb, serve_app(tmp, sb, {"CM_API_KEY": sb.client_api_key,
                                                   "CM_CLIENT_ID": sb.main_client_id,
                                                   "CM_API_URL": sb.base_url}) as app:
        yield app


@pytest.fixture(scope="module")
def browser(chromium_executable) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 2200})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        context.close()


@pytest.fixture
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
