"""Read the address files people actually have: Excel exports in any of four encodings,
separated by commas, semicolons or tabs, with or without a header row, in English or Russian.

Records are read with the ``csv`` module rather than ``pandas.read_csv``: every cell stays the
exact string in the file (as ``dtype=str, keep_default_na=False`` would give), and on top of
that a ragged row (one extra ``;`` at the end) is kept instead of raising or silently turning
leading columns into an index, each record keeps the row number Excel shows for it (blank lines
counted), and the same code streams a 100,000-row file for the CLI in constant memory.
pandas takes over once the rows are results (the matrix, the summary, the export).
"""
from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import re
import sys
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..emails import candidates

DELIMITERS = (",", ";", "\t")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}

# Header names that mean "the email address", compared after :func:`_norm_header`.
EMAIL_HEADERS = (
    "email", "e-mail", "e mail", "e_mail", "mail", "email address", "e-mail address", "emailaddress",
    "email adress", "mail address", "emails", "e-mails", "электронная почта", "эл. почта", "эл почта",
    "электронный адрес", "адрес электронной почты", "адрес эл. почты", "адрес", "почта", "емейл",
    "емэйл", "имейл", "имэйл", "мейл", "мэйл", "email адрес", "e-mail адрес", "адрес email",
    "адрес e-mail", "почтовый ящик", "ящик", "эл.почта", "эл.адрес", "эл. адрес",
)
# Fragments that make a header a likely email column when no exact name matched ("Work email").
EMAIL_HEADER_FRAGMENTS = ("email", "e-mail", "e mail", "mail", "почт", "емейл", "емэйл", "имейл", "мейл")

# A cheap "looks like an address" for choosing a column; email-validator judges each row later.
_LOOKS_LIKE = re.compile(r"^\s*(?:mailto:)?[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+\s*$|<[^<>\s]+@[^<>\s]+>",
                         re.IGNORECASE)

SAMPLE_RECORDS = 200  # records looked at to choose the delimiter, header and column
_BLOCK = 1 << 20

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


class BulkInputError(ValueError):
    """The input cannot be used as it is; the message says why and what to do, for a person."""


def looks_like_email(value: str) -> bool:
    return bool(value) and bool(_LOOKS_LIKE.search(value))


# --------------------------------------------------------------------------- encoding
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
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

_MAGIC = (
    (b"PK\x03\x04", "an Excel workbook (.xlsx) or a ZIP archive"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls) or another Office file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)
_SAVE_AS = "In Excel use File → Save As → “CSV UTF-8 (comma delimited)”, then upload that file."


def _check_magic(head: bytes) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise BulkInputError(f"This file is {what}, not a CSV text file. {_SAVE_AS}")


def _bom_encoding(head: bytes) -> tuple[str, int] | None:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc, len(bom)
    return None


