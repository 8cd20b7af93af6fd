"""Show user- and API-supplied text inside Streamlit markdown as the literal text it is.

Streamlit renders markdown almost everywhere: ``st.markdown``, captions, widget and tab
labels, badge labels. A list name such as ``<img src=x onerror=alert(1)> **VIP** :red[x]``
must appear exactly like that, never bold or red, and an address in a tab label must stay
text: GitHub-flavoured markdown turns ``anna@example.com`` into a ``mailto:`` link, and in a
tab label that link swallows the click that should select the tab.

Two mechanisms are needed because Streamlit's markdown pipeline has two stages:

* the parser honours CommonMark backslash escapes, which defeat emphasis, code, links,
  HTML, headings, tables, maths (``$``) and ``:name[...]`` directives (colour, badges);
* after parsing, plugins rewrite *text nodes* by regular expression — email/URL autolinks,
  ``:emoji:`` short codes and ``:material/icon:`` icons. Escapes are already resolved by then,
  so an invisible WORD JOINER (U+2060) is inserted where one of those patterns would match:
  before an ``@`` that sits between address characters, after a ``:`` that starts a short code
  (``:smile:``), a directive-like ``:name[`` or ``://``, and after a ``www`` before its dot.

The joiner renders as nothing, but it travels with copied text, so it is inserted only where a
rewrite is possible (``14:32:05`` and ``consent to track: Yes`` get none), never by
:func:`plain`, and ``links=False`` leaves out the link-only ones for labels that Streamlit draws
without links (buttons, navigation). Tab and checkbox labels are markdown with links in
Streamlit 1.67, so an address there still needs its joiner; every address input strips
invisible characters again (``cmlib.emails.normalise_text``), so a copied address pastes back.
"""
from __future__ import annotations

import re

WORD_JOINER = "\u2060"

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and escaping one
# that needed no escape is harmless, so escape the lot rather than chase a list of specials.
_ASCII_PUNCT = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_BRACKETS = frozenset("[]")
_WWW = re.compile(r"(?i)\b(www)(?=\\?\.)")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# The frontend's patterns (Streamlit 1.67 bundle): JavaScript's \w is ASCII.
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+")
_DOMAIN_AHEAD = re.compile(r"[-A-Za-z0-9_]+\.[-A-Za-z0-9_]")
_SHORTCODE_AHEAD = re.compile(r"(?:[+-]1|(?P<name>[-A-Za-z0-9_]+)):")
_DIRECTIVE_AHEAD = re.compile(r"[A-Za-z][-A-Za-z0-9_]*\[|material[/_]")  # :red[...], :material/icon:
_DIGIT_EMOJI = frozenset({"100", "1234"})  # the emoji short codes made of digits only


def _autolink_at(s: str, i: int) -> bool:
    """Would the email autolink pattern match across the ``@`` at ``s[i]``?"""
    return i > 0 and s[i - 1] in _ATEXT and _DOMAIN_AHEAD.match(s, i + 1) is not None


def _rewrite_after_colon(s: str, i: int, links: bool) -> bool:
    """Could a text-node rewrite start at the ``:`` at ``s[i]``?"""
    code = _SHORTCODE_AHEAD.match(s, i + 1)
    if code:
        name = code.group("name")
        if name is None or not name.isdigit() or name in _DIGIT_EMOJI:
            return True
    if _DIRECTIVE_AHEAD.match(s, i + 1):
        return True
    return links and s.startswith("//", i + 1)


def md_escape(text: object, *, brackets: bool = True, links: bool = True) -> str:
    """``text`` as markdown that renders literally, on one line.

    ``brackets=False`` leaves ``[`` and ``]`` for a caller that escapes them itself (``st.badge``
    does, and escaping twice would show the backslashes). ``links=False`` is for labels the
    frontend draws without links: no joiner is needed against autolinks there.
    """
    s = "" if text is None else str(text)
    s = _LINE_BREAKS.sub(" ", s)
    out: list[str] = []
    for i, ch in enumerate(s):
        if ch == "@":
            out.append(WORD_JOINER + "\\@" if links and _autolink_at(s, i) else "\\@")
        elif ch == ":":
            out.append("\\:" + WORD_JOINER if _rewrite_after_colon(s, i, links) else "\\:")
        elif ch in _ASCII_PUNCT and (brackets or ch not in _BRACKETS):
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    if not links:
        return escaped
    # "www.example.com" is autolinked without any scheme; break the "www" off its dot.
    return _WWW.sub(lambda m: m.group(1) + WORD_JOINER, escaped)


def plain(text: object) -> str:
    """``text`` for places that show it verbatim (st.text, st.code, dataframe cells): no escapes,
    one line, and no control characters that could forge a line in a log or a table."""
    s = "" if text is None else str(text)
    s = _LINE_BREAKS.sub(" ", s)
    return "".join(ch for ch in s if ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127))
