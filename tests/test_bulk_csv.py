"""Reading address files: encodings, delimiters, headers (English and Russian), odd shapes."""
from __future__ import annotations

import codecs

import pytest

from cmlib.bulk.csv_input import (
    BulkInputError,
    detect_delimiter,
    detect_encoding,
    header_email_score,
    inspect_file,
    iter_file_rows,
    parse_pasted,
    parse_text,
    read_bytes,
    read_path,
    split_addresses,
    unique_names,
)
from cmlib.bulk.validate import validate_table

RU_TEXT = "Имя;Электронная почта;Город\nИван Петров;ivan@example.ru;Москва\nАнна;anna@example.com;Санкт-Петербург\n"


def cells(table):
    return [r.cells for r in table.rows]


# ---------------------------------------------------------------------------- delimiters
@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_each_delimiter_is_detected(delim):
    text = delim.join(["Name", "Email", "City"]) + "\n" + delim.join(["Ivan", "ivan@x.ru", "Moscow"]) + "\n" \
        + delim.join(["Anna", "anna@y.com", "Paris"]) + "\n"
    t = read_bytes(text.encode())
    assert t.detected.delimiter == delim
    assert t.detected.columns == ("Name", "Email", "City")
    assert t.detected.email_column == 1
    assert cells(t) == [("Ivan", "ivan@x.ru", "Moscow"), ("Anna", "anna@y.com", "Paris")]


def test_semicolon_wins_over_commas_inside_values():
    text = "Ivanov, Ivan;ivan@x.ru;Moscow, Russia\nPetrova, Anna;anna@y.com;Kazan, Russia\n"
    assert detect_delimiter(text) == ";"
    t = parse_text(text)
    assert cells(t)[0] == ("Ivanov, Ivan", "ivan@x.ru", "Moscow, Russia")


def test_quoted_fields_with_commas_quotes_and_newlines_stay_one_cell():
    text = 'Name,Email,Note\n"Doe, John",john@x.com,"said ""hi""\nthen left"\n"Roe, Jane",jane@y.com,plain\n'
    t = parse_text(text)
    assert t.detected.delimiter == ","
    assert cells(t) == [("Doe, John", "john@x.com", 'said "hi"\nthen left'), ("Roe, Jane", "jane@y.com", "plain")]
    # the multi-line record is one spreadsheet row: Jane is row 3
    assert [r.row for r in t.rows] == [2, 3]


def test_empty_lines_are_skipped_but_row_numbers_match_the_spreadsheet():
    text = "Email\n\nanna@x.com\n\n\nivan@y.com\n;;\n"
    t = parse_text(text)
    assert [(r.row, r.cells[0]) for r in t.rows] == [(3, "anna@x.com"), (6, "ivan@y.com")]


def test_ragged_rows_keep_every_cell():
    text = "Email;Name\na@x.com;A;extra\nb@y.com\n"
    t = parse_text(text)
    assert len(t.detected.columns) == 3
    assert cells(t) == [("a@x.com", "A", "extra"), ("b@y.com",)]
    bi = validate_table(t)
    assert bi.extra_columns == ("Name", "Column 3")
    assert bi.rows[0].extra == ("A", "extra")


# ---------------------------------------------------------------------------- encodings
@pytest.mark.parametrize(("encoding", "expected"), [
    ("utf-8", "utf-8"),
    ("utf-8-sig", "utf-8-sig"),
    ("utf-16", "utf-16"),  # Python writes a BOM
    ("utf-16-be-bom", "utf-16"),
    ("cp1251", "cp1251"),
    ("koi8-r", "koi8-r"),
])
def test_russian_file_in_each_encoding_reads_back_exactly(encoding, expected):
    if encoding == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + RU_TEXT.encode("utf-16-be")
    else:
        data = RU_TEXT.encode(encoding)
    t = read_bytes(data)
    assert t.detected.encoding == expected
    assert t.detected.columns == ("Имя", "Электронная почта", "Город")
    assert cells(t)[0] == ("Иван Петров", "ivan@example.ru", "Москва")
    assert cells(t)[1][2] == "Санкт-Петербург"


def test_bom_does_not_end_up_in_the_first_header():
    t = read_bytes(codecs.BOM_UTF8 + b"Email,Name\na@x.com,A\n")
    assert t.detected.columns[0] == "Email"
    assert t.detected.email_column == 0


def test_utf16_without_bom_is_recognised():
    t = read_bytes("Email\tName\na@x.com\tАнна\n".encode("utf-16-le"))
    assert t.detected.encoding == "utf-16-le"
    assert cells(t) == [("a@x.com", "Анна")]


def test_western_latin1_file_is_not_mistaken_for_cp1251():
    text = "Email;Name;City\ncafe@x.fr;Café Müller;Zürich\njose@y.es;José Núñez;Málaga\n"
    t = read_bytes(text.encode("latin-1"))
    assert t.detected.encoding in ("cp1252", "latin-1")
    assert cells(t)[0] == ("cafe@x.fr", "Café Müller", "Zürich")
    assert cells(t)[1][1] == "José Núñez"


