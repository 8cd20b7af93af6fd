"""md_escape: user text inside Streamlit markdown renders literally and never as a link.

No markdown renderer is available in Python here, so the tests check the two properties the
escaping relies on (see ui/text.py): every ASCII punctuation character reaches the parser
backslash-escaped, and once the parser has resolved the escapes, the text-node rewriting
patterns Streamlit's frontend runs (copied from its bundle) find nothing to rewrite. The browser
test checks the real rendering of a hostile list name and of tab labels.
"""
from __future__ import annotations

import re
import string

import pytest

from ui.text import WORD_JOINER, md_escape, plain

# Patterns from Streamlit 1.67's StreamlitMarkdown bundle (mdast-util-gfm-autolink-literal),
# the look-behind dropped so the check is stricter than the real one.
EMAIL_AUTOLINK = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
URL_AUTOLINK = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE)
EMOJI_SHORTCODE_RE = re.compile(r":\+1:|:-1:|:[\w-]+:")


class _EmojiShortcode:
    """remark-emoji's pattern, matching only names that can be emoji: a name of digits alone
    is a time ("14:32:05"), except the two digit-only short codes that exist (:100:, :1234:)."""

    @staticmethod
    def search(node: str):
        for i in range(len(node)):
            m = EMOJI_SHORTCODE_RE.match(node, i)
            if m and (not m.group()[1:-1].isdigit() or m.group()[1:-1] in ("100", "1234")):
                return m
        return None


EMOJI_SHORTCODE = _EmojiShortcode()
MATERIAL_ICON = re.compile(r":material[/_]")
DIRECTIVE = re.compile(r":[A-Za-z][\w-]*\[")

PUNCT = set(string.punctuation)


