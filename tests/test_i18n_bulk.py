"""The Bulk page, its downloads and ``python -m cmlib bulk`` in Russian (issue 14).

The page is run in AppTest with ``?lang=ru`` on the demo sandbox: every word on it is Russian but
the values from Campaign Monitor and the user (list names, addresses); counts take Russian plural
forms. The CSV download in Russian opens in a Russian Excel with numbers as numbers (``;`` and a
decimal comma: read back with pandas ``sep=";", decimal=","``), says its headers, state words and
reasons in Russian and keeps the API's own value per list for machines; the English download is
unchanged. The CLI speaks English unless asked with ``--lang ru``.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from cmlib import lazy_text
from cmlib.bulk.control import JobState, Pause, format_duration, not_looked_up_reason
from cmlib.bulk.csv_input import parse_text
from cmlib.bulk.engine import ActivitySummary, LookupResult, describe_failure
from cmlib.bulk.jobs import JobSnapshot
from cmlib.bulk.matrix import layout_for, summarise
from cmlib.bulk.progress import Progress
from cmlib.bulk.validate import validate_table
from cmlib.bulk.view import matrix_csv, matrix_excel
from cmlib.bulk_cli import main
from cmlib.errors import ServerError
from cmlib.i18n import Language, t
from cmlib.states import STATE_STYLES, SubscriberState
from tests.apptest_helpers import shown, visible_texts
from tests.i18n_helpers import untranslated
from tests.sandbox_fixtures import point_app_at
from ui.bulk_view import (
    CANCEL_KEY,
    JOB_KEY,
    PASTE_KEY,
    SOURCE_KEY,
    SOURCE_UPLOAD,
    START_KEY,
    UPLOAD_KEY,
    registry,
)

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "bulk.py")
PASTE = "anna@example.com\nivan.work@example.org\nnot-an-address\nANNA@example.com\nvip@example.com\nnobody@example.com"
STATE_WORDS_RU = ["подписан", "отписан", "не подтверждён", "отказ доставки", "удалён"]

# Words that stay as they are in a Russian page: product and format names, the API's own terms,
# commands. Anything else in Latin letters on a Russian page is a value from Campaign Monitor or
# the user (passed per test), or English left behind.
TECHNICAL = ("Campaign Monitor", "python -m cmlib bulk", "python -m cmlib worker", "Resubscribe", "Windows-1251",
             "UTF-8", "UTF-16", "Latin-1", "Excel", "CSV", "API", "UTC", "Ctrl-C")
_LATIN_PHRASE = re.compile(r"[A-Za-z]{3,}(?:[ \-][A-Za-z]{3,})+")


def latin_phrases(texts: list[tuple[str, str]], allow: list[str]) -> list[tuple[str, str]]:
    """(where, phrase) for every run of two or more Latin words that is not an allowed value: a
    sentence in code that never went through ``t()`` (the catalog check cannot see those)."""
    found = []
    for where, text in texts:
        if where.endswith("chart") or (where.endswith(".value") and "text_area" in where):
            continue  # the chart's JSON spec (checked on its own); the pasted text itself
        cleaned = text
        for value in sorted([*allow, *TECHNICAL], key=len, reverse=True):
            cleaned = cleaned.replace(value, " ")
        found += [(where, m.group(0)) for m in _LATIN_PHRASE.finditer(cleaned)]
    return found


@pytest.fixture
def app_env(sandbox, monkeypatch):
    point_app_at(sandbox, monkeypatch)
    yield sandbox
    for jid in list(registry()._jobs):  # never leave a run going into the next test
        registry().remove(jid)


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def page(lang: str = "ru") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.query_params["lang"] = lang
    return run(at)


def cm_values(sandbox) -> list[str]:
    """What Campaign Monitor and the user put on the page: list names and the pasted addresses."""
    names = [lst.name for lst in sandbox.data.lists_of(sandbox.main_client_id)]
    return [*names, *PASTE.split("\n")]


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    for df in at.dataframe:
        if column in df.value.columns:
            return df.value
    raise AssertionError(f"no dataframe with column {column!r}")


def all_text(at: AppTest) -> str:
    return "\n".join(text for _, text in visible_texts(at))


def finished_run(at: AppTest):
    at.text_area(key=PASTE_KEY).input(PASTE)
    run(at)
    at.button(key=START_KEY).click()
    run(at)
    job = registry().get(at.session_state[JOB_KEY])
    assert job is not None and job.join(30)
    run(at)
    return job


# ---------------------------------------------------------------------------- the page
def test_a_finished_run_in_russian_has_no_english_left(app_env):
    at = page()
    finished_run(at)
    texts = [(w, s) for w, s in visible_texts(at) if not w.endswith("chart")]
    allow = cm_values(app_env)
    assert untranslated(texts, allow=allow) == []
    assert latin_phrases(texts, allow) == []
    body = all_text(at)
    # the tallies take Russian plural forms: 4 адреса, 6 строк
    assert "Проверка 4 адресов (6 строк), источник: вставленные адреса · только подписки" in body
    assert at.get("progress")[0].proto.text.startswith("4 / 4 адреса")
    assert "Показано 6 строк." in body
    assert "**4 вызова**" in body and "1\xa0000" in body  # numbers as Russian writes them
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Проверено"] == "4" and metrics["Ни в одном списке"] == "1"
    assert metrics["Неверные / повторы"] == "1 / 1"
    # the seed's state words, the summary's columns in the product's order
    summary = frame_with(at, "подписан")
    assert list(summary.columns[:5]) == STATE_WORDS_RU
    assert summary.index.name == "Список" and summary.loc["Newsletter", "подписан"] == 2
    matrix = frame_with(at, "Ни в одном списке").set_index("Строка")
    assert matrix.loc[1, "Newsletter"] == "подписан" and matrix.loc[2, "Newsletter"] == "отписан"
    assert list(matrix["Статус"]) == ["проверен", "проверен", "неверный", "повтор", "проверен", "проверен"]
    assert matrix.loc[3, "Ошибка"].startswith("Неверный адрес: ") and matrix.loc[4, "Ошибка"] == "Повтор строки 1"
    assert matrix.loc[6, "Ни в одном списке"] == "да" and matrix.loc[1, "Ни в одном списке"] == "нет"
    # the filter's options say the states (and the two pseudo-states) in Russian
    states = next(m for m in at.multiselect if m.label == "Статусы")
    assert states.options == ["подписан", "отписан", "(ни в одном списке)", "(ошибка или не проверен)"]
    # the chart: Russian legend and axis
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["encoding"]["color"]["scale"]["domain"][:5] == STATE_WORDS_RU
    assert "адреса" in json.dumps(spec, ensure_ascii=False)
    # the CSV separator a Russian Excel expects is the default
    assert next(s for s in at.selectbox if s.label == "Разделитель CSV").value == ";"


def test_the_same_run_in_english_is_unchanged(app_env):
    at = page("en")
    finished_run(at)
    body = all_text(at)
    assert "Run of 4 addresses (6 rows) from pasted addresses · membership only" in body
    assert at.get("progress")[0].proto.text.startswith("4 / 4 addresses")
    assert list(frame_with(at, "subscribed").columns[:5]) == ["subscribed", "unsubscribed", "pending", "bounced",
                                                              "deleted"]
    assert next(s for s in at.selectbox if s.label == "CSV separator").value == ","


def test_a_running_then_cancelled_run_in_russian(app_env):
    app_env.set_faults(latency_ms=400)
    emails = app_env.data.emails(app_env.main_client_id)[:60]
    at = page()
    at.text_area(key=PASTE_KEY).input("\n".join(emails))
    run(at)
    at.button(key=START_KEY).click()
    run(at)
    job = registry().get(at.session_state[JOB_KEY])
    assert job.wait(lambda p: p.done >= 3, timeout=30)
    run(at)
    allow = [*cm_values(app_env), *emails]
    texts = [(w, s) for w, s in visible_texts(at) if not w.endswith("chart")]
    assert untranslated(texts, allow=allow) == [] and latin_phrases(texts, allow) == []
    assert at.button(key=CANCEL_KEY).label == "Отменить"
    assert any(s.value == "Текущие результаты" for s in at.subheader)
    assert re.match(r"\d+ / 60 адресов", at.get("progress")[0].proto.text)
    at.button(key=CANCEL_KEY).click()
    run(at)
    assert job.join(10) and job.state == JobState.CANCELLED
    run(at)
    assert any(s.value == "Результаты (проверка отменена; готовое сохранено)" for s in at.subheader)
    matrix = frame_with(at, "Ни в одном списке")
    assert set(matrix.loc[matrix["Статус"] == "не проверен", "Ошибка"]) == {"Не проверен: проверка отменена"}
    texts = [(w, s) for w, s in visible_texts(at) if not w.endswith("chart")]
    assert untranslated(texts, allow=allow) == [] and latin_phrases(texts, allow) == []


def test_an_uploaded_file_is_described_in_russian(app_env):
    at = page()
    upload = t(SOURCE_UPLOAD, lang=Language.RU)
    assert upload == "Загрузить файл CSV"
    at.radio(key=SOURCE_KEY).set_value(upload)
    run(at)
    data = "Имя;Электронная почта;Город\nАнна;anna@example.com;Москва\nНикто;nobody@example.com;Казань\n"
    at.file_uploader(key=UPLOAD_KEY).upload("event.csv", data.encode("cp1251"), "text/csv")
    run(at)
    body = "\n".join(shown(c.value) for c in at.caption)
    assert "Прочитано как: Windows-1251 (кириллица), разделитель — точка с запятой, 3 столбца, со строкой " \
           "заголовков." in body
    assert "Столбец с адресами определён по заголовку «Электронная почта»." in body
    assert next(s for s in at.selectbox if s.label == "Столбец с адресами").value == 1
    texts = [(w, s) for w, s in visible_texts(at) if not w.endswith("chart")]
    assert untranslated(texts) == [] and latin_phrases(texts, []) == []
    # a picture renamed to .csv is refused in Russian, with what to do instead
    at.file_uploader(key=UPLOAD_KEY).upload("photo.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    run(at)
    [error] = [shown(e.value) for e in at.error]
    assert error.startswith("Это изображение PNG, а не текстовый файл CSV. В Excel выберите Файл → Сохранить как")


def test_a_file_without_an_email_column_asks_in_russian(app_env):
    at = page()
    at.radio(key=SOURCE_KEY).set_value(t(SOURCE_UPLOAD, lang=Language.RU))
    run(at)
    at.file_uploader(key=UPLOAD_KEY).upload("names.csv", b"Name,Contact\nIvan,ivan at example\nAnna,anna\n")
    run(at)
    assert [shown(w.value) for w in at.warning] == [
        "Столбец с email-адресами не найден. Выберите столбец, в котором они есть."]
    box = next(s for s in at.selectbox if s.label == "Столбец с адресами")
    assert box.placeholder == "Выберите столбец с адресами"
    at.button(key=START_KEY).click()
    run(at)
    assert [shown(e.value) for e in at.error] == ["Сначала выберите столбец с адресами."]


# ---------------------------------------------------------------------------- exports
LISTS = {"L1": "Newsletter", "L2": "Offers"}
TEXT = "Email;Name\nanna@x.com;Anna\nivan@x.com;Ivan\nbroken@@x;Broken\nANNA@x.com;Again\nlater@x.com;Later\n"


def snapshot() -> JobSnapshot:
    bi = validate_table(parse_text(TEXT))
    act = ActivitySummary(4, 3, 1, 0.75, 0.125, "Spring sale", datetime(2025, 5, 1, 10, 0))
    results = {
        "anna@x.com": LookupResult("anna@x.com", (("L1", "Active"), ("L2", "Unconfirmed")), activity=act),
        "ivan@x.com": LookupResult("ivan@x.com", (("L1", "Unsubscribed"),),
                                   activity=ActivitySummary(0, 0, 0, 0.0, 0.0)),
    }
    return JobSnapshot(job_id="j", input=bi, results=results, list_names=dict(LISTS), with_activity=True,
                       state=JobState.CANCELLED, fatal=None, notes=())


def read_csv(data: bytes, **kw) -> pd.DataFrame:
    assert data.startswith(codecs.BOM_UTF8)
    return pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", keep_default_na=False, na_values=[""], **kw)


def test_the_russian_csv_opens_with_numbers_as_numbers_and_russian_words():
    snap = snapshot()
    layout = layout_for(snap, lang=Language.RU)
    data = matrix_csv(snap, layout, range(len(snap.input.rows)))
    assert b";" in data.splitlines()[0]
    df = read_csv(data, sep=";", decimal=",")
    assert list(df.columns[:3]) == ["Строка", "Адрес", "Статус"]
    assert "Открытия, %" in df.columns and "Получено кампаний" in df.columns
    for column in ("Строка", "Получено кампаний", "Открытия, %", "Переходы, %"):
        assert pd.api.types.is_numeric_dtype(df[column]), column
    assert df["Открытия, %"].iloc[0] == 75.0 and df["Переходы, %"].iloc[0] == 12.5
    assert "75,0" in data.decode("utf-8-sig")  # what Excel with Russian settings reads as a number
    assert list(df["Статус"]) == ["проверен", "проверен", "неверный", "повтор", "не проверен"]
    assert list(df["Newsletter"].fillna("")) == ["подписан", "отписан", "", "подписан", ""]
    assert df["Offers"].iloc[0] == "не подтверждён"
    # the API's own value stays for machines, under a header a person can read
    assert list(df["Newsletter (статус в API)"].fillna("")) == ["Active", "Unsubscribed", "", "Active", ""]
    assert df["Ошибка"].iloc[3] == "Повтор строки 2"
    assert df["Ошибка"].iloc[4] == "Не проверен: проверка отменена"
    assert df["Ни в одном списке"].iloc[0] == "нет"


def test_the_english_csv_is_unchanged():
    snap = snapshot()
    data = matrix_csv(snap, layout_for(snap, lang=Language.EN), range(len(snap.input.rows)))
    df = read_csv(data)
    assert list(df.columns[:3]) == ["Row", "Email", "Status"]
    assert pd.api.types.is_numeric_dtype(df["Open rate %"]) and df["Open rate %"].iloc[0] == 75.0
    assert "75.0" in data.decode("utf-8-sig") and "75,0" not in data.decode("utf-8-sig")
    assert list(df["Status"]) == ["ok", "ok", "invalid", "duplicate", "not run"]
    assert df["Newsletter"].iloc[0] == "subscribed" and df["Newsletter (API state)"].iloc[0] == "Active"
    assert df["Error"].iloc[4] == "Not looked up: the run was cancelled"


def test_a_comma_chosen_as_separator_keeps_the_decimal_point():
    snap = snapshot()
    data = matrix_csv(snap, layout_for(snap, lang=Language.RU), range(len(snap.input.rows)), delimiter=",")
    df = read_csv(data)
    assert df["Открытия, %"].iloc[0] == 75.0


def test_the_russian_excel_file_has_russian_headers_sheets_and_coloured_words():
    snap = snapshot()
    layout = layout_for(snap, lang=Language.RU)
    summary, _ = summarise(snap, layout)
    wb = openpyxl.load_workbook(io.BytesIO(matrix_excel(snap, layout, range(len(snap.input.rows)), summary=summary)))
    assert wb.sheetnames == ["Матрица", "Сводка"]
    ws = wb["Матрица"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["Строка", "Адрес", "Статус"] and "Newsletter (статус в API)" in header
    cell = ws.cell(row=2, column=header.index("Newsletter") + 1)
    assert cell.value == "подписан"
    background = STATE_STYLES[SubscriberState.ACTIVE].background.lstrip("#").upper()
    assert cell.fill.start_color.rgb == "FF" + background  # coloured as on the page
    sent = ws.cell(row=2, column=header.index("Дата последней кампании") + 1)
    assert sent.is_date and sent.number_format == "dd.mm.yyyy hh:mm"  # 01.05.2025 10:00, as Russian writes it
    sheet = wb["Сводка"]
    assert [c.value for c in sheet[1]][:6] == ["Список", *STATE_WORDS_RU]


# ---------------------------------------------------------------------------- cmlib in either language
@pytest.mark.parametrize(("total", "words"), [(1, "1 / 1 адрес"), (3, "0 / 3 адреса"), (5, "0 / 5 адресов"),
                                              (21, "0 / 21 адрес"), (1234, "0 / 1\xa0234 адреса")])
def test_the_progress_sentence_takes_russian_plural_forms(total, words):
    p = Progress(JobState.RUNNING if total > 1 else JobState.DONE, 1 if total == 1 else 0, total, 0, 1.0, 0.0, None)
    assert p.describe(lang=Language.RU).startswith(words)


def test_progress_pause_and_durations_in_both_languages():
    p = Progress(JobState.RUNNING, 176, 300, 3, 10.0, 20.0, 6.0)
    assert p.describe(lang=Language.RU) == "176 / 300 адресов · 20,0/с · осталось около 6 с · 3 ошибки"
    assert p.describe(lang=Language.EN) == "176 / 300 addresses · 20.0/s · about 6 s left · 3 failed"
    pause = Pause(datetime(2026, 11, 25, 14, 2, tzinfo=UTC), 0.0, 300.0)
    assert pause.message(705, lang=Language.RU) == (
        "Campaign Monitor не отвечает с 14:02 UTC — пауза, ждут 705 адресов; проверка остановится, если он не "
        "ответит в течение 5 мин 00 с")
    assert pause.message(1, "rows", lang=Language.EN).startswith(
        "Campaign Monitor is not answering since 14:02 UTC — paused, 1 row waiting")
    assert format_duration(3725, lang=Language.RU) == "1 ч 02 мин"


def test_row_reasons_made_on_a_worker_are_read_in_each_readers_language_and_survive_json():
    """A reason is made once, in a background thread, and read by watchers in their own languages
    (and stored as JSON by a durable job)."""
    failure = describe_failure(ServerError("HTML 500 response", status=500), "a@x.com")
    assert failure == "Looking up the lists of a@x.com failed after retries: HTTP 500: HTML 500 response"
    assert lazy_text.text_of(failure, Language.RU) == (
        "Не удалось получить списки a@x.com после повторных попыток: HTTP 500: HTML 500 response")
    again = lazy_text.from_json(json.loads(json.dumps(lazy_text.to_json(failure))))
    assert again == failure and lazy_text.text_of(again, Language.RU) == lazy_text.text_of(failure, Language.RU)
    cancelled = not_looked_up_reason(JobState.CANCELLED, fatal=None, gave_up=None)
    assert lazy_text.text_of(cancelled, Language.RU) == "Не проверен: проверка отменена"


# ---------------------------------------------------------------------------- the CLI
@pytest.fixture
def cli_env(sandbox, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", sandbox.client_api_key)
    monkeypatch.setenv("CM_CLIENT_ID", sandbox.main_client_id)
    monkeypatch.setenv("CM_API_URL", sandbox.base_url)
    return sandbox


def _cli_input(sandbox, tmp_path: Path) -> Path:
    known = sandbox.data.emails(sandbox.main_client_id)[:3]
    src = tmp_path / "in.csv"
    src.write_text("Email,Name\n" + "".join(f"{e},N{i}\n" for i, e in enumerate(known)) + "broken,B\n"
                   + f"{known[0].upper()},Again\n")
    return src


def _read(path: Path, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"), newline=""), delimiter=delimiter))
    return rows[0], [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]


def test_the_cli_speaks_russian_with_lang_ru(cli_env, tmp_path, capsys):
    src, out = _cli_input(cli_env, tmp_path), tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--rate", "off", "--lang", "ru"]) == 3
    err = capsys.readouterr().err
    assert "Читаю " in err and "столбец с адресами «Email» (по заголовку «Email»); 5 строк." in err
    assert "Записано 5 строк в " in err and "1 повторяющаяся строка" in err and "разделитель: точка с запятой." in err
    header, rows = _read(out, ";")
    assert header[:3] == ["Строка", "Адрес", "Статус"] and "Другие списки" in header
    assert [r["Статус"] for r in rows] == ["проверен", "проверен", "проверен", "неверный", "повтор"]
    names = [lst.name for lst in cli_env.data.lists_of(cli_env.main_client_id)]
    words = {r[n] for r in rows for n in names if r[n]}
    assert words and words <= set(STATE_WORDS_RU)
    api = {r[f"{n} (статус в API)"] for r in rows for n in names if r[f"{n} (статус в API)"]}
    assert api and api <= {s.value for s in SubscriberState}
    assert rows[4]["Ошибка"] == "Повтор строки 2" and rows[3]["Ошибка"].startswith("Неверный адрес: ")


def test_the_cli_stays_english_by_default_whatever_the_deployment_language(cli_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CM_LANGUAGE", "ru")
    src, out = _cli_input(cli_env, tmp_path), tmp_path / "out.csv"
    assert main([str(src), "-o", str(out), "--rate", "off"]) == 3
    assert "Wrote 5 rows to " in capsys.readouterr().err
    header, rows = _read(out, ",")
    assert header[:3] == ["Row", "Email", "Status"]
    assert [r["Status"] for r in rows] == ["ok", "ok", "ok", "invalid", "duplicate"]


def test_the_cli_refuses_an_unknown_language(cli_env, tmp_path, capsys):
    assert main([str(_cli_input(cli_env, tmp_path)), "-o", str(tmp_path / "o.csv"), "--lang", "de"]) == 2
    assert "expected one of en, ru" in capsys.readouterr().err
