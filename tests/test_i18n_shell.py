"""Issue 14, the shell: which language a session speaks (URL, the sidebar's choice remembered in a
cookie, the browser's language, CM_LANGUAGE), the picker, ``<html lang>``, and the shared sidebar,
demo notice, identity, display-zone sentences, state words and times in Russian.

The browser round trip (html lang, the cookie surviving a reload): tests/browser/test_i18n_browser.py.
"""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.language
from cmlib.audit import ActorSource
from cmlib.i18n import Language
from cmlib.states import STATE_STYLES, SubscriberState, state_key, state_style, state_word
from cmlib.timezones import UTC_ZONE, choose_zone, format_time
from tests.apptest_helpers import shown, visible_texts
from tests.i18n_helpers import untranslated
from ui.display_zone import zone_choice
from ui.identity import Actor
from ui.language import COOKIE, CURRENT_KEY, PICKER_KEY

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
HARNESS = str(ROOT / "tests" / "apps" / "language_harness.py")
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def harness(*, url: str | None = None, locale: str | None = None) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=30)
    if url is not None:
        at.query_params["lang"] = url
    if locale is not None:
        at.context["locale"] = locale
    return run(at)


def browser_remembers(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    """The ``cm_lang`` cookie as the session's opening request carried it (AppTest cannot send one)."""
    cookies = {COOKIE: value} if value is not None else {}
    real = ui.language._context_value
    monkeypatch.setattr(ui.language, "_context_value",
                        lambda name: cookies if name == "cookies" else real(name))


def writers(at: AppTest) -> list[str]:
    return [e.proto.srcdoc for e in at.get("iframe") if "documentElement.lang" in e.proto.srcdoc]


def sidebar_texts(at: AppTest) -> list[tuple[str, str]]:
    """What the sidebar shows (the page's own texts are the page helpers' to test)."""
    sidebar = [node for node in at._tree.children.values() if getattr(node, "type", "") == "sidebar"]
    assert sidebar, "no sidebar drawn"
    found = []
    for where, text in visible_texts(at):
        if where.startswith(f"/{list(at._tree.children.values()).index(sidebar[0])}/"):
            found.append((where, text))
    return found


# --- which language ----------------------------------------------------------------------------

def test_english_by_default():
    at = harness()
    assert at.session_state[CURRENT_KEY] is Language.EN
    assert [m.value for m in at.markdown] == ["Lists"]
    [picker] = at.radio
    assert picker.label == "Language" and picker.value is Language.EN
    assert writers(at) == []  # Streamlit already says lang="en": nothing to write


def test_the_deployment_default_is_cm_language(monkeypatch):
    monkeypatch.setenv("CM_LANGUAGE", "ru")
    assert harness().session_state[CURRENT_KEY] is Language.RU


def test_the_browser_language_beats_the_deployment_default(monkeypatch):
    monkeypatch.setenv("CM_LANGUAGE", "en")
    at = harness(locale="ru-RU")
    assert at.session_state[CURRENT_KEY] is Language.RU
    assert [m.value for m in at.markdown] == ["Списки"]
    assert harness(locale="de-DE").session_state[CURRENT_KEY] is Language.EN  # not one we speak


def test_the_remembered_choice_beats_the_browser_language(monkeypatch):
    browser_remembers(monkeypatch, "en")
    assert harness(locale="ru-RU").session_state[CURRENT_KEY] is Language.EN


def test_the_url_beats_the_remembered_choice(monkeypatch):
    browser_remembers(monkeypatch, "en")
    at = harness(url="ru", locale="en-US")
    assert at.session_state[CURRENT_KEY] is Language.RU
    assert at.radio(key=PICKER_KEY).label == "Язык"
    assert at.radio(key=PICKER_KEY).options == ["English", "Русский"]  # native names, never translated
    # a language we do not speak in the URL is passed over (to the remembered one), not an error
    assert harness(url="xx", locale="ru-RU").session_state[CURRENT_KEY] is Language.EN


# --- the picker, the cookie, html lang -------------------------------------------------------------

def test_a_russian_page_tells_the_browser_its_language():
    at = harness(url="ru")
    [script] = writers(at)
    assert 'documentElement.lang="ru"' in script
    assert f"{COOKIE}=" not in script  # nothing picked: the URL's choice is not remembered
    run(at)
    assert writers(at) == [script]  # the same writer stays (not run again by the browser)


def test_picking_a_language_switches_remembers_it_and_rewrites_the_url():
    at = harness(url="ru")
    at.radio(key=PICKER_KEY).set_value(Language.EN).run()
    assert not at.exception, at.exception
    assert at.query_params["lang"] == "en"  # else the URL would win over the pick on the next run
    assert at.session_state[CURRENT_KEY] is Language.EN
    assert [m.value for m in at.markdown] == ["Lists"]
    [script] = writers(at)
    assert 'documentElement.lang="en"' in script  # back to English: the earlier "ru" is undone
    assert f"d.cookie='{COOKIE}='+encodeURIComponent(\"en\")" in script and "max-age=34560000" in script


def test_a_pick_without_lang_in_the_url_leaves_the_url_alone():
    at = harness()
    at.radio(key=PICKER_KEY).set_value(Language.RU).run()
    assert not at.exception, at.exception
    assert "lang" not in at.query_params
    assert [m.value for m in at.markdown] == ["Списки"]
    [script] = writers(at)
    assert 'documentElement.lang="ru"' in script and 'encodeURIComponent("ru")' in script


def test_a_fragment_thread_speaks_the_sessions_language_and_a_worker_thread_the_default():
    at = harness(url="ru")
    assert at.session_state["heard"] == {"inside": "ru", "outside": "en"}


def test_outside_a_script_run_the_provider_has_no_answer():
    assert ui.language._provided() is None


# --- the whole app in Russian --------------------------------------------------------------------

def test_the_app_shell_in_russian_with_demo_data():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = "ru"
    run(at)
    texts = sidebar_texts(at)
    assert untranslated(texts) == []
    joined = "\n".join(text for _, text in texts)
    assert "Демо-данные" in joined and "Имя оператора" in joined and "Настройки подключения" in joined
    assert at.radio(key=PICKER_KEY).label == "Язык"
    assert any("Демо-данные" in m.value for m in at.main.markdown)  # the notice above the page
    links = [p.proto.label for p in at.main.get("page_link") if p.proto.page == "settings"]
    assert links == ["подключите свой в настройках"]
    assert writers(at) and 'documentElement.lang="ru"' in writers(at)[0]


def test_the_app_shell_stays_english_by_default():
    at = run(AppTest.from_file(APP, default_timeout=60))
    joined = "\n".join(text for _, text in sidebar_texts(at))
    assert "Demo data" in joined and "Operator name" in joined and "Connection settings" in joined
    assert at.radio(key=PICKER_KEY).label == "Language"
    assert writers(at) == []


def test_a_connection_that_cannot_be_made_is_said_in_russian(monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "env-key-12345678")
    monkeypatch.setenv("CM_CLIENT_ID", "cid")
    monkeypatch.setenv("CM_API_URL", "https://" + "a" * 5000 + "/api/v3.3")
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["lang"] = "ru"
    run(at)
    sidebar = "\n".join(shown(m.value) for m in at.sidebar.markdown)
    assert "Нет подключения." in sidebar and "Не удаётся подключиться к Campaign Monitor" in sidebar


def test_a_page_run_on_its_own_speaks_the_urls_language(app_env):
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.query_params["lang"] = "ru"
    at.query_params["email"] = "anna@example.com"
    run(at)
    assert at.session_state[CURRENT_KEY] is Language.RU
    badges = " ".join(m.value for m in at.markdown if "-badge[" in m.value)
    assert "[подписан]" in badges and "[subscribed]" not in badges


# --- words and times -------------------------------------------------------------------------------

def test_state_words_in_both_languages_and_a_stable_key():
    assert [style.label(Language.RU) for style in STATE_STYLES.values()] == [
        "подписан", "отписан", "не подтверждён", "отказ доставки", "удалён"]
    assert [state_word(s, "en") for s in STATE_STYLES] == [
        "subscribed", "unsubscribed", "pending", "bounced", "deleted"]
    assert state_word(SubscriberState.UNCONFIRMED, lang="ru") == "не подтверждён"
    assert state_key(SubscriberState.UNCONFIRMED) == "pending"  # for counting and filtering, never translated
    assert state_word("Spam", "ru") == "Spam" and state_style("Spam").label("ru") == "Spam"  # the API's own name
    assert state_word(None, "ru") == "неизвестно"


def test_state_word_follows_the_current_language():
    from cmlib.i18n import use_language

    with use_language("ru"):
        assert state_word("Active") == "подписан"
    assert state_word("Active") == "subscribed"


def test_times_in_russian_keep_the_zone_name_and_english_is_unchanged():
    moscow = choose_zone("Europe/Moscow")
    at = datetime(2026, 11, 25, 13, 0, tzinfo=UTC)
    assert format_time(at, moscow, lang="ru") == "25.11.2026 16:00 MSK"
    assert format_time(at, moscow, lang="en") == "2026-11-25 16:00 MSK"
    assert format_time(at, moscow, lang="ru", fmt="%Y-%m-%d %H:%M:%S") == "25.11.2026 16:00:00 MSK"
    assert format_time(at, moscow, lang="ru", fmt="%H:%M:%S") == "16:00:00 MSK"  # a time alone: no date
    assert format_time(at, UTC_ZONE, lang="ru") == "25.11.2026 13:00 UTC"
    assert format_time(None, UTC_ZONE, lang="ru") == ""


def test_the_acting_sentence_and_the_zone_sentence_in_russian():
    assert Actor("Dana", ActorSource.TYPED).describe("ru") == "Dana (введено в этом браузере)"
    assert Actor("{x}", ActorSource.HELPDESK_LINK).describe() == "{x} (from the helpdesk link)"
    from cmlib.i18n import use_language

    with use_language("ru"):
        assert zone_choice("Europe/Moscow", None).explain() == (
            "Время показано в поясе Europe/Moscow (MSK) — часовом поясе вашего браузера.")
        assert zone_choice(None, "(GMT+03:00) Moscow").explain().startswith(
            "Время показано в поясе UTC+03:00 — часовом поясе клиента Campaign Monitor «(GMT+03:00) Moscow»")
    assert zone_choice(None, None).explain().startswith("Times are shown in UTC")
