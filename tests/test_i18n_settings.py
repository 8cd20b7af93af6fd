"""The Settings page and its checks in Russian (issue 14): form, help, Test/Save, the health and
cache panels, diagnostics, refused URLs and the admin password's prompts and lock-outs.

Values from Campaign Monitor (company, country, its time-zone names), keys, IDs, URLs, endpoint
paths and Campaign Monitor's own menu names ("Account settings → API keys") stay as they are;
every word of ours is Russian, and the seed's words are used («API-ключ», «ID клиента»,
«Настройки»).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib import access, diagnostics, urls
from cmlib.access import GateResult, GateStatus
from cmlib.config import Credentials, CredentialSource, choose_key
from cmlib.i18n import Language
from cmlib.lazy_text import text_of
from tests.apptest_helpers import shown, visible_texts
from tests.i18n_helpers import untranslated

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "settings.py")
DEAD_URL = "http://127.0.0.1:9/api/v3.3"

# Our technical terms and Campaign Monitor's own menu names: the same in a Russian page.
TECHNICAL = ["Campaign Monitor", "Account settings", "API keys", "Client settings", "CM_API_KEY", "CM_CLIENT_ID",
             "CM_API_URL", "CM_CACHE_BACKEND", "X-RateLimit", "secrets.toml", "api_key", "client_id",
             "campaign_monitor", "Europe/Moscow", "OAuth", "HTTP", "JSON", "API", "SSO", "Enter", "ConnectionError"]
_LATIN_PHRASE = re.compile(r"[A-Za-z]{3,}(?:[ \-][A-Za-z]{3,})+")
_ENDPOINT = re.compile(r"\b(?:GET|POST|PUT|DELETE) /\S+")


def english_left(at: AppTest, values: list[str]) -> list[tuple[str, str, str]]:
    """English message ids on the page (the catalog's check), and any run of Latin words that is
    not a value or a technical term (a sentence that never went through ``t()``)."""
    texts = [(w, s) for w, s in visible_texts(at) if not w.endswith("html.value") and not w.endswith("html.body")]
    texts = [(w, _ENDPOINT.sub(" ", s)) for w, s in texts]  # "GET /clients/….json": the call, as the API names it
    allow = [*values, *TECHNICAL]
    found = untranslated(texts, allow=allow)
    for where, text in texts:
        cleaned = text
        for value in sorted(allow, key=len, reverse=True):
            cleaned = cleaned.replace(value, " ")
        found += [(where, "latin", m.group(0)) for m in _LATIN_PHRASE.finditer(cleaned)]
    return found


def page(lang: str = "ru", **session) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["lang"] = lang
    at.context["timezone"] = "Europe/Moscow"
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return " ".join(shown(str(e.value)) for e in elements)


def sandbox_values(sb) -> list[str]:
    info = sb.data.client(sb.main_client_id)
    return [sb.client_api_key, sb.account_api_key, sb.main_client_id, sb.other_client_id, sb.base_url, info.name,
            info.country, info.time_zone, f"/clients/{sb.main_client_id}.json"]


@pytest.fixture(autouse=True)
def _fresh_gates():
    access.reset_shared_gates()
    yield
    access.reset_shared_gates()


# ---------------------------------------------------------------------------- the page
def test_the_demo_page_in_russian_has_no_english_left():
    at = page()
    assert english_left(at, []) == []
    assert at.title[0].value == "Настройки"
    assert [h.value for h in at.header] == ["Учётные данные", "Состояние", "Кэш"]
    assert "**демо-данные**" in texts(at.info) and "`.streamlit/secrets.toml`" in texts(at.info)
    assert at.text_input(key="settings_api_key").label == "API-ключ"  # the seed's words
    assert at.text_input(key="settings_client_id").label == "ID клиента"
    assert at.button(key="settings_test").label == "Проверить подключение"
    assert at.button(key="settings_save").label == "Сохранить"
    click(at, "settings_health_check")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Аккаунт"] == "Демо (песочница)" and metrics["API"] == "доступен"
    assert metrics["Последний вызов"].endswith(" мс")
    assert re.search(r"Проверено в \d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d MSK\.", texts(at.success))
    assert english_left(at, ["Acme Books"]) == []


def test_test_connection_reports_in_russian(sandbox):
    at = page()
    at.text_input(key="settings_api_key").input(sandbox.client_api_key)
    at.text_input(key="settings_client_id").input(sandbox.main_client_id)
    at.text_input(key="settings_api_url").input(sandbox.base_url)
    click(at, "settings_test")
    info = sandbox.data.client(sandbox.main_client_id)
    n_lists = len(sandbox.data.lists_of(sandbox.main_client_id))
    assert n_lists == 8
    assert f"Подключено к {info.name} ({info.country}, часовой пояс клиента {info.time_zone}): 8 списков." \
        in texts(at.success)
    table = at.dataframe[0].value
    assert list(table.columns) == ["Параметр", "Значение"]
    assert dict(zip(table["Параметр"], table["Значение"], strict=True))["Списки"] == "8"
    assert english_left(at, sandbox_values(sandbox)) == []


def test_a_wrong_key_and_an_unreachable_api_are_said_in_russian(sandbox):
    at = page()
    at.text_input(key="settings_api_key").input("not-a-real-key-0000")
    at.text_input(key="settings_client_id").input(sandbox.main_client_id)
    at.text_input(key="settings_api_url").input(sandbox.base_url)
    click(at, "settings_test")
    assert texts(at.error).startswith("Неверный API-ключ (Code 100): Campaign Monitor не знает этот ключ.")
    at.text_input(key="settings_api_key").input(sandbox.client_api_key)
    at.text_input(key="settings_api_url").input(DEAD_URL)
    click(at, "settings_test")
    assert "Не удаётся связаться с API на 127.0.0.1:9" in texts(at.error)
    click(at, "settings_save")
    assert texts(at.error).startswith("Не сохранено: ") or texts(at.warning).startswith("Сохранено, но")
    assert english_left(at, [*sandbox_values(sandbox), "not-a-real-key-0000", DEAD_URL, "127.0.0.1:9"]) == []


def test_a_refused_url_says_why_in_russian(sandbox):
    at = page()
    at.text_input(key="settings_api_key").input(sandbox.client_api_key)
    at.text_input(key="settings_api_url").input("http://169.254.169.254/latest")
    click(at, "settings_test")
    assert texts(at.error).startswith("URL API указывает на 169.254.169.254 — локальный адрес или адрес метаданных")


def test_credentials_from_the_environment_in_russian(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    at = page()
    assert texts(at.info).startswith("Задаётся окружением: учётные данные берутся из переменных окружения "
                                     "(CM_API_KEY, CM_CLIENT_ID, CM_API_URL).")
    click(at, "settings_test_managed")
    assert texts(at.success).startswith("Подключено к ")
    assert english_left(at, sandbox_values(sandbox)) == []


def test_the_admin_prompt_and_lock_out_in_russian(monkeypatch):
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "open sesame")
    from ui import access as ui_access

    monkeypatch.setattr(ui_access, "_client_address", lambda: ("203.0.113.7", {}))
    at = page()
    assert texts(at.markdown) == "**Нужен пароль администратора**"
    assert at.text[0].value.startswith("Пароль администратора защищает страницу «Настройки». Введите его один раз")
    prompt = next(t for t in at.text_input if t.key.startswith("admin_gate_pw"))
    assert prompt.label == "Пароль администратора" and at.button[0].label == "Разблокировать"
    assert english_left(at, []) == []
    for tries_left in (4, 3):
        next(t for t in at.text_input if t.key.startswith("admin_gate_pw")).input("guess")
        at.button[0].click().run()
        word = "попытки"
        assert f"Неверный пароль администратора (осталось {tries_left} {word} до блокировки на минуту)." \
            == texts(at.warning)
    for _ in range(3):
        next(t for t in at.text_input if t.key.startswith("admin_gate_pw")).input("guess")
        at.button[0].click().run()
    assert texts(at.error) == "Слишком много неверных паролей: вход заблокирован ещё на 60 секунд."
    assert english_left(at, ["203.0.113.7"]) == []


def test_the_english_page_is_unchanged():
    at = page("en")
    assert at.title[0].value == "Settings"
    assert [h.value for h in at.header] == ["Credentials", "Health", "Cache"]
    assert "demo data" in texts(at.info)
    assert at.text_input(key="settings_api_key").label == "API key"


# ---------------------------------------------------------------------------- cmlib's sentences
def test_gate_messages_take_russian_plural_forms():
    def ru(result: GateResult) -> str:
        return text_of(result.message, Language.RU)

    assert ru(GateResult(GateStatus.WRONG, tries_left=1)) == (
        "Неверный пароль администратора (осталась 1 попытка до блокировки на минуту).")
    assert ru(GateResult(GateStatus.WRONG, tries_left=2, shared=True)) == (
        "Неверный пароль администратора (осталось 2 попытки, потом попытки замедлятся).")
    assert ru(GateResult(GateStatus.LOCKED, seconds_left=1)) == (
        "Слишком много неверных паролей: вход заблокирован ещё на 1 секунду.")
    assert ru(GateResult(GateStatus.SLOWED, seconds_left=4.2, shared=True)) == (
        "Недавно было слишком много неверных паролей: подождите ещё 5 секунд перед следующей попыткой.")
    # English as before, as the string itself (logs, the English page)
    assert GateResult(GateStatus.WRONG, tries_left=1).message == (
        "Wrong admin password (1 try left before a one-minute lock).")


def test_diagnostics_and_url_checks_in_russian():
    check = urls.check_api_url("ftp://example.com")
    assert check.message.startswith("The API URL 'ftp://example.com' is not an http(s) address")
    assert text_of(check.message, Language.RU) == (
        "URL API 'ftp://example.com' — не адрес http(s) (например, https://api.createsend.com/api/v3.3).")
    report = diagnostics.check_connection("key", "client", "http://example.com/api/v3.3", resolve=None)
    assert text_of(report.message, Language.RU).startswith("URL API использует обычный http к example.com")
    assert text_of(diagnostics.check_connection("", "c", urls.EXAMPLE_URL, resolve=None).message,
                   Language.RU) == "Сначала введите API-ключ."
    assert diagnostics.human_bytes(1536, lang=Language.RU) == "1,5 КБ"
    assert diagnostics.human_bytes(3, lang=Language.RU) == "3 байта"
    headroom = diagnostics.RateLimitHeadroom(1000, 250, 30.0, observed_at=None)  # type: ignore[arg-type]
    assert headroom.describe(lang=Language.RU) == "осталось 250 из 1000 запросов, окно сбросится через 30 с"
    saved = Credentials("secret-key-1234", "c1", "https://api.createsend.com/api/v3.3", CredentialSource.SETTINGS)
    choice = choose_key("", "https://other.example/api/v3.3", saved)
    assert text_of(choice.message, Language.RU).startswith("Сохранённый ключ ••••••••1234 отправляется только на URL")
    _, errors = diagnostics.validate_expiry({"lists": "soon"})
    assert [text_of(e, Language.RU) for e in errors] == ["lists: не целое число секунд"]
