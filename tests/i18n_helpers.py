"""Finding English left on a Russian page, by the English catalog's own strings.

Every message id in the catalog *is* the English text. A Russian page that still shows one of
them (or a literal piece of one, between its placeholders) shows untranslated English. Message
ids whose Russian is the same text ("CSV", "API") cannot be told apart and are skipped, and so
are pieces shorter than four letters ("of", "to"), which would match inside any value. Values
from Campaign Monitor (list and campaign names) may legitimately be English: a test passes them
as ``allow``.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

from babel.messages.pofile import read_po

from cmlib.i18n import Language, po_path

_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
_ICON = re.compile(r":material/[a-z0-9_]+:")  # an icon's name is not a word a person reads


@cache
def english_pieces() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """(message id, pattern of one literal piece) for every translated message."""
    with po_path(Language.RU).open("rb") as fh:
        catalog = read_po(fh, locale="ru")
    pieces: dict[str, tuple[str, re.Pattern[str]]] = {}
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        for msgid in ids:
            if msgid in strings:
                continue
            for piece in _PLACEHOLDER.split(msgid):
                piece = piece.strip(" \t\n.,:;!?()[]«»\"'—–-·…")
                if sum(c.isalpha() for c in piece) < 4 or not re.search(r"[A-Za-z]", piece):
                    continue
                if piece not in pieces:
                    pieces[piece] = (msgid, re.compile(r"(?<![A-Za-z])" + re.escape(piece) + r"(?![A-Za-z])"))
    return tuple(pieces.values())


def untranslated(texts: Iterable[tuple[str, str]], allow: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(where, English message id, text) for every shown text holding a piece of an English
    message; ``allow`` are values (list names, campaign subjects, addresses) to ignore."""
    allowed = [a for a in allow if a]
    found = []
    for where, text in texts:
        cleaned = _ICON.sub(" ", text)
        for value in allowed:
            cleaned = cleaned.replace(value, " ")
        for msgid, pattern in english_pieces():
            if pattern.search(cleaned):
                found.append((where, msgid, text[:160]))
                break
    return found
