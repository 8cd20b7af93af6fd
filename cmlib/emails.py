"""Email address input: split what a person pasted, validate syntax, normalise, de-duplicate.

Syntax only (``email-validator`` without DNS): the dashboard asks Campaign Monitor whether an
address is known, it does not judge whether the mailbox exists. The address is shown as typed
(domain lower-cased by the validator); de-duplication is case-insensitive.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

# Separators a support lead pastes: commas, semicolons, whitespace, new lines.
_SPLIT = re.compile(r"[,;\s]+")
_ANGLE = re.compile(r"<([^<>]+)>")


@dataclass(frozen=True)
class Address:
    """A valid address: ``email`` as typed (domain normalised), ``key`` for de-duplication."""

    email: str
    original: str

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass(frozen=True)
class InvalidAddress:
    text: str
    reason: str
    position: int | None = None  # 1-based item or row number, when known


def check(text: str) -> Address | InvalidAddress:
    raw = (text or "").strip().strip("'\"")
    m = _ANGLE.search(raw)
    if m:  # "Name <a@x.com>" -> a@x.com
        raw = m.group(1).strip()
    if raw.lower().startswith("mailto:"):
        raw = raw[7:]
    if not raw:
        return InvalidAddress(text=text, reason="empty")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        return InvalidAddress(text=text.strip(), reason=str(exc))
    return Address(email=result.normalized, original=text.strip())


# "Display Name <addr>" at the start of a chunk or after a separator; the name may be quoted
# (and then hold commas) but never holds an "@", so a bare address before it is left alone.
_NAMED = re.compile(r'(?:^|(?<=[,;>]))\s*(?:"[^"]*"|[^,;<>@"\n]*?)\s*<\s*([^<>\s]+)\s*>')
_BRACKETED = re.compile(r"<\s*([^<>\s]+)\s*>")


def _tokens(text: str) -> list[str]:
    """Split pasted text into candidate addresses, turning "Name <addr>" into addr."""
    out: list[str] = []
    for chunk in re.split(r"[\n;]+", text or ""):
        if "<" in chunk and ">" in chunk:
            chunk = _NAMED.sub(lambda m: f" {m.group(1)} ", chunk)
            chunk = _BRACKETED.sub(lambda m: f" {m.group(1)} ", chunk)
            # What is left without an "@" next to bracketed addresses is a display name's words.
            out.extend(t for t in _SPLIT.split(chunk) if t.strip() and "@" in t)
        else:
            out.extend(t for t in _SPLIT.split(chunk) if t.strip())
    return out


@dataclass(frozen=True)
class ParsedInput:
    valid: tuple[Address, ...]
    invalid: tuple[InvalidAddress, ...]
    duplicates: tuple[str, ...]


def parse_addresses(text: str | list[str]) -> ParsedInput:
    """Everything a person typed or linked: valid (first spelling kept), invalid with reasons, duplicates."""
    items = _tokens(text) if isinstance(text, str) else [t for v in text for t in _tokens(v)]
    valid: list[Address] = []
    invalid: list[InvalidAddress] = []
    dupes: list[str] = []
    seen: set[str] = set()
    for i, token in enumerate(items, start=1):
        res = check(token)
        if isinstance(res, InvalidAddress):
            invalid.append(InvalidAddress(res.text, res.reason, i))
        elif res.key in seen:
            dupes.append(res.email)
        else:
            seen.add(res.key)
            valid.append(res)
    return ParsedInput(tuple(valid), tuple(invalid), tuple(dupes))
