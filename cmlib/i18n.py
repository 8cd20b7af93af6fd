"""The one translation entry point: every word the app shows goes through :func:`t` or :func:`nt`.

Why gettext catalogs and not a dictionary in code: translators work on ``.po`` files in their own
tools, Babel knows each language's plural rules (Russian has three forms: 1 список, 2 списка,
5 списков) and formats dates and numbers the way the locale writes them. Message ids are the
English text itself, so English needs no catalog and a message missing from a catalog falls back
to English, never to an empty label.

Sentences are whole messages with named placeholders (``t("{count} of {total} addresses", …)``):
Russian often needs the words in another order, which glued f-string pieces cannot give.

Which language: each Streamlit session sets its own with :func:`use_language` at the top of every
run (see ``ui/language.py``); code outside a session (CLI, bulk workers) passes it explicitly or
gets ``CM_LANGUAGE`` (default English). The current language is a context variable, so threads
and sessions never see each other's choice; the UI may also install a *provider* that answers
for a thread where nothing was set (a fragment rerun runs on a fresh thread).

Catalogs live in ``locales/<lang>/LC_MESSAGES/messages.po``. ``make`` compiles them to ``.mo`` at
install time (``python -m cmlib.i18n compile``); if a ``.mo`` is missing or older than its
``.po``, the ``.po`` is compiled in memory on first use, so a fresh checkout works either way.
Untranslated (empty) and fuzzy entries are left out of the compiled catalog: they show English.
"""
from __future__ import annotations

import contextvars
import gettext
import io
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, tzinfo
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


class Language(StrEnum):
    """The languages the app speaks; the value is the gettext/Babel locale code."""

    EN = "en"
    RU = "ru"

    @property
    def native_name(self) -> str:
        """How the language calls itself (shown in the language picker, never translated)."""
        return _NATIVE_NAMES[self]

    @classmethod
    def parse(cls, value: object) -> Language | None:
        """``"ru"``, ``"RU"``, ``"ru-RU"``, ``"ru_RU.UTF-8"`` -> RU; anything else -> None."""
        if not isinstance(value, str):
            return None
        code = value.strip().lower().replace("_", "-").split("-")[0].split(".")[0]
        try:
            return cls(code)
        except ValueError:
            return None


_NATIVE_NAMES = {Language.EN: "English", Language.RU: "Русский"}


def default_language() -> Language:
    """The deployment's default: ``CM_LANGUAGE`` (``en`` when unset or not a language we speak)."""
    return Language.parse(os.environ.get("CM_LANGUAGE")) or Language.EN


def choose_language(*, query: object = None, remembered: object = None, browser: object = None,
                    default: Language | None = None) -> Language:
    """The language of a session, in order: ``?lang=`` in the URL, the choice remembered in this
    browser, the browser's language (``st.context.locale``), the deployment default."""
    for candidate in (query, remembered, browser):
        lang = Language.parse(candidate)
        if lang is not None:
            return lang
    return default or default_language()


# --- the current language ---------------------------------------------------------------------

_current: contextvars.ContextVar[Language | None] = contextvars.ContextVar("cm_language", default=None)
_provider: Callable[[], Language | None] | None = None


def set_language_provider(provider: Callable[[], Language | None] | None) -> None:
    """Where to ask when this thread has no language set (the UI's session state)."""
    global _provider
    _provider = provider


def set_language(lang: Language | str | None) -> None:
    """Set the language for the rest of this context (a Streamlit script run, a CLI command)."""
    _current.set(Language.parse(str(lang)) if lang is not None else None)


def current_language() -> Language:
    lang = _current.get()
    if lang is not None:
        return lang
    if _provider is not None:
        try:
            provided = _provider()
        except Exception:  # a provider must never break a message
            provided = None
        if provided is not None:
            return provided
    return default_language()


@contextmanager
def use_language(lang: Language | str | None) -> Iterator[Language]:
    """Speak ``lang`` inside the block (``None``: keep the current language)."""
    if lang is None:
        yield current_language()
        return
    parsed = Language.parse(str(lang)) or default_language()
    token = _current.set(parsed)
    try:
        yield parsed
    finally:
        _current.reset(token)


# --- catalogs ---------------------------------------------------------------------------------

_catalog_lock = threading.Lock()
_catalogs: dict[Language, gettext.NullTranslations] = {}


