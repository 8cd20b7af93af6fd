"""Issue 14 on the Lookup page and the helpdesk panel: every word in Russian with ``?lang=ru``,
Russian dates, numbers and plural forms, the seed's words; English unchanged without it.

The pages are walked element by element as AppTest sees them (``visible_texts``) and checked
against the English catalog's own strings (``tests.i18n_helpers.untranslated``): what Campaign
Monitor says (list names, campaign names and subjects, addresses, the client's name and zone) is
allowed to stay as it is, nothing of ours is.
"""
from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import parse_qs

from streamlit.testing.v1 import AppTest

import ui.panel
from cmlib.emails import InvalidAddress, Rejection, check, parse_addresses
from cmlib.i18n import Language, use_language
from cmlib.lookup import Activity, Problem, Profile
from cmlib.presenters import TimeDisplay, activity_figures, state_summary
from cmlib.profiles import ListStatus, with_suppression
from cmlib.sandbox import DEMO_CUSTOMERS, Sandbox
from cmlib.suppression import SuppressionIndex
from tests.apptest_helpers import campaign_table, caption_lines, shown, shown_figures, visible_texts
from tests.i18n_helpers import untranslated
from ui.profile import DEMO_HELP

ROOT = Path(__file__).resolve().parent.parent
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")
PANEL_PAGE = str(ROOT / "pages" / "panel.py")

IVAN = list(DEMO_CUSTOMERS["three_addresses"])
# Every case of product.md on one page: lists and campaigns, several addresses, every state, never
# mailed, on no list, suppressed, a list name with markup, unsubscribed from all lists.
EVERYONE = [*DEMO_CUSTOMERS["with_campaigns"], *IVAN, *DEMO_CUSTOMERS["never_mailed"],
            *DEMO_CUSTOMERS["no_list"], *DEMO_CUSTOMERS["suppressed"], *DEMO_CUSTOMERS["html_list_name"],
            *DEMO_CUSTOMERS["all_lists_unsubscribed"]]
RU_DATE_TIME = re.compile(r"\b\d\d\.\d\d\.\d{4} \d\d:\d\d\b")
EN_DATE_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d\b")
SEED_SECTIONS = ("Списки", "Кампании", "Активность")


def ru_plural(n: int, one: str, few: str, many: str) -> str:
    """The Russian form for ``n``, by the grammar's rule (not by the catalog under test)."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def cm_values(sb: Sandbox) -> list[str]:
    """Everything on the pages that Campaign Monitor (here: the sandbox) says, not us."""
    values: list[str] = [a for case in DEMO_CUSTOMERS.values() for a in case]
    for client in sb.data.clients():
        values += [client.name, client.time_zone]
        values += [lst.name for lst in sb.data.lists_of(client.client_id)]
        for c in sb.data.sent_campaigns(client.client_id):
            values += [c.name, c.subject]
    # longest first: a campaign name inside a longer subject is removed with the subject
    return sorted({v for v in values if v}, key=len, reverse=True)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def lookup(emails: list[str], lang: str | None = "ru") -> AppTest:
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=60)
    at.context["timezone"] = "Europe/Moscow"
    at.query_params["email"] = emails
    if lang:
        at.query_params["lang"] = lang
    return run(at)


def panel_allow(sb: Sandbox, emails: list[str]) -> list[str]:
    """The panel's CM values, and its link to the full dashboard (a URL holding the addresses)."""
    return [ui.panel.dashboard_link(emails, "ru"), *cm_values(sb)]


def panel(monkeypatch, emails: list[str], lang: str | None = "ru", embed: bool = True) -> AppTest:
    monkeypatch.setattr(ui.panel, "is_embedded", lambda: embed)
    at = AppTest.from_file(PANEL_PAGE, default_timeout=60)
    at.context["timezone"] = "Europe/Moscow"
    at.query_params["email"] = emails
    if lang:
        at.query_params["lang"] = lang
    return run(at)


