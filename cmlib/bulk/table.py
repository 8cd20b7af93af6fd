"""What reading an input produces, whatever it came from (an upload, a paste, a file streamed
by the CLI): how it was read (:class:`Detected`), its rows (:class:`SourceRow`) and the one
error a person sees when it cannot be used (:class:`BulkInputError`).

Kept apart from the readers so the encoding, structure, paste and streaming modules share
these shapes without importing one another.
"""
from __future__ import annotations

from dataclasses import dataclass

DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
ENCODING_NAMES = {
    "utf-8-sig": "UTF-8 with BOM",
    "utf-8": "UTF-8",
    "utf-16": "UTF-16 (BOM)",
    "utf-32": "UTF-32 (BOM)",
    "utf-16-le": "UTF-16 LE (no BOM)",
    "utf-16-be": "UTF-16 BE (no BOM)",
    "cp1251": "Windows-1251 (Cyrillic)",
    "koi8-r": "KOI8-R (Cyrillic)",
    "cp1252": "Windows-1252 (Western)",
    "latin-1": "Latin-1",
}


class BulkInputError(ValueError):
    """The input cannot be used as it is; the message says why and what to do, for a person."""


@dataclass(frozen=True)
class Detected:
    """How a file was read; shown on the page so a wrong guess is visible and can be overridden."""

    encoding: str
    delimiter: str
    has_header: bool
    columns: tuple[str, ...]  # display names: the header cells, or "Column 1"... without header
    email_column: int | None  # index into columns; None when no column holds addresses
    email_column_reason: str
    flat_list: bool = False  # pasted addresses separated by commas/spaces, not a table

    @property
    def encoding_name(self) -> str:
        return ENCODING_NAMES.get(self.encoding, self.encoding)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, repr(self.delimiter))

    def describe(self) -> str:
        if self.flat_list:
            return "a list of addresses"
        header = "with a header row" if self.has_header else "without a header row"
        if len(self.columns) == 1:
            return f"{self.encoding_name}, one column, {header}"
        return f"{self.encoding_name}, {self.delimiter_name}-separated, {len(self.columns)} columns, {header}"

    def column_index(self, column: int | str | None) -> int | None:
        """Resolve a user's choice: an index, an exact column name, or a case-insensitive one."""
        if column is None:
            return self.email_column
        if isinstance(column, int):
            if 0 <= column < len(self.columns):
                return column
            raise BulkInputError(f"There is no column number {column + 1}; the file has {len(self.columns)}.")
        for i, name in enumerate(self.columns):
            if name == column:
                return i
        for i, name in enumerate(self.columns):
            if name.strip().casefold() == str(column).strip().casefold():
                return i
        if str(column).isdigit() and 1 <= int(column) <= len(self.columns):
            return int(column) - 1
        shown = ", ".join(repr(c) for c in self.columns)
        raise BulkInputError(f"There is no column named {column!r}. The columns are: {shown}.")


@dataclass(frozen=True)
class SourceRow:
    """One non-blank record: ``row`` is the number Excel shows for it (header = row 1)."""

    row: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    detected: Detected
    rows: tuple[SourceRow, ...]
