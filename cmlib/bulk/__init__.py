"""Bulk lookup: thousands of addresses from a CSV, fast, losing none (the Bulk page and
``python -m cmlib bulk``).

* :mod:`.csv_input` reads the input, one job per module: :mod:`.table` (what reading
  produces), :mod:`.encoding`, :mod:`.structure` (delimiter, header, email column),
  :mod:`.pasted` (the paste box) and :mod:`.streaming` (files of any size, for the CLI),
* :mod:`.validate` gives every row a verdict (valid, invalid with reason, duplicate of row N),
* :mod:`.control` holds what a run and its watchers share (state, cancel, pause, patience),
* :mod:`.engine` runs the lookups: ``BulkRun``, the one run loop of the page and the CLI,
* :mod:`.jobs` is the page's machinery: ``BulkJob`` (a run in a background thread, on a client
  of its own) and ``JobRegistry``; :mod:`.progress` (``Progress``, ``RateMeter``) says how far a
  run has got and :mod:`.tally` keeps its counts as results arrive,
* durable jobs (``CM_DATABASE_URL`` on Postgres): :mod:`.durable` is the replicas' side (submit,
  watch, cancel, read back), :mod:`.job_store` the tables, :mod:`.job_codec` their JSON,
  :mod:`.job_queue` procrastinate, :mod:`.durable_run` one attempt in a worker and
  :mod:`.worker` ``python -m cmlib worker``,
* :mod:`.matrix` turns results into the summary and the email × list matrix, :mod:`.view`
  filters and pages it for the page without building it whole,
* :mod:`.export` writes CSV/Excel that spreadsheets open safely.
"""
from __future__ import annotations

from .control import JobState, RunControl
from .csv_input import BulkInputError, Detected, SourceRow, Table, parse_pasted, parse_text, read_bytes, read_path
from .engine import BulkLookup, BulkRun, LookupResult, bulk_client_options, run_lookups
from .export import neutralise, to_csv_bytes, to_excel_bytes
from .jobs import BulkJob, JobRegistry, JobSnapshot
from .matrix import Layout, Status, build_matrix, filter_matrix, resolve_row, style_matrix, summarise
from .progress import Progress, RateMeter
from .validate import BulkInput, InputRow, Limits, Validator, Verdict, limits_from_env, validate_table

__all__ = [
    "BulkInput", "BulkInputError", "BulkJob", "BulkLookup", "BulkRun", "Detected", "InputRow", "JobRegistry",
    "JobSnapshot", "JobState", "Layout", "Limits", "LookupResult", "Progress", "RateMeter", "RunControl", "SourceRow",
    "Status",
    "Table", "Validator", "Verdict", "build_matrix", "bulk_client_options", "filter_matrix", "limits_from_env",
    "neutralise", "parse_pasted", "parse_text", "read_bytes", "read_path", "resolve_row", "run_lookups",
    "style_matrix", "summarise", "to_csv_bytes", "to_excel_bytes", "validate_table",
]
