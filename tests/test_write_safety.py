"""Issue 10, items 2-5, at the cmlib level and through the sandbox's fault knobs:

* a secret in operator-supplied text is refused before anything is sent;
* a write whose answer is lost (HTML 502 after applying, or a hang past the read timeout) is
  judged by a fresh read-back: done / not done / unknown, and the audit row says the same;
* with the API down at Apply, every attempted change gets a "not sent" audit row, quickly;
* two sessions applying the same change at once send it once: the second reports "already so".
"""
from __future__ import annotations

import threading

import pytest

from cmlib.audit import ActorSource, AuditLog, Secret, configured_secrets, find_secrets
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.errors import TransportError
from cmlib.retry import NO_RETRY
from cmlib.subscriptions import (
    ApplyOptions,
    PlanNotReady,
    apply_plan,
    load_lists,
    plan_changes,
    take_snapshot,
)
from cmlib.subscriptions.verdict import never_sent
from cmlib.write_locks import (
    LocalWriteLocks,
    WriteKey,
    WriteLockTimeout,
    set_write_locks,
    write_locks,
)
from tests.sandbox_fixtures import make_client

ANNA = "anna@example.com"


@pytest.fixture
def sb(sandbox):
    return sandbox


@pytest.fixture
def client(sb):
    c = make_client(sb, sb.client_api_key)  # no cache, no retries: each request is seen once
    yield c
    c.close()


@pytest.fixture
def audit(tmp_path, sb):
    return AuditLog(tmp_path / "audit.sqlite", secrets=configured_secrets(sb.client_api_key, env={},
                                                                          secrets_toml={}))


def lid(sb, name):
    return sb.data.list_by_name(sb.main_client_id, name).list_id


def state(sb, name, email=ANNA):
    return sb.data.state_of(lid(sb, name), email)


def prepare(sb, client, email, ticks_by_name):
    lists = load_lists(client, sb.main_client_id)
    s = take_snapshot(client, sb.main_client_id, email)
    return plan_changes(s, {lid(sb, n): v for n, v in ticks_by_name.items()}, lists)


def apply(client, plan, audit, *, locks=None, **kw):
    kw.setdefault("actor", "tester")
    kw.setdefault("confirmed", plan.confirmation_keys)
    return apply_plan(client, plan, ApplyOptions(**kw), audit=audit, locks=locks)


def writes(sb) -> int:
    c = sb.request_counts
    return c["add"] + c["unsubscribe"]


# ----------------------------------------------------------------------------- 2. secrets in data
def test_find_secrets_names_the_field_and_the_secret_never_the_value():
    key = "sandbox-client-key-6e3a9c0d4b8147f2"
    secrets = configured_secrets(key, env={"CM_ADMIN_PASSWORD": "correct horse battery"},
                                 secrets_toml={"auth": {"client_secret": "oidc-secret-123456", "client_id": "abc"}})
    labels = {s.label for s in secrets}
    assert {"the API key", "the admin password"} <= labels
    assert any("auth.client_secret" in lbl for lbl in labels)
    assert all(key not in repr(s) for s in secrets)  # the value is not in a repr (nor a traceback)
    [hit] = find_secrets({"reason": f"ticket 5, key {key}", "actor": "lead"}, secrets)
    assert hit.describe() == "the reason contains the API key"
    # the key as it travels: a pasted "Authorization: Basic ..." header
    import base64
    header = base64.b64encode(f"{key}:x".encode()).decode()
    assert find_secrets({"reason": f"Authorization: Basic {header}"}, secrets)
    assert find_secrets({"reason": "oidc-secret-123456"}, secrets)[0].label.endswith("(auth.client_secret)")
    assert not find_secrets({"reason": "ticket 42, short values like abc are no secret"}, secrets)
    assert not find_secrets({"reason": "x"}, [Secret("short", "abc")])


