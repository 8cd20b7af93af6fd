"""Subscription plans (pure) and apply_plan against the sandbox: conflicts, partial failures, audit."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

import cmlib.concurrency
from cmlib.audit import AuditFilter, AuditLog
from cmlib.client import CampaignMonitor
from cmlib.errors import NotInListError, ServerError, SubscriberStateError
from cmlib.models import ListMembership, SuppressedAddress
from cmlib.subscriptions import (
    Action,
    ApplyOptions,
    ListInfo,
    PlanNotReady,
    Snapshot,
    Step,
    WarningKind,
    apply_plan,
    diff_states,
    load_lists,
    plan_changes,
    read_for_editing,
    take_snapshot,
    unsubscribe_all_desired,
)
from cmlib.subscriptions.verdict import judge
from tests.sandbox_fixtures import make_client

EMAIL = "anna@example.com"
WORDS = {"Active": "subscribed", "Unconfirmed": "pending", "Unsubscribed": "unsubscribed", "Bounced": "bounced",
         "Deleted": "deleted"}  # the product's words (cmlib.states), written out
LISTS = (
    ListInfo("L_news", "Newsletter", confirmed_opt_in=False, unsubscribes_from_all=True),
    ListInfo("L_prod", "Product updates", confirmed_opt_in=True, unsubscribes_from_all=False),
    ListInfo("L_web", "Webinars", confirmed_opt_in=False, unsubscribes_from_all=False),
    ListInfo("L_off", "Offers", confirmed_opt_in=False, unsubscribes_from_all=False),
)


def snap(states: dict[str, str], *, suppressed: SuppressedAddress | None = None, email: str = EMAIL) -> Snapshot:
    names = {li.list_id: li.name for li in LISTS}
    ms = [ListMembership(lid, names.get(lid, f"name-{lid}"), st, None) for lid, st in states.items()]
    return Snapshot.of(email, "C1", ms, suppressed=suppressed)


# ------------------------------------------------------------------------- pure plans
def test_untouched_form_plans_nothing():
    s = snap({"L_news": "Active", "L_prod": "Unconfirmed", "L_web": "Unsubscribed"})
    plan = plan_changes(s, s.ticks(), LISTS)
    assert plan.is_empty and plan.describe() == "no changes"
    assert plan.missing() == ["there is nothing to change"]
    # lists missing from ``desired`` keep their state
    assert plan_changes(s, {}, LISTS).is_empty


def test_unconfirmed_counts_as_subscribed():
    s = snap({"L_prod": "Unconfirmed"})
    assert s.ticks() == {"L_prod": True}
    plan = plan_changes(s, {"L_prod": False}, LISTS)
    assert [(st.action, st.list_name, st.state_before) for st in plan.steps] == [
        (Action.UNSUBSCRIBE, "Product updates", "Unconfirmed")]
    assert plan.warnings == () and plan.ready()


def test_plain_subscribe_and_consent_question():
    s = snap({})
    plan = plan_changes(s, {"L_web": True}, LISTS)
    [step] = plan.steps
    assert step.action == Action.SUBSCRIBE and not step.resubscribe
    assert plan.describe() == "subscribe to Webinars"
    assert plan.needs_consent and not plan.needs_reason and plan.ready()


def test_confirmed_opt_in_list_is_explained():
    plan = plan_changes(snap({}), {"L_prod": True}, LISTS)
    assert any("confirmed opt-in" in n and "stays pending until" in n for n in plan.notes)


def test_all_client_lists_cascade_is_described_and_must_be_confirmed():
    s = snap({"L_news": "Active", "L_prod": "Active", "L_off": "Active"})
    plan = plan_changes(s, {"L_web": True, "L_news": False, "L_prod": True, "L_off": True}, LISTS)
    assert plan.describe() == (
        "subscribe to Webinars; unsubscribe from Newsletter — this list is set to unsubscribe from ALL "
        "client lists, so the address will also leave Product updates and Offers")
    [w] = plan.warnings
    assert w.kind == WarningKind.CASCADE and w.needs_confirmation and not w.needs_reason
    assert set(w.list_ids) == {"L_prod", "L_off"}
    assert "Product updates and Offers" in w.message
    assert not plan.ready()
    assert plan.missing() == ["1 warning not confirmed"]
    assert plan.ready(confirmed={w.key})
    # unsubscribes run first so the all-lists unsubscribe cannot undo the new subscription
    assert [st.action for st in plan.steps] == [Action.UNSUBSCRIBE, Action.SUBSCRIBE]
    assert any("sent first" in n for n in plan.notes)


def test_cascade_needs_no_confirmation_when_every_other_list_is_unticked_too():
    s = snap({"L_news": "Active", "L_prod": "Active", "L_off": "Unsubscribed"})
    desired = unsubscribe_all_desired(s, LISTS)
    assert set(desired) == {"L_news", "L_prod", "L_web", "L_off"} and not any(desired.values())
    plan = plan_changes(s, desired, LISTS)
    assert [(st.action, st.list_id) for st in plan.steps] == [(Action.UNSUBSCRIBE, "L_news"),
                                                               (Action.UNSUBSCRIBE, "L_prod")]
    assert plan.warnings == ()
    assert any("already removes the address from Product updates" in n for n in plan.notes)
    assert plan.ready()


@pytest.mark.parametrize("state", ["Unsubscribed", "Bounced", "Deleted", "Spam"])
def test_resubscribe_needs_reason_and_confirmation(state):
    s = snap({"L_web": state, "L_off": "Active"})
    assert s.ticks() == {"L_web": False, "L_off": True}
    plan = plan_changes(s, {"L_web": True}, LISTS)
    [step] = plan.steps
    assert step.resubscribe and step.state_before == state
    assert plan.describe() == f"resubscribe to Webinars (now {WORDS.get(state, state)})"
    [w] = plan.warnings
    assert w.kind == WarningKind.RESUBSCRIBE and w.needs_confirmation and w.needs_reason
    assert "permission" in w.message
    assert plan.missing() == ["1 warning not confirmed", "a reason is required (e.g. the ticket number)"]
    assert not plan.ready(confirmed={w.key}, reason="   ")
    assert not plan.ready(reason="ticket 123")
    assert plan.ready(confirmed={w.key}, reason="ticket 123")


def test_new_list_does_not_need_resubscribe():
    plan = plan_changes(snap({"L_web": "Unsubscribed"}), {"L_off": True}, LISTS)
    assert [st.resubscribe for st in plan.steps] == [False]
    assert plan.warnings == ()


def test_suppressed_address_is_resubscribe_with_reason_and_says_why():
    supp = SuppressedAddress("suppressed@example.com", "Unsubscribed", datetime(2024, 1, 2, 3, 4))
    s = snap({}, suppressed=supp, email="suppressed@example.com")
    plan = plan_changes(s, {"L_web": True, "L_off": True}, LISTS)
    assert all(st.resubscribe for st in plan.steps)
    [w] = plan.warnings
    assert w.kind == WarningKind.SUPPRESSED and w.needs_reason and w.needs_confirmation
    assert "suppression list (reason: Unsubscribed, since 2 Jan 2024)" in w.message  # the locale's date (issue 14)
    assert "Webinars and Offers" in w.message
    # unsubscribing a suppressed address needs no such warning
    assert plan_changes(snap({"L_web": "Active"}, suppressed=supp), {"L_web": False}, LISTS).warnings == ()


def test_unknown_unsubscribe_setting_warns_about_a_possible_cascade():
    lists = (ListInfo("L_x", "Mystery", problem="list settings could not be read: HTTP 500"), *LISTS)
    s = snap({"L_x": "Active", "L_web": "Active"})
    plan = plan_changes(s, {"L_x": False}, lists)
    [w] = plan.warnings
    assert w.kind == WarningKind.MAYBE_CASCADE and "Webinars" in w.message
    assert plan.steps[0].unsubscribes_from_all is None


def test_list_missing_from_client_lists_is_still_editable():
    s = snap({"L_gone": "Active"})
    plan = plan_changes(s, {"L_gone": False}, LISTS)
    assert plan.describe() == "unsubscribe from name-L_gone"


def test_every_plan_has_its_own_token():
    s = snap({})
    assert plan_changes(s, {"L_web": True}, LISTS).token != plan_changes(s, {"L_web": True}, LISTS).token


def test_diff_states():
    a = snap({"L_news": "Active", "L_web": "Active"})
    b = snap({"L_news": "Unsubscribed", "L_off": "Active", "L_web": "Active"})
    changes = diff_states(a, b)
    assert [(c.list_id, c.before, c.after) for c in changes] == [("L_news", "Active", "Unsubscribed"),
                                                               ("L_off", "", "Active")]
    assert changes[1].describe() == "Offers: not on the list → subscribed"


def test_judge_distinguishes_done_already_queued_failed():
    sub = Step("L", "Webinars", Action.SUBSCRIBE, "")
    unsub = Step("L", "Webinars", Action.UNSUBSCRIBE, "Active")
    assert judge(sub, None, "Active", "").status == "done"
    assert judge(sub, None, "Unconfirmed", "").detail.startswith("waiting")
    assert judge(sub, None, "", "").status == "queued"
    assert judge(sub, None, None, "read-back failed: x").status == "sent"
    assert judge(unsub, None, "Unsubscribed", "").status == "done"
    assert judge(unsub, None, "Active", "").status == "queued"
    assert judge(unsub, NotInListError("gone", code=203), "Unsubscribed", "").status == "already"
    assert judge(unsub, NotInListError("gone", code=203), "Active", "").status == "failed"
    assert judge(sub, SubscriberStateError("u", code=208), "Unconfirmed", "").status == "already"
    refused = judge(sub, SubscriberStateError("Deleted", code=205), "Deleted", "")
    assert refused.status == "failed" and refused.audit_result == "failed: Code 205: Deleted"


def test_judge_lets_the_read_back_decide_when_the_answer_was_lost():
    sub = Step("L", "Webinars", Action.SUBSCRIBE, "")
    unsub = Step("L", "Webinars", Action.UNSUBSCRIBE, "Active")
    lost = ServerError("HTML 502 response instead of JSON", status=502)
    done = judge(unsub, lost, "Unsubscribed", "")
    assert done.status == "done" and done.answer_lost
    assert done.audit_result == "done: confirmed by the read-back (the answer was lost (HTTP 502: HTML 502 response " \
                                "instead of JSON))"
    not_done = judge(unsub, lost, "Active", "")
    assert not_done.status == "failed" and "not unsubscribed" in not_done.detail
    assert "Webinars — unsubscribe: not done" in not_done.describe()
    assert judge(sub, lost, "Active", "").status == "done"
    # an add that does not show yet may still be in Campaign Monitor's queue: nobody can say
    queued = judge(sub, lost, "", "", email="a@x.com")
    assert queued.status == "unknown" and "queue" in queued.detail and "refresh a@x.com" in queued.detail
    blind = judge(unsub, lost, None, "read-back failed: HTTP 502")
    assert blind.status == "unknown" and blind.audit_result.startswith("unknown: the answer was lost")
    assert "if it still shows subscribed, the change did not happen" in blind.detail
    # a JSON 500 from the API itself is no answer either: the read-back decides
    assert judge(unsub, ServerError("Sorry", status=500, code=500), "Active", "").status == "failed"


# ------------------------------------------------------------------------- against the sandbox
@pytest.fixture
def sb(sandbox):
    return sandbox  # tests/sandbox_fixtures.py: a fresh sandbox per test


@pytest.fixture
def client(sb):
    c = make_client(sb, sb.client_api_key)  # no cache, no retries: each write is seen once
    yield c
    c.close()


@pytest.fixture
def audit(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


def lid(sb, name):
    return sb.data.list_by_name(sb.main_client_id, name).list_id


def state(sb, name, email):
    return sb.data.state_of(lid(sb, name), email)


def prepare(sb, client, email, ticks_by_name):
    lists = load_lists(client, sb.main_client_id)
    s = take_snapshot(client, sb.main_client_id, email)
    desired = {lid(sb, n): v for n, v in ticks_by_name.items()}
    return lists, plan_changes(s, desired, lists)


def apply(client, plan, audit, **kw):
    kw.setdefault("actor", "tester")
    kw.setdefault("confirmed", plan.confirmation_keys)
    return apply_plan(client, plan, ApplyOptions(**kw), audit=audit)


def test_load_lists_reads_settings_concurrently_and_survives_a_failing_list(sb, client):
    sb.faults.fail_list_ids = {lid(sb, "Webinars")}
    lists = {li.name: li for li in load_lists(client, sb.main_client_id)}
    assert lists["Offers"].unsubscribes_from_all is True
    assert lists["Newsletter"].unsubscribes_from_all is False
    assert lists["Product updates"].confirmed_opt_in is True
    assert lists["Webinars"].unsubscribes_from_all is None and "500" in lists["Webinars"].problem


def test_snapshot_is_read_fresh_and_knows_suppression(sb, client):
    s = take_snapshot(client, sb.main_client_id, "suppressed@example.com")
    assert s.states == () and s.suppressed is not None
    s2 = take_snapshot(client, sb.main_client_id, EMAIL)
    assert s2.suppressed is None
    assert {s2.name_of(lst) for lst, st in s2.states if st == "Active"} == {"Newsletter", "Webinars", "Offers"}


def test_reading_for_the_editor_runs_on_the_given_executor_only(sb, client, monkeypatch):
    """The dialog hands in the connection's small shared pool: no pool of its own is started, and
    every task given to the pool is one request -- the waiting happens in the caller's thread.
    So even a one-worker pool cannot deadlock (a task waiting on a task queued behind it)."""

    def no_own_pool(*args, **kwargs):
        raise AssertionError("started a thread pool of its own")

    monkeypatch.setattr(cmlib.concurrency, "ThreadPoolExecutor", no_own_pool)
    submitted = []

    class Recording(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):
            submitted.append(fn)
            return super().submit(fn, *args, **kwargs)

    pool = Recording(max_workers=1, thread_name_prefix="test-one-worker")
    done = threading.Event()
    box = {}

    def run():
        try:
            box["out"] = read_for_editing(client, sb.main_client_id, EMAIL, executor=pool)
        except BaseException as exc:
            box["error"] = exc
        done.set()

    threading.Thread(target=run, daemon=True).start()
    finished = done.wait(30)  # a failure guard only: it returns as soon as the read is done
    pool.shutdown(wait=False, cancel_futures=True)
    assert finished, "deadlocked: a task in the pool waited on a task queued behind it"
    assert "error" not in box, box.get("error")
    lists, snapshot = box["out"]
    assert len(submitted) == 2 + len(lists)  # the states, the suppression entry, one per list's settings
    assert {li.name for li in lists} >= {"Newsletter", "Webinars", "Offers"}
    assert snapshot.states == take_snapshot(client, sb.main_client_id, EMAIL).states
    assert snapshot.suppressed is None and snapshot.suppression_problem == ""


def test_apply_subscribe_and_unsubscribe_is_done_and_audited(sb, client, audit):
    _, plan = prepare(sb, client, EMAIL, {"Webinars": False, "Events Moscow": True})
    sb.reset_counts()
    report = apply(client, plan, audit, reason="ticket 7", consent="Yes")
    assert report.ok and not report.conflict
    assert {r.list_name: r.status for r in report.results} == {"Webinars": "done", "Events Moscow": "done"}
    assert state(sb, "Webinars", EMAIL) == "Unsubscribed"
    assert state(sb, "Events Moscow", EMAIL) == "Unconfirmed"  # confirmed opt-in list
    assert sb.request_counts["add"] == 1 and sb.request_counts["unsubscribe"] == 1
    assert report.new_snapshot.state_of(lid(sb, "Webinars")) == "Unsubscribed"
    rows = {r.list_name: r for r in audit.query()}
    assert rows["Webinars"].action == "unsubscribe" and rows["Webinars"].state_before == "Active"
    assert rows["Events Moscow"].action == "subscribe" and rows["Events Moscow"].state_before == ""
    assert {r.result for r in rows.values()} == {"done"}
    assert {r.reason for r in rows.values()} == {"ticket 7"}
    assert {r.actor for r in rows.values()} == {"tester"}
    assert {r.plan_token for r in rows.values()} == {plan.token}


def test_conflict_writes_nothing_and_refreshes(sb, client, audit):
    # The form was opened, then mail to the address bounced: resubscribing must be decided again.
    _, plan = prepare(sb, client, "leaver@example.com", {"Webinars": True})
    sb.data.set_state(lid(sb, "Webinars"), "leaver@example.com", "Bounced")
    sb.reset_counts()
    report = apply(client, plan, audit, reason="ticket 9")
    assert report.conflict and not report.written
    assert sb.request_counts["add"] == 0 and sb.request_counts["unsubscribe"] == 0
    assert [c.describe() for c in report.conflict] == ["Webinars: unsubscribed → bounced"]
    assert report.new_snapshot.state_of(lid(sb, "Webinars")) == "Bounced"
    assert "Nothing was written" in report.summary()
    [row] = audit.query()
    assert row.result == "conflict — not written" and row.action == "resubscribe"


def test_change_made_meanwhile_in_the_same_direction_is_already_so(sb, client, audit):
    # The form was opened, then the person re-joined Webinars through a form themselves.
    _, plan = prepare(sb, client, "leaver@example.com", {"Webinars": True})
    sb.data.set_state(lid(sb, "Webinars"), "leaver@example.com", "Active")
    sb.reset_counts()
    report = apply(client, plan, audit, reason="ticket 9")
    assert not report.conflict and report.ok and not report.written
    assert sb.request_counts["add"] == 0  # nothing sent: it is already so
    [r] = report.results
    assert r.status == "already" and (r.state_before, r.state_after) == ("Active", "Active")
    assert "Webinars — resubscribe: already so" in r.describe()
    [row] = audit.query()
    assert row.result.startswith("already: already so when re-checked") and row.state_before == "Active"


def test_stale_form_never_resubscribes(sb, client, audit):
    _, plan = prepare(sb, client, EMAIL, {"Events Moscow": True})
    sb.data.set_state(lid(sb, "Newsletter"), EMAIL, "Unsubscribed")  # left five minutes ago
    report = apply(client, plan, audit)
    assert report.conflict
    assert state(sb, "Events Moscow", EMAIL) is None
    assert state(sb, "Newsletter", EMAIL) == "Unsubscribed"


def test_partial_failure_is_reported_per_list(sb, client, audit):
    _, plan = prepare(sb, client, EMAIL, {"Newsletter": False, "Webinars": False})
    sb.faults.fail_list_ids = {lid(sb, "Webinars")}
    report = apply(client, plan, audit)
    by = {r.list_name: r for r in report.results}
    assert by["Newsletter"].status == "done" and by["Newsletter"].state_after == "Unsubscribed"
    assert by["Webinars"].status == "failed" and by["Webinars"].state_after == "Active"
    assert "500" in by["Webinars"].detail
    assert report.failed == (by["Webinars"],) and not report.ok and report.written
    # a JSON 500 does not say whether the unsubscribe happened: the read-back says it did not
    assert "Webinars — unsubscribe: not done (subscribed → subscribed)" in by["Webinars"].describe()
    assert "does not say whether the change was applied" in by["Webinars"].detail
    rows = {r.list_name: r.result for r in audit.query()}
    assert rows["Newsletter"] == "done" and rows["Webinars"].startswith("failed: ")
    assert len(audit.query(AuditFilter(result="failed"))) == 1


def test_resubscribe_sends_the_flag_only_when_planned(sb, client, audit):
    _, plan = prepare(sb, client, "leaver@example.com", {"Newsletter": True})
    [w] = plan.warnings
    assert w.kind == WarningKind.RESUBSCRIBE
    with pytest.raises(PlanNotReady, match="1 warning not confirmed"):
        apply(client, plan, audit, confirmed=frozenset(), reason="ticket 1")
    with pytest.raises(PlanNotReady, match="a reason is required"):
        apply(client, plan, audit, reason=" ")
    assert audit.count() == 0 and state(sb, "Newsletter", "leaver@example.com") == "Unsubscribed"
    report = apply(client, plan, audit, reason="ticket 1 — customer asked")
    assert report.ok
    assert state(sb, "Newsletter", "leaver@example.com") == "Active"
    [row] = audit.query()
    assert row.action == "resubscribe" and row.state_before == "Unsubscribed" and row.result == "done"


def test_suppressed_address_is_added_only_with_confirmation(sb, client, audit):
    email = "suppressed@example.com"
    _, plan = prepare(sb, client, email, {"Webinars": True})
    assert [w.kind for w in plan.warnings] == [WarningKind.SUPPRESSED]
    report = apply(client, plan, audit, reason="ticket 5", consent="No")
    assert report.ok and state(sb, "Webinars", email) == "Active"
    assert not sb.data.is_suppressed(sb.main_client_id, email)


def test_all_lists_cascade_reports_the_lists_it_took_along(sb, client, audit):
    _, plan = prepare(sb, client, EMAIL, {"Offers": False})
    assert [w.kind for w in plan.warnings] == [WarningKind.CASCADE]
    report = apply(client, plan, audit)
    by = {r.list_name: r for r in report.results}
    assert by["Offers"].status == "done"
    assert by["Newsletter"].action == "unsubscribe (via Offers)" and by["Newsletter"].status == "done"
    assert by["Webinars"].state_after == "Unsubscribed"
    assert {r.list_name for r in audit.query()} == {"Offers", "Newsletter", "Webinars"}


def test_cascade_plus_subscribe_runs_unsubscribes_first(sb, client, audit):
    _, plan = prepare(sb, client, EMAIL, {"Offers": False, "Beta testers": True})
    report = apply(client, plan, audit)
    assert state(sb, "Newsletter", EMAIL) == "Unsubscribed"
    assert state(sb, "Beta testers", EMAIL) == "Unconfirmed"  # not undone by the cascade
    assert {r.list_name: r.status for r in report.results}["Beta testers"] == "done"


def test_unsubscribe_all(sb, client, audit):
    lists, empty = prepare(sb, client, "fresh@example.com", {})
    s = empty.snapshot
    plan = plan_changes(s, unsubscribe_all_desired(s, lists), lists)
    report = apply(client, plan, audit)
    assert report.ok
    assert state(sb, "Newsletter", "fresh@example.com") == "Unsubscribed"
    assert state(sb, "Product updates", "fresh@example.com") == "Unsubscribed"


class _QueueingClient:
    """Adds are accepted but not yet visible, as Campaign Monitor's queue does."""

    def __init__(self, real: CampaignMonitor) -> None:
        self._real = real
        self.adds = 0

    def __getattr__(self, name):
        return getattr(self._real, name)

    def add_subscriber(self, list_id, email, **kw):
        self.adds += 1
        return email


