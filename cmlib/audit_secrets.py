"""Configured credentials, and finding them in text meant for the audit log.

Split from :mod:`cmlib.audit` (which re-exports every name here): the same check runs on
operator-supplied text *before* a change is sent (``cmlib.subscriptions.apply``) and on every row
before it is stored, so a key pasted into a reason or an operator name is refused up front
instead of leaving a change without its audit row. A secret's value never appears in a message:
only its label ("the API key") and the field it was found in.
"""
from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .config import load_secrets
from .i18n import N_

MIN_SECRET_LENGTH = 8  # shorter values would refuse ordinary words
_SECRET_KEY_WORDS = ("secret", "password", "api_key", "apikey", "token")


@dataclass(frozen=True)
class Secret:
    """A configured credential and what to call it in a message (the value is never shown)."""

    label: str  # "the API key", "the admin password", ...: English (N_-marked), translate with t() where shown
    value: str = field(repr=False)


@dataclass(frozen=True)
class SecretFinding:
    """Which field holds which secret: enough to tell the operator what to remove."""

    field: str
    label: str

    def describe(self) -> str:
        return f"the {self.field.replace('_', ' ')} contains {self.label}"


class SecretInTextError(ValueError):
    """Text meant for the audit log (or sent with a change) contains a configured secret."""

    def __init__(self, findings: Sequence[SecretFinding]) -> None:
        self.findings = tuple(findings)
        what = "; ".join(dict.fromkeys(f.describe() for f in self.findings))
        super().__init__(f"{what}: remove it (credentials never go into a reason or an audit row)")


def as_secret(s: Secret | str) -> Secret:
    return s if isinstance(s, Secret) else Secret(N_("a configured credential"), s)


def api_key_secrets(api_key: str | None) -> tuple[Secret, ...]:
    """The key itself and the Basic header it travels in (a pasted ``Authorization:`` line)."""
    if not api_key:
        return ()
    basic = base64.b64encode(f"{api_key}:x".encode()).decode("ascii")
    return (Secret(N_("the API key"), api_key), Secret(N_("the API key (as an Authorization header)"), basic))


def configured_secrets(api_key: str | None = None, *, env: Mapping[str, str] | None = None,
                       secrets_toml: Mapping[str, Any] | None = None) -> tuple[Secret, ...]:
    """Every credential this deployment knows: the API key, the admin password, and each
    secrets.toml value whose name says it is one (``api_key``, ``*secret*``, ``*password*``,
    ``*token*``, e.g. ``[auth] client_secret`` and ``cookie_secret``)."""
    from .access import (
        admin_password,  # access imports config, as we do; imported late to stay light
    )

    out: list[Secret] = list(api_key_secrets(api_key))
    toml = load_secrets() if secrets_toml is None else secrets_toml
    password = admin_password(env=env, secrets=toml)
    if password:
        out.append(Secret(N_("the admin password"), password))

    def walk(node: Mapping[str, Any], path: str) -> None:
        for k, v in node.items():
            name = f"{path}.{k}" if path else str(k)
            if isinstance(v, Mapping):
                walk(v, name)
            elif isinstance(v, str) and any(w in str(k).lower() for w in _SECRET_KEY_WORDS):
                out.append(Secret(f"a credential from secrets.toml ({name})", v))

    walk(toml, "")
    seen: set[str] = set()
    unique = []
    for s in out:
        if len(s.value.strip()) >= MIN_SECRET_LENGTH and s.value not in seen:
            seen.add(s.value)
            unique.append(s)
    return tuple(unique)


def find_secrets(values: Mapping[str, object], secrets: Iterable[Secret | str]) -> list[SecretFinding]:
    """Which of ``values`` (field name → text) contain which secret; the one check used both
    before a change is sent and before an audit row is stored."""
    found: list[SecretFinding] = []
    usable = [as_secret(s) for s in secrets]
    usable = [s for s in usable if s.value and len(s.value.strip()) >= MIN_SECRET_LENGTH]
    for name, value in values.items():
        text = "" if value is None else str(value)
        found.extend(SecretFinding(name, s.label) for s in usable if s.value in text or s.value.strip() in text)
    return found
