"""Issue 13, who acts as the sidebar says it: on the panel opened with ``operator=`` (without
``embed=true`` the app's sidebar is there) the sidebar shows the link's name, not the typed one;
a link-supplied name holding a credential is blocked with words that say where to fix it (the
helpdesk's panel URL), never "change it in the sidebar", and is never shown."""
from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import ui.panel
from ui.identity import NAME_KEY
from ui.state import SUBSCRIPTION_DIALOG
from ui.subscriptions import apply_key, button_key, checkbox_key, state_key

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PANEL = str(ROOT / "pages" / "panel.py")
ANNA = "anna@example.com"


def app_on(page: str, monkeypatch, *, operator: str | None, typed: str = "Tess Typed") -> AppTest:
    """The whole app (sidebar included), first run on ``page``: AppTest (1.67) draws the sidebar of
    an st.navigation app on the first run only."""
    monkeypatch.setattr(ui.panel, "is_embedded", lambda: False)
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["email"] = ANNA
    if operator is not None:
        at.query_params["operator"] = operator
    at.session_state[NAME_KEY] = typed
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def sidebar_text(at: AppTest) -> str:
    return "\n".join(e.value for e in [*at.sidebar.markdown, *at.sidebar.caption, *at.sidebar.error])


def test_the_sidebar_shows_who_acts_on_the_panel_with_operator(app_env, monkeypatch):
    at = app_on("pages/panel.py", monkeypatch, operator="Dana Helpdesk")
    assert at.expander  # the panel is what ran (its compact list rows)
    assert not at.sidebar.text_input  # the typed name is not who acts here: no field offering it
    text = sidebar_text(at)
    assert "Acting as **Dana Helpdesk**" in text and "helpdesk link" in text
    assert "Tess Typed" not in text


def test_without_operator_the_panel_sidebar_keeps_the_typed_name(app_env, monkeypatch):
    at = app_on("pages/panel.py", monkeypatch, operator=None)
    [field] = at.sidebar.text_input
    assert (field.label, field.value) == ("Operator name", "Tess Typed")


def test_operator_on_another_page_names_nobody(app_env, monkeypatch):
    """Only the panel's link names who acts: ``operator=`` on the Lookup page is ignored."""
    at = app_on("pages/lookup.py", monkeypatch, operator="Dana Helpdesk")
    [field] = at.sidebar.text_input
    assert field.value == "Tess Typed" and "Dana" not in sidebar_text(at)


def test_a_credential_in_the_link_name_is_blocked_with_the_way_to_fix_the_link(app_env, monkeypatch):
    key = app_env.client_api_key
    at = app_on("pages/panel.py", monkeypatch, operator=f"Dana {key}")
    text = sidebar_text(at)
    assert "operator= part of the panel URL" in text and key not in text
    # the dialog, on the panel page alone (AppTest keeps re-running the page after the first run)
    monkeypatch.setattr(ui.panel, "is_embedded", lambda: True)
    at = AppTest.from_file(PANEL, default_timeout=30)
    at.query_params["email"] = ANNA
    at.query_params["operator"] = f"Dana {key}"
    at.session_state[SUBSCRIPTION_DIALOG] = ANNA
    at.run()
    ed = at.session_state[state_key(ANNA)]
    webinars = app_env.data.list_by_name(app_env.main_client_id, "Webinars").list_id
    at.checkbox(key=checkbox_key(ANNA, ed.gen, webinars)).uncheck()
    at.button(key=button_key("save", ANNA)).click().run()
    assert not at.exception
    captions = "\n".join(c.value for c in at.caption)
    assert "the name from the helpdesk link holds a credential" in captions
    assert "operator= part of the panel URL" in captions and "change it in the sidebar" not in captions
    assert key not in captions and key not in "\n".join(e.value for e in at.error)
    assert at.button(key=apply_key(at.session_state[state_key(ANNA)].plan.token)).disabled
