"""Cells that a spreadsheet opens as text, never as a formula (OWASP "CSV injection").

Every export (bulk results, the audit log) goes through here: list names, campaign names and
CSV cells come from users and the API, and a cell starting with ``=`` could run in Excel.
"""
from __future__ import annotations

from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula gets a leading ``'``; other values pass."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
