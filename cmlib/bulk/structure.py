"""The shape of CSV text: delimiter, header row, column names and the email column.

Records are read with the ``csv`` module rather than ``pandas.read_csv``: every cell stays the
exact string in the file (as ``dtype=str, keep_default_na=False`` would give), and on top of
that a ragged row (one extra ``;`` at the end) is kept instead of raising or silently turning
leading columns into an index, each record keeps the row number Excel shows for it (blank lines
counted), and the same code streams a 100,000-row file for the CLI in constant memory.
pandas takes over once the rows are results (the matrix, the summary, the export).
"""
from __future__ import annotations

import csv
import io
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from .. import lazy_text as later
from .encoding import decode
from .table import BulkInputError, Detected, SourceRow, Table

DELIMITERS = (",", ";", "\t")

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

CHOSEN_BY_YOU = later.t("chosen by you")  # why this is the email column: someone chose it

SAMPLE_RECORDS = 200  # records looked at to choose the delimiter, header and column

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def looks_like_email(value: str) -> bool:
    return bool(value) and bool(_LOOKS_LIKE.search(value))


def read_records(text_lines: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    """Quote-aware records, lenient (``strict=False``): a stray quote never loses a row."""
    return csv.reader(text_lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=False,
                      strict=False)


def is_blank(record: Sequence[str]) -> bool:
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
            for rec in read_records(io.StringIO(sample, newline=""), delim):
                if is_blank(rec):
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


def _choose_by_content(records: Sequence[Sequence[str]], width: int) -> tuple[int | None, str]:
    hits = [0] * width
    for rec in records:
        for i, cell in enumerate(rec[:width]):
            if looks_like_email(cell):
                hits[i] += 1
    if not records or max(hits, default=0) == 0:
        return None, later.t("no column holds email addresses")
    best = max(range(width), key=lambda i: (hits[i], -i))
    return best, later.nt("{hits} of {n} sampled row holds an address in this column",
                          "{hits} of {n} sampled rows hold an address in this column", len(records), hits=hits[best])


def analyse(sample_records: Sequence[Sequence[str]], width: int, encoding: str, delimiter: str) -> Detected:
    """Header row, column names and the email column from the first non-blank records."""
    records = [r for r in sample_records if not is_blank(r)]
    width = max(width, 1)
    if not records:
        raise BulkInputError(later.t("The file has no rows (only empty lines)."))
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
        raw_names = [(first[i].strip() if i < len(first) else "") or _column(i) for i in range(width)]
        columns = tuple(unique_names(raw_names))
    else:
        columns = tuple(_column(i) for i in range(width))
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
            reason = later.t("header “{name}”", name=columns[email_col])
    if email_col is None:
        email_col, reason = _choose_by_content(body, width)
    return Detected(encoding=encoding, delimiter=delimiter, has_header=has_header, columns=columns,
                    email_column=email_col, email_column_reason=reason)


def iter_source_rows(records: Iterable[list[str]], skip_header: bool) -> Iterator[SourceRow]:
    header_skipped = not skip_header
    for n, rec in enumerate(records, start=1):
        if is_blank(rec):
            continue
        if not header_skipped:
            header_skipped = True
            continue
        yield SourceRow(n, tuple(rec))


def head_records(text: str, delimiter: str) -> tuple[list[list[str]], int]:
    """The first non-blank records (what the header and email column are chosen from), and their width."""
    out: list[list[str]] = []
    width = 0
    for rec in read_records(io.StringIO(text, newline=""), delimiter):
        if not is_blank(rec):
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
        raise BulkInputError(later.t("There is nothing to read: the input is empty."))
    delimiter = detect_delimiter(text[:262144])
    sample, _ = head_records(text, delimiter)
    try:
        rows = tuple(iter_source_rows(read_records(io.StringIO(text, newline=""), delimiter), skip_header=False))
    except csv.Error as exc:
        raise BulkInputError(later.t("The CSV could not be read: {reason}.", reason=str(exc))) from None
    width = max((len(r.cells) for r in rows), default=1)
    det = analyse(sample, width, encoding, delimiter)
    if email_column is not None:
        det = with_column(det, email_column)
    if det.has_header:
        rows = rows[1:]
    return Table(det, rows)


def _column(i: int) -> str:
    """The name of a column without a header cell: "Column 2" (translated where shown)."""
    return later.t("Column {number}", number=str(i + 1))


def with_column(det: Detected, column: int | str) -> Detected:
    idx = det.column_index(column)
    return replace(det, email_column=idx, email_column_reason=CHOSEN_BY_YOU)


def read_bytes(data: bytes, *, email_column: int | str | None = None, max_bytes: int | None = None) -> Table:
    """An uploaded file, whole (the page's path: at most a few megabytes)."""
    if max_bytes is not None and len(data) > max_bytes:
        raise BulkInputError(later.t("The file is {size} MB; the limit is {limit} MB. Split it into smaller files or "
                                     "ask an admin to raise CM_BULK_MAX_MB.", size=round(len(data) / 1e6, 1),
                                     limit=round(max_bytes / 1e6)))
    text, enc = decode(data)
    return parse_text(text, encoding=enc, email_column=email_column)
