"""Sentences cmlib builds for a person now and someone reads later, in the reader's language.

A lookup's problems and a bulk run's row reasons ("Duplicate of row 2", "Not looked up: the run
was cancelled") are made on worker threads that do not know the reader's language, kept with
the results, shown to everyone watching (each in their own language) and written to downloads
built later in yet another thread. A Settings report is made in a button's callback and shown on
later reruns, maybe after the language was switched. So such a sentence cannot be translated
when it is made: :func:`t` and :func:`nt` here return a :class:`LazyText`, which *is* the
English sentence (a ``str``: logs, exceptions, existing callers and tests see exactly what they
saw before) and also remembers its message id and parameters, so :func:`text_of` renders it in
any language with :func:`cmlib.i18n.t` where it is shown.

Parameters may be LazyTexts themselves (a reason inside a reason), rendered in the same language,
or exceptions, said with :func:`cmlib.errors.describe` in that language (kept as their texts in
every language, not as the exception and its traceback). Anything else (a list name, an API
message) is shown as it is; numbers are formatted for the language as :func:`cmlib.i18n.t` does.

``lazy_text.t("…")`` and ``lazy_text.nt("…", "…", n)`` are found by the catalog extraction like
the plain ones. :func:`to_json` / :func:`from_json` keep a LazyText through a JSON column (a
durable job's results), so a worker's reasons are still translatable where they are read.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import i18n
from .i18n import Language

__all__ = ["LazyText", "Text", "error_text", "from_json", "join", "nt", "say", "t", "text_of", "to_json"]


class LazyText(str):
    """A message for a person: its English text as the ``str`` value, any language on demand."""

    msgid: str
    plural: str | None
    n: int | None
    params: dict[str, Any]
    lower_first: bool

    def __new__(cls, msgid: str, plural: str | None = None, n: int | None = None,
                params: Mapping[str, Any] | None = None, *, lower_first: bool = False) -> LazyText:
        values = {k: (error_text(v) if isinstance(v, BaseException) else v) for k, v in (params or {}).items()}
        english = _render(msgid, plural, n, values, lower_first, Language.EN)
        obj = super().__new__(cls, english)
        obj.msgid, obj.plural, obj.n, obj.params, obj.lower_first = msgid, plural, n, values, lower_first
        return obj

    def text(self, lang: Language | str | None = None) -> str:
        """This message in ``lang`` (default: the current language)."""
        language = i18n.resolve(lang)
        if language is Language.EN:
            return str.__str__(self)
        return _render(self.msgid, self.plural, self.n, self.params, self.lower_first, language)

    def clause(self) -> LazyText:
        """The same message with a small first letter, to stand inside another sentence."""
        return LazyText(self.msgid, self.plural, self.n, self.params, lower_first=True)

    def __reduce__(self) -> tuple[Any, ...]:
        return from_json, (to_json(self),)


Text = LazyText  # the short name


class _Joined(LazyText):
    """Several messages shown one after the other (``"; "``-separated problems)."""

    parts: tuple[Any, ...]

    def __new__(cls, sep: str, parts: Iterable[Any]) -> _Joined:
        items = tuple(error_text(p) if isinstance(p, BaseException) else p for p in parts)
        obj = str.__new__(cls, sep.join(text_of(p, Language.EN) for p in items))
        obj.msgid, obj.plural, obj.n, obj.params, obj.lower_first = sep, None, None, {}, False
        obj.parts = items
        return obj

    def text(self, lang: Language | str | None = None) -> str:
        return self.msgid.join(text_of(p, lang) for p in self.parts)

    def clause(self) -> LazyText:
        return self


class _Said(LazyText):
    """A text already said in every language (an exception's reason: its object is not kept)."""

    by_lang: dict[str, str]

    def __new__(cls, by_lang: Mapping[str, str]) -> _Said:
        texts = {str(k): str(v) for k, v in by_lang.items()}
        obj = str.__new__(cls, texts.get(Language.EN.value, ""))
        obj.msgid, obj.plural, obj.n, obj.params, obj.lower_first = str.__str__(obj), None, None, {}, False
        obj.by_lang = texts
        return obj

    def text(self, lang: Language | str | None = None) -> str:
        return self.by_lang.get(i18n.resolve(lang).value, str.__str__(self))

    def clause(self) -> LazyText:
        return self


def _render(msgid: str, plural: str | None, n: int | None, params: Mapping[str, Any], lower_first: bool,
            lang: Language) -> str:
    values = {k: (v.text(lang) if isinstance(v, LazyText) else v) for k, v in params.items()}
    if plural is not None:
        out = i18n.nt(msgid, plural, n or 0, lang=lang, **values)
    else:
        out = i18n.t(msgid, lang=lang, **values)
    return out[:1].lower() + out[1:] if lower_first else out


def t(message: str, /, **params: Any) -> LazyText:
    """:func:`cmlib.i18n.t`, rendered when shown (:func:`text_of`); English as the ``str`` value."""
    return LazyText(message, params=params)


def nt(singular: str, plural: str, n: int, /, **params: Any) -> LazyText:
    """:func:`cmlib.i18n.nt`, rendered when shown; ``n`` is also the ``{n}`` placeholder."""
    params.setdefault("n", n)
    return LazyText(singular, plural, n, params)


def join(sep: str, parts: Iterable[Any]) -> LazyText:
    """``sep.join(parts)`` that stays translatable part by part."""
    return _Joined(sep, parts)


def text_of(value: Any, lang: Language | str | None = None) -> str:
    """What a person reads: a :class:`LazyText` in ``lang`` (default: the current language), an
    exception's reason in ``lang``, ``None`` as nothing, anything else (a value from Campaign
    Monitor or the user) as it is."""
    if value is None:
        return ""
    if isinstance(value, LazyText):
        return value.text(lang)
    if isinstance(value, BaseException):
        from .errors import describe

        return describe(value, lang=lang)
    return str(value)


say = text_of  # the short name


def error_text(exc: BaseException) -> LazyText:
    """The reason of an exception (:func:`cmlib.errors.describe`) in every language, without
    keeping the exception: only our framing ("Code 100: …") and our own fixed messages are
    translated; the API's message is as Campaign Monitor wrote it."""
    from .errors import describe

    return _Said({lang.value: describe(exc, lang=lang) for lang in Language})


# --------------------------------------------------------------------------- JSON
def to_json(value: Any) -> Any:
    """A LazyText as plain JSON data (other values unchanged)."""
    if isinstance(value, _Joined):
        return {"$j": value.msgid, "parts": [to_json(p) for p in value.parts]}
    if isinstance(value, _Said):
        return {"$s": dict(value.by_lang)}
    if isinstance(value, LazyText):
        out: dict[str, Any] = {"$t": value.msgid}
        if value.plural is not None:
            out["pl"], out["n"] = value.plural, value.n
        if value.params:
            out["p"] = {k: to_json(v) for k, v in value.params.items()}
        if value.lower_first:
            out["lc"] = True
        return out
    return value


def from_json(data: Any) -> Any:
    """The inverse of :func:`to_json`: a LazyText again where one was stored."""
    if isinstance(data, Mapping):
        if "$j" in data:
            return _Joined(str(data["$j"]), [from_json(p) for p in data.get("parts") or ()])
        if "$s" in data:
            return _Said(data["$s"])
        if "$t" in data:
            params = {str(k): from_json(v) for k, v in (data.get("p") or {}).items()}
            n = data.get("n")
            return LazyText(str(data["$t"]), data.get("pl"), int(n) if n is not None else None, params,
                            lower_first=bool(data.get("lc")))
    return data
