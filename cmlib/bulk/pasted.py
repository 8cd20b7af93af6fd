"""Pasted text: a range copied from Excel (a table) or addresses typed or copied from a To: line.

The paste box takes both, so the decision "table or list" is made here, from what the text
holds: several addresses in one cell, or an address in more than one column of a typed list,
make it a list of addresses, one row each; anything else stays a table so its other columns
reach the output.
"""
from __future__ import annotations

from .. import lazy_text as later
from ..emails import candidates
from .structure import header_email_score, looks_like_email, parse_text
from .table import BulkInputError, Detected, SourceRow, Table


def split_addresses(text: str) -> list[str]:
    """Addresses someone pasted from a To: line or a chat: ``Name <a@x>``, commas, spaces, lines.

    The Lookup box's splitter (:func:`cmlib.emails.candidates`), so a paste is cut the same way
    on both pages and a stray ``<script>`` run stays one item that gets a verdict and a reason.
    """
    return candidates(text)


def parse_pasted(text: str, *, email_column: int | str | None = None) -> Table:
    """Pasted text: a range copied from Excel (a table, usually tab-separated, maybe with a
    header) or just addresses separated by anything. A table is kept as a table so its other
    columns reach the output; a bare list becomes one row per address, numbered in order."""
    if not text or not text.strip():
        raise BulkInputError(later.t("Paste at least one address."))
    text = text.lstrip("\ufeff")
    table = parse_text(text, email_column=email_column)
    det = table.detected
    if email_column is None:
        header_cells = [c for c in det.columns if c.strip()] if det.has_header else []
        cells = header_cells + [c for r in table.rows for c in r.cells if c.strip()]
        several_per_cell = any(sum(1 for t in split_addresses(c) if looks_like_email(t)) > 1 for c in cells)
        address_columns = [i for i in range(len(det.columns))
                           if any(i < len(r.cells) and looks_like_email(r.cells[i]) for r in table.rows)]
        only_addresses = all(looks_like_email(c) for c in cells)
        # Typed lists use commas or semicolons; a range copied from Excel is tab-separated and
        # may hold names next to two address columns, which must stay a table.
        several_columns = not det.has_header and len(address_columns) > 1 and (
            det.delimiter != "\t" or only_addresses or len(table.rows) == 1)
        if several_per_cell or several_columns:
            items = split_addresses(text)
            if items and header_email_score(items[0]) == 2:  # "Email" above a pasted list
                items = items[1:]
            flat = Detected(encoding="utf-8", delimiter=",", has_header=False, columns=(later.t("Email"),),
                            email_column=0, email_column_reason=later.t("pasted addresses"), flat_list=True)
            return Table(flat, tuple(SourceRow(i, (t,)) for i, t in enumerate(items, start=1)))
    return table
