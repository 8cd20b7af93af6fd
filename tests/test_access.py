"""The admin password: where it comes from, constant-time check, lock-out with a fake clock."""
from __future__ import annotations

import pytest

from cmlib import access
from cmlib.access import AdminGate


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_no_password_configured():
    assert access.admin_password(env={}, secrets={}) is None
    assert access.admin_password_source(env={}, secrets={}) is None


def test_password_sources_in_order():
    secrets = {"admin_password": "top", "campaign_monitor": {"admin_password": "nested"}}
    assert access.admin_password(env={"CM_ADMIN_PASSWORD": "env"}, secrets=secrets) == "env"
    assert access.admin_password_source(env={"CM_ADMIN_PASSWORD": "env"}, secrets=secrets).endswith("CM_ADMIN_PASSWORD")
    assert access.admin_password(env={}, secrets=secrets) == "top"
    assert access.admin_password(env={}, secrets={"campaign_monitor": {"admin_password": "nested"}}) == "nested"
    assert access.admin_password_source(env={}, secrets=secrets) == "secrets.toml"
    assert access.admin_password(env={"CM_ADMIN_PASSWORD": "  "}, secrets={"admin_password": ""}) is None


def test_password_from_the_real_environment_and_secrets_file(monkeypatch, tmp_path):
    path = tmp_path / "secrets.toml"
    path.write_text('[campaign_monitor]\nadmin_password = "from-file"\n')
    monkeypatch.setenv("CM_SECRETS_PATH", str(path))
    assert access.admin_password() == "from-file"
    monkeypatch.setenv("CM_ADMIN_PASSWORD", "from-env")
    assert access.admin_password() == "from-env"


def test_right_password_unlocks():
    gate = AdminGate("s3cret", clock=FakeClock())
    assert gate.check("s3cret").ok


def test_wrong_passwords_count_down_then_lock_for_a_minute():
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock)
    left = [gate.check("nope", "alice").tries_left for _ in range(4)]
    assert left == [4, 3, 2, 1]
    fifth = gate.check("nope", "alice")
    assert fifth.locked and fifth.seconds_left == 60
    assert "locked for 60 more seconds" in fifth.message
    # while locked even the right password is refused, and trying does not extend the lock
    clock.now += 30
    during = gate.check("s3cret", "alice")
    assert during.locked and during.seconds_left == pytest.approx(30)
    assert gate.status("alice").locked
    clock.now += 30.5
    assert not gate.status("alice").locked
    assert gate.status("alice").tries_left == 5
    assert gate.check("s3cret", "alice").ok


def test_lock_is_per_caller():
    gate = AdminGate("s3cret", clock=FakeClock())
    for _ in range(5):
        gate.check("nope", "mallory")
    assert gate.check("s3cret", "mallory").locked
    assert gate.check("s3cret", "alice").ok


def test_success_resets_the_count():
    gate = AdminGate("s3cret", clock=FakeClock())
    for _ in range(4):
        gate.check("nope")
    assert gate.check("s3cret").ok
    assert gate.check("nope").tries_left == 4


def test_messages():
    gate = AdminGate("pw", clock=FakeClock(), max_failures=2)
    assert gate.check("x").message == "Wrong admin password (1 try left before a one-minute lock)."


def test_shared_gate_is_one_per_password_process_wide():
    access.reset_shared_gates()
    a = access.shared_gate("one")
    assert access.shared_gate("one") is a
    assert access.shared_gate("two") is not a
    access.reset_shared_gates()
    assert access.shared_gate("one") is not a


def test_empty_password_is_refused():
    with pytest.raises(ValueError):
        AdminGate("")


def test_fingerprint_does_not_contain_the_password():
    fp = access.password_fingerprint("hunter2")
    assert "hunter2" not in fp and fp == access.password_fingerprint("hunter2")


def test_many_sessions_cannot_multiply_the_guesses():
    """A reload starts a new session; the global budget still caps guessing for everyone."""
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock, max_failures=3, global_max_failures=4, global_window=60)
    assert gate.check("a", "session-1").tries_left == 2
    assert gate.check("b", "session-1").tries_left == 1
    assert gate.check("c", "session-2").tries_left == 2
    fourth = gate.check("d", "session-3")
    assert fourth.locked and fourth.seconds_left == 60
    assert gate.check("s3cret", "session-4").locked  # everyone, even with the right password
    clock.now += 61
    assert gate.check("s3cret", "session-4").ok


def test_the_global_budget_is_a_sliding_window():
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock, max_failures=100, global_max_failures=3, global_window=60)
    gate.check("x", "a")
    gate.check("x", "b")
    clock.now += 61  # those two have aged out
    assert not gate.check("x", "c").locked
    assert not gate.check("x", "d").locked
    assert gate.check("x", "e").locked