def readable(at: AppTest) -> list[tuple[str, str]]:
    """What a person reads: the visible texts without the page's scripts and style sheets."""
    return [(where, text) for where, text in visible_texts(at)
            if not text.lstrip().startswith(("<script", "<style"))]


def english_left(at: AppTest, allow: list[str]) -> list[tuple[str, str, str]]:
    return untranslated(readable(at), allow=allow)


def texts(at: AppTest) -> list[str]:
    return [text for _, text in readable(at)]


def html_bodies(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html")]


# ----------------------------------------------------------------------------- the Lookup page
def test_the_lookup_page_in_russian_has_no_english_word_of_ours(app_env):
    at = lookup(EVERYONE)
    assert len(at.tabs) == len(EVERYONE)
    assert english_left(at, cm_values(app_env)) == []
    assert at.title[0].value == "Поиск клиента"


def test_the_lookup_page_uses_the_seeds_words_and_state_words(app_env):
    at = lookup(EVERYONE)
    subheaders = {s.value for s in at.subheader}
    assert set(SEED_SECTIONS) <= subheaders, subheaders
    badges = {shown(m.value) for m in at.markdown if "-badge[" in m.value}
    for word in ("подписан", "отписан", "не подтверждён", "отказ доставки", "удалён"):
        assert any(f"[{word}]" in b for b in badges), (word, badges)
    labels = {shown(t.label).split(" · ")[0]: shown(t.label).split(" · ")[1] for t in at.tabs}
    assert labels["anna@example.com"] == "подписан: 3"
    assert labels["ivan.work@example.org"] == "подписан: 2, отписан: 2"
    assert labels["ivan.old@example.com"] == "отказ доставки: 3, удалён: 1"
    assert labels["fresh@example.com"] == "подписан: 1, не подтверждён: 1"
    assert labels["nobody@example.com"] == "ни в одном списке"
    assert labels["suppressed@example.com"] == "ни в одном списке, в стоп-листе"


def test_the_lookup_page_writes_dates_numbers_and_plurals_the_russian_way(app_env):
    at = lookup(DEMO_CUSTOMERS["with_campaigns"])
    captions = caption_lines(at)
    facts = next(c for c in captions if "в списке с " in c)
    assert RU_DATE_TIME.search(facts) and not EN_DATE_TIME.search(facts), facts
    assert any(c.startswith("данные на ") for c in captions), captions
    # the campaigns table: Russian headers, Sent in dd.mm.yyyy
    columns, rows = campaign_table(at)
    assert columns == ["Тема", "Отправлено", "Открыто", "Переход", "Веб-версия"]
    assert all(RU_DATE_TIME.search(r["Отправлено"]) for r in rows), rows
    assert all(r["Открыто"] in (True, False) and r["Переход"] in (True, False) for r in rows), rows
    # the activity metrics: percentages with the Russian non-breaking space, plural forms by count
    metrics = {f.label: f for f in shown_figures(at)}
    assert set(metrics) == {"Получено писем", "Доля открытий", "Доля переходов", "Открытий на письмо, в среднем",
                            "Переходов на письмо, в среднем"}
    assert re.fullmatch(r"\d+\u00a0%", metrics["Доля открытий"].value), metrics["Доля открытий"].value
    avg = metrics["Открытий на письмо, в среднем"].value
    assert re.fullmatch(r"\d+,\d", avg), avg  # decimal comma
    opens_help = metrics["Открытий на письмо, в среднем"].help
    n = int(re.search(r"Всего (\d+) ", opens_help).group(1))
    assert opens_help == f"Всего {n} {ru_plural(n, 'открытие', 'открытия', 'открытий')}."
    received = int(metrics["Получено писем"].value)
    shown_rows = min(3, received)
    assert (f"Последние {shown_rows} из {received} "
            f"{ru_plural(received, 'полученного письма', 'полученных писем', 'полученных писем')}, сначала новые."
            in captions)


def test_the_why_of_an_unsubscribe_and_a_bounce_is_in_russian(app_env):
    at = lookup(["ivan.work@example.org", "ivan.old@example.com"])
    reasons = [line for line in caption_lines(at) if line.startswith("Причина: ")]
    assert any("Отписка " in r and "кампания «" in r and RU_DATE_TIME.search(r) for r in reasons), reasons
    assert any("Отказ доставки " in r for r in reasons), reasons


def test_refused_addresses_are_explained_in_russian_with_a_plural(app_env):
    at = lookup(["ivan.mail.ru", "<script>alert(1)</script>", "anna@example.com"])
    [warning] = at.warning
    text = shown(warning.value)
    assert text.startswith("Пропущено 2 адреса:"), text
    assert "В адресе электронной почты должен быть знак @." in text
    assert "похоже на HTML-разметку, а не на адрес электронной почты" in text
    assert untranslated([("warning", text)], allow=["ivan.mail.ru", "<script>alert(1)</script>"]) == []


def test_the_demo_customers_are_offered_in_russian():
    """Demo mode (no credentials): the one-click examples and their help in Russian."""
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=60)
    at.query_params["lang"] = "ru"
    run(at)
    [expander] = [e for e in at.expander if e.label == "Демо-клиенты: найти одним щелчком"]
    labels = [shown(b.label) for b in expander.button]
    assert f"{IVAN[0]} и ещё 2" in labels
    addresses = [a for case in DEMO_CUSTOMERS.values() for a in case]
    assert english_left(at, addresses) == []
    assert any(i.value.startswith("Введите один или несколько адресов") for i in at.info)
    assert set(DEMO_HELP) == set(DEMO_CUSTOMERS)  # a new demo case needs its words too


