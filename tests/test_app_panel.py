"""Issue 13: the helpdesk panel (``/panel``) through AppTest, against the sandbox -- the URL
contract, the compact content, embed mode, and who is acting (signed in > ``operator=`` from the
panel URL > the typed/remembered name). At 360 px in a cross-site iframe:
tests/browser/test_panel_browser.py."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from streamlit.testing.v1 import AppTest

import ui.identity
import ui.panel
from cmlib.audit import ActorSource, AuditLog
from cmlib.lookup import Activity, Profile
from cmlib.profiles import ReceivedCampaign
from cmlib.sandbox import VIP_LIST_NAME
from cmlib.states import state_word
from tests.apptest_helpers import shown
from ui.identity import LINK_KEY, NAME_KEY
from ui.panel import ADDRESS_KEY, BOX_KEY, campaigns_html
from ui.state import SUBSCRIPTION_DIALOG
from ui.subscriptions import apply_key, button_key, checkbox_key, state_key
from ui.text import WORD_JOINER

ROOT = Path(__file__).resolve().parent.parent
PANEL = str(ROOT / "pages" / "panel.py")
IDENTITY = str(ROOT / "tests" / "apps" / "identity_harness.py")
IVAN = ["ivan@example.com", "ivan.work@example.org", "ivan.old@example.com"]
COLOURS = {"Active": "green", "Unsubscribed": "red", "Unconfirmed": "orange", "Deleted": "gray", "Bounced": "violet"}


def panel(monkeypatch, emails: list[str] | None = None, *, embed: bool = True, operator: str | None = None,
          state: dict | None = None) -> AppTest:
    # Streamlit keeps embed=true out of st.query_params (st.context.is_embedded says it, in a browser)
    monkeypatch.setattr(ui.panel, "is_embedded", lambda: embed)
    at = AppTest.from_file(PANEL, default_timeout=30)
    if emails is not None:
        at.query_params["email"] = emails
    if operator is not None:
        at.query_params["operator"] = operator
    for key, value in (state or {}).items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def rows(at: AppTest) -> list[tuple[str, str, str]]:
    """(list name, badge colour, badge word) of every compact list row, in order."""
    out = []
    for exp in at.expander:
        hit = re.fullmatch(r"(.*) :([a-z]+)-badge\[(.*?)\](?: :orange-badge\[all lists\])?", exp.label)
        assert hit, exp.label
        out.append((shown(hit.group(1)), hit.group(2), shown(hit.group(3))))
    return out


def expected_rows(sb, email: str) -> list[tuple[str, str, str]]:
    return [(m.list_name, COLOURS[m.state], state_word(m.state)) for m in sb.data.memberships(sb.main_client_id, email)]


def html_bodies(at: AppTest) -> list[str]:
    return [h.proto.body for h in at.get("html")]


# ----------------------------------------------------------------------------- the contract and content
def test_repeated_and_comma_separated_addresses_each_get_a_switcher_entry(app_env, monkeypatch):
    at = panel(monkeypatch, [IVAN[0], f"{IVAN[1]}, {IVAN[2]}"])
    [switcher] = at.radio
    labels = [shown(o) for o in switcher.options]
    assert labels == ["ivan@example.com · 4 subscribed", "ivan.work@example.org · 2 subscribed, 2 unsubscribed",
                      "ivan.old@example.com · 3 bounced, 1 deleted"]
    assert all(WORD_JOINER + "\\@" in o for o in switcher.options)  # no mailto: link in a label
    assert switcher.value == IVAN[0]
    assert rows(at) == expected_rows(app_env, IVAN[0])
    # the last three campaigns, stacked, and activity on one line
    [campaigns] = [b for b in html_bodies(at) if b.startswith('<ol class="cm-campaigns"')]
    assert campaigns.count("<li>") == 3 and 'aria-label="The last 3 of ' in campaigns
    assert re.search(r"Sent \d{4}-\d\d-\d\d \d\d:\d\d \S+", campaigns)
    assert campaigns.count('role="img" aria-label="') == 6  # opened and clicked, each with a text alternative
    assert any(re.fullmatch(r"\d+ received · open rate \d+% · click rate \d+% · avg opens [\d.]+ · avg clicks [\d.]+",
                            shown(c.value)) for c in at.caption)
    # "Open in the full dashboard": the Lookup page with the same addresses
    [link] = [m.value for m in at.markdown if m.value.startswith("[Open in the full dashboard](")]
    target = link[link.index("(") + 1:-1]
    assert target.startswith("./?") and parse_qs(target.split("?", 1)[1])["email"] == IVAN


def test_every_address_is_reachable_from_the_switcher(app_env, monkeypatch):
    at = panel(monkeypatch, IVAN)
    for email in IVAN[1:]:
        at.radio(key=ADDRESS_KEY).set_value(email.lower()).run()
        assert not at.exception
        assert rows(at) == expected_rows(app_env, email)
    assert any(r[2] == "bounced" for r in rows(at))
    # the "why" is on demand, inside the row: the bounce event
    assert any("Why: " in c.value and "ounce" in c.value for e in at.expander for c in e.caption)


def test_embed_mode_has_no_title_no_address_box_and_hides_the_app_chrome(app_env, monkeypatch):
    at = panel(monkeypatch, ["anna@example.com"])
    assert not at.title and not at.header and not at.subheader
    assert not at.text_input and not at.chat_input
    css = "".join(html_bodies(at))
    assert '[data-testid="stSidebar"]' in css and "st-key-demo-banner" in css
    assert not any(m.value.startswith(":orange-badge[:material/science: Demo data]") for m in at.markdown)  # not demo
    # one address: no switcher, the address and its summary as a line
    assert not at.radio
    assert any(shown(m.value) == "**anna@example.com · 3 subscribed**" for m in at.markdown)


def test_without_embed_the_panel_has_a_title_and_an_address_box_that_updates_the_link(app_env, monkeypatch):
    at = panel(monkeypatch, ["anna@example.com"], embed=False)
    assert [s.value for s in at.subheader] == ["Helpdesk panel"]
    assert '[data-testid="stSidebar"]' not in "".join(html_bodies(at))
    at.text_input(key=BOX_KEY).input("ivan@example.com, ivan.old@example.com").run()
    assert not at.exception
    assert at.query_params["email"] == ["ivan@example.com", "ivan.old@example.com"]
    assert len(at.radio[0].options) == 2


def test_demo_mode_shows_a_small_marker_in_embed_mode(monkeypatch):
    at = panel(monkeypatch, ["anna@example.com"])  # no credentials configured: the demo sandbox
    assert any(m.value.startswith(":orange-badge[:material/science: Demo data]") for m in at.markdown)
    assert rows(at)  # demo customers are looked up like any other


def test_no_address_says_what_the_link_needs(app_env, monkeypatch):
    at = panel(monkeypatch, [])
    assert "`?email=…`" in at.info[0].value


def test_hostile_list_names_and_subjects_stay_text(app_env, monkeypatch):
    at = panel(monkeypatch, ["vip@example.com"])
    assert VIP_LIST_NAME in [r[0] for r in rows(at)]
    body = "".join(b for b in html_bodies(at) if b.startswith('<ol class="cm-campaigns"'))
    assert body.count("<li>") == 3
    assert "<b>" not in body and "<script>" not in body and "<img" not in body  # API text is escaped


def test_only_http_web_versions_become_links():
    def camp(url: str) -> ReceivedCampaign:
        return ReceivedCampaign("c", "n", "<b>Hi</b>", datetime(2026, 1, 2, 3, 4, tzinfo=UTC), url, 1, 0)

    campaigns = (camp("javascript:alert(1)"), camp("https://example.com/w?a=1&b=2"))
    profile = Profile("a@example.com", (), campaigns, Activity.of(campaigns), datetime.now(UTC))
    body = campaigns_html(profile, ui.panel.TimeDisplay())
    assert "javascript:" not in body and body.count("<a ") == 1
    assert 'href="https://example.com/w?a=1&amp;b=2"' in body
    assert "&lt;b&gt;Hi&lt;/b&gt;" in body and "<b>" not in body
    assert 'aria-label="yes"' in body and 'aria-label="no"' in body


# ----------------------------------------------------------------------------- who is acting
def acting_as(monkeypatch, *, operator: str | None = None, typed: str | None = None,
              signed_in: str | None = None) -> str:
    if signed_in:
        monkeypatch.setattr(ui.identity, "oidc_user", lambda: signed_in)
    at = AppTest.from_file(IDENTITY, default_timeout=30)
    if operator is not None:
        at.query_params["operator"] = operator
    if typed is not None:
        at.session_state[NAME_KEY] = typed
    at.run()
    assert not at.exception, at.exception
    return at.text[0].value


def test_identity_order_signed_in_then_the_link_then_the_typed_name(monkeypatch):
    assert acting_as(monkeypatch) == "nobody"
    assert acting_as(monkeypatch, typed="Tess") == f"Tess|{ActorSource.TYPED}"
    assert acting_as(monkeypatch, operator="Dana", typed="Tess") == f"Dana|{ActorSource.HELPDESK_LINK}"
    assert acting_as(monkeypatch, operator=" Dana\n  Smith ") == f"Dana Smith|{ActorSource.HELPDESK_LINK}"
    assert acting_as(monkeypatch, operator="Dana", signed_in="lead@example.com") == \
        f"lead@example.com|{ActorSource.SIGNED_IN}"


def test_a_panel_link_without_operator_forgets_an_earlier_links_name(app_env, monkeypatch):
    at = panel(monkeypatch, ["anna@example.com"], operator="Dana")
    assert at.session_state[LINK_KEY] == "Dana"
    del at.query_params["operator"]
    at.run()
    assert at.session_state[LINK_KEY] == ""


def test_the_dialog_acts_as_the_operator_from_the_link_and_the_audit_row_says_so(app_env, monkeypatch):
    email = "anna@example.com"
    at = panel(monkeypatch, [email], operator="Dana Helpdesk",
               state={SUBSCRIPTION_DIALOG: email, NAME_KEY: "Tess Typed"})
    ed = at.session_state[state_key(email)]
    webinars = app_env.data.list_by_name(app_env.main_client_id, "Webinars").list_id
    at.checkbox(key=checkbox_key(email, ed.gen, webinars)).uncheck()
    at.button(key=button_key("save", email)).click().run()
    assert not at.exception
    captions = shown("\n".join(c.value for c in at.caption))
    assert "Acting as **Dana Helpdesk (from the helpdesk link)**." in captions
    # the link's name is not remembered in the browser: the helpdesk says it on every opening
    assert not [e for e in at.get("iframe") if "cm_operator=" in e.proto.srcdoc]
    at.button(key=apply_key(at.session_state[state_key(email)].plan.token)).click().run()
    assert not at.exception
    [row] = AuditLog().query()
    assert (row.actor, row.actor_source, row.list_name, row.result) == (
        "Dana Helpdesk", ActorSource.HELPDESK_LINK, "Webinars", "done")
    # the card underneath is refetched after the write
    assert ("Webinars", "red", "unsubscribed") in rows(at)


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_operator_falls_back_to_the_typed_name(monkeypatch, value):
    assert acting_as(monkeypatch, operator=value, typed="Tess") == f"Tess|{ActorSource.TYPED}"


def test_a_rejected_key_is_said_with_the_way_out_and_no_traceback(app_env, monkeypatch):
    monkeypatch.setenv("CM_API_KEY", "not-the-key-" + "x" * 20)
    at = panel(monkeypatch, ["anna@example.com"])
    [error] = at.error
    assert "rejected the API key or client ID" in error.value and "not-the-key" not in error.value
    assert at.button(key="panel.retry").label == "Try again"
    assert not at.expander


def test_an_api_that_stops_answering_names_the_address_not_a_traceback(app_env, monkeypatch):
    app_env.set_faults(down=True)
    at = panel(monkeypatch, ["anna@example.com"])
    [warning] = at.warning
    # The reason is the outage's: the breaker's words once it has opened, else the failed connection.
    assert re.match(r"Looking up the lists for anna@example\.com failed: "
                    r"(Campaign Monitor is not answering|connection failed)", shown(warning.value)), warning.value
    assert any(shown(m.value) == "**anna@example.com · lookup failed**" for m in at.markdown)
    assert not at.expander
    assert [b.label for b in at.button] == ["Refresh"]  # no editor for an address that could not be read
