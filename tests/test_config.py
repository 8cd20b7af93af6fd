import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cmlib import runtime
from cmlib.config import (
    Credentials,
    CredentialSource,
    KeyOrigin,
    SettingsStore,
    choose_key,
    ignored_env_url,
    managed_by_environment,
    mask_key,
    resolve_credentials,
)
from cmlib.urls import ApiUrlError
from tests.key_listener import start_listener, stop_listener


def test_precedence_env_then_secrets_then_settings(tmp_path):
    store = SettingsStore(tmp_path / "s.json")
    assert resolve_credentials(env={}, secrets={}, store=store) is None
    store.update(api_key="saved-key-9999", client_id="saved")
    assert resolve_credentials(env={}, secrets={}, store=store).source == CredentialSource.SETTINGS
    sec = {"campaign_monitor": {"api_key": "sec-key", "client_id": "sec", "api_url": "http://x/api/v3.3"}}
    c = resolve_credentials(env={}, secrets=sec, store=store)
    assert (c.source, c.client_id, c.api_url) == (CredentialSource.SECRETS, "sec", "http://x/api/v3.3")
    c = resolve_credentials(env={"CM_API_KEY": "env-key", "CM_CLIENT_ID": "env"}, secrets=sec, store=store)
    assert (c.source, c.client_id) == (CredentialSource.ENV, "env")
    assert c.api_url.startswith("https://api.createsend.com/api/v3.3")


def test_settings_file_is_0600_and_atomic(tmp_path):
    store = SettingsStore(tmp_path / "d" / "settings.json")
    store.update(api_key="k" * 20, client_id="c")
    mode = stat.S_IMODE(os.stat(store.path).st_mode)
    assert mode == 0o600
    assert [p.name for p in store.path.parent.iterdir()] == ["settings.json"]  # no temp left behind
    store.forget_credentials()
    assert "api_key" not in store.load()


def test_managed_by_environment(tmp_path):
    assert managed_by_environment(env={}, secrets={}) is None
    assert managed_by_environment(env={"CM_API_KEY": "x"}, secrets={}) == CredentialSource.ENV
    assert managed_by_environment(env={}, secrets={"campaign_monitor": {"api_key": "y"}}) == CredentialSource.SECRETS


def test_masking_and_repr_never_show_key():
    c = Credentials(api_key="abcdefgh12345678", client_id="c")
    assert mask_key("abcdefgh12345678").endswith("5678") and "abcd" not in mask_key("abcdefgh12345678")
    assert "abcdefgh" not in repr(c) and "abcdefgh" not in str(c)


