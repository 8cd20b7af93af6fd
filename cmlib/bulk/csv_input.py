"""Read the address files people actually have: Excel exports in any of four encodings,
separated by commas, semicolons or tabs, with or without a header row, in English or Russian.

The entry point for reading input; each job lives in its own module:

* :mod:`.table` -- what reading produces (``Detected``, ``SourceRow``, ``Table``) and ``BulkInputError``,
* :mod:`.encoding` -- which encoding a file is in, and whether it is text at all,
* :mod:`.structure` -- delimiter, header row, column names, the email column; ``parse_text``, ``read_bytes``,
* :mod:`.pasted` -- the paste box: a range copied from Excel, or addresses separated by anything,
* :mod:`.streaming` -- files of any size for the CLI, in flat memory.
"""
from __future__ import annotations

from .encoding import check_text, decode, detect_encoding, detect_encoding_blocks
from .pasted import parse_pasted, split_addresses
from .streaming import FileInfo, inspect_file, iter_file_rows, read_path
from .structure import (
    DELIMITERS,
    EMAIL_HEADERS,
    analyse,
    detect_delimiter,
    header_email_score,
    looks_like_email,
    parse_text,
    read_bytes,
    unique_names,
)
from .table import DELIMITER_NAMES, ENCODING_NAMES, BulkInputError, Detected, SourceRow, Table

__all__ = [
    "DELIMITERS", "DELIMITER_NAMES", "EMAIL_HEADERS", "ENCODING_NAMES", "BulkInputError", "Detected", "FileInfo",
    "SourceRow", "Table", "analyse", "check_text", "decode", "detect_delimiter", "detect_encoding",
    "detect_encoding_blocks", "header_email_score", "inspect_file", "iter_file_rows", "looks_like_email",
    "parse_pasted", "parse_text", "read_bytes", "read_path", "split_addresses", "unique_names",
]
