"""The subscription dialog through AppTest, against the sandbox: reset, no-op save, warnings that
block Apply, the conflict check (the operator's choices offered again on the new states), partial
failures, idempotent Apply, who is acting (asked for when nobody is known) and the audit rows."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib.audit import ActorSource, AuditLog
from ui.identity import NAME_KEY
from ui.state import APPLIED_PLANS, LOOKUP_REFRESH, SUBSCRIPTION_DIALOG
from ui.subscriptions import (
    NAME_PROMPT_KEY,
    apply_key,
    button_key,
    checkbox_key,
    confirm_key,
    consent_key,
    reason_key,
    state_key,
)

ROOT = Path(__file__).resolve().parent.parent
HARNESS = str(ROOT / "tests" / "apps" / "subscriptions_harness.py")
LOOKUP_PAGE = str(ROOT / "pages" / "lookup.py")
ANNA = "anna@example.com"
OPERATOR = "Tess Tester"  # the name an operator typed in the sidebar (most tests act under it)


@pytest.fixture
def sb(app_env):
    """The app pointed at a fresh sandbox (see tests/sandbox_fixtures.app_env)."""
    return app_env


def lid(sb, name: str) -> str:
    return sb.data.list_by_name(sb.main_client_id, name).list_id


def open_dialog(email: str, *, flag: bool = True, operator: str | None = OPERATOR) -> AppTest:
    at = AppTest.from_file(HARNESS, default_timeout=30)
    at.session_state["harness_emails"] = [email]
    if operator:
        at.session_state[NAME_KEY] = operator
    if flag:
        at.session_state[SUBSCRIPTION_DIALOG] = email
    at.run()
    assert not at.exception, at.exception
    return at


def editor(at: AppTest, email: str):
    return at.session_state[state_key(email)]


def box(at: AppTest, sb, email: str, name: str):
    return at.checkbox(key=checkbox_key(email, editor(at, email).gen, lid(sb, name)))


def ticks(at: AppTest, sb, email: str) -> dict[str, bool]:
    ed = editor(at, email)
    return {li.name: at.checkbox(key=checkbox_key(email, ed.gen, li.list_id)).value for li in ed.lists}


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def _dialog_ids(node) -> list[str]:
    found = [node.proto.dialog.id] if getattr(node, "type", "") == "dialog" and node.proto.dialog.id else []
    for child in getattr(node, "children", {}).values():
        found += _dialog_ids(child)
    return found


def dismiss(at: AppTest) -> AppTest:
    """Close the dialog the way the browser does -- its X or Escape -- which fires the dialog's
    ``on_dismiss`` (AppTest has no dialog element to click, so the trigger is sent as the frontend sends it)."""
    [dialog_id] = _dialog_ids(at._tree)
    states = at._tree.get_widget_states()
    states.widgets.add(id=dialog_id, trigger_value=True)
    at._run(states)
    assert not at.exception, at.exception
    return at


def save(at: AppTest, email: str) -> AppTest:
    return click(at, button_key("save", email))


def plan(at: AppTest, email: str):
    return editor(at, email).plan


def apply_button(at: AppTest, email: str):
    return at.button(key=apply_key(plan(at, email).token))


def texts(elements) -> str:
    """Element text as a reader sees it: markdown escapes and word joiners removed."""
    raw = "\n".join(str(e.value) for e in elements)
    return re.sub(r"\\(.)", r"\1", raw).replace("\u2060", "")


def writes(sb) -> tuple[int, int]:
    c = sb.request_counts
    return c["add"], c["unsubscribe"]


def audit_rows():
    return AuditLog().query()


# ----------------------------------------------------------------------------- opening
def test_button_opens_dialog_from_the_lookup_without_reading_states_again(sb):
    """Issue 15: opening the dialog right after the lookup reuses the states it just read (younger
    than the cache's subscriber expiry): no request for states, and the caption says so."""
    at = open_dialog(ANNA, flag=False)
    assert at.button(key=button_key("open", ANNA)).label == "Manage subscriptions"
    assert state_key(ANNA) not in at.session_state
    sb.reset_counts()
    click(at, button_key("open", ANNA))
    assert at.session_state[SUBSCRIPTION_DIALOG] == ANNA
    assert sb.request_counts["listsforemail"] == 0  # the lookup's states, not read again
    assert sb.request_counts["subscriber"] == 0
    assert ticks(at, sb, ANNA) == {
        "Newsletter": True, "Product updates": False, "Webinars": True, "Offers": True, "Events Moscow": False,
        "Partners": False, "Beta testers": False, "<img src=x onerror=alert(1)> **VIP** :red[x]": False}
    caption = texts(at.caption)
    assert "from the lookup; re-read before any change is written." in caption
    assert "read fresh" not in caption


def test_opening_from_the_lookup_still_rereads_right_before_apply(sb):
    """The seeded dialog never writes on the lookup's word: Apply re-reads the states first, and a
    change made since the lookup is a conflict (nothing written)."""
    at = open_dialog(ANNA, flag=False)
    sb.data.set_state(lid(sb, "Newsletter"), ANNA, "Unsubscribed")  # after the lookup, before the dialog
    click(at, button_key("open", ANNA))
    assert box(at, sb, ANNA, "Newsletter").value is True  # the lookup's word, as its caption says
    box(at, sb, ANNA, "Beta testers").check()
    save(at, ANNA)
    p = plan(at, ANNA)
    at.radio(key=consent_key(p.token)).set_value("Yes").run()
    sb.reset_counts()
    click(at, apply_key(p.token))
    assert sb.request_counts["listsforemail"] >= 1  # re-read right before writing
    assert writes(sb) == (0, 0)
    assert "Newsletter: subscribed → unsubscribed" in texts(at.error)
    assert "read fresh from Campaign Monitor" in texts(at.caption)  # the new baseline is the re-read


def test_a_lookup_older_than_the_subscriber_expiry_is_read_fresh(sb, monkeypatch):
    import ui.subscriptions as dialog

    monkeypatch.setattr(dialog, "seed_max_age", lambda settings: 0.0)  # every lookup is too old
    at = open_dialog(ANNA, flag=False)
    sb.reset_counts()
    click(at, button_key("open", ANNA))
    assert sb.request_counts["listsforemail"] >= 1
    assert "read fresh from Campaign Monitor" in texts(at.caption)
    assert ticks(at, sb, ANNA)["Webinars"] is True


def test_every_opening_reads_on_the_connections_own_pool(sb, monkeypatch):
    """No pool per opening: the dialog reads on ``Connection.executor``, the same pool each time."""
    import ui.subscriptions as dialog

    used = []
    real = dialog.read_for_editing

    def recording(client, client_id, email, *, executor=None, seed=None, lists=None):
        used.append(executor)
        return real(client, client_id, email, executor=executor, seed=seed, lists=lists)

    monkeypatch.setattr(dialog, "read_for_editing", recording)
    at = open_dialog(ANNA)
    dismiss(at)
    click(at, button_key("open", ANNA))
    assert ticks(at, sb, ANNA)["Webinars"] is True
    assert len(used) == 2 and used[0] is used[1]
    assert used[0]._thread_name_prefix == "cm-conn"  # the pool Connection owns (and closes)


def test_address_on_no_list_gets_the_quick_subscribe_button(sb):
    at = open_dialog("nobody@example.com", flag=False)
    assert at.button(key=button_key("open", "nobody@example.com")).label == "Subscribe to lists…"
    click(at, button_key("open", "nobody@example.com"))
    assert not any(ticks(at, sb, "nobody@example.com").values())
    assert "Not subscribed to any list" in texts(at.caption)


def test_list_names_are_escaped_in_labels(sb):
    at = open_dialog("vip@example.com")
    label = box(at, sb, "vip@example.com", "<img src=x onerror=alert(1)> **VIP** :red[x]").label
    assert label.startswith("\\<img") and "\\*\\*VIP\\*\\*" in label and "\\[x\\]" in label


def test_close_forgets_the_dialog(sb):
    at = open_dialog(ANNA)
    dismiss(at)
    assert SUBSCRIPTION_DIALOG not in at.session_state and state_key(ANNA) not in at.session_state


def test_the_dialog_has_one_close_control_and_announces_its_review(sb):
    """Issue 13: no "Close" button beside the dialog's own X (also when the read failed), and the
    review step is a focusable heading the page's script moves focus to (ui.a11y)."""
    at = open_dialog(ANNA)
    assert "Close" not in [b.label for b in at.button]
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    token = plan(at, ANNA).token
    [heading] = [h.proto.body for h in at.get("html") if "cm-announce" in h.proto.body]
    assert 'tabindex="-1"' in heading and f'data-step="review-{token}"' in heading and "Review the change" in heading
    sb.set_faults(down=True)
    failed = open_dialog("ivan@example.com")
    assert "Could not read the subscriptions of ivan@example.com" in texts(failed.error)
    assert "Try again" in [b.label for b in failed.button] and "Close" not in [b.label for b in failed.button]


# ----------------------------------------------------------------------------- reset & no-op
def test_reset_restores_the_snapshot_after_several_ticks(sb):
    at = open_dialog(ANNA)
    original = ticks(at, sb, ANNA)
    box(at, sb, ANNA, "Newsletter").uncheck()
    box(at, sb, ANNA, "Beta testers").check()
    box(at, sb, ANNA, "Partners").check()
    box(at, sb, ANNA, "Offers").uncheck()
    save(at, ANNA)  # the ticks are now submitted and shown under the plan
    assert plan(at, ANNA) is not None
    assert ticks(at, sb, ANNA) == {**original, "Newsletter": False, "Beta testers": True, "Partners": True,
                                   "Offers": False}
    gen = editor(at, ANNA).gen
    click(at, button_key("reset", ANNA))
    assert editor(at, ANNA).gen == gen + 1
    assert plan(at, ANNA) is None
    assert ticks(at, sb, ANNA) == original
    assert "Every checkbox is back to the states read from Campaign Monitor" in texts(at.info)
    # ticks that were never saved are dropped by a reset too
    box(at, sb, ANNA, "Webinars").uncheck()
    box(at, sb, ANNA, "Events Moscow").check()
    click(at, button_key("reset", ANNA))
    assert ticks(at, sb, ANNA) == original
    # and saving after the reset changes nothing
    sb.reset_counts()
    save(at, ANNA)
    assert plan(at, ANNA) is None and writes(sb) == (0, 0)


def test_reset_after_unsubscribe_all(sb):
    at = open_dialog(ANNA)
    original = ticks(at, sb, ANNA)
    click(at, button_key("unsub_all", ANNA))
    assert not any(ticks(at, sb, ANNA).values())
    click(at, button_key("reset", ANNA))
    assert ticks(at, sb, ANNA) == original and plan(at, ANNA) is None


def test_save_without_change_does_nothing(sb):
    at = open_dialog(ANNA)
    sb.reset_counts()
    save(at, ANNA)
    assert plan(at, ANNA) is None
    assert "Nothing to change" in texts(at.info)
    assert writes(sb) == (0, 0)
    assert audit_rows() == []


# ----------------------------------------------------------------------------- the happy path
def test_subscribe_shows_plan_then_applies_once_and_refreshes_lookup(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Beta testers").check()
    save(at, ANNA)
    p = plan(at, ANNA)
    assert p.describe() == "subscribe to Beta testers"
    assert "Plan: subscribe to Beta testers" in texts(at.info)
    assert box(at, sb, ANNA, "Beta testers").value is True  # what is reviewed is what is shown
    assert at.radio(key=consent_key(p.token)).value == "Unchanged"
    at.radio(key=consent_key(p.token)).set_value("Yes")
    assert not apply_button(at, ANNA).disabled
    sb.reset_counts()
    click(at, apply_key(p.token))
    assert writes(sb) == (1, 0)
    assert sb.data.state_of(lid(sb, "Beta testers"), ANNA) == "Unconfirmed"
    assert sb.data.record(lid(sb, "Beta testers"), ANNA).consent_to_track == "Yes"
    report = editor(at, ANNA).report
    assert [(r.list_name, r.status) for r in report.results] == [("Beta testers", "done")]
    assert "Applied." in texts(at.success)
    assert p.token in at.session_state[APPLIED_PLANS]
    # the dialog now starts from the new state, and the lookup refetched the address fresh
    assert plan(at, ANNA) is None and box(at, sb, ANNA, "Beta testers").value is True
    assert ANNA not in at.session_state[LOOKUP_REFRESH]
    assert ":orange-badge[pending]" in texts(at.markdown)
    [row] = audit_rows()
    assert (row.email, row.list_name, row.state_before, row.action, row.result) == (
        ANNA, "Beta testers", "", "subscribe", "done")
    # another run (a rerun, a second click event) sends nothing more
    at.run()
    assert writes(sb) == (1, 0)
    # even if the applied plan came back (a stale state), its Apply stays disabled
    editor(at, ANNA).plan = p
    at.run()
    assert apply_button(at, ANNA).disabled and writes(sb) == (1, 0)


def test_an_applied_plan_token_is_never_applied_again(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    token = plan(at, ANNA).token
    assert not apply_button(at, ANNA).disabled
    sb.reset_counts()
    at.session_state[APPLIED_PLANS] = {token}  # as if the first click already went through
    at.run()
    assert apply_button(at, ANNA).disabled
    assert writes(sb) == (0, 0) and audit_rows() == []


def test_change_selection_goes_back_to_the_form(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    click(at, button_key("back", ANNA))
    assert plan(at, ANNA) is None
    assert box(at, sb, ANNA, "Webinars").value is False  # the ticks are kept


# ----------------------------------------------------------------------------- warnings block
def test_resubscribe_needs_confirmation_and_reason(sb):
    email = "leaver@example.com"
    at = open_dialog(email)
    box(at, sb, email, "Newsletter").check()
    save(at, email)
    p = plan(at, email)
    assert "is unsubscribed on Newsletter" in texts(at.warning) and "permission" in texts(at.warning)
    assert apply_button(at, email).disabled
    at.checkbox(key=confirm_key(p.token, f"resubscribe:{lid(sb, 'Newsletter')}")).check().run()
    assert apply_button(at, email).disabled  # the reason is still missing
    at.text_input(key=reason_key(p.token)).input("ticket #4711, customer asked by phone").run()
    assert not apply_button(at, email).disabled
    sb.reset_counts()
    click(at, apply_key(p.token))
    assert writes(sb) == (1, 0)
    assert sb.data.state_of(lid(sb, "Newsletter"), email) == "Active"
    [row] = audit_rows()
    assert row.action == "resubscribe" and row.state_before == "Unsubscribed"
    assert row.reason == "ticket #4711, customer asked by phone"


def test_blocked_apply_stays_disabled(sb):
    email = "leaver@example.com"
    at = open_dialog(email)
    box(at, sb, email, "Newsletter").check()
    sb.reset_counts()
    save(at, email)
    assert apply_button(at, email).disabled
    at.text_input(key=reason_key(plan(at, email).token)).input("ticket 1").run()  # reason, no confirmation
    assert apply_button(at, email).disabled
    assert "Apply is enabled once: 1 warning not confirmed" in texts(at.caption)
    assert writes(sb) == (0, 0) and audit_rows() == []
    assert sb.data.state_of(lid(sb, "Newsletter"), email) == "Unsubscribed"


def test_all_client_lists_cascade_must_be_confirmed(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Offers").uncheck()
    save(at, ANNA)
    p = plan(at, ANNA)
    assert "ALL client lists" in texts(at.warning) and "Newsletter and Webinars" in texts(at.warning)
    assert apply_button(at, ANNA).disabled
    at.checkbox(key=confirm_key(p.token, f"cascade:{lid(sb, 'Offers')}")).check().run()
    assert not apply_button(at, ANNA).disabled  # no reason needed for an unsubscribe
    click(at, apply_key(p.token))
    assert {r.list_name: r.status for r in editor(at, ANNA).report.results} == {
        "Offers": "done", "Newsletter": "done", "Webinars": "done"}
    assert {r.action for r in audit_rows()} == {"unsubscribe (all client lists)", "unsubscribe (via Offers)"}


def test_suppressed_address_needs_reason_and_confirmation(sb):
    email = "suppressed@example.com"
    at = open_dialog(email)
    box(at, sb, email, "Webinars").check()
    save(at, email)
    p = plan(at, email)
    assert "suppression list" in texts(at.warning)
    assert apply_button(at, email).disabled
    at.checkbox(key=confirm_key(p.token, "suppressed")).check().run()
    assert apply_button(at, email).disabled
    at.text_input(key=reason_key(p.token)).input("ticket 99").run()
    click(at, apply_key(p.token))
    assert sb.data.state_of(lid(sb, "Webinars"), email) == "Active"
    assert audit_rows()[0].action == "resubscribe"


def test_unsubscribe_from_all_lists(sb):
    at = open_dialog(ANNA)
    click(at, button_key("unsub_all", ANNA))
    p = plan(at, ANNA)
    assert {s.list_name for s in p.steps} == {"Newsletter", "Webinars", "Offers"}
    assert not any(ticks(at, sb, ANNA).values())  # the form shows what the plan does
    assert p.warnings == ()  # the cascade surprises nobody: every list is unticked anyway
    assert "ALL client lists" in texts(at.caption)
    click(at, apply_key(p.token))
    assert all(sb.data.state_of(lid(sb, n), ANNA) == "Unsubscribed" for n in ("Newsletter", "Webinars", "Offers"))
    assert {r.result for r in audit_rows()} == {"done"}
    assert len(audit_rows()) == 3


# ----------------------------------------------------------------------------- safety
def test_conflict_writes_nothing_shows_what_changed_and_offers_the_choices_again(sb):
    """Issue 12.6: the person leaves the Newsletter while the operator reviews "unsubscribe from
    Webinars, subscribe to Beta testers". Nothing is written; the dialog says what changed and
    shows the operator's ticks on the new states, with a new plan to confirm again."""
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    box(at, sb, ANNA, "Beta testers").check()
    save(at, ANNA)
    p = plan(at, ANNA)
    at.text_input(key=reason_key(p.token)).input("ticket 77").run()
    at.radio(key=consent_key(p.token)).set_value("Yes").run()
    gen = editor(at, ANNA).gen
    sb.data.set_state(lid(sb, "Newsletter"), ANNA, "Unsubscribed")  # the person left meanwhile
    sb.reset_counts()
    click(at, apply_key(p.token))
    assert writes(sb) == (0, 0)
    err = texts(at.error)
    assert "Nothing was written" in err and "Newsletter: subscribed → unsubscribed" in err
    info = texts(at.info)
    assert "Your choices are kept on the current states below: review the plan and press Apply again" in info
    assert "The form shows the new state of Newsletter." in info
    ed = editor(at, ANNA)
    assert ed.gen > gen
    assert box(at, sb, ANNA, "Newsletter").value is False  # the form shows the new truth
    assert box(at, sb, ANNA, "Webinars").value is False  # and the operator's choices stay
    assert box(at, sb, ANNA, "Beta testers").value is True
    assert box(at, sb, ANNA, "Offers").value is True
    # a new plan on the new states, never applied for them: they confirm again
    p2 = plan(at, ANNA)
    assert p2 is not None and p2.token != p.token
    assert p2.describe() == "subscribe to Beta testers; unsubscribe from Webinars"
    assert "Plan: subscribe to Beta testers; unsubscribe from Webinars" in texts(at.info)
    assert at.text_input(key=reason_key(p2.token)).value == "ticket 77"  # what they typed is kept
    assert at.radio(key=consent_key(p2.token)).value == "Yes"
    assert writes(sb) == (0, 0) and not apply_button(at, ANNA).disabled
    rows = audit_rows()
    assert len(rows) == 2 and {r.result for r in rows} == {"conflict — not written"}
    click(at, apply_key(p2.token))
    assert writes(sb) == (1, 1)
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Unsubscribed"
    assert sb.data.state_of(lid(sb, "Beta testers"), ANNA) == "Unconfirmed"
    assert sb.data.state_of(lid(sb, "Newsletter"), ANNA) == "Unsubscribed"  # never resubscribed by a stale form
    assert "Applied." in texts(at.success)
    assert {r.reason for r in audit_rows()} == {"ticket 77"}


def test_after_a_conflict_warnings_must_be_confirmed_again(sb):
    """A resubscribe chosen while the list read "unsubscribed" stays chosen when it bounced
    meanwhile, but the warning (now about the bounce) must be ticked again."""
    email = "leaver@example.com"
    newsletter = lid(sb, "Newsletter")
    at = open_dialog(email)
    box(at, sb, email, "Newsletter").check()
    save(at, email)
    p = plan(at, email)
    at.checkbox(key=confirm_key(p.token, f"resubscribe:{newsletter}")).check().run()
    at.text_input(key=reason_key(p.token)).input("ticket 12").run()
    sb.data.set_state(newsletter, email, "Bounced")
    click(at, apply_key(p.token))
    assert sb.request_counts["add"] == 0
    info = texts(at.info)
    assert "Changed meanwhile, your choice kept — check it again: Newsletter: unsubscribed → bounced" in info
    assert "press Apply again (its warnings must be ticked again)" in info
    p2 = plan(at, email)
    assert box(at, sb, email, "Newsletter").value is True
    assert "is bounced on Newsletter" in texts(at.warning)
    assert at.checkbox(key=confirm_key(p2.token, f"resubscribe:{newsletter}")).value is False
    assert apply_button(at, email).disabled  # not until the new warning is ticked
    assert sb.data.state_of(newsletter, email) == "Bounced"


def test_after_a_conflict_that_already_did_the_change_nothing_is_left(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    p = plan(at, ANNA)
    sb.data.set_state(lid(sb, "Webinars"), ANNA, "Unsubscribed")
    sb.data.set_state(lid(sb, "Newsletter"), ANNA, "Unsubscribed")  # and another change: a conflict
    sb.reset_counts()
    click(at, apply_key(p.token))
    assert writes(sb) == (0, 0) and plan(at, ANNA) is None
    info = texts(at.info)
    assert "Nothing is left to change" in info and "Already so now, nothing left to do: Webinars" in info


def test_partial_failure_is_reported_per_list(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Newsletter").uncheck()
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    sb.faults.fail_list_ids = {lid(sb, "Webinars")}
    click(at, apply_key(plan(at, ANNA).token))
    err = texts(at.error)
    assert "Partly applied: 1 change failed, 1 went through" in err
    assert "Webinars — unsubscribe: not done" in err
    assert "Newsletter — unsubscribe: done" in err
    assert sb.data.state_of(lid(sb, "Newsletter"), ANNA) == "Unsubscribed"
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Active"
    rows = {r.list_name: r.result for r in audit_rows()}
    assert rows["Newsletter"] == "done" and rows["Webinars"].startswith("failed: ")


def test_admin_password_gates_apply(sb, monkeypatch):
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "correct horse battery")
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    assert apply_button(at, ANNA).disabled
    assert any(t.label == "Admin password" for t in at.text_input)
    assert writes(sb) == (0, 0)


# ----------------------------------------------------------------------------- on the Lookup page
def test_on_the_lookup_page_the_tab_shows_the_new_state_after_apply(sb):
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.session_state[NAME_KEY] = OPERATOR
    at.query_params["email"] = ANNA
    at.run()
    assert not at.exception, at.exception
    assert at.button(key=button_key("open", ANNA)).label == "Manage subscriptions"
    click(at, button_key("open", ANNA))
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    assert ":red-badge[unsubscribed]" not in texts(at.markdown)
    click(at, apply_key(plan(at, ANNA).token))
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Unsubscribed"
    assert ":red-badge[unsubscribed]" in texts(at.tabs[0].markdown)  # refetched fresh, not from cache
    assert [r.list_name for r in audit_rows()] == ["Webinars"]


# ----------------------------------------------------------------------------- issue 10: truthful, audited writes
def test_api_key_in_the_reason_blocks_apply_and_writes_nothing(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    p = plan(at, ANNA)
    assert not apply_button(at, ANNA).disabled
    at.text_input(key=reason_key(p.token)).input(f"ticket 3, key is {sb.client_api_key}").run()
    assert apply_button(at, ANNA).disabled
    assert "The reason contains the API key: remove it" in texts(at.error)
    assert sb.client_api_key not in texts(at.error) + texts(at.caption)
    assert "the reason no longer contains the API key" in texts(at.caption)
    assert writes(sb) == (0, 0) and audit_rows() == []  # apply_plan refuses it too (tests/test_write_safety.py)
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Active"


def test_write_applied_but_answer_lost_is_reported_done_by_the_read_back(sb):
    at = open_dialog(ANNA)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    sb.set_faults(write_answer_fault="502")  # the proxy forwards the unsubscribe, then answers 502
    click(at, apply_key(plan(at, ANNA).token))
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Unsubscribed"
    assert "Applied." in texts(at.success)
    assert "Webinars — unsubscribe: done (subscribed → unsubscribed): confirmed by the read-back" in texts(at.success)
    assert "failed" not in texts(at.error)
    [row] = audit_rows()
    assert row.result.startswith("done: confirmed by the read-back")


def test_api_down_at_apply_keeps_the_dialog_open_and_audits_not_sent(sb):
    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.session_state[NAME_KEY] = OPERATOR
    at.query_params["email"] = ANNA
    at.run()
    click(at, button_key("open", ANNA))
    box(at, sb, ANNA, "Webinars").uncheck()
    box(at, sb, ANNA, "Beta testers").check()
    save(at, ANNA)
    p = plan(at, ANNA)
    sb.set_faults(down=True)
    sb.reset_counts()
    click(at, apply_key(p.token))
    # quick: one re-read with the client's retries, no write, no reread of everything afterwards
    assert writes(sb) == (0, 0)
    assert sb.request_counts["listsforemail"] <= 2 and sb.requests_served <= 2
    # the dialog is still open, on the same address, and says nothing was written, and which lists
    assert at.session_state[SUBSCRIPTION_DIALOG] == ANNA
    err = texts(at.error)
    assert "Nothing was written for anna@example.com: Campaign Monitor could not be reached" in err
    assert "Not sent: unsubscribe on Webinars; subscribe on Beta testers." in err
    assert "Save changes and Apply again" in err
    assert "lookup failed" not in err.lower()
    # the ticks are kept for another try
    assert box(at, sb, ANNA, "Webinars").value is False and box(at, sb, ANNA, "Beta testers").value is True
    rows = {r.list_name: r.result for r in audit_rows()}
    assert set(rows) == {"Webinars", "Beta testers"}
    assert all(v.startswith("not sent: API unreachable") for v in rows.values())
    # the API is back: Save and Apply again goes through
    sb.set_faults(down=False)
    save(at, ANNA)
    p2 = plan(at, ANNA)
    assert p2.token != p.token and not apply_button(at, ANNA).disabled
    click(at, apply_key(p2.token))
    assert sb.data.state_of(lid(sb, "Webinars"), ANNA) == "Unsubscribed"
    assert sb.data.state_of(lid(sb, "Beta testers"), ANNA) == "Unconfirmed"
    assert "Applied." in texts(at.success)


def test_second_session_applying_the_same_change_reports_already_so(sb):
    first, second = open_dialog(ANNA), open_dialog(ANNA)
    for at in (first, second):
        box(at, sb, ANNA, "Webinars").uncheck()
        save(at, ANNA)
    sb.reset_counts()
    click(first, apply_key(plan(first, ANNA).token))
    click(second, apply_key(plan(second, ANNA).token))
    assert writes(sb) == (0, 1)
    assert "Already so: nothing needed sending." in texts(second.success)
    assert "Webinars — unsubscribe: already so" in texts(second.success)
    assert sorted(r.result.split(":")[0] for r in audit_rows()) == ["already", "done"]


def test_lost_answer_with_failed_read_back_says_unknown_and_what_to_check(sb, monkeypatch):
    """The API dies while the unsubscribe is on the wire: nobody can tell whether it happened, so
    the dialog says so (and what to check) instead of "failed", and stays open on the Lookup page."""
    from cmlib.client import CampaignMonitor

    at = AppTest.from_file(LOOKUP_PAGE, default_timeout=30)
    at.session_state[NAME_KEY] = OPERATOR
    at.query_params["email"] = ANNA
    at.run()
    click(at, button_key("open", ANNA))
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    real_unsubscribe = CampaignMonitor.unsubscribe

    def unsubscribe_then_die(self, list_id, email):
        sb.set_faults(down=True)
        return real_unsubscribe(self, list_id, email)

    monkeypatch.setattr(CampaignMonitor, "unsubscribe", unsubscribe_then_die)
    click(at, apply_key(plan(at, ANNA).token))
    assert at.session_state[SUBSCRIPTION_DIALOG] == ANNA
    warning = texts(at.warning)
    assert "Unknown outcome: the answer to 1 change was lost" in warning
    assert "Webinars — unsubscribe: UNKNOWN whether it happened" in warning
    assert "check Webinars for anna@example.com" in warning and "if it still shows subscribed" in warning
    assert "failed" not in texts(at.error).lower()
    [row] = audit_rows()
    assert row.result.startswith("unknown: the connection dropped before an answer came back")
    # the tab is refetched once the dialog is closed, not while it shows this report
    sb.set_faults(down=False)
    sb.reset_counts()
    at.run()
    assert sb.request_counts["listsforemail"] == 0 and at.session_state[SUBSCRIPTION_DIALOG] == ANNA
    dismiss(at)
    assert SUBSCRIPTION_DIALOG not in at.session_state
    assert sb.request_counts["listsforemail"] >= 1  # refetched fresh now
    assert ":red-badge[unsubscribed]" not in texts(at.tabs[0].markdown)  # down: the change never applied


# ----------------------------------------------------------------------------- issue 12.1: who is acting
def cookie_writers(at: AppTest) -> list[str]:
    """The scripts of the hidden iframes that store the operator name in the browser."""
    return [e.proto.srcdoc for e in at.get("iframe") if "cm_operator=" in e.proto.srcdoc]


def test_with_no_name_the_review_asks_for_one_before_apply(sb):
    at = open_dialog(ANNA, operator=None)
    assert not at.text_input  # reads never ask: the dialog opens and shows the states without a name
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    prompt = at.text_input(key=NAME_PROMPT_KEY)
    assert prompt.label.startswith("Your name")
    assert apply_button(at, ANNA).disabled
    assert "Apply is enabled once: your name is given (who is acting, for the audit log)" in texts(at.caption)
    prompt.input("  Dana   Kovač ").run()
    assert not at.exception
    assert NAME_PROMPT_KEY not in [t.key for t in at.text_input]
    assert "Acting as **Dana Kovač (typed in this browser)** — change it in the sidebar." in texts(at.caption)
    assert not apply_button(at, ANNA).disabled
    # remembered in this browser: a hidden script stores it as a cookie of the page
    [script] = cookie_writers(at)
    assert '"Dana Kova\\u010d"' in script and "max-age=34560000" in script and "path=/" in script
    click(at, apply_key(plan(at, ANNA).token))
    [row] = audit_rows()
    assert (row.actor, row.actor_source, row.result) == ("Dana Kovač", ActorSource.TYPED, "done")
    assert at.session_state[NAME_KEY] == "Dana Kovač"  # the sidebar shows it from now on


def test_a_signed_in_user_is_never_asked(sb, monkeypatch):
    import ui.identity

    monkeypatch.setattr(ui.identity, "oidc_user", lambda: "lead@example.com")
    at = open_dialog(ANNA, operator=None)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    assert NAME_PROMPT_KEY not in [t.key for t in at.text_input]
    assert "Acting as **lead@example.com (signed in)**." in texts(at.caption)
    assert cookie_writers(at) == []  # nothing typed, nothing to remember
    click(at, apply_key(plan(at, ANNA).token))
    [row] = audit_rows()
    assert (row.actor, row.actor_source) == ("lead@example.com", ActorSource.SIGNED_IN)


def test_the_name_this_browser_remembered_is_used_without_asking(sb, monkeypatch):
    import ui.identity

    monkeypatch.setattr(ui.identity, "_browser_cookies", lambda: {"cm_operator": "Dana%20K%C3%B6hler"})
    at = open_dialog(ANNA, operator=None)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    assert NAME_PROMPT_KEY not in [t.key for t in at.text_input]
    assert "Acting as **Dana Köhler (typed in this browser)**" in texts(at.caption)
    assert cookie_writers(at) == []  # already remembered: nothing drawn
    click(at, apply_key(plan(at, ANNA).token))
    [row] = audit_rows()
    assert (row.actor, row.actor_source) == ("Dana Köhler", ActorSource.TYPED)


def test_an_api_key_given_as_the_name_blocks_apply_and_is_not_remembered(sb):
    at = open_dialog(ANNA, operator=None)
    box(at, sb, ANNA, "Webinars").uncheck()
    save(at, ANNA)
    at.text_input(key=NAME_PROMPT_KEY).input(sb.client_api_key).run()
    assert apply_button(at, ANNA).disabled
    assert "The operator name contains the API key: remove it" in texts(at.error)
    [script] = cookie_writers(at)
    assert sb.client_api_key not in script and 'v=""' in script and "max-age=0" in script
    assert sb.client_api_key not in texts(at.error) + texts(at.caption)
    assert writes(sb) == (0, 0) and audit_rows() == []
