"""The Lookup page's input against the sandbox (AppTest): what was typed, pasted or linked is
used or listed with its true reason, invisible characters do not matter, and an internationalised
domain is looked up in its ASCII form instead of failing with "Code 1: Invalid Email Address"."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import shown
from ui.text import WORD_JOINER

ROOT = Path(__file__).resolve().parent.parent
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")


def typed(text: str) -> AppTest:
    """``text`` typed (or pasted) into the lookup box, then Enter."""
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.run()
    at.chat_input[0].set_value(text).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def addresses(at: AppTest) -> list[str]:
    return [shown(t.label).split(" · ")[0] for t in at.tabs]


def test_messy_paste_lists_every_unused_token_with_its_reason(app_env):
    at = typed("anna@example.com <script>alert(1)</script> \"o'brien\"@example.com, "
               "<script>x</script>@example.com; андрей@пример.рф")
    assert addresses(at) == ["anna@example.com"]
    [warning] = at.warning
    text = shown(warning.value)
    assert text.startswith("4 addresses were skipped")
    assert "**<script>alert(1)</script>**: looks like HTML markup" in text
    assert "**\"o'brien\"@example.com**: the part before the @ is in quotes" in text
    assert "**<script>x</script>@example.com**: contains" in text  # the whole token, not a mangled "@example.com"
    assert "**андрей@пример.рф**: the part before the @ (“андрей”) has non-ASCII characters" in text


def test_pasted_word_joiners_are_ignored(app_env):
    at = typed(f"anna{WORD_JOINER}@example.com\u200b, fresh@exa{WORD_JOINER}mple.com")
    assert addresses(at) == ["anna@example.com", "fresh@example.com"]
    assert not at.warning
    assert at.query_params["email"] == ["anna@example.com", "fresh@example.com"]


def test_linked_address_with_a_word_joiner_is_found(app_env):
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.query_params["email"] = f"anna{WORD_JOINER}@example.com"
    at.run()
    assert addresses(at) == ["anna@example.com"] and not at.warning
    assert "lookup failed" not in shown(at.tabs[0].label)


def test_internationalised_domain_is_looked_up_in_ascii(app_env):
    sb = app_env
    at = typed("user@bücher.de")
    [tab] = at.tabs
    assert shown(tab.label) == "user@xn--bcher-kva.de · on no list"  # looked up, not "lookup failed"
    assert not at.error and not tab.error
    assert sb.requests_served > 0
