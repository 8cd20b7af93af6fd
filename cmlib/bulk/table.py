"""What reading an input produces, whatever it came from (an upload, a paste, a file streamed
by the CLI): how it was read (:class:`Detected`), its rows (:class:`SourceRow`) and the one
error a person sees when it cannot be used (:class:`BulkInputError`).

Kept apart from the readers so the encoding, structure, paste and streaming modules share
these shapes without importing one another.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import lazy_text as later
from ..i18n import N_, Language, nt, t
from ..lazy_text import text_of

# Names of delimiters and encodings as a person reads them (message ids: translated where shown).
DELIMITER_NAMES = {",": N_("comma"), ";": N_("semicolon"), "\t": N_("tab")}
ENCODING_NAMES = {
    "utf-8-sig": N_("UTF-8 with BOM"),
    "utf-8": "UTF-8",
    "utf-16": "UTF-16 (BOM)",
    "utf-32": "UTF-32 (BOM)",
    "utf-16-le": N_("UTF-16 LE (no BOM)"),
    "utf-16-be": N_("UTF-16 BE (no BOM)"),
    "cp1251": N_("Windows-1251 (Cyrillic)"),
    "koi8-r": N_("KOI8-R (Cyrillic)"),
    "cp1252": N_("Windows-1252 (Western)"),
    "latin-1": "Latin-1",
}


class BulkInputError(ValueError):
    """The input cannot be used as it is; the message says why and what to do, for a person.

    The message is usually a :class:`~cmlib.lazy_text.LazyText`: ``str(exc)`` is English (logs),
    :meth:`text` says it in a reader's language."""

    def text(self, lang: Language | str | None = None) -> str:
        return text_of(self.args[0], lang) if self.args else ""


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

    def describe(self, *, lang: Language | str | None = None) -> str:
        """How the input was read, in ``lang`` (default: the current language)."""
        if self.flat_list:
            return t("a list of addresses", lang=lang)
        encoding = t(self.encoding_name, lang=lang)
        if len(self.columns) == 1:
            if self.has_header:
                return t("{encoding}, one column, with a header row", lang=lang, encoding=encoding)
            return t("{encoding}, one column, without a header row", lang=lang, encoding=encoding)
        delimiter = t(self.delimiter_name, lang=lang)
        n = len(self.columns)
        if self.has_header:
            return nt("{encoding}, {delimiter}-separated, {n} column, with a header row",
                      "{encoding}, {delimiter}-separated, {n} columns, with a header row", n, lang=lang,
                      encoding=encoding, delimiter=delimiter)
        return nt("{encoding}, {delimiter}-separated, {n} column, without a header row",
                  "{encoding}, {delimiter}-separated, {n} columns, without a header row", n, lang=lang,
                  encoding=encoding, delimiter=delimiter)

    def column_name(self, index: int, *, lang: Language | str | None = None) -> str:
        """A column's name as a person reads it ("Column 2" is ours, translated; a header cell is shown as it is)."""
        return text_of(self.columns[index], lang)

    def column_index(self, column: int | str | None) -> int | None:
        """Resolve a user's choice: an index, an exact column name, or a case-insensitive one."""
        if column is None:
            return self.email_column
        if isinstance(column, int):
            if 0 <= column < len(self.columns):
                return column
            raise BulkInputError(later.t("There is no column number {number}; the file has {count}.",
                                         number=str(column + 1), count=len(self.columns)))
        for i, name in enumerate(self.columns):
            if name == column:
                return i
        for i, name in enumerate(self.columns):
            if name.strip().casefold() == str(column).strip().casefold():
                return i
        if str(column).isdigit() and 1 <= int(column) <= len(self.columns):
            return int(column) - 1
        shown = ", ".join(repr(str(c)) for c in self.columns)
        raise BulkInputError(later.t("There is no column named {name}. The columns are: {columns}.",
                                     name=repr(column), columns=shown))


@dataclass(frozen=True)
class SourceRow:
    """One non-blank record: ``row`` is the number Excel shows for it (header = row 1)."""

    row: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    detected: Detected
    rows: tuple[SourceRow, ...]