def test_queued_add_is_not_success_or_failure(sb, client, audit):
    _, plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    q = _QueueingClient(client)
    report = apply(q, plan, audit, actor="t")
    [r] = report.results
    assert q.adds == 1 and r.status == "queued" and r.state_after == ""
    assert audit.query()[0].result == "queued"


class _FlakyReadClient(_QueueingClient):
    def __init__(self, real, fail_after: int) -> None:
        super().__init__(real)
        self.reads = 0
        self.fail_after = fail_after

    def add_subscriber(self, list_id, email, **kw):
        return self._real.add_subscriber(list_id, email, **kw)

    def lists_for_email(self, client_id, email, *, fresh=False):
        self.reads += 1
        if self.reads > self.fail_after:
            raise ServerError("Sorry, we've run into a problem", status=500, code=500)
        return self._real.lists_for_email(client_id, email, fresh=fresh)


def test_failed_reread_before_writing_sends_nothing(sb, client, audit):
    _, plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    sb.reset_counts()
    report = apply(_FlakyReadClient(client, 0), plan, audit, actor="t")
    assert "could not be re-read" in report.problem and not report.written
    assert sb.request_counts["add"] == 0


def test_failed_readback_reports_sent_not_verified(sb, client, audit):
    _, plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    report = apply(_FlakyReadClient(client, 1), plan, audit, actor="t")
    [r] = report.results
    assert r.status == "sent" and r.state_after is None and report.new_snapshot is None
    assert state(sb, "Webinars", "nobody@example.com") == "Active"
    assert audit.query()[0].result.startswith("sent: read-back failed")