def test_corrupt_settings_file_reads_as_empty(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    assert SettingsStore(p).load() == {}


# ---------------------------------------------------------------------------- keys travel with their own URL

SANDBOX_URL = "http://127.0.0.1:8765/api/v3.3"
OTHER_URL = "http://127.0.0.1:9999/api/v3.3"


def test_the_saved_key_keeps_its_own_url_whatever_cm_api_url_says(tmp_path):
    """Issue 10 #1 (CLI path): CM_API_URL alone must not redirect the key saved on the Settings page."""
    store = SettingsStore(tmp_path / "s.json")
    store.save_credentials("saved-key-9999", "cid", SANDBOX_URL)
    creds = resolve_credentials(env={"CM_API_URL": OTHER_URL}, secrets={}, store=store)
    assert (creds.source, creds.api_key, creds.api_url) == (CredentialSource.SETTINGS, "saved-key-9999", SANDBOX_URL)
    note = ignored_env_url(creds, env={"CM_API_URL": OTHER_URL})
    assert note and "is ignored" in note and OTHER_URL in note and SANDBOX_URL in note
    assert ignored_env_url(creds, env={"CM_API_URL": SANDBOX_URL + "/"}) is None  # the same URL: no note
    assert ignored_env_url(creds, env={}) is None


def test_a_saved_key_without_a_url_pairs_with_the_official_api_only(tmp_path):
    store = SettingsStore(tmp_path / "s.json")
    store.update(api_key="legacy-key-1234", client_id="cid")  # a file from before URLs were recorded
    creds = resolve_credentials(env={"CM_API_URL": OTHER_URL}, secrets={}, store=store)
    assert creds.api_url == "https://api.createsend.com/api/v3.3"


def test_the_secrets_key_keeps_its_own_url_too():
    secrets = {"campaign_monitor": {"api_key": "sec-key", "client_id": "sec"}}
    creds = resolve_credentials(env={"CM_API_URL": OTHER_URL}, secrets=secrets, store=SettingsStore(os.devnull))
    assert creds.api_url == "https://api.createsend.com/api/v3.3"


def test_environment_key_and_url_go_together():
    creds = resolve_credentials(env={"CM_API_KEY": "env-key", "CM_API_URL": OTHER_URL}, secrets={},
                                store=SettingsStore(os.devnull))
    assert (creds.api_key, creds.api_url) == ("env-key", OTHER_URL)
    assert ignored_env_url(creds, env={"CM_API_URL": OTHER_URL}) is None


def test_the_store_records_the_pair_and_refuses_unusable_urls(tmp_path):
    store = SettingsStore(tmp_path / "s.json")
    store.save_credentials(" k-123456 ", "cid", "HTTP://127.0.0.1:8765/api/v3.3/")
    assert store.load() == {"api_key": "k-123456", "client_id": "cid", "api_url": SANDBOX_URL}
    for bad in ("http://169.254.169.254/latest", "https://u:p@example.com/", "https://" + "a" * 5000):
        with pytest.raises(ApiUrlError):
            store.save_credentials("other-key", "cid", bad)
    assert store.load()["api_key"] == "k-123456"  # nothing half-saved


def test_choose_key_sends_the_saved_key_only_to_its_own_url():
    saved = Credentials(api_key="saved-secret-9999", client_id="cid", api_url=SANDBOX_URL)
    same = choose_key("", SANDBOX_URL + "/", saved)
    assert same.origin is KeyOrigin.SAVED and same.api_key == "saved-secret-9999"
    other = choose_key("", OTHER_URL, saved)
    assert other.origin is KeyOrigin.OTHER_URL and not other.usable and other.api_key == ""
    assert "type the API key again" in other.message and "9999" in other.message  # the masked key only
    assert "saved-secret" not in other.message and "saved-secret" not in repr(other)
    typed = choose_key(" typed-key ", OTHER_URL, saved)
    assert typed.origin is KeyOrigin.TYPED and typed.api_key == "typed-key"
    assert choose_key("", OTHER_URL, None).origin is KeyOrigin.MISSING
    assert "hunter2" not in choose_key("", "http://me:hunter2@127.0.0.1:1/x", saved).message


def test_connect_refuses_a_configured_url_the_key_must_not_go_to(monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "env-key-1234")
    monkeypatch.setenv("CM_CLIENT_ID", "cid")
    for bad in ("http://169.254.169.254/latest", "https://" + "a" * 5000 + "/x", "http://api.example.com/x"):
        monkeypatch.setenv("CM_API_URL", bad)
        with pytest.raises(ApiUrlError) as info:
            runtime.connect(cache=False)
        assert "env-key" not in str(info.value) and len(str(info.value)) < 400


def test_connect_says_when_cm_api_url_is_ignored(monkeypatch, caplog):
    SettingsStore().save_credentials("saved-key-9999", "cid", SANDBOX_URL)
    monkeypatch.setenv("CM_API_URL", OTHER_URL)
    with caplog.at_level(logging.WARNING, logger="cmlib.runtime"):
        conn = runtime.connect(cache=False)
    assert conn.client.base_url == SANDBOX_URL
    assert "CM_API_URL" in caplog.text and "is ignored" in caplog.text and "saved-key" not in caplog.text
    conn.client.close()


def test_cli_with_cm_api_url_never_sends_the_saved_key_elsewhere(sandbox, tmp_path):
    """The CLI as a user runs it: a saved key (settings.json) and CM_API_URL pointing at a listener."""
    data = tmp_path / "cli-data"
    SettingsStore(data / "settings.json").save_credentials(sandbox.client_api_key, sandbox.main_client_id,
                                                           sandbox.base_url)
    listener = start_listener()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
        env.update(CM_DATA_DIR=str(data), CM_SECRETS_PATH=str(tmp_path / "none.toml"), CM_API_URL=listener.base_url)
        r = subprocess.run([sys.executable, "-m", "cmlib", "lookup", "anna@example.com", "--json"],
                           cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True,
                           timeout=120)
    finally:
        stop_listener(listener)
    assert listener.requests == []
    assert r.returncode == 0, r.stderr
    assert "CM_API_URL" in r.stderr and "is ignored" in r.stderr
    assert sandbox.client_api_key not in r.stdout + r.stderr


def test_cli_with_a_refused_url_says_why_without_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    env.update(CM_DATA_DIR=str(tmp_path / "d"), CM_SECRETS_PATH=str(tmp_path / "none.toml"),
               CM_API_KEY="env-key-12345678", CM_CLIENT_ID="cid", CM_API_URL="http://169.254.169.254/latest")
    r = subprocess.run([sys.executable, "-m", "cmlib", "lookup", "anna@example.com"],
                       cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert "cannot connect" in r.stderr and "metadata" in r.stderr
    assert "Traceback" not in r.stderr and "env-key-12345678" not in r.stderr
