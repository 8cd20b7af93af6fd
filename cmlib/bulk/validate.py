"""Every input row gets a verdict before any API call: a valid address to look up, an invalid
one (with the validator's reason), or a duplicate of an earlier row.

Syntax only, through :func:`cmlib.emails.check` (email-validator without DNS), so the page and
the CLI judge an address exactly as the Lookup page does: the same invisible characters dropped,
the same reasons for markup, quoted or non-ASCII local parts, two addresses in one cell, and an
internationalised domain looked up in its ASCII (IDNA) form. De-duplication is case-insensitive
on that form; the first spelling wins and later rows point back to it by row number.
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from .. import lazy_text as later
from ..emails import EMPTY_REASON, Address, check
from ..i18n import Language, t
from .table import BulkInputError, Detected, SourceRow, Table


class Verdict(StrEnum):
    """A row's verdict before any API call (a ``StrEnum``: ``Verdict.VALID == "valid"``)."""

    VALID = "valid"
    INVALID = "invalid"
    DUPLICATE = "duplicate"


class InputSource(StrEnum):
    """Where a run's addresses came from, said again whenever the run is shown (a link to it too)."""

    PASTED = "pasted"
    UPLOADED = "uploaded"
    FILE = "file"  # a file read by the CLI

    def describe(self, name: str, *, lang: Language | str | None = None) -> str:
        """"the uploaded file “event.csv”", "pasted addresses" (in ``lang``, default the current language)."""
        if self is InputSource.PASTED:
            return t("pasted addresses", lang=lang)
        if self is InputSource.UPLOADED:
            return t("the uploaded file “{name}”", lang=lang, name=name) if name else t("the uploaded file", lang=lang)
        return t("the file “{name}”", lang=lang, name=name) if name else t("the file", lang=lang)


DEFAULT_MAX_MB = 20.0
DEFAULT_MAX_ROWS = 100_000


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_rows: int

    @property
    def max_mb(self) -> float:
        return self.max_bytes / 1_000_000


def _env_number(name: str, default: float) -> float:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def limits_from_env() -> Limits:
    """``CM_BULK_MAX_MB`` (default 20) and ``CM_BULK_MAX_ROWS`` (default 100,000)."""
    mb = _env_number("CM_BULK_MAX_MB", DEFAULT_MAX_MB)
    rows = int(_env_number("CM_BULK_MAX_ROWS", DEFAULT_MAX_ROWS))
    return Limits(max_bytes=int(mb * 1_000_000), max_rows=rows)


@dataclass(frozen=True, slots=True)
class InputRow:
    """One input row and its verdict. ``extra`` holds the other columns' cells, in order."""

    row: int
    raw: str
    email: str | None  # normalised address when the row is valid or a duplicate
    extra: tuple[str, ...]
    status: Verdict
    reason: str = ""  # why it is invalid (usually a LazyText: each reader reads it in their language)
    duplicate_of: int | None = None

    @property
    def key(self) -> str | None:
        return self.email.lower() if self.email else None

    @property
    def shown_email(self) -> str:
        """The address as looked up, or the cell as given when it is not an address."""
        return self.email if self.email else self.raw.strip()


class Validator:
    """Streaming verdicts: remembers only one small entry per distinct address."""

    def __init__(self) -> None:
        self.first_row: dict[str, int] = {}
        self.rows = 0
        self.valid = 0
        self.invalid = 0
        self.duplicates = 0

    def check(self, source: SourceRow, email_column: int) -> InputRow:
        cells = source.cells
        raw = cells[email_column] if email_column < len(cells) else ""
        extra = tuple(c for i, c in enumerate(cells) if i != email_column)
        self.rows += 1
        result = check(raw)
        if not isinstance(result, Address):
            self.invalid += 1
            reason = EMPTY_REASON if not raw.strip() else result.why
            return InputRow(source.row, raw, None, extra, Verdict.INVALID, reason=reason)
        key = result.key
        first = self.first_row.get(key)
        if first is not None:
            self.duplicates += 1
            return InputRow(source.row, raw, result.email, extra, Verdict.DUPLICATE, duplicate_of=first)
        self.first_row[key] = source.row
        self.valid += 1
        return InputRow(source.row, raw, result.email, extra, Verdict.VALID)

    def iter_rows(self, rows: Iterable[SourceRow], email_column: int) -> Iterator[InputRow]:
        for r in rows:
            yield self.check(r, email_column)

    def counts(self) -> Counts:
        return Counts(self.rows, self.valid, self.invalid, self.duplicates)


@dataclass(frozen=True)
class Counts:
    rows: int
    valid: int  # distinct valid addresses: the lookups to make
    invalid: int
    duplicates: int


@dataclass(frozen=True)
class BulkInput:
    """A validated table, ready to run: what the page keeps and hands to a BulkJob."""

    detected: Detected
    rows: tuple[InputRow, ...]
    counts: Counts
    extra_columns: tuple[str, ...]
    source_name: str = ""  # the file's name as uploaded ("" for pasted text)
    source: InputSource = InputSource.PASTED

    def describe_source(self, *, lang: Language | str | None = None) -> str:
        return self.source.describe(self.source_name, lang=lang)

    @property
    def to_lookup(self) -> list[InputRow]:
        return [r for r in self.rows if r.status == Verdict.VALID]

    @property
    def invalid_rows(self) -> list[InputRow]:
        return [r for r in self.rows if r.status == Verdict.INVALID]

    @property
    def duplicate_rows(self) -> list[InputRow]:
        return [r for r in self.rows if r.status == Verdict.DUPLICATE]


def extra_column_names(detected: Detected) -> tuple[str, ...]:
    return tuple(c for i, c in enumerate(detected.columns) if i != detected.email_column)


def validate_table(table: Table, *, max_rows: int | None = None, source_name: str = "",
                   source: InputSource = InputSource.PASTED) -> BulkInput:
    """Verdicts for every row of a parsed table; raises BulkInputError with a clear message
    when no email column was found or the table is over the row limit."""
    det = table.detected
    if det.email_column is None:
        cols = later.join(", ", [later.t("“{column}”", column=c) for c in det.columns])
        raise BulkInputError(later.t("No column with email addresses was found (columns: {columns}). Choose the "
                                     "email column yourself.", columns=cols))
    if max_rows is not None and len(table.rows) > max_rows:
        raise BulkInputError(later.t("The input has {rows} rows; the limit is {limit}. Split it into smaller files, "
                                     "use the command line (python -m cmlib bulk) or ask an admin to raise "
                                     "CM_BULK_MAX_ROWS.", rows=len(table.rows), limit=max_rows))
    v = Validator()
    rows = tuple(v.iter_rows(table.rows, det.email_column))
    if not rows:
        raise BulkInputError(later.t("The input has a header but no rows."))
    return BulkInput(detected=det, rows=rows, counts=v.counts(), extra_columns=extra_column_names(det),
                     source_name=source_name, source=source)
