"""Downloads that Excel opens correctly and cannot be turned against the person opening them.

* CSV is UTF-8 **with a BOM**: without it Excel reads UTF-8 as the local code page and every
  Cyrillic name turns into mojibake. The separator follows the input (a Russian Excel expects
  ``;``), comma by default.
* Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
  prefixed with ``'`` (OWASP "CSV injection"): a list name or a CSV cell such as
  ``=HYPERLINK("http://evil", "click")`` must stay text. Headers are cells too: list names
  become column headers.
* The Excel file is written in openpyxl's write-only mode, so 100,000 rows do not need
  100,000 rows of cell objects in memory, with state cells coloured as on the page (the words
  and colours of :mod:`cmlib.states`).
"""
from __future__ import annotations

import csv
import io
import math
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING, Any

from ..spreadsheet import FORMULA_PREFIXES, neutralise
from .matrix import state_background, state_color

if TYPE_CHECKING:  # the CLI streams rows through CsvSink without loading pandas
    import pandas as pd

__all__ = [  # FORMULA_PREFIXES and neutralise are re-exported: the bulk tests and callers import them here
    "CSV_MIME", "EXCEL_MAX_CELL", "FORMULA_PREFIXES", "XLSX_MIME", "CsvSink", "neutralise", "open_csv_output",
    "safe_row", "to_csv_bytes", "to_excel_bytes",
]

EXCEL_MAX_CELL = 32767
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")

CSV_MIME = "text/csv"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _plain(value: Any) -> Any:
    """NaN/None as an empty cell; everything else as is."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    pd = sys.modules.get("pandas")  # a NA can only exist if pandas is loaded
    if pd is not None and (value is pd.NA or value is pd.NaT):
        return ""
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [neutralise(_plain(v)) for v in values]


class CsvSink:
    """Rows streamed to a CSV file (the CLI): BOM, header, then rows as they come."""

    def __init__(self, fh: IO[str], headers: Sequence[str], delimiter: str = ",") -> None:
        self._fh = fh
        self._w = csv.writer(fh, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        self._w.writerow(safe_row(headers))
        self.rows = 0

    def write(self, values: Iterable[Any]) -> None:
        self._w.writerow(safe_row(values))
        self.rows += 1

    def flush(self) -> None:
        self._fh.flush()


@contextmanager
def open_csv_output(path: str, headers: Sequence[str], delimiter: str = ",") -> Iterator[CsvSink]:
    """A new CSV file in UTF-8 with BOM (Python's ``utf-8-sig`` writes the BOM), closed on leaving."""
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        yield CsvSink(fh, headers, delimiter)


def to_csv_bytes(df: pd.DataFrame, *, delimiter: str = ",", index: bool = False) -> bytes:
    """The frame as CSV bytes for a download button."""
    buf = io.StringIO()
    sink = CsvSink(buf, ([df.index.name or ""] if index else []) + [str(c) for c in df.columns], delimiter)
    for idx, row in zip(df.index, df.itertuples(index=False, name=None), strict=True):
        sink.write(([idx] if index else []) + list(row))
    return buf.getvalue().encode("utf-8-sig")


def _xlsx_value(value: Any) -> Any:
    v = neutralise(_plain(value))
    if isinstance(v, str):
        v = _ILLEGAL_XLSX.sub("\ufffd", v)
        if len(v) > EXCEL_MAX_CELL:
            v = v[: EXCEL_MAX_CELL - 1] + "…"
    elif hasattr(v, "item"):  # numpy scalar
        v = v.item()
    return v


def to_excel_bytes(
    matrix: pd.DataFrame,
    *,
    state_columns: Sequence[str] = (),
    summary: pd.DataFrame | None = None,
    matrix_sheet: str = "Matrix",
    summary_sheet: str = "Summary",
) -> bytes:
    """An .xlsx with the matrix (state cells coloured, header frozen, filters on) and,
    when given, the per-list summary on a second sheet."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
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

    ws = wb.create_sheet(matrix_sheet)
    ws.freeze_panes = "C2"
    columns = [str(c) for c in matrix.columns]
    for i, name in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(8, min(40, len(name) + 2))
    if len(matrix):
        ws.auto_filter.ref = f"A1:{get_column_letter(max(1, len(columns)))}{len(matrix) + 1}"
    header = []
    for name in columns:
        c = WriteOnlyCell(ws, value=_xlsx_value(name))
        c.font = bold
        header.append(c)
    ws.append(header)
    state_idx = {i for i, name in enumerate(columns) if name in set(state_columns)}
    for row in matrix.itertuples(index=False, name=None):
        out = []
        for i, v in enumerate(row):
            val = _xlsx_value(v)
            if i in state_idx and isinstance(val, str) and val:
                c = WriteOnlyCell(ws, value=val)
                c.fill, c.font = style_for(val.split(", ")[0])
                out.append(c)
            else:
                out.append(val)
        ws.append(out)

    if summary is not None:
        ss = wb.create_sheet(summary_sheet)
        head = [WriteOnlyCell(ss, value=_xlsx_value(summary.index.name or "List"))]
        for s in summary.columns:
            c = WriteOnlyCell(ss, value=_xlsx_value(str(s)))
            c.fill, c.font = style_for(str(s))
            head.append(c)
        head[0].font = bold
        ss.column_dimensions["A"].width = 40
        ss.append(head)
        for idx, row in zip(summary.index, summary.itertuples(index=False, name=None), strict=True):
            ss.append([_xlsx_value(str(idx))] + [_xlsx_value(v) for v in row])

    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
