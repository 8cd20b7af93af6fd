"""Issue 14, the catalog test: every message id used in code (``t``, ``nt``, ``N_`` in app.py,
pages/, ui/ and cmlib/) is in the Russian catalog, translated (no empty or fuzzy entry, every
plural form), with the same placeholders as the English -- a Russian sentence that drops
``{count}`` or invents ``{cnt}`` would show the wrong text or raise at runtime."""
from __future__ import annotations

from cmlib.i18n import Language, po_path
from cmlib.i18n_tools import check, placeholders, used_messages


def test_every_message_used_in_code_is_translated_with_the_same_placeholders():
    problems = check()
    assert [str(p) for p in problems] == []


def test_the_check_sees_the_code_and_the_catalog():
    """Guards the test above against passing on nothing: extraction finds the shell's messages,
    plural ones with both forms, and the Russian catalog exists."""
    used = {m.id: m for m in used_messages()}
    assert "Operator name" in used and used["Operator name"].where.startswith("ui/identity.py:")
    assert "subscribed" in used  # N_() in a table (cmlib/states.py)
    assert any(m.plural for m in used.values())
    assert po_path(Language.RU).exists()
    assert placeholders("{n} of {total:,} in {name!r}") == {"n", "total", "name"}


def test_extraction_sees_calls_inside_f_strings_and_lazy_calls(tmp_path):
    """A ``t()`` inside an f-string is invisible to a token-based extractor; this one walks the
    syntax tree, so such a message cannot silently drop out of the catalog."""
    (tmp_path / "ui").mkdir()
    (tmp_path / "ui" / "view.py").write_text(
        'from cmlib.i18n import t, nt\nfrom cmlib import lazy_text as later\n'
        'x = f"<a>{t(\'web version\')}</a>"\n'
        'y = later.t("Not looked up: {reason}", reason=1)\n'
        'z = nt("{n} row", "{n} rows", 2)\n'
        'w = t(variable)\n', encoding="utf-8")
    found = {(m.id, m.plural, m.where) for m in used_messages(tmp_path)}
    assert found == {("web version", None, "ui/view.py:3"), ("Not looked up: {reason}", None, "ui/view.py:4"),
                     ("{n} row", "{n} rows", "ui/view.py:5")}
