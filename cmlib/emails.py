"""Email address input: one normaliser, one splitter and one judge for every surface.

The Lookup box, ``?email=`` links, Bulk cells and pasted lists, and the CLI all come through
here, so an address is accepted, refused or rewritten the same way wherever it was typed.

* :func:`normalise_text` drops invisible format characters (Unicode category Cf: the WORD
  JOINER the app itself puts into markdown, zero-width spaces, BOMs, soft hyphens, direction
  marks). They are never part of an address, and a person cannot see them to remove them.
* :func:`split_items` cuts pasted text into items: commas, semicolons, white space and new lines
  separate; ``"Doe, Jane" <jane@x.org>`` and ``Ivan Petrov <ivan@x.ru>`` are one item each; a
  ``<...>`` or ``"..."`` run is never cut, so ``<script>alert(1)</script>`` stays one item that
  can be named and refused, instead of being dropped or mangled.
* :func:`check` judges one item (or one Bulk cell): syntax only (``email-validator`` without
  DNS), because the dashboard asks Campaign Monitor whether an address is known, not whether a
  mailbox exists. Every refusal carries a :class:`Rejection` and a sentence a person understands.

Internationalised addresses: Campaign Monitor accepts an internationalised *domain* in its
ASCII (IDNA/punycode) form, and answers "Code 1: Invalid Email Address" to anything else. So
``user@bücher.de`` is looked up as ``user@xn--bcher-kva.de`` (:attr:`Address.email`, what is
sent) while :attr:`Address.display` keeps the Unicode spelling; a non-ASCII part before the
``@`` (``андрей@пример.рф``) cannot be sent at all and is refused up front, with that reason.
De-duplication is case-insensitive on the form that is sent.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from enum import StrEnum

from . import lazy_text as later
from .i18n import N_
from .lazy_text import LazyText, text_of


class Rejection(StrEnum):
    """Why an item was not used (stable codes for tests, exports and JSON)."""

    EMPTY = "empty"
    MARKUP = "markup"  # "<" or ">" that are not the brackets of "Name <address>"
    QUOTED = "quoted"  # "o'brien"@example.com: a quoted part before the @
    NON_ASCII_LOCAL = "non_ascii_local"  # андрей@пример.рф: Campaign Monitor cannot take it
    SEVERAL = "several"  # two or more addresses in one Bulk cell
    SYNTAX = "syntax"  # anything else email-validator refuses; its own sentence is the reason


@dataclass(frozen=True)
class Address:
    """A usable address.

    ``email`` is what is sent to Campaign Monitor and used everywhere as the address (ASCII:
    the domain in IDNA form, lower-cased); ``display`` is the same address with a Unicode domain
    for people; ``original`` is the item as typed.
    """

    email: str
    original: str
    display: str = ""

    def __post_init__(self) -> None:
        if not self.display:
            object.__setattr__(self, "display", self.email)

    @property
    def key(self) -> str:
        return self.email.lower()

    @property
    def is_international(self) -> bool:
        return self.display != self.email


@dataclass(frozen=True)
class InvalidAddress:
    """An item that is not a usable address. ``why`` is said in the reader's language:
    :attr:`reason` in the current one, :meth:`reason_in` in a given one (a bulk run's, the CLI's)."""

    text: str
    why: str | LazyText
    position: int | None = None  # 1-based item or row number, when known
    kind: Rejection = Rejection.SYNTAX

    @property
    def reason(self) -> str:
        return text_of(self.why)

    def reason_in(self, lang: str | None = None) -> str:
        return text_of(self.why, lang)


# --------------------------------------------------------------------------- normalising
def is_invisible(ch: str) -> bool:
    """A format character (Cf): rendered as nothing, never part of an address."""
    return unicodedata.category(ch) == "Cf"


def normalise_text(text: str | None) -> str:
    """``text`` without invisible format characters (U+2060 WORD JOINER, U+200B, U+FEFF, ...).

    Applied to everything a person typed, pasted, uploaded or linked before it is split or
    judged, so text copied from the app (which may carry the app's own WORD JOINERs) pastes back.
    """
    if not text:
        return ""
    if text.isascii():  # no format character is ASCII; a big pasted file is mostly this case
        return text
    return "".join(ch for ch in text if not is_invisible(ch))


# --------------------------------------------------------------------------- splitting
_HARD = frozenset(",;\n\r")  # separators that also end a "Display Name <address>" group


@dataclass(frozen=True)
class Item:
    """One piece of pasted text: ``text`` as it stood (normalised), ``address`` the part to
    judge (the address inside ``<...>`` of a named item, else the whole text)."""

    text: str
    address: str


def _segments(text: str) -> list[tuple[str, bool]]:
    """``(segment, ends_group)`` pairs: runs between separators, with ``"..."`` and ``<...>``
    runs kept whole (a quote or bracket without its partner on the same line is a character)."""
    out: list[tuple[str, bool]] = []
    buf: list[str] = []
    i, n = 0, len(text)
    ahead: dict[str, int] = {}  # next position of '"', '>' and newline: linear time on any input

    def next_of(ch: str, start: int) -> int:
        pos = ahead.get(ch)
        if pos is None or (pos != -1 and pos < start):
            pos = ahead[ch] = text.find(ch, start)
        return pos

    def flush(hard: bool) -> None:
        if buf:
            out.append(("".join(buf), hard))
            buf.clear()
        elif hard and out:
            out[-1] = (out[-1][0], True)

    while i < n:
        ch = text[i]
        if ch in ('"', "<"):
            close = '"' if ch == '"' else ">"
            end = next_of(close, i + 1)
            line_end = next_of("\n", i + 1)
            if end != -1 and (line_end == -1 or end < line_end):
                buf.append(text[i:end + 1])
                i = end + 1
                continue
        if ch in _HARD:
            flush(True)
        elif ch.isspace():
            flush(False)
        else:
            buf.append(ch)
        i += 1
    flush(True)
    return out


# "Display Name <address>" as one segment: a name without "@" or brackets, then the brackets.
# (Unambiguous on purpose, so that a long run of "a@a@..." cannot make the match quadratic.)
_NAMED_PATTERN = re.compile(r"^(?P<name>[^<>@]*)<\s*(?P<addr>[^<>\s]+)\s*>$", re.DOTALL)


def _named(segment: str) -> re.Match[str] | None:
    m = _NAMED_PATTERN.match(segment)
    return m if m and "@" in m.group("addr") else None


def _is_name_word(seg: str) -> bool:
    return not any(c in seg for c in "@<>")


def split_items(text: str | None) -> list[Item]:
    """Pasted text as items, in order. Every character that is not a separator ends up in an
    item, so nothing is dropped without being judged."""
    items: list[Item] = []
    pending: list[str] = []  # words that may be the display name of a following "<address>"

    def flush_pending() -> None:
        items.extend(Item(w, w) for w in pending)
        pending.clear()

    for seg, ends_group in _segments(normalise_text(text)):
        named = _named(seg)
        if named:
            whole = " ".join([*pending, seg])
            pending.clear()
            items.append(Item(whole, named.group("addr")))
        elif _is_name_word(seg):
            pending.append(seg)
        else:
            flush_pending()
            items.append(Item(seg, seg))
        if ends_group:
            flush_pending()
    flush_pending()
    return items


# --------------------------------------------------------------------------- judging
_QUOTES = ('"', "'")
EMPTY_REASON = later.t("empty")

# email-validator's sentences (English only), each as a message of ours that says the same, so a
# Russian page explains the refusal in Russian. The English ids are the library's own words.
_VALIDATOR_SENTENCES = {text: later.t(text) for text in (
    N_("An email address must have an @-sign."),
    N_("There must be something before the @-sign."),
    N_("There must be something after the @-sign."),
    N_("An email address cannot have two periods in a row."),
    N_("An email address cannot start with a period."),
    N_("An email address cannot have a period immediately before the @-sign."),
    N_("An email address cannot have a period immediately after the @-sign."),
    N_("An email address cannot end with a period."),
    N_("An email address cannot have a hyphen immediately after the @-sign."),
    N_("An email address cannot end with a hyphen."),
    N_("An email address cannot have a period and a hyphen next to each other."),
    N_("The part after the @-sign is not valid. It should have a period."),
    N_("The part after the @-sign is not valid. It is not within a valid top-level domain."),
    N_("The part after the @-sign is a special-use or reserved name that cannot be used with email."),
    N_("The email address contains invalid characters before the @-sign."),
    N_("The email address contains an invalid character."),
    N_("There can't be anything after the email address."),
    N_("The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign."),
    N_("The email address has the \"small commercial at\" character instead of a regular at-sign."),
)}
_VALIDATOR_CHARS = (
    (re.compile(r"The email address contains invalid characters before the @-sign: (?P<chars>.+)\.", re.DOTALL),
     N_("The email address contains invalid characters before the @-sign: {chars}.")),
    (re.compile(r"The part after the @-sign contains invalid characters: (?P<chars>.+)\.", re.DOTALL),
     N_("The part after the @-sign contains invalid characters: {chars}.")),
    (re.compile(r"The email address contains unsafe characters: (?P<chars>.+)\.", re.DOTALL),
     N_("The email address contains unsafe characters: {chars}.")),
)
_TOO_LONG = re.compile(r"The email address is too long(?P<where> (?:before|after) the @-sign)? "
                       r"\((?P<n>\d+) characters? too many\)\.")


def _too_long(where: str, n: int) -> LazyText:
    if where == " before the @-sign":
        return later.nt("The email address is too long before the @-sign ({n} character too many).",
                        "The email address is too long before the @-sign ({n} characters too many).", n)
    if where == " after the @-sign":
        return later.nt("The email address is too long after the @-sign ({n} character too many).",
                        "The email address is too long after the @-sign ({n} characters too many).", n)
    return later.nt("The email address is too long ({n} character too many).",
                    "The email address is too long ({n} characters too many).", n)


def validator_reason(message: str) -> LazyText:
    """email-validator's refusal in the reader's language (the library speaks English only);
    a sentence it adds in a later version is shown as it is, introduced in the reader's language."""
    known = _VALIDATOR_SENTENCES.get(message)
    if known is not None:
        return known
    for pattern, msgid in _VALIDATOR_CHARS:
        m = pattern.fullmatch(message)
        if m:
            return later.t(msgid, chars=m.group("chars"))
    m = _TOO_LONG.fullmatch(message)
    if m:
        return _too_long(m.group("where") or "", int(m.group("n")))
    return later.t("not a valid address: {detail}", detail=message)


def _unwrap(candidate: str) -> str:
    s = candidate.strip()
    if len(s) >= 2 and s[0] == s[-1] and s[0] in _QUOTES:  # "anna@x.com" or 'anna@x.com'
        s = s[1:-1].strip()
    if s.lower().startswith("mailto:"):
        s = s[7:].strip()
    return s


def judge(item: Item) -> Address | InvalidAddress:
    """The verdict on one item. The reason names what is wrong with the item as it stood."""
    shown = item.text.strip()
    raw = _unwrap(item.address)
    if not raw:
        return InvalidAddress(shown, EMPTY_REASON, kind=Rejection.EMPTY)
    if "<" in raw or ">" in raw:
        if "@" in raw:
            why = later.t("contains “<” or “>” (HTML?): these are only allowed around a whole address, "
                          "as in Name <address>")
        else:
            why = later.t("looks like HTML markup, not an email address")
        return InvalidAddress(shown, why, kind=Rejection.MARKUP)
    # Imported on the first address judged, not with this module: its Unicode tables cost a first
    # page that has no address yet (~30 ms) before it is drawn.
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        message = str(exc)
        if raw.startswith('"') and "quot" in message.lower():
            return InvalidAddress(shown, later.t("the part before the @ is in quotes; Campaign Monitor does not "
                                                 "accept quoted addresses"), kind=Rejection.QUOTED)
        return InvalidAddress(shown, validator_reason(message), kind=Rejection.SYNTAX)
    if result.ascii_email is None:
        return InvalidAddress(
            shown,
            later.t("the part before the @ (“{local}”) has non-ASCII characters, which Campaign Monitor "
                    "does not accept (an internationalised domain after the @ is fine)", local=result.local_part),
            kind=Rejection.NON_ASCII_LOCAL,
        )
    return Address(email=result.ascii_email, original=shown, display=result.normalized)


def check(text: str | None) -> Address | InvalidAddress:
    """One field that should hold one address (a Bulk cell, one ``?email=`` value item).

    Two or more addresses in it are refused as such; other stray words are judged together
    with the address, so the validator names the character that does not belong.
    """
    cleaned = normalise_text(text).strip()
    named = _named(cleaned)
    if named:  # the whole field is "Name <address>"; the name may hold commas ("Doe, Jane <j@x.org>")
        return judge(Item(cleaned, named.group("addr")))
    items = split_items(cleaned)
    if not items:
        return InvalidAddress(cleaned, EMPTY_REASON, kind=Rejection.EMPTY)
    if len(items) == 1:
        return judge(items[0])
    with_at = [it for it in items if "@" in it.address]
    if len(with_at) > 1:
        return InvalidAddress(cleaned, later.nt("{n} address in one field; give one address per row",
                                                "{n} addresses in one field; give one address per row",
                                                len(with_at)), kind=Rejection.SEVERAL)
    return judge(Item(cleaned, cleaned))


@dataclass(frozen=True)
class ParsedInput:
    valid: tuple[Address, ...]
    invalid: tuple[InvalidAddress, ...]
    duplicates: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Nothing at all was given (only separators or invisible characters)."""
        return not (self.valid or self.invalid or self.duplicates)


def parse_addresses(text: str | list[str] | tuple[str, ...]) -> ParsedInput:
    """Everything a person typed or linked: valid (first spelling kept), invalid with reasons,
    duplicates. A list (``?email=`` values, CLI arguments) is split value by value."""
    items = split_items(text) if isinstance(text, str) else [it for v in text for it in split_items(v)]
    valid: list[Address] = []
    invalid: list[InvalidAddress] = []
    dupes: list[str] = []
    seen: set[str] = set()
    for i, item in enumerate(items, start=1):
        res = judge(item)
        if isinstance(res, InvalidAddress):
            invalid.append(replace(res, position=i))
        elif res.key in seen:
            dupes.append(res.email)
        else:
            seen.add(res.key)
            valid.append(res)
    return ParsedInput(tuple(valid), tuple(invalid), tuple(dupes))


def candidates(text: str | None) -> list[str]:
    """The text to judge of each item (the address of a named item): for lists pasted into Bulk."""
    return [it.address for it in split_items(text)]


def linked_addresses(values: list[str] | tuple[str, ...]) -> list[str]:
    """The addresses of ``?email=a@x.com&email=b@y.com`` links (repeated and/or comma-separated).

    A raw ``+`` in a hand-written link arrives as a space, so a single address that contains a
    space and no display name gets its ``+`` back (``maria news@x.com`` -> ``maria+news@x.com``).
    """
    out: list[str] = []
    for value in values:
        for piece in value.split(","):
            piece = piece.strip()
            if " " in piece and piece.count("@") == 1 and "<" not in piece:
                piece = "+".join(piece.split())
            if piece:
                out.append(piece)
    return out