def _utf16_without_bom(head: bytes) -> str | None:
    """Excel's "Unicode text" without a BOM: every other byte of ASCII text is NUL."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even = sample[0::2]
    odd = sample[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


_CYR_RUN = re.compile(r"[\u0400-\u04ff]+")
_UPPER_LOWER = re.compile(r"[А-ЯЁ](?=[а-яё])")
_LOWER_UPPER = re.compile(r"[а-яё](?=[А-ЯЁ])")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class _Cp1251Score:
    """Does a non-UTF-8 file read as Russian in cp1251, or as Western text?

    cp1251 decodes almost any byte, so "it decoded" proves nothing. In Russian text the
    letters above 0x7F come in runs (whole words); a Latin-1/cp1252 file read as cp1251 shows
    isolated Cyrillic letters between ASCII ones (``cafй``, ``Mьller``).
    """

    def __init__(self) -> None:
        self.cyrillic = 0
        self.in_runs = 0
        self.non_ascii = 0
        self.undecodable = 0
        self.high_bytes = [0] * 128  # how often each byte 0x80..0xFF occurs: enough to tell KOI8-R
        self.upper_lower = 0  # "Ив": a capital, then a small letter (how Russian words start)
        self.lower_upper = 0  # "йЧ": impossible in Russian, what KOI8-R read as cp1251 is full of

    def feed(self, data: bytes) -> None:
        if not data.isascii():
            hist = self.high_bytes
            for value in range(0x80, 0x100):
                hist[value - 0x80] += data.count(value)
        text = data.decode("cp1251", errors="replace")
        self.upper_lower += len(_UPPER_LOWER.findall(text))
        self.lower_upper += len(_LOWER_UPPER.findall(text))
        self.undecodable += text.count("\ufffd")
        self.non_ascii += len(_NON_ASCII.findall(text))
        for m in _CYR_RUN.finditer(text):
            n = m.end() - m.start()
            self.cyrillic += n
            if n >= 2:
                self.in_runs += n

    def is_russian(self) -> bool:
        if self.undecodable or self.cyrillic == 0:
            return False
        return self.in_runs >= 0.6 * self.cyrillic and self.cyrillic >= 0.5 * self.non_ascii

    def russian_encoding(self) -> str:
        """cp1251 or KOI8-R, for bytes that read as Russian words in cp1251.

        Both encodings put the 64 Cyrillic letters in 0xC0..0xFF, in different orders, so KOI8-R
        read as cp1251 still "looks Russian". But the two put capitals and small letters in
        opposite halves, so a capitalised word (``Иван``) read in the wrong one turns into a small
        letter followed by capitals (``йЧБО``), which Russian never has. When case does not decide
        (all small or all capital letters), the decoding whose letters have the frequencies of
        Russian text wins; cp1251 (Excel's default) unless KOI8-R is clearly better.
        """
        if self.lower_upper != self.upper_lower:
            return "koi8-r" if self.lower_upper > self.upper_lower else "cp1251"
        scores = {enc: 0.0 for enc in ("cp1251", "koi8-r")}
        letters = 0
        for offset, count in enumerate(self.high_bytes):
            if not count:
                continue
            byte = bytes([0x80 + offset])
            for enc in scores:
                ch = byte.decode(enc, errors="replace").lower()
                scores[enc] += count * _RU_LOG_FREQ.get(ch, _RU_UNLIKELY)
            letters += count
        if letters and scores["koi8-r"] - scores["cp1251"] > 0.3 * letters:
            return "koi8-r"
        return "cp1251"


# Letter frequencies of Russian text (per cent), as natural logs; anything else is unlikely.
_RU_FREQ = {
    "о": 10.97, "е": 8.45, "а": 8.01, "и": 7.35, "н": 6.70, "т": 6.26, "с": 5.47, "р": 4.73, "в": 4.54,
    "л": 4.40, "к": 3.49, "м": 3.21, "д": 2.98, "п": 2.81, "у": 2.62, "я": 2.01, "ы": 1.90, "ь": 1.74,
    "г": 1.70, "з": 1.65, "б": 1.59, "ч": 1.44, "й": 1.21, "х": 0.97, "ж": 0.94, "ш": 0.73, "ю": 0.64,
    "ц": 0.48, "щ": 0.36, "э": 0.32, "ф": 0.26, "ъ": 0.04, "ё": 0.04,
}
_RU_LOG_FREQ = {ch: math.log(p) for ch, p in _RU_FREQ.items()}
_RU_UNLIKELY = math.log(0.01)


def detect_encoding_blocks(blocks: Iterable[bytes]) -> str:
    """The encoding of a byte stream: BOM, UTF-16 without BOM, UTF-8, cp1251, KOI8-R, cp1252, Latin-1.

    Reads every block (the CLI passes a file's blocks, so a cp1251 letter in row 90,000 is not
    missed) but keeps only counters, so memory stays flat.
    """
    it = iter(blocks)
    head = next(it, b"")
    while len(head) < 4096:  # enough to recognise magic numbers, BOMs and UTF-16 without BOM
        more = next(it, None)
        if more is None:
            break
        head += more
    _check_magic(head)
    bom = _bom_encoding(head)
    if bom:
        return bom[0]
    u16 = _utf16_without_bom(head)
    if u16:
        return u16
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf8_ok = cp1252_ok = True
    score = _Cp1251Score()
    for block in itertools.chain([head], it):
        if utf8_ok:
            try:
                utf8.decode(block, final=False)
            except UnicodeDecodeError:
                utf8_ok = False
        score.feed(block)
        if cp1252_ok:
            try:
                block.decode("cp1252")
            except UnicodeDecodeError:
                cp1252_ok = False
    if utf8_ok:
        try:
            utf8.decode(b"", final=True)
            return "utf-8"
        except UnicodeDecodeError:
            pass
    if score.is_russian():
        return score.russian_encoding()
    return "cp1252" if cp1252_ok else "latin-1"


def detect_encoding(data: bytes) -> str:
    return detect_encoding_blocks(data[i:i + _BLOCK] for i in range(0, max(len(data), 1), _BLOCK))


def _check_text(sample: str) -> None:
    """Reject binary content that happened to decode (Latin-1 decodes anything)."""
    if not sample:
        return
    if "\x00" in sample:
        raise BulkInputError(f"This file contains binary data (NUL bytes), so it is not a CSV text file. {_SAVE_AS}")
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f\v")
    if controls > max(3, len(sample) // 100):
        raise BulkInputError(f"This file does not look like text (it is full of control characters), so it "
                             f"cannot be read as a CSV. {_SAVE_AS}")


def decode(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` for uploaded bytes; raises BulkInputError for binary files."""
    if not data or not data.strip():
        raise BulkInputError("The file is empty.")
    enc = detect_encoding(data)
    text = data.decode(enc, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    _check_text(text[:65536])
    return text, enc


# --------------------------------------------------------------------------- structure
def _records(text_lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    return csv.reader(text_lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=False,
                      strict=False)


def _is_blank(record: Sequence[str]) -> bool:
    """Empty, or only separators (``;;;`` rows Excel leaves at the end of a sheet)."""
    return all(not c.strip(" \t,;") for c in record)


def detect_delimiter(sample: str) -> str:
    """Comma, semicolon or tab: the one that splits the sample into the most consistent columns.

    For each candidate the records are parsed quote-aware and scored by how many have the most
    common field count; on a tie, the split whose cells are clean addresses wins, then the one
    with more columns. So ``Ivanov, Ivan;ivan@x.ru;Moscow, Russia`` is three semicolon-separated
    cells, not three comma-separated fragments.
    """
    best: tuple = (0.0, 0.0, 0)
    best_delim = ","
    for delim in DELIMITERS:
        counts = []
        with_address = 0
        try:
            for rec in _records(io.StringIO(sample, newline=""), delim):
                if _is_blank(rec):
                    continue
                counts.append(len(rec))
                if any(_LOOKS_LIKE.match(c) for c in rec):
                    with_address += 1
                if len(counts) >= SAMPLE_RECORDS:
                    break
        except csv.Error:
            continue
        if not counts:
            continue
        # A sample cut mid-file can end in a truncated record: ignore the last one if it differs.
        if len(counts) > 2 and counts[-1] != counts[-2]:
            counts = counts[:-1]
        mode, freq = Counter(counts).most_common(1)[0]
        if mode < 2:
            continue
        score = (round(freq / len(counts), 2), round(with_address / len(counts), 2), mode)
        if score > best:
            best, best_delim = score, delim
    return best_delim


def _norm_header(value: str) -> str:
    s = unicodedata.normalize("NFKC", value).strip().lower().replace("ё", "е").replace("\ufeff", "")
    s = re.sub(r"[\s_]+", " ", s)
    s = re.sub(r"[*:()\[\]\"']+", "", s).strip()
    return s


_EXACT = {_norm_header(h) for h in EMAIL_HEADERS}
_EXACT_COMPACT = {re.sub(r"[\s.\-]", "", h) for h in _EXACT}


def header_email_score(value: str) -> int:
    """2 for an exact email header name, 1 for one that contains an email word, else 0."""
    h = _norm_header(value)
    if not h:
        return 0
    if h in _EXACT or re.sub(r"[\s.\-]", "", h) in _EXACT_COMPACT:
        return 2
    if any(f in h for f in EMAIL_HEADER_FRAGMENTS):
        return 1
    return 0


def unique_names(names: Sequence[str], taken: Iterable[str] = ()) -> list[str]:
    """``names`` made unique (``Name``, ``Name (2)``), also avoiding every name in ``taken``."""
    used = {t.casefold() for t in taken}
    out = []
    for n in names:
        base = n
        cand = base
        i = 2
        while cand.casefold() in used:
            cand = f"{base} ({i})"
            i += 1
        used.add(cand.casefold())
        out.append(cand)
    return out


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


def _choose_by_content(records: Sequence[Sequence[str]], width: int) -> tuple[int | None, str]:
    hits = [0] * width
    for rec in records:
        for i, cell in enumerate(rec[:width]):
            if looks_like_email(cell):
                hits[i] += 1
    if not records or max(hits, default=0) == 0:
        return None, "no column holds email addresses"
    best = max(range(width), key=lambda i: (hits[i], -i))
    return best, f"{hits[best]} of {len(records)} sampled rows hold an address in this column"


def analyse(sample_records: Sequence[Sequence[str]], width: int, encoding: str, delimiter: str) -> Detected:
    """Header row, column names and the email column from the first non-blank records."""
    records = [r for r in sample_records if not _is_blank(r)]
    width = max(width, 1)
    if not records:
        raise BulkInputError("The file has no rows (only empty lines).")
    first = records[0]
    scores = [header_email_score(c) for c in first]
    header_hit = max(scores, default=0)
    first_has_address = any(looks_like_email(c) for c in first)
    if first_has_address:
        has_header = False
    elif header_hit:
        has_header = True
    else:
        # No address and no email header name in the first row: usually a header of other
        # names ("Name;Company;Contact"). But if the column that holds addresses further down
        # has an "@" here too, the first row is data with a broken address: keep it as data.
        col, _ = _choose_by_content(records[1:], width)
        has_header = not (col is not None and col < len(first) and "@" in first[col])
    if has_header:
        raw_names = [(first[i].strip() if i < len(first) else "") or f"Column {i + 1}" for i in range(width)]
        columns = tuple(unique_names(raw_names))
    else:
        columns = tuple(f"Column {i + 1}" for i in range(width))
    body = records[1:] if has_header else records
    email_col: int | None = None
    reason = ""
    if has_header and header_hit:
        # Prefer an exact name; among equals, the one whose content looks most like addresses.
        cands = [i for i, s in enumerate(scores) if s == header_hit]
        if len(cands) > 1:
            hits = {i: sum(1 for r in body if i < len(r) and looks_like_email(r[i])) for i in cands}
            cands.sort(key=lambda i: (-hits[i], i))
        email_col = cands[0]
        if header_hit == 1 and body and not any(email_col < len(r) and looks_like_email(r[email_col]) for r in body):
            email_col = None  # "Mailing status" is not an address column; fall back to content
        else:
            reason = f"header “{columns[email_col]}”"
    if email_col is None:
        email_col, reason = _choose_by_content(body, width)
    return Detected(encoding=encoding, delimiter=delimiter, has_header=has_header, columns=columns,
                    email_column=email_col, email_column_reason=reason)


@dataclass(frozen=True)
class SourceRow:
    """One non-blank record: ``row`` is the number Excel shows for it (header = row 1)."""

    row: int
    cells: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    detected: Detected
    rows: tuple[SourceRow, ...]


def _iter_source_rows(records: Iterable[list[str]], skip_header: bool) -> Iterator[SourceRow]:
    header_skipped = not skip_header
    for n, rec in enumerate(records, start=1):
        if _is_blank(rec):
            continue
        if not header_skipped:
            header_skipped = True
            continue
        yield SourceRow(n, tuple(rec))


def _sample(text: str, delimiter: str) -> tuple[list[list[str]], int]:
    out: list[list[str]] = []
    width = 0
    for rec in _records(io.StringIO(text, newline=""), delimiter):
        if not _is_blank(rec):
            out.append(rec)
            width = max(width, len(rec))
        if len(out) >= SAMPLE_RECORDS:
            break
    return out, width


def parse_text(text: str, *, encoding: str = "utf-8", email_column: int | str | None = None) -> Table:
    """Parse decoded CSV text into rows, detecting delimiter, header and email column."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise BulkInputError("There is nothing to read: the input is empty.")
    delimiter = detect_delimiter(text[:262144])
    sample, _ = _sample(text, delimiter)
    try:
        rows = tuple(_iter_source_rows(_records(io.StringIO(text, newline=""), delimiter), skip_header=False))
    except csv.Error as exc:
        raise BulkInputError(f"The CSV could not be read: {exc}.") from None
    width = max((len(r.cells) for r in rows), default=1)
    det = analyse(sample, width, encoding, delimiter)
    if email_column is not None:
        det = _with_column(det, email_column)
    if det.has_header:
        rows = rows[1:]
    return Table(det, rows)


def _with_column(det: Detected, column: int | str) -> Detected:
    idx = det.column_index(column)
    return replace(det, email_column=idx, email_column_reason="chosen by you")


def read_bytes(data: bytes, *, email_column: int | str | None = None, max_bytes: int | None = None) -> Table:
    """An uploaded file, whole (the page's path: at most a few megabytes)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise BulkInputError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB. "
                             "Split it into smaller files or ask an admin to raise CM_BULK_MAX_MB.")
    text, enc = decode(data)
    return parse_text(text, encoding=enc, email_column=email_column)


# --------------------------------------------------------------------------- pasted text
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
        raise BulkInputError("Paste at least one address.")
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
            flat = Detected(encoding="utf-8", delimiter=",", has_header=False, columns=("Email",), email_column=0,
                            email_column_reason="pasted addresses", flat_list=True)
            return Table(flat, tuple(SourceRow(i, (t,)) for i, t in enumerate(items, start=1)))
    return table


# --------------------------------------------------------------------------- streaming (CLI)
def _file_blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while True:
            b = fh.read(_BLOCK)
            if not b:
                return
            yield b


@dataclass(frozen=True)
class FileInfo:
    """What a first pass over a file found: how to read it and how many rows it has."""

    path: Path
    detected: Detected
    data_rows: int  # non-blank records after the header


def _open_text(path: Path, encoding: str) -> io.TextIOWrapper:
    enc = "utf-8-sig" if encoding == "utf-8" else encoding
    return open(path, encoding=enc, errors="replace", newline="")


def inspect_file(path: str | Path, *, email_column: int | str | None = None) -> FileInfo:
    """Detect encoding, delimiter, header and email column, and count rows, in flat memory."""
    p = Path(path)
    if not p.exists():
        raise BulkInputError(f"No such file: {p}")
    if p.is_dir():
        raise BulkInputError(f"{p} is a folder, not a CSV file.")
    if p.stat().st_size == 0:
        raise BulkInputError(f"{p} is empty.")
    encoding = detect_encoding_blocks(_file_blocks(p))
    with _open_text(p, encoding) as fh:
        head = fh.read(262144)
    if head.startswith("\ufeff"):
        head = head[1:]
    _check_text(head[:65536])
    if not head.strip():
        raise BulkInputError(f"{p} has no rows (only empty lines).")
    delimiter = detect_delimiter(head)
    sample, _ = _sample(head, delimiter)
    width = 0
    rows = 0
    try:
        with _open_text(p, encoding) as fh:
            for rec in _records(fh, delimiter):
                if not _is_blank(rec):
                    rows += 1
                    if len(rec) > width:
                        width = len(rec)
    except csv.Error as exc:
        raise BulkInputError(f"The CSV could not be read: {exc}.") from None
    det = analyse(sample, width, encoding, delimiter)
    if email_column is not None:
        det = _with_column(det, email_column)
    return FileInfo(p, det, rows - (1 if det.has_header else 0))


def iter_file_rows(info: FileInfo) -> Iterator[SourceRow]:
    """The data rows of an inspected file, one at a time."""
    with _open_text(info.path, info.detected.encoding) as fh:
        yield from _iter_source_rows(_records(fh, info.detected.delimiter), skip_header=info.detected.has_header)


def read_path(path: str | Path, *, email_column: int | str | None = None) -> Table:
    """A whole file as a Table (tests and small files)."""
    info = inspect_file(path, email_column=email_column)
    return Table(info.detected, tuple(iter_file_rows(info)))