def test_unwritable_audit_log_means_no_write(sb, client, tmp_path):
    (tmp_path / "blocker").write_text("x")
    _, plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    sb.reset_counts()
    report = apply(client, plan, AuditLog(tmp_path / "blocker" / "audit.sqlite"))
    assert "audit log cannot be written" in report.problem
    assert sb.request_counts["add"] == 0 and state(sb, "Webinars", "nobody@example.com") is None


def test_api_key_never_reaches_the_audit_log(sb, client, tmp_path):
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path, secrets=[sb.client_api_key])
    _, plan = prepare(sb, client, EMAIL, {"Webinars": False})
    apply(client, plan, log)
    assert log.count() == 1
    for f in tmp_path.glob("audit.sqlite*"):
        assert sb.client_api_key.encode() not in f.read_bytes()


def test_snapshot_taken_at_is_utc():
    assert snap({}).taken_at.tzinfo is UTC


# ------------------------------------------------------------------------- seeding from the lookup
def _counting(client):
    """Count the requests the client sends, per path (read-through: each still goes out)."""
    sent: list[str] = []
    real = client._once

    def once(method, path, *args, **kwargs):
        sent.append(path)
        return real(method, path, *args, **kwargs)

    client._once = once
    return sent


def test_a_young_lookup_seeds_the_dialog_without_reading_states(sb, client):
    """Issue 15: the dialog's first display from what the lookup just read: no listsforemail or
    subscriber request, only the lists (reference data) and the settings the lookup did not read."""
    from cmlib.lookup import LookupService
    from cmlib.subscriptions import SnapshotSource, snapshot_from_lookup

    [profile] = LookupService(client, sb.main_client_id).lookup_many([EMAIL], suppression=True)
    seed = snapshot_from_lookup(profile, sb.main_client_id, max_age=60,
                                now=profile.fetched_at + timedelta(seconds=59))
    assert seed is not None and seed.snapshot.source == SnapshotSource.LOOKUP
    assert seed.snapshot.taken_at == profile.fetched_at  # the caption tells the lookup's time
    sent = _counting(client)
    lists, snapshot = read_for_editing(client, sb.main_client_id, EMAIL, seed=seed)
    assert not [p for p in sent if "listsforemail" in p or "/subscribers/" in p]
    own = {ls.list_id for ls in profile.lists}
    assert not [p for p in sent if any(f"/lists/{lid}.json" in p for lid in own)]  # settings already known
    assert snapshot.states == take_snapshot(client, sb.main_client_id, EMAIL).states
    fresh_lists, _ = read_for_editing(client, sb.main_client_id, EMAIL)
    assert lists == fresh_lists  # same lists, same settings, same order as a full read


