"""Issue 12.6 at the cmlib level: after a conflict the operator's choices are carried over to the
new states -- untouched lists show the new truth, touched lists keep the choice (moot where the
change meanwhile already did it, named where that very list changed another way) -- and the plan
made from them is a fresh one to confirm again."""
from __future__ import annotations

from cmlib.models import ListMembership
from cmlib.subscriptions import Action, ListInfo, Snapshot, WarningKind, plan_changes, rebase_choices

EMAIL = "anna@example.com"
LISTS = (
    ListInfo("L_news", "Newsletter", confirmed_opt_in=False, unsubscribes_from_all=False),
    ListInfo("L_beta", "Beta testers", confirmed_opt_in=False, unsubscribes_from_all=False),
    ListInfo("L_web", "Webinars", confirmed_opt_in=False, unsubscribes_from_all=False),
    ListInfo("L_off", "Offers", confirmed_opt_in=False, unsubscribes_from_all=False),
)
NAMES = {li.list_id: li.name for li in LISTS}


def snap(states: dict[str, str]) -> Snapshot:
    return Snapshot.of(EMAIL, "C1", [ListMembership(lid, NAMES[lid], st, None) for lid, st in states.items()])


OLD = snap({"L_news": "Active", "L_web": "Active", "L_off": "Unsubscribed"})
OPENED_TICKS = {"L_news": True, "L_beta": False, "L_web": True, "L_off": False}


def test_untouched_lists_show_the_new_state_and_choices_are_kept():
    # The operator unticks Webinars and ticks Beta; meanwhile the person left the Newsletter.
    ticks = {**OPENED_TICKS, "L_web": False, "L_beta": True}
    new = snap({"L_news": "Unsubscribed", "L_web": "Active", "L_off": "Unsubscribed"})
    r = rebase_choices(OLD, new, ticks)
    assert dict(r.ticks) == {"L_news": False, "L_beta": True, "L_web": False, "L_off": False}
    assert r.kept == ("L_beta", "L_web") and r.moot == () and r.revisit == ()
    assert [c.describe() for c in r.changes] == ["Newsletter: subscribed → unsubscribed"]
    assert r.describe() == ["The form shows the new state of Newsletter."]
    plan = plan_changes(new, r.ticks, LISTS)
    assert plan.describe() == "subscribe to Beta testers; unsubscribe from Webinars"
    assert not any(s.list_id == "L_news" for s in plan.steps)  # a stale form never resubscribes


def test_a_choice_the_change_meanwhile_already_made_is_moot():
    ticks = {**OPENED_TICKS, "L_web": False, "L_beta": True}
    new = snap({"L_news": "Active", "L_web": "Unsubscribed", "L_off": "Unsubscribed", "L_beta": "Active"})
    r = rebase_choices(OLD, new, ticks)
    assert r.kept == () and {c.list_id for c in r.moot} == {"L_web", "L_beta"}
    assert plan_changes(new, r.ticks, LISTS).is_empty
    assert r.describe() == [
        "Already so now, nothing left to do: Beta testers (subscribed); Webinars (unsubscribed)."]


def test_a_choice_on_a_list_that_changed_another_way_is_kept_and_named():
    # Resubscribe Offers was chosen while it read "unsubscribed"; meanwhile it bounced.
    ticks = {**OPENED_TICKS, "L_off": True}
    new = snap({"L_news": "Active", "L_web": "Active", "L_off": "Bounced"})
    r = rebase_choices(OLD, new, ticks)
    assert r.ticks["L_off"] is True and r.kept == ("L_off",)
    assert [c.describe() for c in r.revisit] == ["Offers: unsubscribed → bounced"]
    assert r.describe() == ["Changed meanwhile, your choice kept — check it again: Offers: unsubscribed → bounced."]
    plan = plan_changes(new, r.ticks, LISTS)
    [step] = plan.steps
    assert step.action == Action.SUBSCRIBE and step.state_before == "Bounced"
    [w] = plan.warnings  # to be confirmed again, against the new state
    assert w.kind == WarningKind.RESUBSCRIBE and "bounced" in w.message


def test_a_list_the_address_was_added_to_meanwhile_shows_it():
    new = Snapshot.of(EMAIL, "C1", [*(ListMembership(lid, NAMES[lid], st, None) for lid, st in OLD.states),
                                    ListMembership("L_x", "Partners", "Active", None)])
    r = rebase_choices(OLD, new, {**OPENED_TICKS, "L_web": False})
    assert r.ticks["L_x"] is True and r.ticks["L_web"] is False and r.kept == ("L_web",)
    assert r.describe() == ["The form shows the new state of Partners."]
