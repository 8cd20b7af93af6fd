"""Address input: splitting, normalising, judging; the same for Lookup, Bulk and the CLI."""
import pytest

from cmlib.bulk.csv_input import split_addresses
from cmlib.emails import (
    Address,
    InvalidAddress,
    Rejection,
    candidates,
    check,
    normalise_text,
    parse_addresses,
    split_items,
)


def test_separators_and_display_names():
    p = parse_addresses('Ivan <ivan@example.com>, anna@example.com; b@x.org\n c@x.org\t"Doe, Jane" <jane@x.org>')
    assert [a.email for a in p.valid] == ["ivan@example.com", "anna@example.com", "b@x.org", "c@x.org", "jane@x.org"]


def test_dedupe_case_insensitive_keeps_first_spelling():
    p = parse_addresses("Anna@Example.com anna@example.COM")
    assert [a.email for a in p.valid] == ["Anna@example.com"]
    assert p.duplicates == ("anna@example.com",)


def test_invalid_listed_with_reason_and_skipped():
    p = parse_addresses("good@x.com, bad@, @nope.com, x@localhost")
    assert [a.email for a in p.valid] == ["good@x.com"]
    assert [i.text for i in p.invalid] == ["bad@", "@nope.com", "x@localhost"]
    assert all(i.reason for i in p.invalid)
    assert p.invalid[0].position == 2


def test_plus_and_mailto():
    assert isinstance(check("mailto:a+b@x.com"), Address)
    assert check("a+b@x.com").email == "a+b@x.com"
    assert isinstance(check(""), InvalidAddress)


def test_list_input_from_query_params():
    p = parse_addresses(["a@x.com,b@x.com", "c@x.com"])
    assert len(p.valid) == 3


def test_named_addresses_mixed_with_bare_ones():
    cases = {
        "Ivan <a@b.com>, x@y.com z@w.com": ["a@b.com", "x@y.com", "z@w.com"],
        "x@y.com Ivan Petrov <a@b.com>": ["x@y.com", "a@b.com"],
        '"Doe, Jane" <jane@x.org>, bob@x.org': ["jane@x.org", "bob@x.org"],
        "Anna <anna@x.org>; Bob Smith <bob@x.org>\nc@x.org": ["anna@x.org", "bob@x.org", "c@x.org"],
        "<only@x.org>": ["only@x.org"],
    }
    for text, want in cases.items():
        p = parse_addresses(text)
        assert [a.email for a in p.valid] == want, text
        assert p.invalid == (), text


# --------------------------------------------------------------------------- invisible characters

WJ = "\u2060"
INVISIBLE = ["\u2060", "\u200b", "\u200c", "\u200d", "\ufeff", "\u00ad", "\u200e", "\u200f", "\u202e", "\u2066"]


@pytest.mark.parametrize("ch", INVISIBLE)
def test_invisible_format_characters_are_dropped_wherever_they_are(ch):
    """What the app shows in markdown carries U+2060; copied and pasted back it must be found."""
    for text in (f"anna{ch}@example.com", f"{ch}anna@example.com{ch}", f"an{ch}na@exa{ch}mple.com"):
        p = parse_addresses(text)
        assert [a.email for a in p.valid] == ["anna@example.com"], (ch, text)
        assert p.invalid == ()
        assert check(text).email == "anna@example.com"  # one Bulk cell
        assert parse_addresses([text]).valid[0].email == "anna@example.com"  # a ?email= value, a CLI argument


def test_copied_tab_label_pastes_back():
    """The Lookup tab label as md_escape renders it, text content copied (joiner included)."""
    from ui.text import md_escape

    shown = md_escape("ivan.work@example.org").replace("\\", "")
    assert WJ in shown  # the joiner really is in what the browser shows
    p = parse_addresses(shown)
    assert [a.email for a in p.valid] == ["ivan.work@example.org"] and p.invalid == ()


def test_normalise_text_keeps_visible_text():
    assert normalise_text(f"a{WJ}b\u200bc d\u00a0e") == "abc d\u00a0e"
    assert normalise_text(None) == ""


def test_only_invisible_or_separators_is_empty_not_invalid():
    for text in ("", "   ", f"{WJ}\u200b", " ,; \n"):
        p = parse_addresses(text)
        assert p.empty and p.valid == () and p.invalid == ()
        assert check(text).kind == Rejection.EMPTY


