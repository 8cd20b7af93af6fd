"""Where the app's configuration comes from, in order of precedence.

1. the environment (``CM_API_KEY``, ``CM_CLIENT_ID``, ``CM_API_URL``),
2. ``.streamlit/secrets.toml`` section ``[campaign_monitor]`` (``api_key``, ``client_id``, ``api_url``),
3. what an admin saved on the Settings page (a 0600 JSON file in the data folder; with
   ``CM_DATABASE_URL`` set, a table in that database, shared by every replica),
4. nothing: demo mode on the local sandbox.

Credentials are (key, URL) pairs per source: the first source with a key supplies the key and
the URL *of that same source* (or the official default when that source names none); a key is
never combined with another source's URL. A ``CM_API_URL`` in the environment therefore never
redirects a key saved on the Settings page or written in secrets.toml: whoever can set an
environment variable or type a URL must not be able to receive a key they never saw. The saved
pair is recorded together, and :func:`choose_key` refuses to reuse the saved key for any other URL.

Kept free of Streamlit so the CLI resolves credentials exactly as the app does.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from . import lazy_text as later
from .urls import display_url, normalize_api_url, require_api_url, same_api_url

DEFAULT_API_URL = "https://api.createsend.com/api/v3.3"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class CredentialSource(StrEnum):
    """Where the credentials in use come from (the values are what older code and tests compare)."""

    ENV = "environment"
    SECRETS = "secrets.toml"
    SETTINGS = "settings"
    DEMO = "demo"


# Aliases kept for callers not yet moved to the enum (cmlib/runtime.py imports SOURCE_DEMO).
SOURCE_ENV = CredentialSource.ENV
SOURCE_SECRETS = CredentialSource.SECRETS
SOURCE_SETTINGS = CredentialSource.SETTINGS
SOURCE_DEMO = CredentialSource.DEMO


def data_dir() -> Path:
    """The app's writable folder (settings, cache, audit log). ``CM_DATA_DIR`` overrides it."""
    p = Path(os.environ.get("CM_DATA_DIR") or (PROJECT_ROOT / ".data"))
    p.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(p, 0o700)
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
    source: CredentialSource = CredentialSource.SETTINGS

    @property
    def is_demo(self) -> bool:
        return self.source == CredentialSource.DEMO

    @property
    def masked_key(self) -> str:
        return mask_key(self.api_key)

    def __repr__(self) -> str:  # never print the key, even in a traceback's locals
        return (f"Credentials(api_key={self.masked_key!r}, client_id={self.client_id!r}, api_url={self.api_url!r}, "
                f"source={str(self.source)!r})")


class SettingsBackend(Protocol):
    """Where the saved settings are kept: a JSON file, or a table (:mod:`cmlib.settings_db`)."""

    def load(self) -> dict[str, Any]: ...

    def save(self, data: Mapping[str, Any]) -> None: ...

    def update(self, values: Mapping[str, Any]) -> dict[str, Any]: ...


