"""Issue 14, the entry point (cmlib/i18n.py): dates, numbers, percentages and plural forms in both
languages, the order a session's language is chosen in, English for a message a catalog lacks,
and catalogs compiled without their empty or fuzzy entries."""
from __future__ import annotations

import gettext
import io
import os
import threading
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

import cmlib.i18n as i18n
from cmlib.i18n import (
    Language,
    choose_language,
    csv_dialect,
    current_language,
    format_date,
    format_datetime,
    format_number,
    format_percent,
    nt,
    t,
    use_language,
)

NBSP = "\xa0"


@pytest.fixture
def no_provider():
    """The UI installs a process-wide provider; tests here start without one and put it back."""
    saved = i18n._provider
    i18n.set_language_provider(None)
    yield
    i18n.set_language_provider(saved)


# --- formatting ---------------------------------------------------------------------------------

def test_dates_and_times_in_each_locales_format():
    assert format_date(date(2026, 11, 25), lang="en") == "25 Nov 2026"
    assert format_date(date(2026, 11, 25), lang="ru") == "25.11.2026"
    moment = datetime(2026, 11, 25, 13, 5, 7, tzinfo=UTC)
    moscow = ZoneInfo("Europe/Moscow")
    assert format_datetime(moment, lang="ru", tz=moscow) == "25.11.2026 16:05"
    assert format_datetime(moment, lang="en", tz=moscow) == "25 Nov 2026 16:05"
    assert format_datetime(moment, lang="ru", seconds=True) == "25.11.2026 13:05:07"  # its own zone


def test_numbers_with_each_locales_separators():
    assert format_number(1234.5, lang="en") == "1,234.5"
    assert format_number(1234.5, lang="ru") == f"1{NBSP}234,5"
    assert format_number(1234567, lang="ru") == f"1{NBSP}234{NBSP}567"
    assert format_number(0.6, lang="ru", digits=2) == "0,60"
    assert format_number(3, lang="en", digits=0) == "3"


def test_percentages_with_the_locales_own_pattern():
    assert format_percent(0.42, lang="en") == "42%"
    assert format_percent(0.42, lang="ru") == f"42{NBSP}%"  # a space before % in Russian
    assert format_percent(0.006, lang="en", digits=1) == "0.6%"
    assert format_percent(0.006, lang="ru", digits=1) == f"0,6{NBSP}%"


@pytest.mark.parametrize(("n", "russian"), [
    (0, "0 вызовов API"), (1, "1 вызов API"), (2, "2 вызова API"), (4, "4 вызова API"), (5, "5 вызовов API"),
    (11, "11 вызовов API"), (12, "12 вызовов API"), (14, "14 вызовов API"), (21, "21 вызов API"), (22, "22 вызова API"),
    (25, "25 вызовов API"), (101, "101 вызов API"), (111, "111 вызовов API"), (1000, f"1{NBSP}000 вызовов API"),
])
def test_russian_has_three_plural_forms(n, russian):
    assert nt("{n} API call", "{n} API calls", n, lang="ru")  # a message the app uses == russian


def test_english_has_two_plural_forms():
    assert [nt("{n} list", "{n} lists", n, lang="en") for n in (0, 1, 2, 1000)] == [
        "0 lists", "1 list", "2 lists", "1,000 lists"]


def test_numeric_placeholders_are_formatted_for_the_language_and_strings_are_not():
    assert t("{done} of {total} addresses", done=1234, total=0.5, lang="ru") == f"1{NBSP}234 of 0,5 addresses"
    assert t("{done} of {total}", done="1234", total=True, lang="ru") == "1234 of True"


def test_the_csv_dialect_a_spreadsheet_in_the_locale_opens_as_numbers():
    assert csv_dialect("ru") == (";", ",")
    assert csv_dialect("en") == (",", ".")


# --- which language ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("ru", Language.RU), ("RU", Language.RU), ("ru-RU", Language.RU), ("ru_RU.UTF-8", Language.RU),
    ("en-US", Language.EN), (" en ", Language.EN), ("de-DE", None), ("", None), (None, None), (7, None),
])
def test_language_codes_are_read_leniently(value, expected):
    assert Language.parse(value) is expected


def test_the_language_is_chosen_by_url_then_remembered_then_browser_then_default(monkeypatch):
    monkeypatch.delenv("CM_LANGUAGE", raising=False)
    assert choose_language(query="ru", remembered="en", browser="en-US") is Language.RU
    assert choose_language(query=None, remembered="en", browser="ru-RU") is Language.EN
    assert choose_language(query="xx", remembered=None, browser="ru-RU") is Language.RU
    assert choose_language(browser="de-DE") is Language.EN
    assert choose_language(default=Language.RU) is Language.RU
    monkeypatch.setenv("CM_LANGUAGE", "ru")
    assert choose_language(browser="de-DE") is Language.RU
    monkeypatch.setenv("CM_LANGUAGE", "klingon")
    assert choose_language() is Language.EN


