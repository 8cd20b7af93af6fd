"""Which encoding an address file is in, and whether it is text at all.

Excel saves "CSV" in whatever the machine uses: UTF-8 with or without a BOM, UTF-16 ("Unicode
text", sometimes without a BOM), Windows-1251 or KOI8-R for Russian, Windows-1252 or Latin-1
for Western names. Reading a file in the wrong one turns every Cyrillic name into mojibake, so
the choice is made from evidence (BOM, NUL patterns, UTF-8 validity, how the high bytes read as
Russian words) over the whole file, keeping only counters so a 100,000-row file costs no memory.
Office files, images and archives renamed to .csv are refused with what to do instead.
"""
from __future__ import annotations

import codecs
import itertools
import math
import re
import unicodedata
from collections.abc import Iterable

from .. import lazy_text as later
from ..i18n import N_
from .table import BulkInputError

BLOCK = 1 << 20  # bytes read at a time, by the CLI and for uploads alike

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

_MAGIC = (
    (b"PK\x03\x04", N_("This file is an Excel workbook (.xlsx) or a ZIP archive, not a CSV text file.")),
    (b"\xd0\xcf\x11\xe0", N_("This file is an old Excel workbook (.xls) or another Office file, not a CSV text "
                             "file.")),
    (b"%PDF", N_("This file is a PDF document, not a CSV text file.")),
    (b"\x89PNG", N_("This file is a PNG image, not a CSV text file.")),
    (b"\xff\xd8\xff", N_("This file is a JPEG image, not a CSV text file.")),
    (b"GIF8", N_("This file is a GIF image, not a CSV text file.")),
    (b"\x1f\x8b", N_("This file is a gzip archive, not a CSV text file.")),
)
_SAVE_AS = N_("In Excel use File → Save As → “CSV UTF-8 (comma delimited)”, then upload that file.")


def _not_text(what: str) -> BulkInputError:
    """What the file is, then what to do instead."""
    return BulkInputError(later.t("{what} {save_as}", what=later.t(what), save_as=later.t(_SAVE_AS)))


def _check_magic(head: bytes) -> None:
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise _not_text(what)


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
        scores = dict.fromkeys(("cp1251", "koi8-r"), 0.0)
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
    return detect_encoding_blocks(data[i:i + BLOCK] for i in range(0, max(len(data), 1), BLOCK))


def check_text(sample: str) -> None:
    """Reject binary content that happened to decode (Latin-1 decodes anything)."""
    if not sample:
        return
    if "\x00" in sample:
        raise _not_text(N_("This file contains binary data (NUL bytes), so it is not a CSV text file."))
    controls = sum(1 for ch in sample if unicodedata.category(ch) == "Cc" and ch not in "\t\r\n\f\v")
    if controls > max(3, len(sample) // 100):
        raise _not_text(N_("This file does not look like text (it is full of control characters), so it cannot be "
                           "read as a CSV."))


def decode(data: bytes) -> tuple[str, str]:
    """``(text, encoding)`` for uploaded bytes; raises BulkInputError for binary files."""
    if not data or not data.strip():
        raise BulkInputError(later.t("The file is empty."))
    enc = detect_encoding(data)
    text = data.decode(enc, errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    check_text(text[:65536])
    return text, enc
