"""Files of any size for the CLI, read twice in flat memory: a first pass detects how to read
the file and counts its rows, the second yields the rows one at a time.

The first pass reads every byte for the encoding (a cp1251 letter in row 90,000 still counts)
and every record for the column count, keeping only counters, so a 100,000-row file costs the
same memory as a 10-row one.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import lazy_text as later
from .encoding import BLOCK, check_text, detect_encoding_blocks
from .structure import analyse, detect_delimiter, head_records, is_blank, iter_source_rows, read_records, with_column
from .table import BulkInputError, Detected, SourceRow, Table


def _file_blocks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while True:
            b = fh.read(BLOCK)
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
        raise BulkInputError(later.t("No such file: {path}", path=str(p)))
    if p.is_dir():
        raise BulkInputError(later.t("{path} is a folder, not a CSV file.", path=str(p)))
    if p.stat().st_size == 0:
        raise BulkInputError(later.t("{path} is empty.", path=str(p)))
    encoding = detect_encoding_blocks(_file_blocks(p))
    with _open_text(p, encoding) as fh:
        head = fh.read(262144)
    if head.startswith("\ufeff"):
        head = head[1:]
    check_text(head[:65536])
    if not head.strip():
        raise BulkInputError(later.t("{path} has no rows (only empty lines).", path=str(p)))
    delimiter = detect_delimiter(head)
    sample, _ = head_records(head, delimiter)
    width = 0
    rows = 0
    try:
        with _open_text(p, encoding) as fh:
            for rec in read_records(fh, delimiter):
                if not is_blank(rec):
                    rows += 1
                    if len(rec) > width:
                        width = len(rec)
    except csv.Error as exc:
        raise BulkInputError(later.t("The CSV could not be read: {reason}.", reason=str(exc))) from None
    det = analyse(sample, width, encoding, delimiter)
    if email_column is not None:
        det = with_column(det, email_column)
    return FileInfo(p, det, rows - (1 if det.has_header else 0))


def iter_file_rows(info: FileInfo) -> Iterator[SourceRow]:
    """The data rows of an inspected file, one at a time."""
    with _open_text(info.path, info.detected.encoding) as fh:
        yield from iter_source_rows(read_records(fh, info.detected.delimiter), skip_header=info.detected.has_header)


def read_path(path: str | Path, *, email_column: int | str | None = None) -> Table:
    """A whole file as a Table (tests and small files)."""
    info = inspect_file(path, email_column=email_column)
    return Table(info.detected, tuple(iter_file_rows(info)))
