"""After a realistic session, the API key is on disk in exactly one place: the 0600 settings file.

The key is saved through the Settings page, then the app does what it does all day -- lookups
through the default SQLite cache, a health check, a subscription change with its audit row --
with every logger at DEBUG writing to a file in the data folder (urllib3 and requests-cache
included). Then every file under CM_DATA_DIR is searched for the key in the forms it travels
in: raw, in the Basic header (base64 of ``key:x``), URL-encoded and hex.
"""
from __future__ import annotations

import base64
import logging
import os
import stat
from pathlib import Path
from urllib.parse import quote

import pytest
from streamlit.testing.v1 import AppTest

from cmlib import runtime
from cmlib.audit import AuditLog
from cmlib.sandbox import DEMO_CUSTOMERS
from cmlib.subscriptions import ApplyOptions, apply_plan, load_lists, plan_changes, take_snapshot

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "settings.py")


def key_forms(key: str) -> dict[str, bytes]:
    basic = f"{key}:x".encode()
    return {
        "raw": key.encode(),
        "basic-b64": base64.b64encode(basic),
        "basic-b64-urlsafe": base64.urlsafe_b64encode(basic),
        "key-b64": base64.b64encode(key.encode()).rstrip(b"="),
        "urlencoded": quote(key, safe="").encode(),
        "hex": key.encode().hex().encode(),
        "utf16": key.encode("utf-16-le"),
    }


@pytest.fixture
def debug_log_file():
    """Every logger at DEBUG into <data>/logs/app.log for the duration of the test."""
    path = Path(os.environ["CM_DATA_DIR"]) / "logs" / "app.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


def test_the_key_is_only_in_the_settings_file(sandbox, debug_log_file):
    key = sandbox.account_api_key
    data = Path(os.environ["CM_DATA_DIR"])

    # 1. an admin saves the key on the Settings page and checks health
    at = AppTest.from_file(PAGE, default_timeout=30).run()
    at.text_input(key="settings_api_key").input(key)
    at.text_input(key="settings_client_id").input(sandbox.main_client_id)
    at.text_input(key="settings_api_url").input(sandbox.base_url)
    at.button(key="settings_test").click().run()
    at.button(key="settings_save").click().run()
    at.button(key="settings_health_check").click().run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["API"] == "reachable"

    # 2. lookups through the configured (SQLite) cache, twice so the second is served from it
    conn = runtime.connect()
    assert conn.credentials.source == "settings" and conn.client.cache_settings.backend == "sqlite"
    addresses = [a for case in DEMO_CUSTOMERS.values() for a in case]
    service = conn.lookup_service(max_workers=4)
    first = service.lookup_many(addresses)
    assert any(p.lists for p in first)
    service.lookup_many(addresses)
    assert conn.client.last_call is not None

    # 3. a subscription change, audited
    email = DEMO_CUSTOMERS["no_list"][0]
    lists_info = load_lists(conn.client, conn.client_id)
    snapshot = take_snapshot(conn.client, conn.client_id, email)
    plan = plan_changes(snapshot, {lists_info[0].list_id: True}, lists_info)
    audit = AuditLog(secrets=[key])
    report = apply_plan(conn.client, plan, ApplyOptions.confirming_all(plan, actor="tester", reason="ticket 42",
                                                                       consent="Yes"), audit=audit)
    assert report.written
    assert audit.count() >= 1
    conn.client.close()
    logging.getLogger("test").debug("end of session")
    for h in logging.getLogger().handlers:
        h.flush()

    # 4. search every file
    files = [p for p in data.rglob("*") if p.is_file()]
    names = {p.relative_to(data).as_posix() for p in files}
    assert "settings.json" in names
    assert any(n.startswith("cache/") for n in names), names
    assert any(n.startswith("audit") for n in names), names
    assert debug_log_file.stat().st_size > 0
    assert b"GET " in debug_log_file.read_bytes() or b"/api/v3.3" in debug_log_file.read_bytes()

    found: dict[str, list[str]] = {}
    for p in files:
        blob = p.read_bytes()
        hits = [form for form, needle in key_forms(key).items() if needle in blob]
        if hits:
            found[p.relative_to(data).as_posix()] = hits
    assert set(found) == {"settings.json"}, found
    assert "raw" in found["settings.json"]
    assert stat.S_IMODE((data / "settings.json").stat().st_mode) == 0o600