def po_path(lang: Language, locales: Path = LOCALES_DIR) -> Path:
    return locales / lang.value / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalog(po: Path) -> bytes:
    """The ``.mo`` bytes of a ``.po`` file, without untranslated or fuzzy entries."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as fh:
        catalog = read_po(fh)
    for message in list(catalog):
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple | list) else (message.string,)
        if message.fuzzy or not all(strings):
            catalog.delete(message.id, context=message.context)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    return buf.getvalue()


def compile_all(locales: Path = LOCALES_DIR) -> list[Path]:
    """Write ``messages.mo`` beside every ``messages.po`` (the install step)."""
    written = []
    for po in sorted(locales.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        mo = po.with_suffix(".mo")
        mo.write_bytes(compile_catalog(po))
        written.append(mo)
    return written


def _load(lang: Language) -> gettext.NullTranslations:
    if lang is Language.EN:
        return gettext.NullTranslations()  # the message ids are the English text
    po = po_path(lang)
    mo = po.with_suffix(".mo")
    if not po.exists():
        return gettext.NullTranslations()
    fresh = mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime
    data = mo.read_bytes() if fresh else compile_catalog(po)
    return gettext.GNUTranslations(io.BytesIO(data))


def translations(lang: Language) -> gettext.NullTranslations:
    with _catalog_lock:
        found = _catalogs.get(lang)
        if found is None:
            found = _catalogs[lang] = _load(lang)
        return found


def reload_catalogs() -> None:
    """Forget loaded catalogs (after a catalog was edited; tests)."""
    with _catalog_lock:
        _catalogs.clear()


# --- the entry point ----------------------------------------------------------------------------

def _fill(text: str, params: dict[str, Any], english: str) -> str:
    """``text`` with its placeholders filled; a translation whose placeholders do not match (the
    catalog test's job to catch) shows the English rather than breaking the page."""
    if not params:
        return text
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        if text == english:
            raise
        return english.format(**params)


def t(message: str, /, *, lang: Language | str | None = None, **params: Any) -> str:
    """``message`` in the current language (or ``lang``), its ``{name}`` placeholders filled.

    Numbers in ``params`` are formatted for the language (``1 234,5`` in Russian) unless they
    are already strings; format dates with :func:`format_datetime` first."""
    language = resolve(lang)
    return _fill(translations(language).gettext(message), _localised(params, language), message)


def nt(singular: str, plural: str, n: int, /, *, lang: Language | str | None = None, **params: Any) -> str:
    """The plural form of a message for the count ``n``, which is also the ``{n}`` placeholder."""
    language = resolve(lang)
    params.setdefault("n", n)
    return _fill(translations(language).ngettext(singular, plural, n), _localised(params, language),
                 singular if n == 1 else plural)


def N_(message: str) -> str:
    """Mark a message for extraction where it is defined (a table, a constant); translate it
    with :func:`t` where it is shown."""
    return message


def _localised(params: dict[str, Any], lang: Language) -> dict[str, Any]:
    if not params:
        return params
    out = {}
    for key, value in params.items():
        render = getattr(value, "text", None) if isinstance(value, str) else None
        if callable(render):
            out[key] = render(lang)  # a cmlib.lazy_text.LazyText: in the same language as the sentence
        elif isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            out[key] = value
        else:
            out[key] = format_number(value, lang=lang)
    return out


# --- dates and numbers ----------------------------------------------------------------------------

def _locale(lang: Language | str | None) -> str:
    return resolve(lang).value


def resolve(lang: Language | str | None) -> Language:
    """``lang`` as a :class:`Language` (a code such as ``"ru-RU"`` is accepted); None -> current."""
    if lang is None:
        return current_language()
    return lang if isinstance(lang, Language) else (Language.parse(lang) or default_language())


def format_number(value: float | int | Decimal, *, lang: Language | str | None = None,
                  digits: int | None = None) -> str:
    """``1234.5`` -> ``1,234.5`` / ``1 234,5``; ``digits`` fixes the number of decimals."""
    from babel.numbers import format_decimal

    if digits is not None:
        pattern = "#,##0" + ("." + "0" * digits if digits else "")
        return str(format_decimal(value, format=pattern, locale=_locale(lang)))
    return str(format_decimal(value, locale=_locale(lang)))


def format_percent(fraction: float, *, lang: Language | str | None = None, digits: int = 0) -> str:
    """``0.42`` -> ``42%`` / ``42 %`` (the locale's own pattern); ``digits`` decimals (``0,6 %``)."""
    from babel import Locale
    from babel.numbers import format_percent as babel_percent

    locale = _locale(lang)
    pattern = Locale.parse(locale).percent_formats[None].pattern
    if digits:
        decimals = "0." + "0" * digits
        pattern = pattern.replace("0%", decimals + "%", 1).replace("0\xa0%", decimals + "\xa0%", 1)
    return str(babel_percent(fraction, format=pattern, locale=locale))


_DATE_PATTERNS = {Language.EN: "d MMM yyyy", Language.RU: "dd.MM.yyyy"}
_TIME_PATTERN = "HH:mm"
_SECONDS_PATTERN = "HH:mm:ss"


def format_date(value: date, *, lang: Language | str | None = None) -> str:
    """``25 Nov 2026`` / ``25.11.2026``."""
    from babel.dates import format_date as babel_date

    language = resolve(lang)
    return str(babel_date(value, format=_DATE_PATTERNS[language], locale=language.value))


def format_datetime(value: datetime, *, lang: Language | str | None = None, seconds: bool = False,
                    tz: tzinfo | None = None) -> str:
    """``25 Nov 2026 16:00`` / ``25.11.2026 16:00`` in ``tz`` (or the value's own zone). The zone's
    name is the caller's to add (:mod:`cmlib.timezones` names it beside the time)."""
    from babel.dates import format_datetime as babel_datetime

    language = resolve(lang)
    moment = value.astimezone(tz) if tz is not None and value.tzinfo is not None else value
    pattern = f"{_DATE_PATTERNS[language]} {_SECONDS_PATTERN if seconds else _TIME_PATTERN}"
    return str(babel_datetime(moment, format=pattern, tzinfo=None, locale=language.value))


def csv_dialect(lang: Language | str | None = None) -> tuple[str, str]:
    """(field separator, decimal mark) that a spreadsheet in this locale opens as numbers:
    Excel with Russian regional settings expects ``;`` and a decimal comma."""
    language = resolve(lang)
    return (";", ",") if language is Language.RU else (",", ".")


def main(argv: list[str] | None = None) -> int:
    """``python -m cmlib.i18n compile|extract|check|add FILE…`` (see ``cmlib/i18n_tools.py``)."""
    from . import i18n_tools

    return i18n_tools.main(argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
