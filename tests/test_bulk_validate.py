"""Row verdicts before any API call: valid, invalid with a reason, duplicate of an earlier row."""
from __future__ import annotations

import pytest

from cmlib.bulk.csv_input import BulkInputError, parse_pasted, parse_text
from cmlib.bulk.validate import (
    DEFAULT_MAX_MB,
    DEFAULT_MAX_ROWS,
    Verdict,
    limits_from_env,
    validate_table,
)


def verdicts(text: str):
    bi = validate_table(parse_text(text))
    return bi, [(r.row, r.status, r.email, r.duplicate_of) for r in bi.rows]


def test_valid_invalid_and_duplicates_are_counted_and_numbered():
    bi, v = verdicts("Email;Name\nanna@example.com;A\nnot-an-address;B\nANNA@Example.com;C\n;D\nivan@example.ru;E\n"
                     "anna@EXAMPLE.COM;F\n")
    assert bi.counts.rows == 6
    assert bi.counts.valid == 2
    assert bi.counts.invalid == 2
    assert bi.counts.duplicates == 2
    assert v == [
        (2, Verdict.VALID, "anna@example.com", None),
        (3, Verdict.INVALID, None, None),
        (4, Verdict.DUPLICATE, "ANNA@example.com", 2),
        (5, Verdict.INVALID, None, None),
        (6, Verdict.VALID, "ivan@example.ru", None),
        (7, Verdict.DUPLICATE, "anna@example.com", 2),
    ]
    reasons = {r.row: r.reason for r in bi.invalid_rows}
    assert reasons[5] == "empty"
    assert "@" in reasons[3] or "sign" in reasons[3]
    assert [r.email for r in bi.to_lookup] == ["anna@example.com", "ivan@example.ru"]


def test_addresses_are_normalised_the_way_the_lookup_page_does():
    bi, _v = verdicts("Email\n  Ivan Petrov <Ivan@Example.RU>  \nmailto:anna@x.com\n\"oleg@y.com\"\n")
    assert [r.email for r in bi.rows] == ["Ivan@example.ru", "anna@x.com", "oleg@y.com"]
    assert bi.rows[0].raw.strip() == "Ivan Petrov <Ivan@Example.RU>"
    assert bi.rows[0].shown_email == "Ivan@example.ru"


def test_other_columns_are_kept_in_order_without_the_email_cell():
    bi, _ = verdicts("Name,Email,City\nIvan,ivan@x.ru,Moscow\n")
    assert bi.extra_columns == ("Name", "City")
    assert bi.rows[0].extra == ("Ivan", "Moscow")


def test_invalid_row_shows_the_cell_as_given():
    bi, _ = verdicts("Email\nivan at mail.ru\n")
    assert bi.rows[0].shown_email == "ivan at mail.ru"


def test_row_limit_has_a_clear_message():
    with pytest.raises(BulkInputError) as exc:
        validate_table(parse_pasted("a@x.com b@x.com c@x.com d@x.com"), max_rows=3)
    assert "4 rows" in str(exc.value) and "limit is 3" in str(exc.value) and "CM_BULK_MAX_ROWS" in str(exc.value)


def test_header_without_rows_is_refused():
    with pytest.raises(BulkInputError):
        validate_table(parse_text("Email;Name\n"))


def test_limits_default_and_from_environment(monkeypatch):
    monkeypatch.delenv("CM_BULK_MAX_MB", raising=False)
    monkeypatch.delenv("CM_BULK_MAX_ROWS", raising=False)
    d = limits_from_env()
    assert d.max_bytes == int(DEFAULT_MAX_MB * 1_000_000) and d.max_rows == DEFAULT_MAX_ROWS
    monkeypatch.setenv("CM_BULK_MAX_MB", "2.5")
    monkeypatch.setenv("CM_BULK_MAX_ROWS", "500")
    assert limits_from_env().max_bytes == 2_500_000
    assert limits_from_env().max_rows == 500
    monkeypatch.setenv("CM_BULK_MAX_MB", "lots")
    monkeypatch.setenv("CM_BULK_MAX_ROWS", "-3")
    assert limits_from_env() == d


def test_messy_cells_get_the_same_verdicts_and_reasons_as_the_lookup_box():
    from cmlib.emails import Rejection, check

    cells = ["<script>alert(1)</script>@example.com", "\"o'brien\"@example.com", "a@x.com, b@y.org",
             "anna\u2060@example.com", "user@bücher.de", "андрей@пример.рф", "<script>alert(1)</script>"]
    text = "Email\n" + "\n".join('"' + c.replace('"', '""') + '"' for c in cells) + "\n"
    bi = validate_table(parse_text(text))
    got = {r.raw: r for r in bi.rows}
    assert got["anna\u2060@example.com"].status == Verdict.VALID
    assert got["anna\u2060@example.com"].email == "anna@example.com"
    assert got["user@bücher.de"].email == "user@xn--bcher-kva.de"  # sent in ASCII
    for cell in ("<script>alert(1)</script>@example.com", "\"o'brien\"@example.com", "a@x.com, b@y.org",
                 "андрей@пример.рф", "<script>alert(1)</script>"):
        row = got[cell]
        assert row.status == Verdict.INVALID and row.reason == check(cell).reason, cell
    assert "HTML" in got["<script>alert(1)</script>"].reason
    assert check("a@x.com, b@y.org").kind == Rejection.SEVERAL
    assert "quotes" in got["\"o'brien\"@example.com"].reason
    assert "non-ASCII" in got["андрей@пример.рф"].reason


def test_punycode_and_unicode_spellings_are_duplicates():
    bi, v = verdicts("Email\nuser@bücher.de\nuser@xn--bcher-kva.de\n")
    assert [s for _, s, _, _ in v] == [Verdict.VALID, Verdict.DUPLICATE]
    assert bi.rows[1].duplicate_of == 2


def test_pasted_list_with_markup_lists_it_as_an_invalid_row():
    bi = validate_table(parse_pasted("a@x.com <script>alert(1)</script> b@y.org, c@z.net"))
    assert [r.email for r in bi.to_lookup] == ["a@x.com", "b@y.org", "c@z.net"]
    (bad,) = bi.invalid_rows
    assert bad.raw == "<script>alert(1)</script>" and "HTML" in bad.reason
