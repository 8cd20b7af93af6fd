"""The Settings page in AppTest against the sandbox: test connection, save, read-only, admin gate, OIDC."""
from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib import access, runtime
from cmlib.config import SettingsStore
from tests.apptest_helpers import open_page
from ui.text import WORD_JOINER

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "settings.py")
DEAD_URL = "http://127.0.0.1:9/api/v3.3"


def unescape(text: str) -> str:
    """An alert's markdown source back to the text a user reads."""
    out, i = [], 0
    text = text.replace(WORD_JOINER, "")
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def texts(elements) -> list[str]:
    return [unescape(str(e.value)) for e in elements]


BROWSER_ZONE = "Europe/Berlin"


def run_page(browser_zone: str | None = BROWSER_ZONE, **session) -> AppTest:
    """The page as a browser opens it: Streamlit knows the browser's time zone (None: it does not)."""
    return open_page(PAGE, browser_zone, **session)


def fill(at: AppTest, key: str = "", client_id: str | None = None, url: str | None = None) -> None:
    at.text_input(key="settings_api_key").input(key)
    if client_id is not None:
        at.text_input(key="settings_client_id").input(client_id)
    if url is not None:
        at.text_input(key="settings_api_url").input(url)


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(autouse=True)
def _fresh_gates():
    access.reset_shared_gates()
    yield
    access.reset_shared_gates()


# ---------------------------------------------------------------------------- nothing configured


def test_nothing_configured_says_demo_data_and_how_to_connect():
    at = run_page()
    info = " ".join(texts(at.info))
    assert "demo data" in info and "local sandbox" in info
    assert "CM_API_KEY" in info and "secrets.toml" in info and "form below" in info
    assert at.text_input(key="settings_api_key").proto.type == at.text_input(key="settings_api_key").proto.PASSWORD
    assert at.button(key="settings_forget").disabled  # nothing saved, nothing to forget


# ---------------------------------------------------------------------------- test connection