def test_the_lookup_page_in_english_is_unchanged(app_env):
    at = lookup(DEMO_CUSTOMERS["with_campaigns"], lang=None)
    assert at.title[0].value == "Customer lookup"
    assert {"Lists", "Campaigns", "Activity"} <= {s.value for s in at.subheader}
    assert shown(at.tabs[0].label) == "anna@example.com · 3 subscribed"
    columns, rows = campaign_table(at)
    assert columns == ["Subject", "Sent", "Opened", "Clicked", "Web version"]
    assert all(EN_DATE_TIME.search(r["Sent"]) for r in rows)
    figures = {f.label: f.value for f in shown_figures(at)}
    assert {"Emails received", "Open rate"} <= set(figures)
    assert re.fullmatch(r"\d+%", figures["Open rate"]), figures
    joined = " ".join(texts(at))
    assert not re.search(r"[А-Яа-яЁё]", joined)


# ----------------------------------------------------------------------------- the helpdesk panel
def test_the_panel_in_russian_has_no_english_word_of_ours(app_env, monkeypatch):
    at = panel(monkeypatch, IVAN)
    assert english_left(at, panel_allow(app_env, IVAN)) == []
    labels = [shown(o) for o in at.radio[0].options]
    assert labels == ["ivan@example.com · подписан: 4", "ivan.work@example.org · подписан: 2, отписан: 2",
                      "ivan.old@example.com · отказ доставки: 3, удалён: 1"]
    assert "**Списки**" in [m.value for m in at.markdown]
    assert "**Последние кампании**" in [m.value for m in at.markdown]
    [campaigns] = [b for b in html_bodies(at) if b.startswith('<ol class="cm-campaigns"')]
    assert 'aria-label="Последние 3 из ' in campaigns
    assert re.search(r"Отправлено \d\d\.\d\d\.\d{4} \d\d:\d\d", campaigns), campaigns
    assert 'aria-label="да"' in campaigns or 'aria-label="нет"' in campaigns
    assert "Sent " not in campaigns and "Opened" not in campaigns and "web version" not in campaigns
    activity = next(shown(c.value) for c in at.caption if shown(c.value).startswith("Получено "))
    n = int(re.match(r"Получено (\d+) ", activity).group(1))
    assert activity.startswith(f"Получено {n} {ru_plural(n, 'письмо', 'письма', 'писем')} · открытия ")
    # the dashboard link keeps the addresses and the language, and says where it goes in Russian
    [link] = [m.value for m in at.markdown if m.value.startswith("[Открыть в полной версии](./?")]
    query = parse_qs(link[link.index("?") + 1:-1])
    assert query == {"email": IVAN, "lang": ["ru"]}