def test_an_old_or_troubled_lookup_is_read_fresh(sb, client):
    from dataclasses import replace as dc_replace

    from cmlib.lookup import LookupService
    from cmlib.profiles import Problem
    from cmlib.subscriptions import snapshot_from_lookup

    [profile] = LookupService(client, sb.main_client_id).lookup_many([EMAIL])
    at = profile.fetched_at
    assert snapshot_from_lookup(profile, "C", max_age=60, now=at + timedelta(seconds=60)) is None  # too old
    assert snapshot_from_lookup(profile, "C", max_age=0, now=at) is None  # no expiry: nothing reused
    for problem in (Problem("address", "timed out"), Problem("suppression", "500")):
        assert snapshot_from_lookup(dc_replace(profile, problems=(problem,)), "C", max_age=60, now=at) is None
    assert snapshot_from_lookup(dc_replace(profile, failed=True), "C", max_age=60, now=at) is None
    assert snapshot_from_lookup(profile, "C", max_age=60, now=at) is not None


def test_a_seed_without_a_suppression_entry_checks_the_suppression_list(sb, client):
    from cmlib.lookup import LookupService
    from cmlib.subscriptions import snapshot_from_lookup

    suppressed = "suppressed@example.com"  # on the suppression list, on no list
    [profile] = LookupService(client, sb.main_client_id).lookup_many([suppressed])  # did not check it
    seed = snapshot_from_lookup(profile, sb.main_client_id, max_age=60, now=profile.fetched_at)
    assert seed is not None and seed.snapshot.suppressed is None
    _, snapshot = read_for_editing(client, sb.main_client_id, suppressed, seed=seed)
    assert snapshot.suppressed is not None
