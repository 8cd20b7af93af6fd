"""Cells that a spreadsheet opens as text, never as a formula (OWASP "CSV injection").

Every export (bulk results, the audit log) goes through here: list names, campaign names and
CSV cells come from users and the API, and a cell starting with ``=`` could run in Excel.

The protection differs by format, because the formats differ:

* **CSV** has no types: Excel decides what a cell is when it opens the file, so a risky cell
  gets a leading ``'`` (:func:`neutralise`) -- the only way to say "text" in CSV.
* **Excel (.xlsx)** stores each cell's type. A risky cell is written as a *string* cell with
  the "quote prefix" style (:func:`protect_xlsx_cell`): Excel shows the text exactly as given,
  with no visible apostrophe, and keeps it text when someone edits it. A literal ``'`` there
  would be shown to the reader as part of the value.
"""
from __future__ import annotations

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def is_risky(value: Any) -> bool:
    """Text a spreadsheet could take for a formula (it starts with one of FORMULA_PREFIXES)."""
    return isinstance(value, str) and value.startswith(FORMULA_PREFIXES)


def neutralise(value: Any) -> Any:
    """CSV: text that a spreadsheet would run as a formula gets a leading ``'``; other values pass."""
    if is_risky(value):
        return "'" + value
    return value


def protect_xlsx_cell(cell: Any) -> Any:
    """An openpyxl cell holding risky text, made a plain string cell with the quote-prefix style.

    openpyxl turns any string starting with ``=`` into a formula when it is assigned; setting
    the data type back to ``"s"`` writes it as text, and ``quotePrefix`` tells Excel to keep it
    text (as a typed-in ``'`` would, without showing one). Other cells are returned unchanged.
    """
    if is_risky(cell.value):
        cell.data_type = "s"
        cell.quotePrefix = True
    return cell
