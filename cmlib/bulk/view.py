"""The matrix as the page shows it: a filter, the rows it keeps, one page of them, and the
downloads -- without ever building the whole matrix as a table per rerun.

Why: a 20,000-row result used to be built (and styled) as one DataFrame per session and rerun,
which raised the server by about 200 MB per person looking at it. Here a filter yields the
*row numbers* it keeps (a compact array of ints), a page builds a frame of at most a page of
rows, and the CSV/Excel downloads stream the kept rows from the job's results when someone
asks for them. The same :class:`~.matrix.Layout` and :meth:`~.matrix.Layout.cells` as the CLI
and the full matrix make every path write the same cells.
"""
from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..i18n import csv_dialect
from ..states import state_key
from .export import csv_bytes, excel_bytes
from .matrix import (
    FILTER_ON_NO_LIST,
    FILTER_PROBLEM,
    PROBLEM_STATUSES,
    SUMMARY_STATES,
    Layout,
    resolve_row,
    suppression_of,
    typed_frame,
)
from .tally import ResultTally

if TYPE_CHECKING:
    import pandas as pd

    from .jobs import JobSnapshot

__all__ = ["PAGE_SIZE", "MatrixFilter", "filter_options", "matching_rows", "matrix_csv", "matrix_excel",
           "page_count", "page_frame", "page_rows"]

PAGE_SIZE = 500  # rows per page of the matrix on screen: small enough to colour, big enough to scroll


@dataclass(frozen=True)
class MatrixFilter:
    """Rows where one of ``lists`` (matrix column names; all when empty) holds one of ``states``
    (the words the matrix shows; any when empty). Two pseudo-states widen the choice:
    FILTER_ON_NO_LIST and FILTER_PROBLEM."""

    lists: tuple[str, ...] = ()
    states: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.lists or self.states)


def matching_rows(snap: JobSnapshot, layout: Layout, flt: MatrixFilter) -> Sequence[int]:
    """Indices (into ``snap.input.rows``) of the rows the filter keeps, in input order.

    Without a filter: every row, as a ``range`` (no memory). With one: an ``array`` of ints,
    4 bytes a row, whatever the width of the matrix.
    """
    rows = snap.input.rows
    if not flt.active:
        return range(len(rows))
    by_name = {name: lid for lid, name in layout.list_column_of.items()}
    chosen = {by_name[c] for c in flt.lists if c in by_name} if flt.lists else set(layout.list_ids)
    real_states = {s for s in flt.states if s not in (FILTER_ON_NO_LIST, FILTER_PROBLEM)}
    any_state = not flt.states
    want_no_list = FILTER_ON_NO_LIST in flt.states
    want_problem = FILTER_PROBLEM in flt.states
    reason = snap.not_run_reason()
    kept = array("I")
    for i, row in enumerate(rows):
        outcome = resolve_row(row, snap.results, reason)
        res = outcome.result
        keep = False
        if res is not None and (any_state or real_states):
            for lid, state in res.memberships:
                if lid in chosen and (any_state or state_key(state) in real_states):
                    keep = True
                    break
        if not keep and want_no_list:
            keep = res is not None and not res.memberships
        if not keep and want_problem:
            keep = outcome.status in PROBLEM_STATUSES
        if keep:
            kept.append(i)
    return kept


def filter_options(tally: ResultTally) -> list[str]:
    """The states someone is in (the product's order first), then the pseudo-states."""
    present = [w for w in tally.words if any(per.get(w, 0) > 0 for per in tally.by_list.values())]
    ordered = [s for s in SUMMARY_STATES if s in present] + [s for s in present if s not in SUMMARY_STATES]
    return [*ordered, FILTER_ON_NO_LIST, FILTER_PROBLEM]


def page_count(rows: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-rows // size))


def page_rows(indices: Sequence[int], page: int, size: int = PAGE_SIZE) -> Sequence[int]:
    """The indices on page ``page`` (1-based; clamped to the pages there are)."""
    page = min(max(1, page), page_count(len(indices), size))
    return indices[(page - 1) * size: page * size]


def iter_cells(snap: JobSnapshot, layout: Layout, indices: Sequence[int]) -> Iterator[list[Any]]:
    """:meth:`Layout.cells` for the given rows, in the given order."""
    rows = snap.input.rows
    reason = snap.not_run_reason()
    for i in indices:
        row = rows[i]
        yield layout.cells(row, resolve_row(row, snap.results, reason), suppression_of(snap.suppression, row))


def page_frame(snap: JobSnapshot, layout: Layout, indices: Sequence[int]) -> pd.DataFrame:
    """A typed frame of just these rows (one page): what the page's table shows."""
    return typed_frame(layout, list(iter_cells(snap, layout, indices)))


def csv_format(layout: Layout, delimiter: str | None = None) -> tuple[str, str]:
    """(separator, decimal mark) of a CSV download in the layout's language: by default what a
    spreadsheet in that locale opens as numbers (Russian: ``;`` and a decimal comma,
    :func:`cmlib.i18n.csv_dialect`). A comma chosen as the separator keeps the decimal point, so
    a comma-separated file stays readable by scripts."""
    sep, decimal = csv_dialect(layout.lang)
    chosen = delimiter or sep
    return chosen, ("." if chosen == "," else decimal)


def matrix_csv(snap: JobSnapshot, layout: Layout, indices: Sequence[int], *, delimiter: str | None = None) -> bytes:
    """The CSV download of these rows, built when someone asks for it, in the layout's language
    (headers, state words, reasons; separator and decimal mark: :func:`csv_format`)."""
    sep, decimal = csv_format(layout, delimiter)
    return csv_bytes(layout.headers, iter_cells(snap, layout, indices), delimiter=sep, decimal=decimal)


def matrix_excel(snap: JobSnapshot, layout: Layout, indices: Sequence[int], *,
                 summary: pd.DataFrame | None = None) -> bytes:
    """The Excel download of these rows (and the summary sheet), built when someone asks for it,
    in the layout's language."""
    return excel_bytes(layout.headers, iter_cells(snap, layout, indices), state_columns=layout.list_columns,
                       summary=summary, lang=layout.lang)
