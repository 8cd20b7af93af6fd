"""Downloads that Excel opens correctly and cannot be turned against the person opening them.

* CSV is UTF-8 **with a BOM**: without it Excel reads UTF-8 as the local code page and every
  Cyrillic name turns into mojibake. The separator follows the input (a Russian Excel expects
  ``;``), comma by default; fractions are written with the ``decimal`` mark the caller asks for
  (a comma for Excel with Russian regional settings, :func:`cmlib.i18n.csv_dialect`), so they
  open as numbers there. Dates are written in ISO 8601 (``2025-05-01 10:00:00``, the RFC 3339
  form with a space, which Excel reads as a date); whole numbers as ``4``, never ``4.0``, and
  never with a thousands separator.
* Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
  protected (OWASP "CSV injection"): a list name or a CSV cell such as
  ``=HYPERLINK("http://evil", "click")`` must stay text. Headers are cells too: list names
  become column headers. In CSV that takes a leading ``'``; in Excel the cell is stored as text
  with the quote-prefix style, so no apostrophe is shown (:mod:`cmlib.spreadsheet`).
* The Excel file is written in openpyxl's write-only mode, so 100,000 rows do not need
  100,000 rows of cell objects in memory, with state cells coloured as on the page (the words
  and colours of :mod:`cmlib.states`), dates as date cells, and columns as wide as their
  content (the Email column included).
* Both take rows as an iterable (:func:`csv_bytes`, :func:`excel_bytes`): the page streams a
  job's rows into them when someone clicks Download, without a table of the whole matrix.
"""
from __future__ import annotations

import csv
import io
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import IO, TYPE_CHECKING, Any

from ..i18n import N_, Language, resolve, t
from ..spreadsheet import FORMULA_PREFIXES, is_risky, neutralise, protect_xlsx_cell
from .matrix import state_background, state_color

if TYPE_CHECKING:  # the CLI streams rows through CsvSink without loading pandas
    import pandas as pd

__all__ = [  # FORMULA_PREFIXES and neutralise are re-exported: the bulk tests and callers import them here
    "CSV_MIME", "EXCEL_MAX_CELL", "FORMULA_PREFIXES", "XLSX_MIME", "CsvSink", "csv_bytes", "excel_bytes",
    "neutralise", "open_csv_output", "safe_row", "to_csv_bytes", "to_excel_bytes",
]

EXCEL_MAX_CELL = 32767
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXCEL_DATE_FORMAT = "yyyy-mm-dd hh:mm"
# Date cells as the reader's locale writes them (Russian: 25.11.2026 16:00); the value is a date either way.
EXCEL_DATE_FORMATS = {Language.EN: (EXCEL_DATE_FORMAT, "yyyy-mm-dd"), Language.RU: ("dd.mm.yyyy hh:mm", "dd.mm.yyyy")}
WIDTH_SAMPLE = 1000  # rows read ahead to size the Excel columns (write-only sheets are sized first)
MIN_WIDTH, MAX_WIDTH = 8, 60
MATRIX_SHEET = N_("Matrix")
SUMMARY_SHEET = N_("Summary")


def _plain(value: Any) -> Any:
    """NaN/None/NA as an empty cell, numpy and pandas scalars as Python ones (a whole number
    as an int, a timestamp as a datetime); everything else as is."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    pd = sys.modules.get("pandas")  # a NA or a Timestamp can only exist if pandas is loaded
    if pd is not None:
        if value is pd.NA or value is pd.NaT:
            return ""
        if isinstance(value, pd.Timestamp):
            return value.to_pydatetime()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalar
        value = value.item()
        if isinstance(value, float) and math.isnan(value):
            return ""
    return value


def _csv_value(value: Any, decimal: str = ".") -> Any:
    """A CSV cell: dates in ISO 8601, fractions with the ``decimal`` mark, risky text with a leading ``'``."""
    v = _plain(value)
    if isinstance(v, datetime):
        return v.isoformat(sep=" ", timespec="seconds")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and decimal != ".":
        return repr(v).replace(".", decimal)
    return neutralise(v)


def safe_row(values: Iterable[Any], decimal: str = ".") -> list[Any]:
    return [_csv_value(v, decimal) for v in values]


class CsvSink:
    """Rows streamed to a CSV file (the CLI): BOM, header, then rows as they come."""

    def __init__(self, fh: IO[str], headers: Sequence[str], delimiter: str = ",", decimal: str = ".") -> None:
        self._fh = fh
        self._decimal = decimal
        self._w = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        self._w.writerow(safe_row(headers))
        self.rows = 0

    def write(self, values: Iterable[Any]) -> None:
        self._w.writerow(safe_row(values, self._decimal))
        self.rows += 1

    def flush(self) -> None:
        self._fh.flush()


@contextmanager
def open_csv_output(path: str, headers: Sequence[str], delimiter: str = ",", decimal: str = ".") -> Iterator[CsvSink]:
    """A new CSV file in UTF-8 with BOM (Python's ``utf-8-sig`` writes the BOM), closed on leaving."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        yield CsvSink(fh, headers, delimiter, decimal)


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, delimiter: str = ",",
              decimal: str = ".") -> bytes:
    """Rows as CSV bytes for a download button (UTF-8 with BOM)."""
    buf = io.StringIO()
    sink = CsvSink(buf, headers, delimiter, decimal)
    for row in rows:
        sink.write(row)
    return buf.getvalue().encode("utf-8-sig")


def _frame_rows(df: pd.DataFrame, index: bool) -> Iterator[list[Any]]:
    for idx, row in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        yield ([idx] if index else []) + list(row)


def to_csv_bytes(df: pd.DataFrame, *, delimiter: str = ",", index: bool = False, decimal: str = ".") -> bytes:
    """The frame as CSV bytes for a download button."""
    headers = ([df.index.name or ""] if index else []) + [str(c) for c in df.columns]
    return csv_bytes(headers, _frame_rows(df, index), delimiter=delimiter, decimal=decimal)


def _xlsx_value(value: Any) -> Any:
    """A value openpyxl can store: characters XML cannot hold replaced, text cut to Excel's limit."""
    v = _plain(value)
    if isinstance(v, str):
        v = _ILLEGAL_XLSX.sub("\ufffd", v)
        if len(v) > EXCEL_MAX_CELL:
            v = v[: EXCEL_MAX_CELL - 1] + "…"
    elif isinstance(v, datetime) and v.tzinfo is not None:
        v = v.replace(tzinfo=None)  # Excel has no time zones: the wall-clock time as shown
    return v