class JsonFileSettings:
    """One JSON file, owner-only (0600), replaced atomically: the single-process default."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"JsonFileSettings({str(self.path)!r})"

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
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def update(self, values: Mapping[str, Any]) -> dict[str, Any]:
        data = self.load()
        for k, v in values.items():
            if v is None:
                data.pop(k, None)
            else:
                data[k] = v
        self.save(data)
        return data


class SettingsStore:
    """The admin-saved settings.

    By default a 0600 JSON file in the data folder (or the ``path`` given). With
    ``CM_DATABASE_URL`` set (or ``url`` given) and no path, a ``settings`` table in that database
    instead, so every replica of a team deployment sees what an admin saved on any of them; a
    database that cannot be reached then raises
    :class:`cmlib.settings_db.SettingsUnavailableError` rather than reading as "nothing saved".
    """

    def __init__(self, path: str | Path | None = None, *, url: str | None = None) -> None:
        self.path: Path | None
        self._backend: SettingsBackend
        if path:
            self.path = Path(path)
            self._backend = JsonFileSettings(self.path)
            return
        if url is None:
            from .deployment import database_url

            url = database_url()
        if url:
            from .settings_db import DatabaseSettings  # SQLAlchemy only when a database is configured

            self.path = None
            self._backend = DatabaseSettings(url)
        else:
            self.path = data_dir() / "settings.json"
            self._backend = JsonFileSettings(self.path)

    def __repr__(self) -> str:
        return f"SettingsStore({self._backend!r})"

    def load(self) -> dict[str, Any]:
        return self._backend.load()

    def save(self, data: Mapping[str, Any]) -> None:
        self._backend.save(data)

    def update(self, **values: Any) -> dict[str, Any]:
        """Set the given settings (None removes one); the others stay as they are."""
        return self._backend.update(values)

    def forget_credentials(self) -> None:
        self.update(api_key=None, client_id=None, api_url=None)

    def save_credentials(self, api_key: str, client_id: str, api_url: str) -> None:
        """Record the key together with the one URL it may be sent to (normalised).

        Raises :class:`cmlib.urls.ApiUrlError` for a URL the key must not go to, so nothing
        unusable is ever stored.
        """
        url = require_api_url(api_url)
        self.update(api_key=api_key.strip(), client_id=client_id.strip(), api_url=url)

    def saved_credentials(self) -> Credentials | None:
        """The saved (key, client, URL) triple; a file saved without a URL pairs with the default."""
        saved = self.load()
        if not _clean(saved.get("api_key")):
            return None
        return Credentials(
            api_key=_clean(saved.get("api_key")),
            client_id=_clean(saved.get("client_id")),
            api_url=_clean(saved.get("api_url")) or DEFAULT_API_URL,
            source=CredentialSource.SETTINGS,
        )


def _clean(v: Any) -> str:
    return str(v).strip() if v is not None else ""


def resolve_credentials(
    env: Mapping[str, str] | None = None,
    secrets: Mapping[str, Any] | None = None,
    store: SettingsStore | None = None,
) -> Credentials | None:
    """The credentials to use, or None for demo mode: the key and URL pair of the first source with a key.

    A key only ever travels with its own source's URL (or the official default): the secrets
    key never takes ``CM_API_URL``, nor does the key saved on the Settings page. Only the client
    ID may come from a later source (``CM_CLIENT_ID`` beside a secrets.toml key), as it is no secret.
    """
    env = os.environ if env is None else env
    if _clean(env.get("CM_API_KEY")):
        return Credentials(
            api_key=_clean(env.get("CM_API_KEY")),
            client_id=_clean(env.get("CM_CLIENT_ID")),
            api_url=_clean(env.get("CM_API_URL")) or DEFAULT_API_URL,
            source=CredentialSource.ENV,
        )
    secrets = load_secrets() if secrets is None else secrets
    section = secrets.get("campaign_monitor") or {}
    if isinstance(section, Mapping) and _clean(section.get("api_key")):
        return Credentials(
            api_key=_clean(section.get("api_key")),
            client_id=_clean(section.get("client_id")) or _clean(env.get("CM_CLIENT_ID")),
            api_url=_clean(section.get("api_url")) or DEFAULT_API_URL,
            source=CredentialSource.SECRETS,
        )
    return (store or SettingsStore()).saved_credentials()


def ignored_env_url(creds: Credentials | None, env: Mapping[str, str] | None = None) -> str | None:
    """A note when ``CM_API_URL`` is set but not used, because the key in use belongs to another URL.

    The CLI logs it and the Settings page shows it, so nobody believes their ``CM_API_URL``
    is being asked when it is not.
    """
    env = os.environ if env is None else env
    env_url = _clean(env.get("CM_API_URL"))
    if creds is None or creds.source in (CredentialSource.ENV, CredentialSource.DEMO) or not env_url:
        return None
    if same_api_url(env_url, creds.api_url) or env_url == creds.api_url:
        return None
    # A LazyText: the Settings page says it in the reader's language, the log in English.
    if creds.source == CredentialSource.SETTINGS:
        return later.t("CM_API_URL ({env_url}) is ignored: the API key saved on the Settings page is only sent to "
                       "its own URL ({url}). To use another server, set CM_API_KEY (and CM_CLIENT_ID) together with "
                       "CM_API_URL.", env_url=display_url(env_url), url=display_url(creds.api_url))
    return later.t("CM_API_URL ({env_url}) is ignored: the API key in secrets.toml is only sent to its own URL "
                   "({url}). To use another server, set CM_API_KEY (and CM_CLIENT_ID) together with CM_API_URL.",
                   env_url=display_url(env_url), url=display_url(creds.api_url))


class KeyOrigin(StrEnum):
    """Where the key for a test or save on the Settings page comes from."""

    TYPED = "typed"  # typed into the field now: may go to any acceptable URL
    SAVED = "saved"  # the saved key, for the very URL it was saved with
    MISSING = "missing"  # nothing typed, nothing saved
    OTHER_URL = "other_url"  # nothing typed, and the saved key belongs to another URL: refused


@dataclass(frozen=True)
class KeyChoice:
    origin: KeyOrigin
    api_key: str = field(default="", repr=False)
    message: str = ""

    @property
    def usable(self) -> bool:
        return self.origin in (KeyOrigin.TYPED, KeyOrigin.SAVED)


def choose_key(typed_key: str | None, api_url: str, saved: Credentials | None) -> KeyChoice:
    """The key to send to ``api_url``: the one typed, else the saved one *only* for its own URL.

    This is what stops "leave the key field empty, point the URL at my server, press Test":
    the saved key never leaves for a URL it was not saved with; that takes typing it again.
    """
    typed = (typed_key or "").strip()
    if typed:
        return KeyChoice(KeyOrigin.TYPED, typed)
    if saved is None or not saved.api_key:
        return KeyChoice(KeyOrigin.MISSING, message=later.t("Enter an API key first."))
    if same_api_url(api_url, saved.api_url):
        return KeyChoice(KeyOrigin.SAVED, saved.api_key)
    own = display_url(normalize_api_url(saved.api_url) or saved.api_url)
    other = display_url(api_url)
    if other:
        return KeyChoice(KeyOrigin.OTHER_URL, message=later.t(
            "The saved key {key} is only sent to the URL it was saved with ({url}). To use {other}, type the API "
            "key again.", key=saved.masked_key, url=own, other=other))
    return KeyChoice(KeyOrigin.OTHER_URL, message=later.t(
        "The saved key {key} is only sent to the URL it was saved with ({url}). To use another URL, type the API "
        "key again.", key=saved.masked_key, url=own))


def managed_by_environment(env: Mapping[str, str] | None = None,
                           secrets: Mapping[str, Any] | None = None) -> CredentialSource | None:
    """Which read-only source supplies the credentials (environment / secrets.toml), if any."""
    creds = resolve_credentials(env=env, secrets=secrets, store=SettingsStore(Path(os.devnull)))
    return creds.source if creds else None
