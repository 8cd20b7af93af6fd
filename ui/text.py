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
  so an invisible WORD JOINER (U+2060) is inserted where those patterns need adjacency: before
  ``@``, after ``:`` and after a leading ``www``. It renders as nothing and does not break lines.
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


def md_escape(text: object, *, brackets: bool = True) -> str:
    """``text`` as markdown that renders literally, on one line.

    ``brackets=False`` leaves ``[`` and ``]`` for a caller that escapes them itself (``st.badge``
    does, and escaping twice would show the backslashes).
    """
    s = "" if text is None else str(text)
    s = _LINE_BREAKS.sub(" ", s)
    out: list[str] = []
    for ch in s:
        if ch == "@":
            out.append(WORD_JOINER + "\\@")
        elif ch == ":":
            out.append("\\:" + WORD_JOINER)
        elif ch in _ASCII_PUNCT and (brackets or ch not in _BRACKETS):
            out.append("\\" + ch)
        else:
            out.append(ch)
    escaped = "".join(out)
    # "www.example.com" is autolinked without any scheme; break the "www" off its dot.
    return _WWW.sub(lambda m: m.group(1) + WORD_JOINER, escaped)


def plain(text: object) -> str:
    """``text`` for places that show it verbatim (st.text, st.code, dataframe cells): no escapes,
    one line, and no control characters that could forge a line in a log or a table."""
    s = "" if text is None else str(text)
    s = _LINE_BREAKS.sub(" ", s)
    return "".join(ch for ch in s if ch == "\t" or ord(ch) >= 32 and ord(ch) != 127)
