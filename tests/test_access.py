"""The admin password: where it comes from, constant-time check, lock-out with a fake clock."""
from __future__ import annotations

from ipaddress import ip_network

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
    with pytest.raises(ValueError, match="non-empty password"):
        AdminGate("")


def test_fingerprint_does_not_contain_the_password():
    fp = access.password_fingerprint("hunter2")
    assert "hunter2" not in fp and fp == access.password_fingerprint("hunter2")


# ---------------------------------------------------------------------------- shared sources: slow down, never lock

SHARED = access.Caller("shared:local", access.SourceKind.SHARED)


def test_session_rotation_cannot_lock_the_admin_out():
    """Issue 10 #15: 20 wrong guesses from rotating sessions used to lock everyone for a minute."""
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock)
    for _ in range(40):  # an attacker guessing as fast as the gate lets it, from fresh sessions
        clock.now += gate.status(SHARED).seconds_left
        assert not gate.check("guess", SHARED).locked
    # a known address (the admin behind a forwarding proxy) is not touched at all
    assert gate.check("s3cret", access.Caller("ip:198.51.100.2")).ok
    # and an admin on the same shared source waits at most the cap, then gets in
    state = gate.status(SHARED)
    assert state.slowed and state.seconds_left <= access.SLOWDOWN_MAX_SECONDS
    clock.now += state.seconds_left
    assert gate.check("s3cret", SHARED).ok


def test_shared_source_gets_free_misses_then_doubling_waits_up_to_a_cap():
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock, shared_free_misses=3, slowdown_base=1, slowdown_max=8)
    assert [gate.check("x", SHARED).tries_left for _ in range(2)] == [2, 1]
    third = gate.check("x", SHARED)
    assert third.status == access.WRONG and third.seconds_left == 1
    assert third.message == ("Wrong admin password. Wait 1 more second before the next try "
                             "(tries slow down after repeated misses).")
    waits = []
    for _ in range(5):
        now = gate.status(SHARED)
        assert now.slowed
        early = gate.check("s3cret", SHARED)  # not even compared while slowed: the right one is refused too
        assert early.slowed and "wait" in early.message
        clock.now += now.seconds_left
        waits.append(gate.check("x", SHARED).seconds_left)
    assert waits == [2, 4, 8, 8, 8]


def test_a_slowed_down_source_recovers_after_a_quiet_spell():
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock, shared_free_misses=2, slowdown_base=1, slowdown_max=30, slowdown_decay=60)
    for _ in range(4):
        clock.now += gate.status(SHARED).seconds_left
        gate.check("x", SHARED)
    clock.now += 60 * 4  # four quiet minutes forgive four misses
    fresh = gate.status(SHARED)
    assert not fresh.slowed and fresh.tries_left == 2


def test_shared_messages_before_the_slow_down():
    gate = AdminGate("pw", clock=FakeClock(), shared_free_misses=3)
    assert gate.check("x", SHARED).message == "Wrong admin password (2 tries left before tries slow down)."
    assert gate.status(SHARED).tries_left == 2


def test_a_slowed_source_is_told_how_long_to_wait():
    clock = FakeClock()
    gate = AdminGate("pw", clock=clock, shared_free_misses=1, slowdown_base=4)
    gate.check("x", SHARED)
    clock.now += 1.5
    assert gate.check("x", SHARED).message == ("Too many wrong passwords recently: wait 3 more seconds "
                                               "before the next try.")


def test_one_shared_source_does_not_slow_another():
    clock = FakeClock()
    gate = AdminGate("pw", clock=clock, shared_free_misses=1)
    behind_proxy = access.Caller("shared:ip:10.0.0.5", access.SourceKind.SHARED)
    for _ in range(3):
        clock.now += gate.status(SHARED).seconds_left
        gate.check("x", SHARED)
    assert gate.status(SHARED).slowed
    assert not gate.status(behind_proxy).slowed
    assert gate.check("pw", behind_proxy).ok