def test_the_panels_why_and_the_other_addresses_are_in_russian(app_env, monkeypatch):
    at = panel(monkeypatch, IVAN)
    with use_language("ru"):  # AppTest formats the chosen option here too, as the page drew it
        at.radio[0].set_value(IVAN[2].lower())
        run(at)
    whys = [shown(c.value) for e in at.expander for c in e.caption if shown(c.value).startswith("Почему: ")]
    assert any("Отказ доставки" in w for w in whys), whys
    assert english_left(at, panel_allow(app_env, IVAN)) == []


def test_the_panel_without_embed_in_russian(app_env, monkeypatch):
    at = panel(monkeypatch, ["suppressed@example.com"], embed=False)
    assert [s.value for s in at.subheader] == ["Панель хелпдеска"]
    assert [w.label for w in at.text_input] == ["Адреса электронной почты"]
    [warning] = at.warning
    assert shown(warning.value).startswith("Стоп-лист: в стоп-листе клиента")
    assert english_left(at, panel_allow(app_env, ["suppressed@example.com"])) == []


def test_the_panel_in_english_is_unchanged(app_env, monkeypatch):
    at = panel(monkeypatch, IVAN, lang=None)
    assert shown(at.radio[0].options[0]) == "ivan@example.com · 4 subscribed"
    assert "**Lists**" in [m.value for m in at.markdown]
    assert not re.search(r"[А-Яа-яЁё]", " ".join(texts(at)))


# ----------------------------------------------------------------------------- what cmlib says, later
def test_an_invalid_address_is_explained_in_the_readers_language():
    bad = check("ivan at mail.ru")
    assert isinstance(bad, InvalidAddress) and bad.kind == Rejection.SYNTAX
    assert bad.reason == "An email address must have an @-sign."  # the default: English
    assert bad.reason_in(Language.RU) == "В адресе электронной почты должен быть знак @."
    with use_language("ru"):
        assert bad.reason == "В адресе электронной почты должен быть знак @."
        assert check("anna @example.com").reason == "В адресе электронной почты перед знаком @ есть недопустимые " \
                                                     "символы: SPACE."
    several = check("a@x.com b@y.org c@z.net")
    assert several.reason == "3 addresses in one field; give one address per row"
    assert several.reason_in("ru") == "3 адреса в одном поле; укажите по одному адресу в строке"
    # the same judgement, read in two languages: nothing is fixed when the address is judged
    [quoted] = parse_addresses('"o\'brien"@example.com').invalid
    assert "quotes" in quoted.reason and "кавычках" in quoted.reason_in("ru")


def test_an_unknown_validator_sentence_is_introduced_in_the_readers_language():
    from cmlib.emails import validator_reason

    text = validator_reason("Something new the library says.")
    assert text.text("ru") == "адрес записан неверно: Something new the library says."
    assert str(text) == "not a valid address: Something new the library says."


