"""Where the app's configuration comes from, in order of precedence.

1. the environment (``CM_API_KEY``, ``CM_CLIENT_ID``, ``CM_API_URL``),
2. ``.streamlit/secrets.toml`` section ``[campaign_monitor]`` (``api_key``, ``client_id``, ``api_url``),
3. what an admin saved on the Settings page (a 0600 JSON file in the data folder),
4. nothing: demo mode on the local sandbox.

Kept free of Streamlit so the CLI resolves credentials exactly as the app does.
"""
from __future__ import annotations

import json
import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

DEFAULT_API_URL = "https://api.createsend.com/api/v3.3"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

SOURCE_ENV = "environment"
SOURCE_SECRETS = "secrets.toml"
SOURCE_SETTINGS = "settings"
SOURCE_DEMO = "demo"


def data_dir() -> Path:
    """The app's writable folder (settings, cache, audit log). ``CM_DATA_DIR`` overrides it."""
    p = Path(os.environ.get("CM_DATA_DIR") or (PROJECT_ROOT / ".data"))
    p.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(p, 0o700)
    except OSError:
        pass
    return p


def secrets_path() -> Path:
    return Path(os.environ.get("CM_SECRETS_PATH") or (PROJECT_ROOT / ".streamlit" / "secrets.toml"))


def load_secrets(path: Path | None = None) -> dict[str, Any]:
    """The whole secrets.toml as a dict ({} when absent or unreadable)."""
    path = path or secrets_path()
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def mask_key(key: str | None) -> str:
    """Only the last 4 characters of a key are ever shown."""
    if not key:
        return ""
    return "•" * 8 + key[-4:] if len(key) > 4 else "•" * 8


@dataclass(frozen=True)
class Credentials:
    api_key: str = field(repr=False)
    client_id: str
    api_url: str = DEFAULT_API_URL
    source: str = SOURCE_SETTINGS

    @property
    def is_demo(self) -> bool:
        return self.source == SOURCE_DEMO

    @property
    def masked_key(self) -> str:
        return mask_key(self.api_key)

    def __repr__(self) -> str:  # never print the key, even in a traceback's locals
        return f"Credentials(api_key={self.masked_key!r}, client_id={self.client_id!r}, api_url={self.api_url!r}, source={self.source!r})"


class SettingsStore:
    """The admin-saved settings: one JSON file, owner-only (0600), replaced atomically."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else data_dir() / "settings.json"

    def load(self) -> dict[str, Any]:
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def save(self, data: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(dict(data), fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def update(self, **values: Any) -> dict[str, Any]:
        data = self.load()
        for k, v in values.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        self.save(data)
        return data

    def forget_credentials(self) -> None:
        self.update(api_key=None, client_id=None, api_url=None)


def _clean(v: Any) -> str:
    return str(v).strip() if v is not None else ""


def resolve_credentials(
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    store: SettingsStore | None = None,
) -> Credentials | None:
    """The credentials to use, or None for demo mode. The first source with a key wins whole."""
    env = os.environ if env is None else env
    if _clean(env.get("CM_API_KEY")):
        return Credentials(
            api_key=_clean(env.get("CM_API_KEY")),
            client_id=_clean(env.get("CM_CLIENT_ID")),
            api_url=_clean(env.get("CM_API_URL")) or DEFAULT_API_URL,
            source=SOURCE_ENV,
        )
    secrets = load_secrets() if secrets is None else secrets
    section = secrets.get("campaign_monitor") or {}
    if isinstance(section, Mapping) and _clean(section.get("api_key")):
        return Credentials(
            api_key=_clean(section.get("api_key")),
            client_id=_clean(section.get("client_id")) or _clean(env.get("CM_CLIENT_ID")),
            api_url=_clean(section.get("api_url")) or _clean(env.get("CM_API_URL")) or DEFAULT_API_URL,
            source=SOURCE_SECRETS,
        )
    saved = (store or SettingsStore()).load()
    if _clean(saved.get("api_key")):
        return Credentials(
            api_key=_clean(saved.get("api_key")),
            client_id=_clean(saved.get("client_id")),
            api_url=_clean(saved.get("api_url")) or _clean(env.get("CM_API_URL")) or DEFAULT_API_URL,
            source=SOURCE_SETTINGS,
        )
    return None


def managed_by_environment(env: Mapping[str, str] | None = None, secrets: Mapping[str, Any] | None = None) -> str | None:
    """Which read-only source supplies the credentials (environment / secrets.toml), if any."""
    creds = resolve_credentials(env=env, secrets=secrets, store=SettingsStore(Path(os.devnull)))
    return creds.source if creds else None
