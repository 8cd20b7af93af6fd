"""Issue 12 #2, cross-checked where a person reads states: one word per state everywhere.

The product's words are subscribed, unsubscribed, pending, bounced and deleted (cmlib.states).
Campaign Monitor's own values ``Active`` and ``Unconfirmed`` must not appear as a state word on
screen: not in a tab label, a badge, a caption, a table cell or header, a chart, a filter, the
subscription dialog, its plan or its report, nor the audit log. The bulk matrix keeps the API's
value in "<list> (API state)" columns for the downloads; those are data for machines and are not
among the columns shown (their documented exception).

The pages are walked element by element as AppTest sees them, so a new element that says
"Active" fails here without anyone having to remember to test it.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib.sandbox import DEMO_CUSTOMERS
from tests.apptest_helpers import shown, shown_columns, visible_texts
from ui.bulk_view import JOB_KEY, PASTE_KEY, START_KEY, registry
from ui.identity import NAME_KEY
from ui.state import SUBSCRIPTION_DIALOG
from ui.subscriptions import apply_key, button_key, checkbox_key, confirm_key, reason_key, state_key

ROOT = Path(__file__).resolve().parent.parent
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")
BULK_PAGE = str(ROOT / "pages" / "bulk.py")
AUDIT_PAGE = str(ROOT / "pages" / "audit.py")

# Every state in the demo: anna (subscribed), ivan@ (subscribed), ivan.work@ (unsubscribed),
# ivan.old@ (bounced, deleted), fresh (subscribed, pending), leaver (unsubscribed everywhere).
EVERY_STATE = [*DEMO_CUSTOMERS["with_campaigns"], *DEMO_CUSTOMERS["three_addresses"],
               *DEMO_CUSTOMERS["never_mailed"], "leaver@example.com"]
PRODUCT_WORDS = ("subscribed", "unsubscribed", "pending", "bounced", "deleted")
API_WORDS = re.compile(r"\b(active|unconfirmed)\b", re.IGNORECASE)
API_STATE_COLUMN = " (API state)"
def api_words(at: AppTest) -> list[tuple[str, str]]:
    return [(where, text[:160]) for where, text in visible_texts(at) if API_WORDS.search(text)]


def all_text(at: AppTest) -> str:
    return "\n".join(text for _, text in visible_texts(at))


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def sb(app_env):
    yield app_env
    for jid in list(registry()._jobs):  # never leave a bulk run going into the next test
        registry().remove(jid)


def lookup_page() -> AppTest:
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.query_params["email"] = EVERY_STATE
    at.session_state[NAME_KEY] = "Tess Tester"  # an operator who typed a name (writes ask otherwise)
    return run(at)


def test_the_lookup_tabs_badges_and_captions_use_the_products_words(sb):
    at = lookup_page()
    assert api_words(at) == []
    labels = {shown(t.label).split(" · ")[0]: shown(t.label).split(" · ")[1] for t in at.tabs}
    assert labels == {"anna@example.com": "3 subscribed", "ivan@example.com": "4 subscribed",
                      "ivan.work@example.org": "2 subscribed, 2 unsubscribed",
                      "ivan.old@example.com": "3 bounced, 1 deleted",
                      "fresh@example.com": "1 subscribed, 1 pending",
                      "leaver@example.com": labels["leaver@example.com"]}
    assert "unsubscribed" in labels["leaver@example.com"]
    badges = {m.value for m in at.markdown if "-badge[" in m.value}
    for word in PRODUCT_WORDS:  # every state is on the page, each under its own word
        assert any(f"[{word}]" in b for b in badges), (word, badges)


@pytest.mark.parametrize("email", EVERY_STATE)
def test_the_subscription_dialog_uses_the_products_words(sb, email):
    at = lookup_page()
    at.session_state[SUBSCRIPTION_DIALOG] = email
    run(at)
    assert state_key(email) in at.session_state  # the dialog is open
    assert api_words(at) == []


def test_the_dialogs_plan_report_and_the_audit_log_use_the_products_words(sb):
    """leaver@ is unsubscribed from Newsletter: resubscribing names the state in the plan's
    warning, the report and the audit log's Before column."""
    email = "leaver@example.com"
    newsletter = sb.data.list_by_name(sb.main_client_id, "Newsletter").list_id
    fresh = "fresh@example.com"
    updates = sb.data.list_by_name(sb.main_client_id, "Product updates").list_id
    at = lookup_page()
    at.session_state[SUBSCRIPTION_DIALOG] = email
    run(at)
    editor = at.session_state[state_key(email)]
    at.checkbox(key=checkbox_key(email, editor.gen, newsletter)).check()
    at.button(key=button_key("save", email)).click()
    run(at)
    plan = at.session_state[state_key(email)].plan
    assert "is unsubscribed on Newsletter" in all_text(at)
    assert api_words(at) == []
    at.checkbox(key=confirm_key(plan.token, f"resubscribe:{newsletter}")).check()
    at.text_input(key=reason_key(plan.token)).input("ticket 12, asked by phone")
    run(at)
    at.button(key=apply_key(plan.token)).click()
    run(at)
    assert sb.data.state_of(newsletter, email) == "Active"
    assert api_words(at) == []

    # a pending address (Unconfirmed on Product updates) taken off that list
    at.session_state[SUBSCRIPTION_DIALOG] = fresh
    run(at)
    editor = at.session_state[state_key(fresh)]
    at.checkbox(key=checkbox_key(fresh, editor.gen, updates)).uncheck()
    at.button(key=button_key("save", fresh)).click()
    run(at)
    assert api_words(at) == []

    audit = AppTest.from_file(AUDIT_PAGE, default_timeout=30)
    audit.context["timezone"] = "Europe/Berlin"
    run(audit)
    assert list(audit.dataframe[0].value["Before"]) == ["unsubscribed"]
    assert api_words(audit) == []


def test_the_bulk_results_use_the_products_words(sb):
    at = run(AppTest.from_file(BULK_PAGE, default_timeout=30))
    at.text_area(key=PASTE_KEY).input("\n".join([*EVERY_STATE, "nobody@example.com"]))
    run(at)
    at.button(key=START_KEY).click()
    run(at)
    job = registry().get(at.session_state[JOB_KEY])
    assert job is not None and job.join(30)
    run(at)
    assert api_words(at) == []
    text = all_text(at)
    for word in PRODUCT_WORDS:
        assert re.search(rf"\b{word}\b", text), word
    # the API's values stay in the data, in their own columns, for the downloads (not shown)
    matrix = next(d for d in at.dataframe if "On no list" in d.value.columns)
    raw_columns = [c for c in matrix.value.columns if str(c).endswith(API_STATE_COLUMN)]
    assert raw_columns and not set(raw_columns) & set(shown_columns(matrix))
    assert "Active" in set(matrix.value[raw_columns[0]])