# ---------------------------------------------------------------- messy pastes: every unused token has a reason
MESSY = [
    # (pasted text, addresses used, [(token shown, rejection)])
    ("<script>alert(1)</script>", [], [("<script>alert(1)</script>", Rejection.MARKUP)]),
    ("a@x.com <script>alert(1)</script> b@y.org", ["a@x.com", "b@y.org"],
     [("<script>alert(1)</script>", Rejection.MARKUP)]),
    ("<script>alert(1)</script>@example.com", [], [("<script>alert(1)</script>@example.com", Rejection.MARKUP)]),
    ("<img src=x onerror=alert(1)>, ok@x.com", ["ok@x.com"], [("<img src=x onerror=alert(1)>", Rejection.MARKUP)]),
    ('"o\'brien"@example.com', [], [('"o\'brien"@example.com', Rejection.QUOTED)]),
    ('"o brien"@example.com', [], [('"o brien"@example.com', Rejection.QUOTED)]),
    ("o'brien@example.com", ["o'brien@example.com"], []),
    ('"anna@x.com", \'ivan@y.ru\'', ["anna@x.com", "ivan@y.ru"], []),
    ("андрей@пример.рф", [], [("андрей@пример.рф", Rejection.NON_ASCII_LOCAL)]),
    ("user@bücher.de", ["user@xn--bcher-kva.de"], []),
    ("anna@example.com thanks!", ["anna@example.com"], [("thanks!", Rejection.SYNTAX)]),
    ("Name <not-an-address>", [], [("Name", Rejection.SYNTAX), ("<not-an-address>", Rejection.MARKUP)]),
    ("Doe, Jane <jane@x.org>", ["jane@x.org"], [("Doe", Rejection.SYNTAX)]),
    ('"Doe, Jane" <jane@x.org>; Bob Smith <bob@x.org>', ["jane@x.org", "bob@x.org"], []),
    ("bad@, @nope.com, x@localhost, a..b@x.com", [],
     [("bad@", Rejection.SYNTAX), ("@nope.com", Rejection.SYNTAX), ("x@localhost", Rejection.SYNTAX),
      ("a..b@x.com", Rejection.SYNTAX)]),
    ("mailto:a+b@x.com <mailto:c@x.com>", ["a+b@x.com", "c@x.com"], []),
    ("a@x.com\u00a0b@y.org\u3000c@z.net", ["a@x.com", "b@y.org", "c@z.net"], []),
    ("<unclosed a@x.com", ["a@x.com"], [("<unclosed", Rejection.MARKUP)]),
]


@pytest.mark.parametrize(("text", "used", "unused"), MESSY)
def test_every_token_is_used_or_listed_with_its_reason(text, used, unused):
    p = parse_addresses(text)
    assert [a.email for a in p.valid] == used
    assert [(i.text, i.kind) for i in p.invalid] == unused
    assert all(i.reason and i.position for i in p.invalid)


def test_reasons_say_what_is_wrong():
    def reason(text):
        (bad,) = parse_addresses(text).invalid
        return bad.reason

    assert "HTML" in reason("<script>alert(1)</script>")
    assert "“<” or “>”" in reason("<script>x</script>@example.com")
    assert "quotes" in reason('"o\'brien"@example.com')
    assert "non-ASCII" in reason("андрей@пример.рф") and "андрей" in reason("андрей@пример.рф")
    assert "@-sign" in reason("script")


def test_lookup_and_bulk_share_one_splitter():
    text = 'Ivan <a@b.com>, x@y.com z@w.com\n<script>alert(1)</script>; "Doe, J" <j@d.com>'
    assert split_addresses(text) == candidates(text) == [
        "a@b.com", "x@y.com", "z@w.com", "<script>alert(1)</script>", "j@d.com"]
    assert next(it.text for it in split_items(text)) == "Ivan <a@b.com>"


# --------------------------------------------------------------------------- one Bulk cell
@pytest.mark.parametrize(("cell", "email", "kind"), [
    ("  Ivan Petrov <Ivan@Example.RU>  ", "Ivan@example.ru", None),
    ("Doe, Jane <jane@x.org>", "jane@x.org", None),  # in a CSV cell the comma is part of the name
    ('"oleg@y.com"', "oleg@y.com", None),
    ("user@BÜCHER.de", "user@xn--bcher-kva.de", None),
    ("a@x.com, b@y.org", None, Rejection.SEVERAL),
    ("<script>x</script>@example.com", None, Rejection.MARKUP),
    ('"o\'brien"@example.com', None, Rejection.QUOTED),
    ("андрей@пример.рф", None, Rejection.NON_ASCII_LOCAL),
    ("ivan at mail.ru", None, Rejection.SYNTAX),
    ("anna @example.com", None, Rejection.SYNTAX),
    (f"{WJ}", None, Rejection.EMPTY),
])
def test_one_cell_verdicts(cell, email, kind):
    res = check(cell)
    if email:
        assert isinstance(res, Address) and res.email == email
    else:
        assert isinstance(res, InvalidAddress) and res.kind == kind and res.reason


def test_space_inside_an_address_is_named_by_the_validator():
    assert "SPACE" in check("anna @example.com").reason


# --------------------------------------------------------------------------- internationalised addresses
def test_idn_domain_is_sent_in_ascii_and_shown_in_unicode():
    a = check("user@bücher.de")
    assert a.email == "user@xn--bcher-kva.de"  # what goes to Campaign Monitor
    assert a.display == "user@bücher.de" and a.is_international
    assert check("anna@example.com").display == "anna@example.com"
    assert all(ord(c) < 128 for c in check("Ivan@Пример.РФ").email)


def test_unicode_and_punycode_spellings_are_one_address():
    p = parse_addresses("user@bücher.de USER@xn--bcher-kva.de")
    assert [a.email for a in p.valid] == ["user@xn--bcher-kva.de"]
    assert p.duplicates == ("USER@xn--bcher-kva.de",)


def test_non_ascii_local_part_is_refused_up_front():
    res = check("андрей@пример.рф")
    assert isinstance(res, InvalidAddress) and res.kind == Rejection.NON_ASCII_LOCAL
    assert isinstance(check("müller@example.com"), InvalidAddress)
