"""Issue 14: the subscription dialog, its plans, verdicts and reports, the error descriptions and
the Audit page in Russian -- and the same in English as before.

The dialog is opened on the Lookup page with ``?lang=ru`` (the way a helpdesk link opens it) and
read element by element inside the dialog only; a write made in Russian is then found on the
Audit page in Russian, with Russian words and a ``dd.mm.yyyy`` date. The audit log itself keeps
English (data): the page translates what it shows.
"""
from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from streamlit.testing.v1 import AppTest

from cmlib import lazy_text as lazy
from cmlib.audit import AuditLog, to_csv_bytes
from cmlib.errors import NotInListError, ServerError, SuppressedError, describe
from cmlib.i18n import Language, reload_catalogs, use_language
from cmlib.lazy_text import text_of
from cmlib.sandbox import DEMO_CUSTOMERS
from cmlib.subscriptions import ListInfo, Snapshot, plan_changes
from cmlib.subscriptions.verdict import RECORDED, localise_result
from cmlib.subscriptions.wording import DATA_PARAMS, names_lazy, state_lazy
from cmlib.write_locks import WriteKey, WriteLockTimeout
from tests.apptest_helpers import shown, visible_texts
from tests.i18n_helpers import untranslated
from ui.identity import NAME_KEY
from ui.subscriptions import apply_key, button_key, checkbox_key, consent_key, reason_key, state_key

ROOT = Path(__file__).resolve().parent.parent
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")
AUDIT_PAGE = str(ROOT / "pages" / "audit.py")
ANNA = "anna@example.com"
OPERATOR = "Tess Tester"
LIST_NAMES = ["Newsletter", "Product updates", "Webinars", "Offers", "Events Moscow", "Partners", "Beta testers",
              "<img src=x onerror=alert(1)> **VIP** :red[x]"]
# Values from Campaign Monitor, the operator and the machine: shown as they are in every language.
ALLOW = [*LIST_NAMES, ANNA, "leaver@example.com", "suppressed@example.com", OPERATOR, "Campaign Monitor",
         *(e for group in DEMO_CUSTOMERS.values() for e in group)]
RU_DAY_TIME = re.compile(r"\b\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2}\b")


@pytest.fixture(autouse=True)
def _fresh_catalogs():
    reload_catalogs()  # the catalog other helpers grow while tests run


@pytest.fixture
def sb(app_env):
    return app_env


def lid(sb, name: str) -> str:
    return sb.data.list_by_name(sb.main_client_id, name).list_id


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return run(at)


def lookup(email: str, lang: str | None = "ru") -> AppTest:
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    if lang:
        at.query_params["lang"] = lang
    at.query_params["email"] = email
    at.session_state[NAME_KEY] = OPERATOR
    return run(at)


def open_dialog(email: str, lang: str | None = "ru") -> AppTest:
    at = lookup(email, lang)
    return click(at, button_key("open", email))


def dialog(at: AppTest):
    """The dialog's node in the element tree (its title is on the proto)."""
    found = []

    def walk(node) -> None:
        if getattr(node, "type", "") == "dialog":
            found.append(node)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    assert len(found) == 1, found
    return found[0]


def dialog_texts(at: AppTest) -> list[tuple[str, str]]:
    """Every text the dialog shows. A radio's ``value`` is the option's Python value (the API's
    ConsentToTrack word, sent as it is), not what is drawn: its drawn labels are its options."""
    node = dialog(at)
    texts = visible_texts(SimpleNamespace(_tree=node))
    return [("dialog title", node.proto.dialog.title), *((w, x) for w, x in texts if not w.endswith("radio.value"))]


ICON = re.compile(r":material/[a-z0-9_]+:")  # an icon's name is not a word anybody reads


def english(texts: list[tuple[str, str]], allow: list[str] = ALLOW) -> list[tuple[str, str, str]]:
    return untranslated([(where, ICON.sub(" ", text)) for where, text in texts], allow=allow)


