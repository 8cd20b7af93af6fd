"""The words the editor's plans, verdicts and reports share, and reading stored English back.

A plan, a verdict and a report are made once but read in two languages: the operator's (the
dialog, in Russian or English) and English (the audit log's ``result`` column, which is data that
filters and scripts read and must not change with whoever made the change). So their sentences
are :class:`cmlib.lazy_text.LazyText` values: the English text as the ``str`` (what the audit log
stores), any language with :func:`cmlib.lazy_text.text_of` where a person reads it. The states
and list names inside them are lazy too (:func:`state_lazy`, :func:`names_lazy`).

The audit log keeps the English text. :func:`parse_english` reads such a text back into a
LazyText (the templates a result can hold are listed by the modules that make them), so the Audit
page can show a stored row in the reader's language; a text no template matches is shown as
stored.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

from .. import lazy_text as lazy
from ..errors import REASON_CODE, REASON_HTTP
from ..i18n import N_, Language, t
from ..lazy_text import LazyText
from ..states import STATE_STYLES, state_word

NOT_ON_LIST = N_("not on the list")
AND = N_("{first} and {last}")
ARROW = "{before} → {after}"  # no words: the same in every language


def state_text(state: str | None, *, lang: Language | str | None = None) -> str:
    """A state as the dialog, its plan and its report say it: the product's word from
    :mod:`cmlib.states` (``Active`` -> ``subscribed`` / «подписан»), or "not on the list"."""
    return state_word(state, lang) if state else t(NOT_ON_LIST, lang=lang)


def state_lazy(state: str | None) -> str:
    """:func:`state_text` to put into a lazy sentence: said in the language it is read in (a
    state the API invented later keeps its own name)."""
    if not state:
        return lazy.t(NOT_ON_LIST)
    style = STATE_STYLES.get(state)
    return lazy.t(style.word) if style is not None else state


def join_names(names: Sequence[str], *, lang: Language | str | None = None) -> str:
    """``A``, ``A and B``, ``A, B and C`` (``и`` in Russian); the names are data, never translated."""
    names = list(names)
    if len(names) < 2:
        return names[0] if names else ""
    return t(AND, lang=lang, first=", ".join(names[:-1]), last=names[-1])


def names_lazy(names: Iterable[str]) -> str:
    """:func:`join_names` to put into a lazy sentence."""
    names = list(names)
    if len(names) < 2:
        return names[0] if names else ""
    return lazy.t(AND, first=", ".join(names[:-1]), last=names[-1])


# --------------------------------------------------------------------------- reading English back
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MAX_DEPTH = 4
DATA_PARAMS = frozenset({"list", "email", "message", "code", "status", "seconds"})


@cache
def _pattern(msgid: str) -> re.Pattern[str]:
    out, pos = [], 0
    for m in _PLACEHOLDER.finditer(msgid):
        out.append(re.escape(msgid[pos:m.start()]))
        out.append(f"(?P<{m.group(1)}>.+?)")
        pos = m.end()
    out.append(re.escape(msgid[pos:]))
    return re.compile("".join(out), re.DOTALL)


@cache
def _english_states() -> dict[str, str]:
    """The English word of each state -> the state (``subscribed`` -> ``Active``, ``not on the list`` -> "")."""
    words = {state_text(s, lang=Language.EN): s for s in STATE_STYLES}
    words[state_text("", lang=Language.EN)] = ""
    return words


def _param(name: str, text: str, templates: Sequence[str], depth: int) -> str:
    if name.endswith("state"):
        state = _english_states().get(text)
        return state_lazy(state) if state is not None else text
    if name.endswith("names"):
        parts = text.rsplit(" and ", 1)
        return names_lazy([*parts[0].split(", "), parts[1]]) if len(parts) == 2 else text
    if name in DATA_PARAMS:
        return text  # data: a list name, an address, Campaign Monitor's own message
    parsed = parse_english(text, templates, _depth=depth + 1)
    return parsed if parsed is not None else text


def parse_english(text: str, templates: Sequence[str], *, _depth: int = 0) -> LazyText | None:
    """The lazy sentence among ``templates`` that reads ``text`` in English, or None.

    Placeholders read back by their name: ``…state`` is a state word, ``…names`` names joined with
    "and", ``list``/``email``/``message``/``code``/``status``/``seconds`` are data; any other may
    itself be one of the templates (an error's reason is also tried as "Code …: …" / "HTTP …: …")."""
    if _depth > _MAX_DEPTH or not text:
        return None
    for msgid in (*templates, REASON_CODE, REASON_HTTP):
        m = _pattern(msgid).fullmatch(text)
        if m is not None:
            return lazy.t(msgid, **{k: _param(k, v, templates, _depth) for k, v in m.groupdict().items()})
    return None