def test_latin1_bytes_that_are_not_cp1252_fall_back_to_latin1():
    # 0x81 is undefined in cp1252 and 0x98 undefined in cp1251: only Latin-1 decodes both
    data = b"Email;Note\na@x.com;caf\xe9 \x81\x98\n"
    assert detect_encoding(data) == "latin-1"


def test_cp1251_detected_even_when_the_first_megabyte_is_ascii(tmp_path):
    p = tmp_path / "big.csv"
    with open(p, "wb") as fh:
        fh.write(b"Email;Name\n")
        for i in range(60000):
            fh.write(f"user{i}@example.com;User {i}\n".encode("ascii"))
        fh.write("late@example.com;Последний Пользователь\n".encode("cp1251"))
    assert p.stat().st_size > 1 << 20
    info = inspect_file(p)
    assert info.detected.encoding == "cp1251"
    assert info.data_rows == 60001
    *_, last = iter_file_rows(info)  # streamed to the end
    assert last.cells == ("late@example.com", "Последний Пользователь")


@pytest.mark.parametrize("text", [
    RU_TEXT,
    RU_TEXT.upper(),  # capitals only: case cannot decide, letter frequencies do
    RU_TEXT.lower(),
    "Email;Name\nlate@example.com;Юля\n",
    "Email;Имя\na@x.ru;Пётр\n",
    "email;name\na@b.ru;Щукин Ж.\n",
    "Email;Name\na@x.com;ООО Ромашка\n",
    "a@x.ru;ЭЛ. ПОЧТА\n",
])
def test_koi8r_and_cp1251_are_told_apart(text):
    """KOI8-R read as cp1251 is Cyrillic garbage ("йЧБО") that still looks Russian."""
    assert detect_encoding(text.encode("koi8-r")) == "koi8-r"
    assert detect_encoding(text.encode("cp1251")) == "cp1251"
    koi8, original = read_bytes(text.encode("koi8-r")), parse_text(text)
    assert koi8.rows == original.rows and koi8.detected.columns == original.detected.columns


def test_koi8r_file_is_named_and_streams_in_the_cli_path(tmp_path):
    p = tmp_path / "koi8.csv"
    p.write_bytes(RU_TEXT.encode("koi8-r"))
    info = inspect_file(p)
    assert info.detected.encoding == "koi8-r"
    assert "KOI8-R" in info.detected.describe()
    assert next(r.cells for r in iter_file_rows(info)) == ("Иван Петров", "ivan@example.ru", "Москва")


# ---------------------------------------------------------------------------- headers and the email column
@pytest.mark.parametrize("header", [
    "Email", "E-mail", "e_mail", "EMAIL ADDRESS", "Email Address", "Mail", "emails", "Work email",
    "Электронная почта", "Почта", "Адрес", "Емейл", "Эл. почта", "E-mail адрес", "Адрес электронной почты",
])
def test_email_header_names_in_english_and_russian(header):
    text = f"Имя;{header};Комментарий\nИван;not an address yet;x\nАнна;anna@x.com;y\n"
    t = parse_text(text)
    assert t.detected.has_header
    assert t.detected.email_column == 1, t.detected
    assert header_email_score(header) > 0


def test_postal_address_column_loses_to_the_email_column_by_content():
    text = "Адрес;E-mail\nМосква, Тверская 1;ivan@x.ru\nКазань;anna@y.ru\n"
    t = parse_text(text)
    assert t.detected.columns[t.detected.email_column] == "E-mail"


def test_without_a_recognised_header_the_column_with_most_addresses_wins():
    text = "Name,Contact,Backup\nIvan,ivan@x.ru,\nAnna,anna@y.com,anna@z.com\nOleg,oleg@x.ru,\n"
    t = parse_text(text)
    assert t.detected.has_header
    assert t.detected.columns[t.detected.email_column] == "Contact"
    assert "3 of 3" in t.detected.email_column_reason


def test_file_without_header_whose_first_row_is_an_address():
    t = parse_text("anna@x.com;Anna\nivan@y.ru;Ivan\n")
    assert not t.detected.has_header
    assert t.detected.columns == ("Column 1", "Column 2")
    assert t.detected.email_column == 0
    assert [r.row for r in t.rows] == [1, 2]


def test_file_without_header_whose_first_address_is_broken_keeps_that_row():
    t = parse_text("ivan@@x.ru;Ivan\nanna@y.com;Anna\n")
    assert not t.detected.has_header
    assert cells(t)[0] == ("ivan@@x.ru", "Ivan")


def test_header_cell_mentioning_mail_that_holds_no_addresses_is_not_chosen():
    text = "Mailing status,Contact\nsent,ivan@x.ru\nbounced,anna@y.com\n"
    t = parse_text(text)
    assert t.detected.columns[t.detected.email_column] == "Contact"


def test_file_with_no_email_column_says_so_and_lists_the_columns():
    t = parse_text("Name;City\nIvan;Moscow\nAnna;Kazan\n")
    assert t.detected.email_column is None
    with pytest.raises(BulkInputError) as exc:
        validate_table(t)
    assert "No column with email addresses" in str(exc.value)
    assert "“Name”" in str(exc.value) and "“City”" in str(exc.value)