def english_left(at: AppTest) -> list[tuple[str, str, str]]:
    return english(dialog_texts(at))


def all_text(texts: list[tuple[str, str]]) -> str:
    return "\n".join(text for _, text in texts)


def editor(at: AppTest, email: str):
    return at.session_state[state_key(email)]


def box(at: AppTest, sb, email: str, name: str):
    return at.checkbox(key=checkbox_key(email, editor(at, email).gen, lid(sb, name)))


def plan_token(at: AppTest, email: str) -> str:
    return editor(at, email).plan.token


# ----------------------------------------------------------------------------- the dialog in Russian
def test_the_dialog_opens_in_russian_with_the_seeds_words(sb):
    at = lookup(ANNA)
    assert at.button(key=button_key("open", ANNA)).label == "Подписать/отписать"
    click(at, button_key("open", ANNA))
    texts = dialog_texts(at)
    assert dialog(at).proto.dialog.title == "Подписать/отписать"
    labels = {b.label for b in at.button} | {b.label for b in at.get("form_submit_button")}
    assert {"Сохранить изменения", "Вернуть исходные значения", "Отписать от всех списков"} <= labels
    text = all_text(texts)
    assert "[подписан]" in text  # the badges: the seed's state words
    assert "Статусы на " in text and "нет в списке" in text
    assert english_left(at) == []