def test_a_known_address_is_locked_without_locking_anyone_else():
    clock = FakeClock()
    gate = AdminGate("s3cret", clock=clock)
    attacker = access.Caller("ip:203.0.113.7")
    for _ in range(100):
        gate.check("guess", attacker)
        clock.now += 1
    assert gate.status(attacker).locked
    assert gate.check("s3cret", access.Caller("ip:198.51.100.2")).ok
    assert gate.check("s3cret", SHARED).ok


def test_many_stale_sources_are_forgotten():
    clock = FakeClock()
    gate = AdminGate("pw", clock=clock)
    for i in range(5000):
        gate.check("x", access.Caller(f"ip:10.{i // 65536}.{i // 256 % 256}.{i % 256}"))
    clock.now += 3600
    gate.check("x", access.Caller("ip:192.0.2.1"))
    assert len(gate._failures) < 100


# ---------------------------------------------------------------------------- who is asking


def test_no_address_means_a_shared_source_never_a_session():
    assert access.identify_caller(None) == access.Caller("shared:local", access.SourceKind.SHARED)
    assert access.identify_caller("127.0.0.1").shared
    assert access.identify_caller("::1").shared


def test_a_direct_client_is_its_address():
    assert access.identify_caller("203.0.113.7") == access.Caller("ip:203.0.113.7", access.SourceKind.ADDRESS)
    assert access.identify_caller("::ffff:203.0.113.7").key == "ip:203.0.113.7"
    # one IPv6 host owns a /64: rotating the low bits is the same source
    a = access.identify_caller("2001:db8:1:2::10")
    b = access.identify_caller("2001:db8:1:2:ffff::1")
    assert a == b and a.key == "ip:2001:db8:1:2::/64" and not a.shared


def test_forwarded_by_the_server_itself():
    """Streamlit's server already applied X-Forwarded-For from a proxy it trusts (127.0.0.1):
    the address Streamlit reports is in the chain, so it is the client's own."""
    caller = access.identify_caller("203.0.113.7", {"x-forwarded-for": ["203.0.113.7"]})
    assert caller.key == "ip:203.0.113.7" and not caller.shared


def test_an_untrusted_proxy_is_a_shared_source_of_its_own():
    """A proxy the server does not trust stands for all its clients: locking it would lock them all."""
    caller = access.identify_caller("10.0.0.5", {"x-forwarded-for": ["203.0.113.7"]})
    assert caller.shared and caller.key == "shared:ip:10.0.0.5"
    assert access.identify_caller("10.0.0.5", {"X-Real-IP": ["203.0.113.7"]}).shared
    assert access.identify_caller("10.0.0.5", {"forwarded": ["for=203.0.113.7"]}).shared


def test_a_trusted_proxy_names_the_client_and_a_forged_prefix_is_ignored():
    trusted = access.trusted_proxies({"CM_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.9"})
    assert len(trusted) == 2
    # the client prepended a fake address; the proxy appended the real one
    caller = access.identify_caller("10.0.0.5", {"x-forwarded-for": ["6.6.6.6, 203.0.113.7"]}, trusted)
    assert caller.key == "ip:203.0.113.7" and not caller.shared
    # two trusted hops
    hops = access.identify_caller("10.0.0.5", {"x-forwarded-for": ["203.0.113.7:5555", "192.0.2.9"]}, trusted)
    assert hops.key == "ip:203.0.113.7"
    # a trusted proxy that forwarded nobody: everyone behind it looks alike
    assert access.identify_caller("10.0.0.5", {}, trusted) == access.Caller("shared:ip:10.0.0.5",
                                                                              access.SourceKind.SHARED)


def test_trusted_proxies_ignore_garbage():
    assert access.trusted_proxies({"CM_TRUSTED_PROXIES": "nonsense, ,10.1.2.3"}) == (ip_network("10.1.2.3/32"),)
    assert access.trusted_proxies({}) == ()