def _width(value: Any) -> int:
    if isinstance(value, datetime):
        return 16
    return len(str(value)) if value is not None else 0


def _column_widths(headers: Sequence[str], sample: Sequence[Sequence[Any]]) -> list[int]:
    """Widths that fit the header and the longest value of the first rows (Email included)."""
    widths = [len(h) + 2 for h in headers]
    for row in sample:
        for i, v in enumerate(row[: len(widths)]):
            w = _width(_plain(v)) + 2
            if w > widths[i]:
                widths[i] = w
    return [max(MIN_WIDTH, min(MAX_WIDTH, w)) for w in widths]


def excel_bytes(
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    state_columns: Sequence[str] = (),
    summary: pd.DataFrame | None = None,
    matrix_sheet: str | None = None,
    summary_sheet: str | None = None,
    lang: Language | str | None = None,
) -> bytes:
    """An .xlsx with the rows (state cells coloured, dates as date cells, header frozen, filters
    on, columns sized to their content) and, when given, the per-list summary on a second sheet.

    ``headers`` and cells come as the caller says them; ``lang`` names the sheets (default: the
    current language)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    date_formats = EXCEL_DATE_FORMATS[resolve(lang)]
    bold = Font(bold=True)
    fills: dict[str, tuple[PatternFill, Font]] = {}

    def style_for(state: str) -> tuple[PatternFill, Font]:  # a product word, or an unknown API state
        got = fills.get(state)
        if got is None:
            bg = state_background(state).lstrip("#").upper()
            fg = state_color(state).lstrip("#").upper()
            got = (PatternFill("solid", start_color="FF" + bg, end_color="FF" + bg), Font(color="FF" + fg, bold=True))
            fills[state] = got
        return got

    def cell(ws: Any, value: Any) -> Any:
        """A plain value when nothing needs saying; a styled cell for risky text and dates."""
        val = _xlsx_value(value)
        if is_risky(val):
            return protect_xlsx_cell(WriteOnlyCell(ws, value=val))
        if isinstance(val, (datetime, date)):
            c = WriteOnlyCell(ws, value=val)
            c.number_format = date_formats[0] if isinstance(val, datetime) else date_formats[1]
            return c
        return val

    ws = wb.create_sheet(matrix_sheet or t(MATRIX_SHEET, lang=lang))
    ws.freeze_panes = "C2"
    columns = [str(c) for c in headers]
    it = iter(rows)
    head_rows = list(itertools.islice(it, WIDTH_SAMPLE))
    for i, width in enumerate(_column_widths(columns, head_rows), start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    header = []
    for name in columns:
        c = protect_xlsx_cell(WriteOnlyCell(ws, value=_xlsx_value(name)))
        c.font = bold
        header.append(c)
    ws.append(header)
    state_idx = {i for i, name in enumerate(columns) if name in set(state_columns)}
    n = 0
    for row in itertools.chain(head_rows, it):
        out = []
        for i, v in enumerate(row):
            if i in state_idx and isinstance(v, str) and v:
                c = protect_xlsx_cell(WriteOnlyCell(ws, value=_xlsx_value(v)))
                c.fill, c.font = style_for(v.split(", ")[0])
                out.append(c)
            else:
                out.append(cell(ws, v))
        ws.append(out)
        n += 1
    if n:
        ws.auto_filter.ref = f"A1:{get_column_letter(max(1, len(columns)))}{n + 1}"

    if summary is not None:
        ss = wb.create_sheet(summary_sheet or t(SUMMARY_SHEET, lang=lang))
        first = protect_xlsx_cell(WriteOnlyCell(ss, value=_xlsx_value(summary.index.name or t("List", lang=lang))))
        first.font = bold
        head = [first]
        for s in summary.columns:
            c = protect_xlsx_cell(WriteOnlyCell(ss, value=_xlsx_value(str(s))))
            c.fill, c.font = style_for(str(s))
            head.append(c)
        ss.column_dimensions["A"].width = max(MIN_WIDTH, min(MAX_WIDTH, max(
            [len(str(i)) + 2 for i in summary.index] + [12])))
        ss.append(head)
        for idx, srow in zip(summary.index, summary.itertuples(index=False, name=None), strict=True):
            ss.append([cell(ss, str(idx))] + [cell(ss, v) for v in srow])

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_excel_bytes(
    matrix: pd.DataFrame,
    *,
    state_columns: Sequence[str] = (),
    summary: pd.DataFrame | None = None,
    matrix_sheet: str | None = None,
    summary_sheet: str | None = None,
    lang: Language | str | None = None,
) -> bytes:
    """:func:`excel_bytes` of a frame (the matrix built whole: tests and small results)."""
    return excel_bytes([str(c) for c in matrix.columns], _frame_rows(matrix, False), state_columns=state_columns,
                       summary=summary, matrix_sheet=matrix_sheet, summary_sheet=summary_sheet, lang=lang)