def test_test_connection_success_names_company_country_timezone_and_lists(sandbox):
    at = run_page()
    fill(at, sandbox.client_api_key, sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_test")
    info = sandbox.data.client(sandbox.main_client_id)
    n_lists = len(sandbox.data.lists_of(sandbox.main_client_id))
    success = " ".join(texts(at.success))
    assert f"Connected to {info.name}" in success
    assert info.country in success and info.time_zone in success
    assert f"{n_lists} lists" in success
    table = at.dataframe[0].value
    assert dict(zip(table["Detail"], table["Value"], strict=True))["Lists"] == str(n_lists)
    assert not SettingsStore().load()  # testing saves nothing


def test_wrong_key_says_code_100(sandbox):
    at = run_page()
    fill(at, "not-a-real-key-0000", sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_test")
    errors = " ".join(texts(at.error))
    assert "Invalid API key (Code 100)" in errors


def test_other_clients_id_with_a_client_key_says_code_102(sandbox):
    at = run_page()
    fill(at, sandbox.client_api_key, sandbox.other_client_id, sandbox.base_url)
    click(at, "settings_test")
    errors = " ".join(texts(at.error))
    assert "Code 102" in errors and sandbox.other_client_id in errors
    # the sandbox's client key lists only its own client, so that is all the picker offers
    assert "This key sees one client: choose it." in errors
    assert at.selectbox(key="settings_client_choice").options == [
        f"{sandbox.data.client(sandbox.main_client_id).name} ({sandbox.main_client_id})"]


def test_unreachable_api_says_network(sandbox):
    at = run_page()
    fill(at, sandbox.client_api_key, sandbox.main_client_id, DEAD_URL)
    click(at, "settings_test")
    errors = " ".join(texts(at.error))
    assert "Cannot reach the API at 127.0.0.1:9" in errors


def test_account_key_offers_its_clients_in_a_picker(sandbox):
    at = run_page()
    fill(at, sandbox.account_api_key, "", sandbox.base_url)
    click(at, "settings_test")
    assert "account-level key that sees 2 clients" in " ".join(texts(at.info))
    picker = at.selectbox(key="settings_client_choice")
    names = {cid: sandbox.data.client(cid).name for cid in (sandbox.main_client_id, sandbox.other_client_id)}
    assert sorted(picker.options) == sorted(f"{name} ({cid})" for cid, name in names.items())
    assert picker.value is None  # nothing chosen for the admin
    assert not [t for t in at.text_input if t.key == "settings_client_id"]
    picker.select(sandbox.other_client_id)
    click(at, "settings_test")
    assert f"Connected to {names[sandbox.other_client_id]}" in " ".join(texts(at.success))


# ---------------------------------------------------------------------------- save / reload / forget


def _all_strings(at: AppTest) -> list[str]:
    """Every value, label, help, placeholder and option of every element on the page."""
    out: list[str] = []

    def walk(node) -> None:
        for attr in ("value", "label", "help", "placeholder", "options", "body", "proto"):
            try:
                v = getattr(node, attr)
            except Exception:
                continue
            if v is None:
                continue
            out.append(str(v))
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else []:
            walk(child)

    walk(at._tree)
    return out


def test_save_then_reload_shows_only_the_masked_key(sandbox):
    key = sandbox.client_api_key
    at = run_page()
    fill(at, key, sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_test")  # submits the credentials form: the typed key is now the field's value
    assert [s for s in _all_strings(at) if key in s]  # the walk does see a typed key
    click(at, "settings_save")
    assert any("Saved." in t for t in texts(at.success))
    assert at.text_input(key="settings_api_key").value == ""  # the field is empty after saving

    path = Path(os.environ["CM_DATA_DIR"]) / "settings.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["api_key"] == key and saved["client_id"] == sandbox.main_client_id

    again = run_page()  # a new session
    strings = _all_strings(again) + _all_strings(at)
    assert not [s for s in strings if key in s]
    assert any(key[-4:] in s and "••••" in s for s in _all_strings(again))
    assert "leave empty to keep it" in again.text_input(key="settings_api_key").placeholder
    # the app uses the new credentials
    assert runtime.current_credentials().api_key == key


def test_save_keeps_the_saved_key_when_the_field_is_left_empty(sandbox):
    SettingsStore().update(api_key=sandbox.account_api_key, client_id=sandbox.main_client_id,
                           api_url=sandbox.base_url)
    at = run_page()
    at.text_input(key="settings_client_id").input(sandbox.other_client_id)
    click(at, "settings_save")
    saved = SettingsStore().load()
    assert saved["api_key"] == sandbox.account_api_key and saved["client_id"] == sandbox.other_client_id


def test_save_refuses_a_key_the_api_rejects(sandbox):
    at = run_page()
    fill(at, "bad-key-000000", sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_save")
    assert "Not saved. Invalid API key (Code 100)" in " ".join(texts(at.error))
    assert SettingsStore().load() == {}


def test_save_from_the_client_picker(sandbox):
    at = run_page()
    fill(at, sandbox.account_api_key, "", sandbox.base_url)
    click(at, "settings_test")
    at.selectbox(key="settings_client_choice").select(sandbox.other_client_id)
    click(at, "settings_save")
    assert SettingsStore().load()["client_id"] == sandbox.other_client_id


def test_forget_credentials_asks_then_removes_them(sandbox):
    SettingsStore().update(api_key=sandbox.client_api_key, client_id=sandbox.main_client_id,
                           api_url=sandbox.base_url, cache_expiry={"subscriber": 5})
    at = run_page()
    click(at, "settings_forget")
    assert SettingsStore().load().get("api_key")  # not yet
    click(at, "settings_forget_confirm")
    saved = SettingsStore().load()
    assert "api_key" not in saved and "client_id" not in saved
    assert saved["cache_expiry"] == {"subscriber": 5}  # other settings stay
    assert "demo data" in " ".join(texts(at.info))


# ------------------------------------------------------------------ the saved key stays home (issue 10 #1, #12)


@pytest.fixture
def listener():
    """A local server on another port that records every request (the attacker's server)."""
    from tests.key_listener import listening

    yield from listening()


def _save_pair(sandbox) -> None:
    SettingsStore().save_credentials(sandbox.client_api_key, sandbox.main_client_id, sandbox.base_url)


def test_the_saved_key_is_never_sent_to_another_url(sandbox, listener):
    """Any session: leave the key empty, point the URL at a local listener, press Test / Save."""
    _save_pair(sandbox)
    at = run_page()
    at.text_input(key="settings_api_url").input(listener.base_url)
    click(at, "settings_test")
    errors = " ".join(texts(at.error))
    assert "only sent to the URL it was saved with" in errors and "type the API key again" in errors
    click(at, "settings_save")
    assert "Not saved" in " ".join(texts(at.error))
    assert listener.requests == []  # not the key, not anything
    saved = SettingsStore().load()
    assert saved["api_key"] == sandbox.client_api_key and saved["api_url"] == sandbox.base_url
    assert not [s for s in _all_strings(at) if sandbox.client_api_key in s]


def test_typing_the_key_again_is_what_allows_another_url(sandbox):
    SettingsStore().save_credentials(sandbox.client_api_key, sandbox.main_client_id, DEAD_URL)
    at = run_page()
    at.text_input(key="settings_api_url").input(sandbox.base_url)
    click(at, "settings_test")
    assert "type the API key again" in " ".join(texts(at.error))
    fill(at, sandbox.client_api_key)
    click(at, "settings_save")
    assert any("Saved." in t for t in texts(at.success))
    assert SettingsStore().load()["api_url"] == sandbox.base_url  # the new pair, recorded together


def test_the_saved_key_still_works_for_its_own_url_however_it_is_spelt(sandbox):
    _save_pair(sandbox)
    at = run_page()
    assert at.text_input(key="settings_api_url").value == sandbox.base_url
    at.text_input(key="settings_api_url").input(sandbox.base_url.replace("http://", "HTTP://") + "/")
    click(at, "settings_test")
    assert "Connected to" in " ".join(texts(at.success))


@pytest.mark.parametrize(("url", "fragment"), [
    ("http://169.254.169.254/latest/meta-data", "link-local / cloud metadata address"),
    ("http://[fe80::1]:80/api/v3.3", "link-local / cloud metadata address"),
    ("https://metadata.google.internal/computeMetadata/v1", "link-local / cloud metadata address"),
    ("https://100.100.100.200/", "link-local / cloud metadata address"),
    ("ftp://127.0.0.1/api/v3.3", "is not an http(s) address"),
    ("http://admin:hunter2@127.0.0.1:9/api/v3.3", "user name or password"),
    ("http://api.createsend.com/api/v3.3", "unencrypted"),
    ("https://" + "a" * 5000 + "/api/v3.3", "too long (5,017 characters"),
    ("https://" + "a" * 70 + ".example/api/v3.3", "longer than 63 characters"),
    ("https://" + "a" * 300 + ".example/api/v3.3", "host name of the API URL is too long"),
    ("http://[::1/api", "not a valid address"),
    ("http://127.0.0.1:70000/api/v3.3", "port must be a number"),
])
def test_a_refused_url_says_why_and_never_shows_a_traceback(sandbox, url, fragment):
    at = run_page()
    fill(at, sandbox.client_api_key, sandbox.main_client_id, url)  # even with the key typed
    click(at, "settings_test")  # click() asserts no exception box
    errors = " ".join(texts(at.error))
    assert fragment in errors
    assert "hunter2" not in errors and len(errors) < 600
    click(at, "settings_save")
    assert fragment in " ".join(texts(at.error)) and "Not saved" in " ".join(texts(at.error))
    assert SettingsStore().load() == {}


def test_with_a_saved_key_a_refused_url_names_the_url_problem_first(sandbox):
    _save_pair(sandbox)
    at = run_page()
    at.text_input(key="settings_api_url").input("http://169.254.169.254/latest")
    click(at, "settings_test")
    assert "metadata" in " ".join(texts(at.error))


def test_cm_api_url_does_not_redirect_the_saved_key(sandbox, listener, monkeypatch):
    """The environment names another server but no key: the saved key stays with its own URL,
    and the page says CM_API_URL is ignored. The health panel asks the saved URL."""
    _save_pair(sandbox)
    monkeypatch.setenv("CM_API_URL", listener.base_url)
    at = run_page()
    assert any("CM_API_URL" in c and "is ignored" in c for c in texts(at.caption))
    click(at, "settings_health_check")
    assert {m.label: m.value for m in at.metric}["API"] == "reachable"
    click(at, "settings_test")
    assert "Connected to" in " ".join(texts(at.success))
    assert listener.requests == []


def test_a_configured_url_that_is_refused_is_a_message_on_the_page(monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "env-key-12345678")
    monkeypatch.setenv("CM_CLIENT_ID", "cid")
    monkeypatch.setenv("CM_API_URL", "https://" + "a" * 5000 + "/api/v3.3")
    at = run_page()  # asserts no exception box
    errors = " ".join(texts(at.error))
    assert "Cannot connect to Campaign Monitor" in errors and "too long" in errors
    click(at, "settings_test_managed")
    assert "too long" in " ".join(texts(at.error))
    assert not [s for s in _all_strings(at) if "env-key-12345678" in s]


# ---------------------------------------------------------------------------- managed by the environment


def test_environment_credentials_are_read_only(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    at = run_page()
    assert "Managed by the environment" in " ".join(texts(at.info))
    assert "environment variables" in " ".join(texts(at.info))
    managed = [t for t in at.text_input if t.key.startswith("settings_managed")]
    assert len(managed) == 3 and all(t.disabled for t in managed)
    assert at.text_input(key="settings_managed_key").value.endswith(sandbox.client_api_key[-4:])
    keys = {b.key for b in at.button}
    assert not keys & {"settings_save", "settings_forget"}
    assert not [s for s in _all_strings(at) if sandbox.client_api_key in s]
    click(at, "settings_test_managed")
    assert "Connected to" in " ".join(texts(at.success))


def test_secrets_toml_credentials_are_read_only(sandbox, monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[campaign_monitor]\napi_key = "{sandbox.client_api_key}"\n'
                       f'client_id = "{sandbox.main_client_id}"\napi_url = "{sandbox.base_url}"\n')
    monkeypatch.setenv("CM_SECRETS_PATH", str(secrets))
    at = run_page()
    info = " ".join(texts(at.info))
    assert "Managed by the environment" in info and "secrets.toml" in info
    assert at.text_input(key="settings_managed_client").disabled
    assert not {b.key for b in at.button} & {"settings_save", "settings_forget"}


# ---------------------------------------------------------------------------- admin password


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _gate_prompt(at: AppTest):
    return [t for t in at.text_input if t.key.startswith("admin_gate_pw")]


def _try(at: AppTest, password: str) -> AppTest:
    _gate_prompt(at)[0].input(password)
    at.button[0].click().run()  # the form's Unlock button is the only button while locked
    assert not at.exception, at.exception
    return at


def test_admin_password_guards_the_page(monkeypatch):
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "open sesame")
    at = run_page()
    assert _gate_prompt(at) and not [t for t in at.text_input if t.key == "settings_api_key"]
    _try(at, "wrong")
    assert "4 tries left" in " ".join(texts(at.warning))
    assert not [t for t in at.text_input if t.key == "settings_api_key"]
    _try(at, "open sesame")
    assert not _gate_prompt(at)
    assert at.text_input(key="settings_api_key")
    # once per session: later reruns do not ask again; "Lock" does
    at.run()
    assert not _gate_prompt(at)
    click(at, "settings_lock")
    assert _gate_prompt(at)


def test_admin_password_from_secrets_toml(monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('admin_password = "from secrets"\n')
    monkeypatch.setenv("CM_SECRETS_PATH", str(secrets))
    at = run_page()
    assert _gate_prompt(at)
    _try(at, "from secrets")
    assert not _gate_prompt(at)


def _from_address(monkeypatch, ip: str | None, headers: dict | None = None) -> None:
    """Make the page see the client at ``ip`` (AppTest has no real connection)."""
    from ui import access as ui_access

    monkeypatch.setattr(ui_access, "_client_address", lambda: (ip, dict(headers or {})))


def test_five_wrong_passwords_lock_that_address_for_a_minute_and_nobody_else(monkeypatch):
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "open sesame")
    clock = FakeClock()
    access.shared_gate("open sesame").clock = clock
    _from_address(monkeypatch, "203.0.113.7")
    at = run_page()
    for _ in range(5):
        _try(at, "guess")
    assert "locked for 60 more seconds" in " ".join(texts(at.error))
    assert _gate_prompt(at)[0].disabled
    clock.now += 30
    at.run()
    assert "locked for 30 more seconds" in " ".join(texts(at.error))
    # the admin at another address is not locked out
    _from_address(monkeypatch, "198.51.100.2")
    admin = run_page()
    assert not admin.error and not _gate_prompt(admin)[0].disabled
    _try(admin, "open sesame")
    assert not _gate_prompt(admin)
    # the locked address gets its tries back after the minute
    _from_address(monkeypatch, "203.0.113.7")
    clock.now += 31
    at.run()
    assert not at.error and not _gate_prompt(at)[0].disabled
    _try(at, "open sesame")
    assert not _gate_prompt(at)


def test_rotating_sessions_from_an_unknown_source_only_slow_guessing_down(monkeypatch):
    """Issue 10 #15: 20 wrong guesses from fresh sessions (no client address known, as on
    localhost or behind a proxy that forwards nothing) locked the real admin out for a minute."""
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "open sesame")
    clock = FakeClock()
    gate = access.shared_gate("open sesame")
    gate.clock = clock
    _from_address(monkeypatch, None)
    for i in range(25):  # a new session for every guess, as fast as the page lets it
        clock.now += gate.status(access.identify_caller(None)).seconds_left
        attacker = run_page()
        _try(attacker, f"guess {i}")
        assert "locked" not in " ".join(texts(attacker.error))
    admin = run_page()
    warning = " ".join(texts(admin.warning))
    assert "Too many wrong passwords recently: wait" in warning
    assert not admin.error and not _gate_prompt(admin)[0].disabled  # slowed, never a lock
    _try(admin, "open sesame")  # too early: not even compared, and the page says how long to wait
    assert _gate_prompt(admin) and "wait" in " ".join(texts(admin.warning))
    clock.now += access.SLOWDOWN_MAX_SECONDS
    _try(admin, "open sesame")
    assert not _gate_prompt(admin)
    assert admin.text_input(key="settings_api_key")


def test_a_proxy_the_app_does_not_trust_is_never_locked_as_one_client(monkeypatch):
    """Everyone behind an untrusted proxy shares its address: it is slowed, not locked."""
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "open sesame")
    clock = FakeClock()
    access.shared_gate("open sesame").clock = clock
    _from_address(monkeypatch, "10.0.0.5", {"x-forwarded-for": ["203.0.113.7"]})
    at = run_page()
    for _ in range(5):
        _try(at, "guess")
    assert not at.error and "Wait 1 more second" in " ".join(texts(at.warning))
    # with the proxy trusted, the same request is the client at 203.0.113.7, locked on its own
    monkeypatch.setenv("CM_TRUSTED_PROXIES", "10.0.0.5")
    clock.now += 1
    for _ in range(5):
        _try(at, "guess")
    assert "locked for 60 more seconds" in " ".join(texts(at.error))
    _from_address(monkeypatch, "10.0.0.5", {"x-forwarded-for": ["198.51.100.2"]})
    admin = run_page()
    _try(admin, "open sesame")
    assert not _gate_prompt(admin)


# ---------------------------------------------------------------------------- OIDC login


def _with_auth(monkeypatch, tmp_path) -> None:
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\n'
                       'cookie_secret = "test-cookie-secret"\nclient_id = "app"\nclient_secret = "s"\n'
                       'server_metadata_url = "https://idp.example.com/.well-known/openid-configuration"\n')
    monkeypatch.setenv("CM_SECRETS_PATH", str(secrets))


def test_login_configured_but_not_logged_in_offers_login(monkeypatch, tmp_path):
    _with_auth(monkeypatch, tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.user = {}
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Log in"]
    assert not [t for t in at.text_input if t.key == "settings_api_key"]


def test_logged_in_user_is_shown_with_a_logout_button(monkeypatch, tmp_path):
    _with_auth(monkeypatch, tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.user = {"is_logged_in": True, "email": "lead@example.com", "name": "Support Lead"}
    at.run()
    assert not at.exception
    assert any("lead" in unescape(m.value) and "example.com" in unescape(m.value) for m in at.markdown)
    assert at.button(key="settings_logout")
    assert at.text_input(key="settings_api_key")


def test_no_login_section_without_auth_config():
    at = run_page()
    assert not [b for b in at.button if b.key in ("settings_logout", "settings_login_default")]


# ---------------------------------------------------------------------------- cache and health


def test_cache_expiry_is_saved_and_used(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    at = run_page()
    assert at.metric[[m.label for m in at.metric].index("Backend")].value == "sqlite"
    at.number_input(key="settings_expiry_subscriber").set_value(15)
    at.button[[b.label for b in at.button].index("Save expiry times")].click().run()
    assert not at.exception
    assert SettingsStore().load()["cache_expiry"]["subscriber"] == 15
    assert runtime.cache_settings().expiry["subscriber"] == 15
    assert "Expiry times saved" in " ".join(texts(at.success))
    click(at, "settings_reset_expiry")
    assert "cache_expiry" not in SettingsStore().load()
    assert at.number_input(key="settings_expiry_subscriber").value == runtime.cache_settings().expiry["subscriber"]


def test_clear_cache_empties_it(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    at = run_page()
    from ui.connection import get_connection  # the same cached client the page uses

    conn = get_connection()
    conn.client.lists(sandbox.main_client_id)
    conn.client.session.cache.flush()  # answers are stored by the cache's writer thread (cmlib.write_behind)
    assert len(list(conn.client.session.cache.responses.keys())) >= 1
    click(at, "settings_clear_cache")
    assert "Cache cleared" in " ".join(texts(at.success))
    assert list(conn.client.session.cache.responses.keys()) == []


def test_health_panel_reports_reachability_latency_and_rate_limit(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    sandbox.set_faults(rate_limit=1000, rate_limit_headers=True)
    at = run_page()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["API"] == "not checked" and metrics["Account"] == "Real account"
    click(at, "settings_health_check")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["API"] == "reachable"
    assert metrics["Last call"].endswith(" ms")
    assert metrics["Rate-limit headroom"].endswith("%")
    assert "requests left" in " ".join(unescape(c.value) for c in at.caption)


def test_health_in_demo_mode_says_demo():
    at = run_page()
    click(at, "settings_health_check")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Account"] == "Demo (sandbox)" and metrics["API"] == "reachable"


def test_health_says_unreachable_when_the_key_was_revoked(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "revoked-key-1234")
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    at = run_page()
    click(at, "settings_health_check")
    assert {m.label: m.value for m in at.metric}["API"] == "unreachable"
    assert "Code 100" in " ".join(texts(at.error))


def test_logout_button_logs_the_user_out(monkeypatch, tmp_path):
    _with_auth(monkeypatch, tmp_path)
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.user = {"is_logged_in": True, "email": "lead@example.com"}
    at.run()
    click(at, "settings_logout")
    assert [b.label for b in at.button] == ["Log in"]


def test_named_login_providers_each_get_a_button(monkeypatch, tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://localhost:8501/oauth2callback"\ncookie_secret = "c"\n'
                       '[auth.google]\nclient_id = "g"\n[auth.okta]\nclient_id = "o"\n')
    monkeypatch.setenv("CM_SECRETS_PATH", str(secrets))
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.user = {}
    at.run()
    assert [b.label for b in at.button] == ["Log in with google", "Log in with okta"]


# ---------------------------------------------------------------------------- issue 12 #7: one form, field to field


CREDENTIAL_FIELDS = ("settings_api_key", "settings_client_id", "settings_api_url")


def test_the_credential_fields_and_their_buttons_are_submitted_together():
    """A click on Test or Save carries what the fields show: fields and buttons are one form (outside
    a form a field commits on blur, and a click straight after typing could arrive first)."""
    at = run_page()
    form_ids = {at.text_input(key=k).form_id for k in CREDENTIAL_FIELDS}
    buttons = [b for b in at.button if b.form_id in form_ids]
    assert len(form_ids) == 1 and form_ids != {""}
    assert [b.key for b in buttons] == ["settings_test", "settings_save", "settings_forget"]
    # Enter in a field presses the form's first button: Test connection, which saves nothing
    assert buttons[0].key == "settings_test"


def test_credential_fields_have_no_help_icons_their_help_is_written_below():
    """A help icon is a Tab stop before its field; the same help is a caption instead."""
    at = run_page()
    for key in CREDENTIAL_FIELDS:
        assert not at.text_input(key=key).help, key
    captions = " ".join(unescape(c.value) for c in at.caption)
    assert "Account settings → API keys" in captions and "Client settings → API keys" in captions
    assert "type the key again" in captions and "Enter tests the connection" in captions
    assert not [n for n in at.number_input if n.help]  # the cache expiry fields name their default instead
    assert "(default 600 s)" in at.number_input(key="settings_expiry_clients").label


def test_the_key_field_has_no_show_password_button():
    """The eye button would be the Tab stop after the key and would show a credential: hidden by CSS
    scoped to the key field."""
    at = run_page()
    styles = [h.value for h in at.get("html")]
    assert any(".st-key-settings_api_key button" in s and "display: none" in s for s in styles), styles


# ---------------------------------------------------------------------------- issue 12 #3: the one display zone


def _report_rows(at: AppTest) -> dict[str, str]:
    table = at.dataframe[0].value
    return dict(zip(table["Detail"], table["Value"], strict=True))


def test_the_report_says_which_zone_the_dashboard_shows_times_in_the_browsers(sandbox):
    at = run_page(browser_zone="Asia/Tokyo")
    fill(at, sandbox.client_api_key, sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_test")
    rows = _report_rows(at)
    assert rows["Client's time zone (Campaign Monitor)"] == "(GMT+03:00) Moscow, St. Petersburg"
    assert rows["Times on this dashboard"] == "Times are shown in Asia/Tokyo (JST), your browser's time zone."


def test_without_a_browser_zone_the_dashboard_uses_the_clients_and_says_so(sandbox):
    at = run_page(browser_zone=None)
    fill(at, sandbox.client_api_key, sandbox.main_client_id, sandbox.base_url)
    click(at, "settings_test")
    shown = _report_rows(at)["Times on this dashboard"]
    assert shown.startswith("Times are shown in UTC+03:00, the Campaign Monitor client's time zone")
    assert "(GMT+03:00) Moscow" in shown and "your browser did not report one" in shown


def test_health_names_the_display_zone_and_the_check_time_in_it():
    at = run_page(browser_zone="Asia/Tokyo")
    assert "Times are shown in Asia/Tokyo (JST), your browser's time zone." in [unescape(c.value) for c in at.caption]
    click(at, "settings_health_check")
    success = " ".join(texts(at.success))
    assert re.search(r"Checked at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST\.", success), success
    demo = run_page(browser_zone=None)  # the demo client is in Moscow's zone: that is what is shown
    assert any("Times are shown in UTC+03:00, the Campaign Monitor client's time zone" in unescape(c.value)
               for c in demo.caption)
