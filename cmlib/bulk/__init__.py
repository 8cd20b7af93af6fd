"""Bulk lookup: thousands of addresses from a CSV, fast, losing none (the Bulk page and
``python -m cmlib bulk``).

* :mod:`.csv_input` reads the file (encoding, delimiter, header, email column),
* :mod:`.validate` gives every row a verdict (valid, invalid with reason, duplicate of row N),
* :mod:`.engine` runs the lookups (``BulkJob`` for the page, ``run_lookups`` for the CLI),
* :mod:`.matrix` turns results into the summary and the email × list matrix,
* :mod:`.export` writes CSV/Excel that spreadsheets open safely.
"""
from __future__ import annotations

from .csv_input import BulkInputError, Detected, SourceRow, Table, parse_pasted, parse_text, read_bytes, read_path
from .engine import BulkJob, BulkLookup, JobRegistry, JobSnapshot, LookupResult, Progress, RunControl, run_lookups
from .export import neutralise, to_csv_bytes, to_excel_bytes
from .matrix import Layout, build_matrix, filter_matrix, resolve_row, style_matrix, summarise
from .validate import BulkInput, InputRow, Limits, Validator, limits_from_env, validate_table

__all__ = [
    "BulkInput", "BulkInputError", "BulkJob", "BulkLookup", "Detected", "InputRow", "JobRegistry", "JobSnapshot",
    "Layout", "Limits", "LookupResult", "Progress", "RunControl", "SourceRow", "Table", "Validator",
    "build_matrix", "filter_matrix", "limits_from_env", "neutralise", "parse_pasted", "parse_text", "read_bytes",
    "read_path", "resolve_row", "run_lookups", "style_matrix", "summarise", "to_csv_bytes", "to_excel_bytes",
    "validate_table",
]
