from cmlib.emails import check, parse_addresses, Address, InvalidAddress


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