def test_secret_in_the_reason_is_refused_before_anything_is_sent(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    sb.reset_counts()
    with pytest.raises(PlanNotReady) as exc:
        apply(client, plan, audit, reason=f"ticket 7, tried key {sb.client_api_key}")
    message = str(exc.value)
    assert "the reason contains the API key" in message and "nothing was sent" in message
    assert sb.client_api_key not in message
    assert sb.requests_served == 0  # not even the re-read: nothing at all went out
    assert state(sb, "Webinars") == "Active"
    assert audit.count() == 0


def test_secret_in_the_actor_is_refused_too(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    with pytest.raises(PlanNotReady, match="the operator name contains the API key"):
        apply(client, plan, audit, actor=sb.client_api_key)
    assert state(sb, "Webinars") == "Active"


def test_a_change_with_nobody_named_as_acting_is_refused(sb, client, audit):
    """Issue 12.1: no audit row reads "anonymous" -- a change without a name is not made."""
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    sb.reset_counts()
    for nobody in ("", "   "):
        with pytest.raises(PlanNotReady, match="who is acting is not known"):
            apply(client, plan, audit, actor=nobody)
    assert sb.requests_served == 0 and audit.count() == 0
    assert state(sb, "Webinars") == "Active"


def test_the_audit_rows_say_where_the_name_came_from(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False, "Beta testers": True})
    apply(client, plan, audit, actor="  Dana ", actor_source=ActorSource.TYPED)
    rows = audit.query()
    assert len(rows) == 2
    assert {(r.actor, r.actor_source) for r in rows} == {("Dana", ActorSource.TYPED)}


# ----------------------------------------------------------------------------- 3. lost answers
def test_unsubscribe_applied_then_answered_502_is_done_by_the_read_back(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    sb.set_faults(write_answer_fault="502")
    sb.reset_counts()
    report = apply(client, plan, audit)
    assert state(sb, "Webinars") == "Unsubscribed"  # the sandbox applied it
    assert sb.request_counts["unsubscribe"] == 1  # and it was sent once, never retried
    [r] = report.results
    assert r.status == "done" and r.answer_lost and r.state_after == "Unsubscribed"
    assert report.ok and not report.failed
    [row] = audit.query()
    assert row.result.startswith("done: confirmed by the read-back") and "502" in row.result


def test_write_answer_hang_past_the_read_timeout_is_judged_by_the_read_back(sb, audit):
    client = make_client(sb, sb.client_api_key, read_timeout=0.3)
    plan = prepare(sb, client, ANNA, {"Webinars": False, "Beta testers": True})
    sb.set_faults(write_answer_fault="hang", hang_seconds=3)
    report = apply(client, plan, audit)
    client.close()
    by = {r.list_name: r for r in report.results}
    # the unsubscribe timed out, so the add after it was not sent (no pile-up of hanging writes)
    assert by["Webinars"].status == "done" and "no answer came back in time" in by["Webinars"].detail
    assert by["Beta testers"].status == "not sent" and "stopped answering" in by["Beta testers"].detail
    assert state(sb, "Webinars") == "Unsubscribed" and state(sb, "Beta testers") is None
    rows = {r.list_name: r.result for r in audit.query()}
    assert rows["Webinars"].startswith("done: confirmed by the read-back")
    assert rows["Beta testers"].startswith("not sent: Campaign Monitor stopped answering")


def test_lost_answer_for_an_add_that_shows_is_done(sb, client, audit):
    plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    sb.set_faults(write_answer_fault="502")
    report = apply(client, plan, audit, consent="Yes")
    [r] = report.results
    assert r.status == "done" and state(sb, "Webinars", "nobody@example.com") == "Active"


class _QueueingClient:
    """A write that Campaign Monitor queued (not visible yet) and whose answer was lost."""

    def __init__(self, real: CampaignMonitor, sb) -> None:
        self._real, self._sb = real, sb

    def __getattr__(self, name):
        return getattr(self._real, name)

    def add_subscriber(self, list_id, email, **kw):
        from cmlib.errors import ServerError

        raise ServerError("HTML 502 response instead of JSON (a proxy or outage page)", status=502)


def test_lost_answer_for_an_add_that_does_not_show_yet_is_unknown(sb, client, audit):
    plan = prepare(sb, client, "nobody@example.com", {"Webinars": True})
    report = apply(_QueueingClient(client, sb), plan, audit)
    [r] = report.results
    assert r.status == "unknown" and r.state_after == ""
    assert "queue" in r.detail and "refresh nobody@example.com in a minute" in r.detail
    assert not report.ok and report.written and report.unknown == (r,)
    assert audit.query()[0].result.startswith("unknown: ")


def test_lost_answer_and_failed_read_back_is_unknown_with_what_to_check(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False, "Newsletter": False})

    class DiesAfterFirstWrite:
        def __getattr__(self, name):
            return getattr(client, name)

        def unsubscribe(self, list_id, email):
            sb.set_faults(down=True)  # the API goes away while this write is on the wire
            return client.unsubscribe(list_id, email)

    report = apply(DiesAfterFirstWrite(), plan, audit)
    by = {r.list_name: r for r in report.results}
    first, second = (by["Newsletter"], by["Webinars"]) if by["Newsletter"].status == "unknown" else (
        by["Webinars"], by["Newsletter"])
    assert first.status == "unknown" and first.state_after is None
    assert "read-back failed" in first.detail
    assert "if it still shows subscribed, the change did not happen" in first.detail
    assert second.status == "not sent"
    assert state(sb, "Webinars") == "Active" and state(sb, "Newsletter") == "Active"  # down: nothing applied
    results = sorted(r.result.split(":")[0] for r in audit.query())
    assert results == ["not sent", "unknown"]


# ----------------------------------------------------------------------------- 4. API down at Apply
def test_api_down_at_apply_audits_every_change_as_not_sent_and_is_quick(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False, "Beta testers": True})
    sb.set_faults(down=True)
    sb.reset_counts()
    report = apply(client, plan, audit, reason="ticket 12")
    assert report.unreachable and not report.written
    assert writes(sb) == 0 and sb.request_counts["listsforemail"] == 1  # one re-read, then stop
    assert {r.status for r in report.results} == {"not sent"}
    assert "Nothing was written for anna@example.com: Campaign Monitor could not be reached" in report.summary()
    assert "Not sent: unsubscribe on Webinars; subscribe on Beta testers." in report.summary()
    rows = {r.list_name: r for r in audit.query()}
    assert set(rows) == {"Webinars", "Beta testers"}
    assert all(r.result.startswith("not sent: API unreachable") for r in rows.values())
    assert rows["Webinars"].reason == "ticket 12" and rows["Webinars"].state_before == "Active"
    sb.set_faults(down=False)
    assert state(sb, "Webinars") == "Active"


