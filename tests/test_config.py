import os
import stat

from cmlib.config import (
    SOURCE_ENV,
    SOURCE_SECRETS,
    SOURCE_SETTINGS,
    Credentials,
    SettingsStore,
    managed_by_environment,
    mask_key,
    resolve_credentials,
)


def test_precedence_env_then_secrets_then_settings(tmp_path):
    store = SettingsStore(tmp_path / "s.json")
    assert resolve_credentials(env={}, secrets={}, store=store) is None
    store.update(api_key="saved-key-9999", client_id="saved")
    assert resolve_credentials(env={}, secrets={}, store=store).source == SOURCE_SETTINGS
    sec = {"campaign_monitor": {"api_key": "sec-key", "client_id": "sec", "api_url": "http://x/api/v3.3"}}
    c = resolve_credentials(env={}, secrets=sec, store=store)
    assert (c.source, c.client_id, c.api_url) == (SOURCE_SECRETS, "sec", "http://x/api/v3.3")
    c = resolve_credentials(env={"CM_API_KEY": "env-key", "CM_CLIENT_ID": "env"}, secrets=sec, store=store)
    assert (c.source, c.client_id) == (SOURCE_ENV, "env")
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
    assert managed_by_environment(env={"CM_API_KEY": "x"}, secrets={}) == SOURCE_ENV
    assert managed_by_environment(env={}, secrets={"campaign_monitor": {"api_key": "y"}}) == SOURCE_SECRETS


def test_masking_and_repr_never_show_key():
    c = Credentials(api_key="abcdefgh12345678", client_id="c")
    assert mask_key("abcdefgh12345678").endswith("5678") and "abcd" not in mask_key("abcdefgh12345678")
    assert "abcdefgh" not in repr(c) and "abcdefgh" not in str(c)


def test_corrupt_settings_file_reads_as_empty(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{not json")
    assert SettingsStore(p).load() == {}
