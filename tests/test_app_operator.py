"""Issue 12.1 in the sidebar: the operator name is remembered in the browser (a cookie written by
a hidden script, read back with st.context.cookies by every new session -- a reload, a new tab, a
helpdesk deep link), a name given in the dialog shows in the sidebar, and a name holding a
credential is never remembered. The browser round trip itself: tests/browser/test_operator_browser.py."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import ui.identity
from ui.identity import COOKIE, NAME_KEY, OPERATOR_KEY, remembered_name

ROOT = Path(__file__).resolve().parent.parent
HARNESS = str(ROOT / "tests" / "apps" / "operator_harness.py")
APP = str(ROOT / "app.py")


def cookie_writers(at: AppTest) -> list[str]:
    return [e.proto.srcdoc for e in at.get("iframe") if f"{COOKIE}=" in e.proto.srcdoc]


def browser_remembers(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setattr(ui.identity, "_browser_cookies", lambda: {COOKIE: value})


def harness() -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=30)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_new_session_starts_with_the_name_this_browser_remembered(app_env, monkeypatch):
    browser_remembers(monkeypatch, "Dana%20K%C3%B6hler")
    at = AppTest.from_file(APP, default_timeout=30)  # the whole app: a reload, a new tab, a deep link
    at.run()
    assert not at.exception, at.exception
    [field] = at.sidebar.text_input
    assert (field.label, field.value) == ("Operator name", "Dana Köhler")
    assert cookie_writers(at) == []  # nothing to write: the browser has it already


def test_typing_a_name_remembers_it_in_the_browser(app_env):
    at = harness()
    assert at.sidebar.text_input(key=OPERATOR_KEY).value == ""
    assert cookie_writers(at) == []
    at.sidebar.text_input(key=OPERATOR_KEY).input(" Dana  </script><b>x</b> ").run()
    assert at.session_state[NAME_KEY] == "Dana </script><b>x</b>"
    [script] = cookie_writers(at)
    # the name is a JSON literal with markup escaped: it cannot end the script
    assert '"Dana \\u003c/script\\u003e\\u003cb\\u003ex\\u003c/b\\u003e"' in script
    assert script.count("</script>") == 1 and "encodeURIComponent(v)" in script
    at.run()  # the same writer stays on later runs (the same element, not run again)
    assert cookie_writers(at) == [script]
    # clearing the field forgets it
    at.sidebar.text_input(key=OPERATOR_KEY).input("").run()
    [script] = cookie_writers(at)
    assert 'v=""' in script and "max-age=0" in script


def test_a_name_given_in_the_dialog_shows_in_the_sidebar(app_env):
    at = harness()
    at.session_state[NAME_KEY] = "Dana"  # what the dialog's prompt does (ui.identity.set_typed_name)
    at.run()
    assert at.sidebar.text_input(key=OPERATOR_KEY).value == "Dana"
    assert "Dana" in cookie_writers(at)[0]


def test_a_name_holding_the_api_key_is_not_remembered(app_env):
    at = harness()
    at.sidebar.text_input(key=OPERATOR_KEY).input(f"me {app_env.client_api_key}").run()
    errors = re.sub(r"\\(.)", r"\1", " ".join(e.value for e in at.sidebar.error))  # markdown escapes off
    assert "The operator name contains the API key: remove it" in errors
    assert app_env.client_api_key not in errors
    [script] = cookie_writers(at)
    assert app_env.client_api_key not in script and "max-age=0" in script


def test_the_remembered_cookie_is_decoded_and_cleaned(monkeypatch):
    browser_remembers(monkeypatch, "%20Dana%0A%0D%09Smith%20" + "x" * 300)
    assert remembered_name() == "Dana Smith " + "x" * 89  # control characters gone, 100 at most