def test_a_write_that_could_not_connect_is_known_not_sent(sb):
    with socket_bound_and_closed() as url:
        dead = CampaignMonitor("k" * 32, url, options=ClientOptions(retry=NO_RETRY, rate=None, connect_timeout=1),
                               cache=None)
        with pytest.raises(TransportError) as exc:
            dead.unsubscribe("L1", ANNA)
        dead.close()
    assert never_sent(exc.value)
    # a dropped connection is not that: the request may have arrived
    sb.set_faults(down=True)
    c = make_client(sb)
    with pytest.raises(TransportError) as exc2:
        c.unsubscribe(lid(sb, "Webinars"), ANNA)
    c.close()
    assert not never_sent(exc2.value)


class socket_bound_and_closed:
    """A loopback URL on which nothing listens (connection refused)."""

    def __enter__(self) -> str:
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        return f"http://127.0.0.1:{port}/api/v3.3"

    def __exit__(self, *exc) -> None:
        return None


# ----------------------------------------------------------------------------- 5. one writer per address
def test_write_locks_are_per_key_and_leave_nothing_behind():
    locks = LocalWriteLocks()
    a, b = WriteKey.of("C1", "Anna@Example.com"), WriteKey.of("C1", "anna@example.com ")
    assert a == b and a.token.startswith("cm-write:") and "anna" not in a.token
    with locks.hold(a):
        assert locks.is_held(b) and locks.in_use() == 1
        with locks.hold(WriteKey.of("C1", "ivan@example.com")):  # another address is not blocked
            assert locks.in_use() == 2
        with pytest.raises(WriteLockTimeout), locks.hold(b, timeout=0):
            pass
    assert locks.in_use() == 0  # no entry outlives its last user: no growth with addresses ever changed
    for i in range(100):
        with locks.hold(WriteKey.of("C1", f"user{i}@example.com")):
            pass
    assert locks.in_use() == 0