def test_duplicate_and_empty_header_names_become_unique():
    t = parse_text("Email;Name;Name;\na@x.com;A;B;C\n")
    assert t.detected.columns == ("Email", "Name", "Name (2)", "Column 4")
    assert unique_names(["Email", "email"], taken=["EMAIL"]) == ["Email (2)", "email (3)"]


def test_column_override_by_name_number_and_unknown_name():
    text = "Primary;Secondary\na@x.com;b@y.com\nc@x.com;d@y.com\n"
    assert parse_text(text, email_column="Secondary").detected.email_column == 1
    assert parse_text(text, email_column="secondary").detected.email_column == 1
    assert parse_text(text, email_column="2").detected.email_column == 1
    assert parse_text(text, email_column=0).detected.email_column_reason == "chosen by you"
    with pytest.raises(BulkInputError) as exc:
        parse_text(text, email_column="Mail")
    assert "'Primary'" in str(exc.value)


# ---------------------------------------------------------------------------- unusable input
def test_binary_file_is_refused_with_a_clear_message():
    with pytest.raises(BulkInputError) as exc:
        read_bytes(bytes(range(256)) * 20)
    assert "not a CSV" in str(exc.value) or "does not look like text" in str(exc.value)


def test_excel_workbook_is_named_as_such():
    with pytest.raises(BulkInputError) as exc:
        read_bytes(b"PK\x03\x04" + b"\x00" * 100)
    assert "Excel workbook" in str(exc.value) and "CSV UTF-8" in str(exc.value)


def test_high_bytes_that_decode_are_still_refused_when_full_of_control_characters():
    junk = bytes((i * 37) % 32 for i in range(4000)).replace(b"\n", b"\x01").replace(b"\r", b"\x02")
    with pytest.raises(BulkInputError):
        read_bytes(b"Email\n" + junk.replace(b"\x00", b"\x03"))


@pytest.mark.parametrize("data", [b"", b"   \n\n", "\ufeff".encode("utf-8") + b"\n"])
def test_empty_input_is_refused(data):
    with pytest.raises(BulkInputError):
        read_bytes(data)


def test_file_size_limit_has_a_clear_message():
    with pytest.raises(BulkInputError) as exc:
        read_bytes(b"Email\n" + b"a@x.com\n" * 1000, max_bytes=1000)
    assert "limit is" in str(exc.value) and "CM_BULK_MAX_MB" in str(exc.value)


def test_inspect_file_errors(tmp_path):
    with pytest.raises(BulkInputError):
        inspect_file(tmp_path / "missing.csv")
    with pytest.raises(BulkInputError):
        inspect_file(tmp_path)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(BulkInputError):
        inspect_file(empty)


def test_read_path_equals_read_bytes(tmp_path):
    p = tmp_path / "x.csv"
    p.write_bytes(RU_TEXT.encode("cp1251"))
    assert read_path(p).rows == read_bytes(RU_TEXT.encode("cp1251")).rows


# ---------------------------------------------------------------------------- pasted text
def test_pasted_list_separated_by_anything_becomes_one_row_per_address():
    t = parse_pasted("anna@x.com, ivan@y.ru oleg@z.com\nIvan Petrov <ivan.p@y.ru>; \"Doe, J\" <j@d.com>\nbad@@")
    assert t.detected.flat_list
    assert [r.cells[0] for r in t.rows] == ["anna@x.com", "ivan@y.ru", "oleg@z.com", "ivan.p@y.ru", "j@d.com",
                                            "bad@@"]
    assert [r.row for r in t.rows] == [1, 2, 3, 4, 5, 6]


def test_pasted_one_address_per_line_keeps_line_numbers():
    t = parse_pasted("anna@x.com\n\nivan@y.ru\n")
    assert [(r.row, r.cells[0]) for r in t.rows] == [(1, "anna@x.com"), (3, "ivan@y.ru")]


def test_pasted_excel_range_with_header_stays_a_table():
    t = parse_pasted("Имя\tПочта\tГород\nИван\tivan@x.ru\tМосква\n")
    assert not t.detected.flat_list
    assert t.detected.columns == ("Имя", "Почта", "Город")
    assert t.detected.email_column == 1


def test_pasted_excel_range_with_names_and_two_address_columns_stays_a_table():
    t = parse_pasted("Ivan Petrov\tivan@x.ru\tivan2@y.ru\nAnna Li\tanna@x.ru\t\n")
    assert not t.detected.flat_list
    assert t.detected.email_column == 1


def test_split_addresses_keeps_display_names_out():
    assert split_addresses("Ivan <a@b.com>, x@y.com z@w.com") == ["a@b.com", "x@y.com", "z@w.com"]


def test_pasting_nothing_is_refused():
    with pytest.raises(BulkInputError):
        parse_pasted("  \n ")


def test_old_mac_line_endings_and_mixed_endings():
    t = read_bytes(b"Email;Name\ra@x.com;A\r\nb@y.com;B\nc@z.com;C\r")
    assert cells(t) == [("a@x.com", "A"), ("b@y.com", "B"), ("c@z.com", "C")]