def test_a_lookup_problem_is_said_in_the_language_it_is_read_in():
    """Problems are made on a lookup's worker thread, which has no reader: they are translated
    where they are shown."""
    from datetime import UTC, datetime

    from cmlib.errors import ServerError

    profile = Profile(email="a@x.com", lists=(), campaigns=(), activity=Activity.of(()),
                      fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
    checked = with_suppression(profile, ServerError("Boom", status=500, code=None))
    [problem] = checked.problems
    assert isinstance(problem, Problem)
    assert problem.message.startswith("Could not check whether a@x.com is on the client's suppression list: ")
    with use_language("ru"):
        assert problem.message.startswith("Не удалось проверить, есть ли a@x.com в стоп-листе клиента: ")
    big = with_suppression(profile, SuppressionIndex("c", {}, complete=False))
    with use_language("ru"):
        assert big.problems[0].message.endswith("в нём больше 0 записей, прочитаны только они")


def test_summaries_and_figures_follow_the_language():
    from datetime import UTC, datetime

    statuses = tuple(ListStatus(list_id=str(i), list_name=f"L{i}", state=s, date_added=None)
                     for i, s in enumerate(["Active", "Active", "Unconfirmed", "Spam"]))
    profile = Profile(email="a@x.com", lists=statuses, campaigns=(), activity=Activity(5, 3, 1, 7, 2),
                      fetched_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert state_summary(profile) == "2 subscribed, 1 pending, 1 spam"
    with use_language("ru"):
        assert state_summary(profile) == "подписан: 2, не подтверждён: 1, spam: 1"
        figures = activity_figures(profile.activity)
        assert [f.value for f in figures] == ["5", "60\u00a0%", "20\u00a0%", "1,4", "0,4"]
        assert figures[1].help == "Открыто хотя бы раз: 3 из 5 писем."
        assert figures[3].help == "Всего 7 открытий."
        assert figures[4].help == "Всего 2 перехода."
    assert [f.value for f in activity_figures(profile.activity)] == ["5", "60%", "20%", "1.4", "0.4"]


def test_a_time_display_writes_russian_dates():
    from datetime import datetime

    times = TimeDisplay.choose("Europe/Moscow", None)
    with use_language("ru"):
        assert times.show(datetime(2026, 11, 25, 13, 0)) == "25.11.2026 16:00 MSK"
    assert times.show(datetime(2026, 11, 25, 13, 0)) == "2026-11-25 16:00 MSK"


# ----------------------------------------------------------------------------- the CLI
def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    from cmlib.__main__ import main

    code = main(["lookup", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_cli_speaks_english_by_default_and_russian_with_lang(app_env, monkeypatch, capsys):
    monkeypatch.setenv("CM_LANGUAGE", "ru")  # a deployment's default does not change a terminal's output
    code, out, _ = _cli(["anna@example.com", "ivan.work@example.org"], capsys)
    assert code == 0
    assert "Lists:" in out and "Activity:" in out and "(Active)" in out
    assert not re.search(r"[А-Яа-яЁё]", out)
    code, out, _ = _cli(["anna@example.com", "ivan.work@example.org", "--lang", "ru"], capsys)
    assert code == 0
    assert "Списки:" in out and "Активность:" in out and "(подписан)" in out and "(отписан)" in out
    assert "Lists:" not in out and "(Active)" not in out
    assert RU_DATE_TIME.search(out)
    assert re.search(r"доля открытий \d+\u00a0%", out)


def test_the_cli_explains_a_refused_address_in_russian(capsys):
    code, _, err = _cli(["broken@", "--lang", "ru"], capsys)
    assert code == 2
    assert "неверный адрес 'broken@': После знака @ должно что-то быть." in err
    code, _, err = _cli(["broken@"], capsys)
    assert code == 2 and "invalid address 'broken@': There must be something after the @-sign." in err


def test_the_cli_json_stays_machine_readable_in_russian(app_env, capsys):
    import json

    code, out, _ = _cli(["ivan.old@example.com", "--json", "--lang", "ru"], capsys)
    assert code == 0
    [doc] = json.load(io.StringIO(out))
    assert {s["state"] for s in doc["lists"]} == {"Bounced", "Deleted"}  # the API's values, not words


def test_the_cli_refuses_a_language_it_does_not_speak(capsys):
    from cmlib.__main__ import main

    assert main(["lookup", "--lang", "de", "a@x.com"]) == 2
    assert "--lang" in capsys.readouterr().err