def test_use_language_nests_and_each_thread_has_its_own(no_provider):
    assert current_language() is Language.EN
    with use_language("ru"):
        assert t("Lists") == "Списки"
        with use_language(Language.EN):
            assert t("Lists") == "Lists"
        with use_language(None):  # keeps the current one
            assert current_language() is Language.RU
        seen: list[Language] = []
        other = threading.Thread(target=lambda: seen.append(current_language()))
        other.start()
        other.join()
        assert seen == [Language.EN]  # another thread (a bulk worker) is not this session
    assert current_language() is Language.EN


def test_a_provider_answers_where_nothing_was_set_and_can_never_break_a_message(no_provider):
    i18n.set_language_provider(lambda: Language.RU)
    assert t("Lists") == "Списки"
    with use_language("en"):  # a language set in this context wins over the provider
        assert t("Lists") == "Lists"
    i18n.set_language_provider(lambda: 1 / 0)
    assert t("Lists") == "Lists"
    i18n.set_language_provider(lambda: None)
    assert current_language() is Language.EN


# --- catalogs --------------------------------------------------------------------------------------

def test_a_message_the_catalog_lacks_is_english_never_empty():
    assert t("A sentence no catalog has, with {count} item", count=3, lang="ru") == (
        "A sentence no catalog has, with 3 item")
    assert nt("{n} widget", "{n} widgets", 5, lang="ru") == "5 widgets"


def _po(path: Path, entries: list[tuple[object, object, bool]]) -> Path:
    cat = Catalog(locale="ru", domain="messages")
    for msgid, msgstr, fuzzy in entries:
        cat.add(msgid, msgstr, flags=("fuzzy",) if fuzzy else ())  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, cat)
    return path


def test_compiled_catalogs_leave_out_empty_and_fuzzy_entries(tmp_path):
    po = _po(tmp_path / "ru" / "LC_MESSAGES" / "messages.po", [
        ("Save changes", "Сохранить изменения", False),
        ("Untranslated", "", False),
        ("Unsure", "Неуверенно", True),
        (("{n} file", "{n} files"), ("{n} файл", "", "{n} файлов"), False),  # one form missing
    ])
    compiled = gettext.GNUTranslations(io.BytesIO(i18n.compile_catalog(po)))
    assert compiled.gettext("Save changes") == "Сохранить изменения"
    assert compiled.gettext("Untranslated") == "Untranslated"
    assert compiled.gettext("Unsure") == "Unsure"
    assert compiled.ngettext("{n} file", "{n} files", 2) == "{n} files"
    assert i18n.compile_all(tmp_path) == [po.with_suffix(".mo")]
    assert po.with_suffix(".mo").read_bytes() == i18n.compile_catalog(po)


def test_a_stale_compiled_catalog_is_not_used(tmp_path, monkeypatch):
    po = _po(tmp_path / "ru" / "LC_MESSAGES" / "messages.po", [("Lists", "Списки", False)])
    mo = po.with_suffix(".mo")
    stale = _po(tmp_path / "old.po", [("Lists", "Старые списки", False)])
    mo.write_bytes(i18n.compile_catalog(stale))
    monkeypatch.setattr(i18n, "po_path", lambda lang, locales=tmp_path: locales / lang.value / "LC_MESSAGES"
                        / "messages.po")
    os.utime(mo, (po.stat().st_mtime - 60, po.stat().st_mtime - 60))
    assert i18n._load(Language.RU).gettext("Lists") == "Списки"  # the .po is newer: compiled in memory
    os.utime(mo, (po.stat().st_mtime + 60, po.stat().st_mtime + 60))
    assert i18n._load(Language.RU).gettext("Lists") == "Старые списки"  # a fresh .mo is read as it is
    assert type(i18n._load(Language.EN)) is gettext.NullTranslations  # English needs no catalog


def test_the_shipped_russian_catalog_loads_and_plural_forms_are_russian():
    i18n.reload_catalogs()
    assert t("Lists", lang="ru") == "Списки"
    assert nt("{n} API call", "{n} API calls", 3, lang="ru") == "3 вызова API"


def test_a_translation_with_broken_placeholders_shows_the_english_not_an_error(tmp_path, monkeypatch):
    po = _po(tmp_path / "broken.po", [
        ("{count} addresses", "{cnt} адресов", False),
        (("{n} list", "{n} lists"), ("{n} список", "{num} списка", "{n} списков"), False),
    ])
    monkeypatch.setitem(i18n._catalogs, Language.RU, gettext.GNUTranslations(io.BytesIO(i18n.compile_catalog(po))))
    assert t("{count} addresses", count=3, lang="ru") == "3 addresses"
    assert nt("{n} list", "{n} lists", 1, lang="ru") == "1 список"
    assert nt("{n} list", "{n} lists", 3, lang="ru") == "3 lists"
    with pytest.raises(KeyError):  # a broken English message is a bug to see, not to hide
        t("{missing} here", lang="en", other=1)