def test_process_wide_registry_can_be_replaced():
    mine = LocalWriteLocks()
    previous = set_write_locks(mine)
    try:
        assert write_locks() is mine
    finally:
        set_write_locks(previous)
    assert write_locks() is previous


def test_two_sessions_applying_the_same_change_send_it_once(sb, audit):
    """Both sessions opened the dialog (both saw Newsletter Active) and both press Apply.

    Session A is held inside its write until B is provably in the race -- B either waits for the
    lock (with the fix) or has already re-read "Active" (without it) -- so the test does not
    depend on timing: without the lock it sees two POSTs every time."""
    client_a = make_client(sb, sb.client_api_key)
    client_b = make_client(sb, sb.client_api_key)
    plan_a = prepare(sb, client_a, ANNA, {"Newsletter": False})
    plan_b = prepare(sb, client_b, ANNA, {"Newsletter": False})
    b_in_race = threading.Event()
    a_writing = threading.Event()
    locks = LocalWriteLocks(on_contended=lambda key: b_in_race.set())

    class ClientA:
        def __getattr__(self, name):
            return getattr(client_a, name)

        def unsubscribe(self, list_id, email):
            a_writing.set()
            assert b_in_race.wait(10), "session B never reached the race"
            return client_a.unsubscribe(list_id, email)

    class ClientB:
        def __getattr__(self, name):
            return getattr(client_b, name)

        def lists_for_email(self, *a, **kw):
            out = client_b.lists_for_email(*a, **kw)
            b_in_race.set()  # only reachable inside the lock when A does not hold it
            return out

    reports = {}

    def run(name, cl, plan):
        reports[name] = apply(cl, plan, audit, actor=name, locks=locks)

    sb.reset_counts()
    ta = threading.Thread(target=run, args=("A", ClientA(), plan_a))
    ta.start()
    assert a_writing.wait(10)
    tb = threading.Thread(target=run, args=("B", ClientB(), plan_b))
    tb.start()
    ta.join(20)
    tb.join(20)
    client_a.close()
    client_b.close()
    assert sb.request_counts["unsubscribe"] == 1
    assert state(sb, "Newsletter") == "Unsubscribed"
    assert [r.status for r in reports["A"].results] == ["done"]
    [rb] = reports["B"].results
    assert rb.status == "already" and not reports["B"].conflict and reports["B"].ok
    rows = {r.actor: r.result for r in audit.query()}
    assert rows["A"] == "done" and rows["B"].startswith("already: already so when re-checked")
    assert locks.in_use() == 0


def test_busy_address_is_audited_as_not_sent(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    locks = LocalWriteLocks()
    sb.reset_counts()
    with locks.hold(WriteKey.of(sb.main_client_id, ANNA)):  # another session's change in flight
        report = apply(client, plan, audit, locks=locks, lock_timeout=0)
    assert writes(sb) == 0 and sb.requests_served == 0
    assert "another change of this address was still in progress" in report.problem
    [row] = audit.query()
    assert row.result.startswith("not sent: another change of this address")


def test_apply_plan_uses_the_process_wide_registry_by_default(sb, client, audit):
    plan = prepare(sb, client, ANNA, {"Webinars": False})
    seen = []
    mine = LocalWriteLocks(on_contended=seen.append)
    previous = set_write_locks(mine)
    try:
        with mine.hold(WriteKey.of(sb.main_client_id, ANNA)):
            report = apply(client, plan, audit, lock_timeout=0)
    finally:
        set_write_locks(previous)
    assert seen == [WriteKey.of(sb.main_client_id, ANNA)] and report.problem
    assert state(sb, "Webinars") == "Active"



def test_a_write_the_circuit_breaker_refused_is_not_sent():
    from cmlib.errors import ApiUnavailableError
    from cmlib.subscriptions import Action, Step
    from cmlib.subscriptions.verdict import judge

    err = ApiUnavailableError("Campaign Monitor is not answering since 14:02 UTC; nothing was sent")
    r = judge(Step("L", "Webinars", Action.UNSUBSCRIBE, "Active"), err, None, "read-back failed: same")
    assert r.status == "not sent" and r.audit_result.startswith("not sent: API unreachable")
    assert "Webinars — unsubscribe: not sent (subscribed, untouched)" in r.describe()