def resolve_escapes(md: str) -> str:
    """What a CommonMark parser puts in the text node: ``\\x`` -> ``x`` for ASCII punctuation."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md)


def unescaped_punctuation(md: str) -> list[str]:
    """ASCII punctuation that reaches the parser without a backslash in front of it."""
    bad = []
    i = 0
    while i < len(md):
        ch = md[i]
        if ch == "\\" and i + 1 < len(md) and md[i + 1] in PUNCT:
            i += 2
            continue
        if ch in PUNCT:
            bad.append(ch)
        i += 1
    return bad


HOSTILE = [
    "<img src=x onerror=alert(1)> **VIP** :red[x]",
    "anna@example.com",
    "maria+news@example.com",
    "Olga.Case@Example.COM",
    "see https://evil.example/path?x=1 now",
    "visit www.example.com today",
    "HTTP://EXAMPLE.COM",
    ":smile: :+1: :material/home: :material_home:",
    ":blue-badge[fake] :red-background[x] :color[x]{foreground=red}",
    "# heading",
    "1. first",
    "- item",
    "> quote",
    "| a | b |",
    "`code` ~~strike~~ __bold__ _it_ *it*",
    "[link](javascript:alert(1)) ![img](x.png)",
    "$x^2$ and $$y$$",
    "&lt;b&gt; &amp; &#64;",
    "back\\slash\\*",
    "<script>alert('x')</script>",
    "a\nb\r\nc",
    "",
    "Ünïcødé — café ☕ 😀",
    "as of 14:32:05 UTC",
    "a:b:c :100: :1234: 12:00:",
    "x@y.com a@b@c.org user@localhost @x.com a@.com",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_every_ascii_punctuation_character_is_escaped(text):
    assert unescaped_punctuation(md_escape(text)) == []


@pytest.mark.parametrize("text", HOSTILE)
def test_round_trip_gives_the_original_text_on_one_line(text):
    shown = resolve_escapes(md_escape(text)).replace(WORD_JOINER, "")
    assert shown == re.sub(r"[\r\n]+", " ", text)


@pytest.mark.parametrize("text", HOSTILE)
def test_no_text_node_rewrite_can_match_after_parsing(text):
    node = resolve_escapes(md_escape(text))
    assert not EMAIL_AUTOLINK.search(node)
    assert not URL_AUTOLINK.search(node)
    assert not EMOJI_SHORTCODE.search(node)
    assert not MATERIAL_ICON.search(node)
    assert not DIRECTIVE.search(node)


def test_the_patterns_do_match_unescaped_text():
    """Guards the test itself: without md_escape the same inputs would be rewritten."""
    assert EMAIL_AUTOLINK.search("anna@example.com")
    assert URL_AUTOLINK.search("visit www.example.com today")
    assert URL_AUTOLINK.search("see https://evil.example/path")
    assert EMOJI_SHORTCODE.search(":smile:")
    assert EMOJI_SHORTCODE.search("x:100:") and not EMOJI_SHORTCODE.search("14:32:05")
    assert MATERIAL_ICON.search(":material/home:")
    assert DIRECTIVE.search(":red[x]")


def test_email_keeps_its_visible_characters_in_order():
    out = md_escape("ivan.work@example.org")
    assert out == "ivan\\.work" + WORD_JOINER + "\\@example\\.org"


def test_vip_list_name_exact_escape():
    assert md_escape("<img src=x onerror=alert(1)> **VIP** :red[x]") == (
        "\\<img src\\=x onerror\\=alert\\(1\\)\\> \\*\\*VIP\\*\\* \\:" + WORD_JOINER + "red\\[x\\]"
    )


def test_letters_digits_and_spaces_pass_through():
    assert md_escape("Newsletter 2024") == "Newsletter 2024"


def test_none_and_non_strings():
    assert md_escape(None) == ""
    assert md_escape(42) == "42"


def test_brackets_false_leaves_brackets_for_st_badge():
    out = md_escape("Spam [old]", brackets=False)
    assert "[old]" in out
    assert unescaped_punctuation(out) == ["[", "]"]


def test_www_break_survives_mixed_case():
    node = resolve_escapes(md_escape("WWW.Example.com"))
    assert not URL_AUTOLINK.search(node)
    assert node.replace(WORD_JOINER, "") == "WWW.Example.com"


def test_plain_strips_control_characters_and_newlines():
    assert plain("a\nb\x00c\x1b[31md\x7f\te") == "a bc[31md\te"
    assert plain(None) == ""
    assert plain("**bold** <b>") == "**bold** <b>"


# ---------------------------------------------------------------------------- joiners only where needed
def _rewrites(node: str, links: bool = True) -> bool:
    found = bool(EMOJI_SHORTCODE.search(node) or MATERIAL_ICON.search(node) or DIRECTIVE.search(node))
    if links:
        found = found or bool(EMAIL_AUTOLINK.search(node) or URL_AUTOLINK.search(node))
    return found


@pytest.mark.parametrize("text", HOSTILE)
def test_every_joiner_is_needed(text):
    """Removing any single joiner md_escape inserted lets a rewrite match: none is decoration,
    because each one travels with text a person copies."""
    node = resolve_escapes(md_escape(text))
    for i, ch in enumerate(node):
        if ch == WORD_JOINER:
            without = node[:i] + node[i + 1:]
            assert _rewrites(without.replace(WORD_JOINER, "\x00")), (text, i)


@pytest.mark.parametrize(("text", "joiners"), [
    ("as of 14:32:05 UTC", 0),
    ("state since 2025-01-02 09:00", 0),
    ("consent to track: Yes", 0),
    ("Newsletter: weekly", 0),
    ("Plan: unsubscribe anna from News", 0),
    ("anna@example.com", 1),
    ("team @ example", 0),
    (":smile:", 1),
])
def test_times_and_plain_colons_carry_no_joiner(text, joiners):
    assert md_escape(text).count(WORD_JOINER) == joiners


def test_links_false_leaves_out_the_link_joiners_only():
    for text in ("anna@example.com", "visit www.example.com", "see https://x.example/a"):
        out = md_escape(text, links=False)
        assert WORD_JOINER not in out
        assert resolve_escapes(out) == text
    assert WORD_JOINER in md_escape(":smile: anna@example.com", links=False)  # short codes render in every label
    assert not _rewrites(resolve_escapes(md_escape(":smile: :material/home: :red[x]", links=False)), links=False)
