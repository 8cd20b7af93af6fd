"""Issue 15, pages: a page paints before it loads what it does not need yet, and a lookup hands
each address over as soon as it is complete, so the Lookup page fills its tabs one by one.

No timing here (the bench measures it, bench/bench_pages.py): these check the behaviour that
makes the page fast -- what is imported, and in what order addresses arrive -- with events.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from streamlit.testing.v1 import AppTest

from cmlib.lookup import LookupService
from cmlib.sandbox import DEMO_CUSTOMERS
from tests.sandbox_fixtures import make_client

ROOT = Path(__file__).resolve().parent.parent
THREE = list(DEMO_CUSTOMERS["three_addresses"])


def test_the_shell_and_lookup_page_modules_do_not_import_pandas():
    """pandas/pyarrow cost ~0.3 s on a first visit; only drawing the campaigns table needs them.
    Likewise the address validator (first address), the audit log's SQLAlchemy and redis."""
    code = ("import sys\n"
            "import ui.access, ui.connection, ui.demo, ui.shell, ui.sidebar, ui.profile\n"
            "print(sorted(m for m in ('pandas', 'pyarrow', 'openpyxl', 'email_validator', 'sqlalchemy', 'redis',\n"
            "                         'requests_cache') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


DEFERRED = ("sqlalchemy", "redis", "procrastinate", "psycopg", "cmlib.audit", "cmlib.database")


def test_an_embedded_first_visit_loads_no_database_redis_or_job_queue(tmp_path):
    """The whole first run of the app (demo sandbox, embedded mode: no ``CM_REDIS_URL`` or
    ``CM_DATABASE_URL``) draws the Lookup page without SQLAlchemy (~0.15 s; the audit log loads
    it when a row is written or read), redis (~50 ms, which requests-cache would import for a
    backend this mode never uses) or the job queue. (pandas and the address validator are
    loaded in the background after the paint: the module test above keeps them off the page.)"""
    code = ("import sys\n"
            "from streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(ROOT / 'app.py')!r}, default_timeout=60)\n"
            "at.run()\n"
            "assert not at.exception, [e.value for e in at.exception]\n"
            "assert [h.value for h in at.title] == ['Customer lookup'], at.title\n"
            f"print(sorted(m for m in {DEFERRED!r} if m in sys.modules))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp_path), CM_SECRETS_PATH=str(tmp_path / "no-secrets.toml"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr[-3000:]


def test_a_team_deployment_still_gets_the_redis_backend_of_requests_cache(tmp_path):
    """Leaving redis out is for the embedded mode only: with ``CM_REDIS_URL`` set (no server
    needed to import) requests-cache loads as usual, its Redis backend included."""
    code = ("import sys\n"
            "from pathlib import Path\n"
            "from cmlib.cache import CacheSettings, build_session\n"
            f"s = build_session(CacheSettings(backend='memory', salt_path=Path({str(tmp_path / 's')!r})))\n"
            "import requests_cache.backends as b\n"
            "print('redis' in sys.modules, b.RedisCache.__module__)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp_path), CM_REDIS_URL="redis://127.0.0.1:1/0")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True requests_cache.backends.redis", out.stdout + out.stderr
    env.pop("CM_REDIS_URL")
    out = subprocess.run([sys.executable, "-c", code + "import requests_cache.backends.redis\n"
                          "print('redis' in sys.modules)\n"], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True)
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("False") and lines[1] == "True", out.stdout + out.stderr  # still importable on demand


def test_each_address_is_handed_over_before_a_slower_one_finishes(sandbox):
    """One address's history is held until the others were handed over: without per-address
    completion the callback would only come after everything (and this would deadlock)."""
    client = make_client(sandbox)
    slow = THREE[1]
    others_done = threading.Event()
    real_history = client.history

    def history(list_id, email, fresh=False):
        if email == slow:
            assert others_done.wait(timeout=20), "the other addresses were not handed over first"
        return real_history(list_id, email, fresh=fresh)

    client.history = history  # type: ignore[method-assign]  # hold one address's calls
    seen: list[str] = []

    def on_profile(profile):
        seen.append(profile.email)
        if set(seen) >= {THREE[0], THREE[2]}:
            others_done.set()

    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        profiles = svc.lookup_many(THREE, suppression=True, time_zone=True, on_profile=on_profile)
    client.close()
    assert [p.email for p in profiles] == THREE  # the result keeps input order
    assert sorted(seen[:2]) == sorted([THREE[0], THREE[2]]) and seen[2] == slow
    assert all(not p.failed and p.lists for p in profiles)


def test_remembered_addresses_are_handed_over_too(sandbox):
    client = make_client(sandbox)
    with LookupService(client, sandbox.main_client_id, memo_ttl=600) as svc:
        svc.lookup_many(THREE[:1])
        seen: list[str] = []
        svc.lookup_many(THREE, on_profile=lambda p: seen.append(p.email))
    client.close()
    assert seen[0] == THREE[0] and sorted(seen) == sorted(THREE)


def _preview_script() -> None:
    import streamlit as st

    from cmlib.lookup import LookupService
    from cmlib.runtime import connect
    from ui.profile import Stage, _draw_preview

    emails = st.session_state["emails"]
    conn = connect()
    first = LookupService(conn.client, conn.client_id).lookup(emails[0])
    conn.lookup_service().client_time_zone()
    _draw_preview(Stage(status=st.empty(), body=st.empty()), conn, emails, {emails[0].lower(): first})


def test_the_tabs_are_drawn_at_once_and_filled_as_addresses_arrive(app_env):
    """While a lookup runs: a tab per address, the ones that arrived with their content and
    summary, the others a placeholder -- and no buttons yet (drawn once, with the finished page)."""
    at = AppTest.from_function(_preview_script, default_timeout=30)
    at.session_state["emails"] = THREE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    labels = [t.label.replace("\u2060", "").replace("\\", "") for t in at.tabs]
    assert [lbl.split(" · ")[0] for lbl in labels] == THREE
    assert labels[0].split(" · ")[1] == "4 subscribed"
    assert [lbl.split(" · ")[1] for lbl in labels[1:]] == ["…", "…"]
    assert "Lists" in [h.value for h in at.tabs[0].subheader]
    assert all("Looking up" in t.caption[0].value for t in at.tabs[1:])
    assert len(at.button) == 0