def test_the_review_in_russian_warnings_consent_reason_and_who_is_acting(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Offers").uncheck()  # set to unsubscribe from ALL client lists: a warning
    box(at, sb, ANNA, "Beta testers").check()  # confirmed opt-in: a note, and consent is asked
    click(at, button_key("save", ANNA))
    token = plan_token(at, ANNA)
    text = all_text(dialog_texts(at))
    assert "Проверьте изменение" in text
    assert "План: подписать на Beta testers; отписать от Offers — этот список настроен на отписку от ВСЕХ" in text
    assert "Newsletter и Webinars" in text  # names joined with «и»
    assert "остаётся в статусе «не подтверждён»" in text
    assert "Понимаю" in text and "Согласие на отслеживание для новой подписки" in text
    radio = at.radio(key=consent_key(token))
    assert list(radio.options) == ["Без изменений", "Да", "Нет"] and radio.value == "Unchanged"  # the API's value
    assert "Кнопка «Применить» станет доступна, когда: 1 предупреждение не подтверждено." in text
    assert "Изменение вносит **Tess Tester" in "\n".join(c.value for c in at.caption)
    assert english_left(at) == []


def test_a_resubscribe_and_a_suppressed_address_are_explained_in_russian(sb):
    at = open_dialog("leaver@example.com")
    box(at, sb, "leaver@example.com", "Newsletter").check()
    click(at, button_key("save", "leaver@example.com"))
    text = all_text(dialog_texts(at))
    assert "Статус leaver@example.com в списке Newsletter: отписан." in text
    assert "Причина (обязательно — например, номер обращения)" in text
    assert "2 предупреждения" not in text and "1 предупреждение не подтверждено; нужна причина" in text
    assert english_left(at) == []

    at = open_dialog("suppressed@example.com")
    box(at, sb, "suppressed@example.com", "Webinars").check()
    click(at, button_key("save", "suppressed@example.com"))
    warning = all_text(dialog_texts(at))
    # the reason in the reader's words (cmlib.suppression), the day in the Russian format
    assert re.search(r"suppressed@example\.com в стоп-листе клиента \(причина: Отписка, с \d{2}\.\d{2}\.\d{4}\)",
                     warning), warning
    assert english_left(at) == []


def test_a_write_in_russian_reports_in_russian_and_the_audit_page_lists_it_in_russian(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    click(at, button_key("save", ANNA))
    click(at, apply_key(plan_token(at, ANNA)))
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Unsubscribed"
    success = "\n".join(shown(s.value) for s in at.success)
    assert "Применено." in success and "Webinars — отписка: выполнено (подписан → отписан)" in success
    assert english_left(at) == []
    [row] = AuditLog().query()
    assert (row.action, row.result) == ("unsubscribe", "done")  # the log keeps English: data

    page = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    page.query_params["lang"] = "ru"
    page.context["timezone"] = "Europe/Moscow"
    run(page)
    frame = page.dataframe[0].value
    assert list(frame.columns)[:6] == ["Время", "Кто", "Адрес", "Список", "Действие", "Результат"]
    [cells] = frame.to_dict("records")
    assert (cells["Действие"], cells["Результат"], cells["Было"]) == ("отписка", "выполнено", "подписан")
    assert cells["Откуда имя"] == "введено вручную"
    assert RU_DAY_TIME.match(cells["Время"]) and cells["Время"].endswith("MSK"), cells["Время"]
    texts = visible_texts(page)
    text = all_text(texts)
    assert "Журнал изменений" in text and "Скачать CSV" in text and "1 строка, сначала новые" in text
    assert english(texts, allow=[*ALLOW, "Europe/Moscow", "MSK"]) == []
    page.session_state["audit_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    run(page)
    detail = all_text(visible_texts(page))
    assert "Строка целиком: anna@example.com, Webinars" in detail
    assert re.search(r"\(\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}:\d{2} UTC, как записано\)", detail)
    assert "подписан (статус в API: Active)" in detail
    assert english(visible_texts(page), allow=[*ALLOW, "Europe/Moscow", "MSK"]) == []
    # the download keeps the stored values (machine data) whatever the page's language
    assert to_csv_bytes(AuditLog().query()).decode("utf-8-sig").splitlines()[1].split(",")[7:10] == [
        "unsubscribe", "", "done"]


def test_a_partial_failure_says_in_russian_what_changed_and_what_did_not(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Newsletter").uncheck()
    box(at, sb, ANNA, "Webinars").uncheck()
    click(at, button_key("save", ANNA))
    sb.faults.fail_list_ids = {lid(sb, "Webinars")}
    click(at, apply_key(plan_token(at, ANNA)))
    err = "\n".join(shown(e.value) for e in at.error)
    assert "Применено частично: 1 изменение не выполнено, 1 прошло. Больше ничего не изменено." in err
    assert "Newsletter — отписка: выполнено (подписан → отписан)" in err
    assert "Webinars — отписка: не произошло (подписан → подписан)" in err  # the answer was lost: read back
    assert english_left(at) == []
    page = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    page.query_params["lang"] = "ru"
    run(page)
    results = set(page.dataframe[0].value["Результат"])
    assert "выполнено" in results and any(r.startswith("не выполнено: ") for r in results)


def test_a_conflict_in_russian_says_what_changed_and_keeps_the_choices(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    click(at, button_key("save", ANNA))
    sb.data.set_state(lid(sb, "Newsletter"), ANNA, "Unsubscribed")  # the person left meanwhile
    click(at, apply_key(plan_token(at, ANNA)))
    err = "\n".join(shown(e.value) for e in at.error)
    assert "Ничего не записано: подписки anna@example.com изменились после открытия окна" in err
    assert "Newsletter: подписан → отписан" in err
    info = "\n".join(shown(i.value) for i in at.info)
    assert "Ваш выбор перенесён на текущие статусы ниже" in info
    assert "Форма показывает новый статус: Newsletter." in info
    assert english_left(at) == []
    assert {r.result for r in AuditLog().query()} == {"conflict — not written"}


def test_api_down_at_apply_in_russian(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    click(at, button_key("save", ANNA))
    sb.set_faults(down=True)
    click(at, apply_key(plan_token(at, ANNA)))
    err = "\n".join(shown(e.value) for e in at.error)
    assert "Для anna@example.com ничего не записано: Campaign Monitor недоступен" in err
    assert "Не отправлено: отписка: Webinars." in err
    assert "нажмите «Сохранить изменения» и «Применить» ещё раз" in err
    assert "Webinars — отписка: не отправлено (подписан, без изменений): API недоступен" in err
    [row] = AuditLog().query()
    assert row.result.startswith("not sent: API unreachable")  # stored in English
    assert localise_result(row.result, lang=Language.RU).startswith("не отправлено: API недоступен (")


# ----------------------------------------------------------------------------- English stays as it was
def test_the_dialog_in_english_is_unchanged(sb):
    at = open_dialog(ANNA, lang=None)
    assert dialog(at).proto.dialog.title == "Manage subscriptions"
    labels = {b.label for b in at.button} | {b.label for b in at.get("form_submit_button")}
    assert {"Save changes", "Reset to original values"} <= labels
    box(at, sb, ANNA, "Beta testers").check()
    click(at, button_key("save", ANNA))
    radio = at.radio(key=consent_key(plan_token(at, ANNA)))
    assert list(radio.options) == ["Unchanged", "Yes", "No"]
    assert "Plan: subscribe to Beta testers" in all_text(dialog_texts(at))
    assert "Подписать" not in all_text(dialog_texts(at))


# ----------------------------------------------------------------------------- the words, without a page
def test_describe_translates_our_framing_and_keeps_the_apis_message():
    not_in = NotInListError("Subscriber not in list", status=400, code=203, endpoint="DELETE subscribers/L1")
    bad_gateway = ServerError("Bad Gateway", status=502)
    busy = WriteLockTimeout(WriteKey.of("c", ANNA), 90.2)
    assert describe(not_in, lang=Language.RU) == "Код 203: Subscriber not in list"
    assert describe(not_in) == "Code 203: Subscriber not in list"
    assert describe(bad_gateway, lang="ru") == "HTTP 502: Bad Gateway"
    assert describe(busy, lang=Language.RU) == "другое изменение этого адреса всё ещё выполнялось спустя 90 с"
    assert describe(busy) == str(busy) == "another change of this address was still in progress after 90 s"
    assert describe(ValueError("bad row"), lang=Language.RU) == "ValueError: bad row"  # a bug: as Python says it
    with use_language(Language.RU):
        assert describe(SuppressedError("In suppression list", code=204)) == "Код 204: In suppression list"
        assert not_in.reason == "Code 203: Subscriber not in list"  # logs and exceptions stay English
        assert str(not_in) == "Code 203: Subscriber not in list (DELETE subscribers/L1)"


def _snapshot(states: dict[str, str], email: str = "a@x.com") -> Snapshot:
    from cmlib.models import ListMembership

    names = {"L_news": "Newsletter", "L_web": "Webinars", "L_off": "Offers"}
    return Snapshot.of(email, "c1", [ListMembership(k, names[k], v, None) for k, v in states.items()])


LISTS = (ListInfo("L_news", "Newsletter", False, False), ListInfo("L_web", "Webinars", True, False),
         ListInfo("L_off", "Offers", False, True))


def test_a_plan_is_said_in_the_language_it_is_read_in():
    plan = plan_changes(_snapshot({"L_news": "Active", "L_web": "Active", "L_off": "Active"}),
                        {"L_off": False}, LISTS)
    assert plan.describe(Language.RU) == ("отписать от Offers — этот список настроен на отписку от ВСЕХ списков "
                                          "клиента, поэтому адрес выйдет также из Newsletter и Webinars")
    assert plan.describe() == ("unsubscribe from Offers — this list is set to unsubscribe from ALL client lists, "
                               "so the address will also leave Newsletter and Webinars")
    [w] = plan.warnings
    assert w.message.startswith("Offers is set to unsubscribe from ALL client lists")  # English: the str
    assert text_of(w.message, Language.RU).startswith("Список Offers настроен на отписку от ВСЕХ списков клиента")
    assert plan.missing(lang=Language.RU) == ["1 предупреждение не подтверждено"]
    resub = plan_changes(_snapshot({"L_news": "Unsubscribed", "L_web": "Bounced", "L_off": "Deleted"}),
                         {"L_news": True, "L_web": True, "L_off": True}, LISTS)
    assert resub.missing(lang=Language.RU) == ["3 предупреждения не подтверждены",
                                               "нужна причина (например, номер обращения)"]
    bounced = text_of(resub.warnings[1].message, Language.RU)
    assert bounced.startswith("Статус a@x.com в списке Webinars: отказ доставки. Повторное добавление отправляет "
                              "Resubscribe"), bounced
    assert bounced.endswith("могут снова вернуться с отказом.")


@pytest.mark.parametrize("template", RECORDED)
def test_every_stored_detail_reads_back_in_russian(template):
    """The audit log stores a result's detail in English; the Audit page reads it back with the
    template that wrote it and shows it as the dialog would have said it in Russian."""
    names = re.findall(r"\{([a-z_]+)\}", template)
    params: dict[str, object] = {}
    for name in names:
        if name.endswith("state"):
            params[name] = state_lazy("Active")
        elif name.endswith("names"):
            params[name] = names_lazy(["Newsletter", "Webinars"])
        elif name in DATA_PARAMS:
            params[name] = "90" if name == "seconds" else "Webinars"
        else:
            params[name] = lazy.error_text(NotInListError("Subscriber not in list", code=203))
    made = lazy.t(template, **params)
    stored = f"failed: {made}"  # what the audit log keeps: English
    assert localise_result(stored, lang=Language.RU) == f"не выполнено: {text_of(made, Language.RU)}"
    assert localise_result(stored, lang=Language.EN) == stored


def test_results_nobody_can_read_back_are_shown_as_stored():
    assert localise_result("done", lang=Language.RU) == "выполнено"
    assert localise_result("conflict — not written", lang=Language.RU) == "конфликт — не записано"
    assert localise_result("not sent: something new", lang=Language.RU) == "не отправлено: something new"
    assert localise_result("a result from another tool", lang=Language.RU) == "a result from another tool"
    assert localise_result("unknown: the connection dropped before an answer came back (connection reset) and the "
                           "read-back failed; check Webinars for a@x.com (Lookup → Refresh, or in Campaign Monitor): "
                           "if it still shows subscribed, the change did not happen", lang=Language.RU) == (
        "неизвестно: соединение оборвалось до ответа (connection reset), и повторное чтение не удалось; проверьте "
        "Webinars для a@x.com (Поиск → Обновить или в Campaign Monitor): если там всё ещё «подписан», изменение не "
        "произошло")


def test_a_key_in_the_reason_is_refused_in_russian(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    click(at, button_key("save", ANNA))
    token = plan_token(at, ANNA)
    at.text_input(key=reason_key(token)).input(f"обращение 3, ключ {sb.client_api_key}")
    run(at)
    assert at.button(key=apply_key(token)).disabled
    err = "\n".join(shown(e.value) for e in at.error)
    assert "Причина содержит API-ключ — уберите это из текста." in err and sb.client_api_key not in err
    assert "причина больше не содержит API-ключ" in "\n".join(shown(c.value) for c in at.caption)
    assert english([(w, x) for w, x in dialog_texts(at) if not w.endswith("text_input.value")]) == []


def test_the_empty_audit_page_in_russian(sb):
    page = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    page.query_params["lang"] = "ru"
    run(page)
    texts = visible_texts(page)
    text = all_text(texts)
    assert "Через панель ещё не сделано ни одного изменения." in text
    assert "Что означают результаты" in text and "**выполнено**: Campaign Monitor показывает изменение" in text
    assert page.selectbox(key="audit_result").options[:3] == ["любой", "выполнено", "уже так"]
    assert page.date_input(key="audit_since").label.startswith("С (день в ")
    assert english(texts, allow=[*ALLOW, "UTC"]) == []
    page.selectbox(key="audit_result").select("failed")  # a choice survives a rerun in Russian
    run(page)
    assert page.selectbox(key="audit_result").value == "failed"
    assert "Через панель ещё не сделано ни одного изменения." in all_text(visible_texts(page))  # still no row
