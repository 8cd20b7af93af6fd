"""Write locks across replicas (``CM_REDIS_URL``), against a real redis-server.

Each "replica" is its own :class:`RedisWriteLocks` (its own in-process registry) on the same
Redis: a second holder is excluded, a holder releases only its own token, a lease frees a dead
holder's lock, and two sessions on two replicas send the same change once.
"""
from __future__ import annotations

import threading

import pytest

from cmlib import deployment
from cmlib.write_locks import (
    DEFAULT_WAIT_SECONDS,
    LEASE_SECONDS,
    LocalWriteLocks,
    RedisWriteLocks,
    WriteKey,
    WriteLockTimeout,
    set_write_locks,
    write_locks,
)
from tests.sandbox_fixtures import make_client
from tests.test_write_safety import ANNA, apply, prepare, state

KEY = WriteKey.of("C1", "Anna@Example.com")


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds



def test_the_redis_locks_are_chosen_only_in_the_deployment_mode(redis_url, monkeypatch):
    assert isinstance(write_locks(), LocalWriteLocks)
    monkeypatch.setenv("CM_REDIS_URL", redis_url)
    deployment.reset_for_tests()
    try:
        chosen = write_locks()
        assert isinstance(chosen, RedisWriteLocks) and write_locks() is chosen
        mine = LocalWriteLocks()
        previous = set_write_locks(mine)
        assert previous is chosen and write_locks() is mine
        set_write_locks(previous)
        assert write_locks() is chosen
        monkeypatch.delenv("CM_REDIS_URL")
        assert isinstance(write_locks(), LocalWriteLocks)  # putting back an automatic one keeps choosing
    finally:
        deployment.reset_for_tests()


def test_a_second_replica_is_excluded_until_the_first_releases(redis_mode):
    client = deployment.shared_redis()
    ft = FakeTime()
    contended: list[WriteKey] = []
    a = RedisWriteLocks(client)
    b = RedisWriteLocks(client, on_contended=contended.append, clock=ft.clock, sleep=ft.sleep)
    with a.hold(KEY):
        assert b.is_held(KEY) and "anna" not in KEY.token
        value = redis_mode.get(KEY.token)
        assert value and len(value) == 32  # a random token, not the holder's identity
        assert 0 < redis_mode.pttl(KEY.token) <= LEASE_SECONDS * 1000 and LEASE_SECONDS > DEFAULT_WAIT_SECONDS
        with pytest.raises(WriteLockTimeout), b.hold(KEY, timeout=1.0):
            pass
        assert contended == [KEY] and ft.sleeps > 1  # it waited (on the fake clock), polling Redis
        with b.hold(WriteKey.of("C1", "ivan@example.com"), timeout=0):  # another address is free
            pass
    assert not a.is_held(KEY) and redis_mode.get(KEY.token) is None
    with b.hold(KEY, timeout=0):
        assert redis_mode.get(KEY.token) is not None


def test_a_holder_releases_only_its_own_token(redis_mode):
    a = RedisWriteLocks(deployment.shared_redis())
    with a.hold(KEY):
        # A's lease ran out and replica C took the lock: A's release must leave C's lock alone.
        redis_mode.set(KEY.token, "c-token", px=60_000)
    assert redis_mode.get(KEY.token) == b"c-token"


def test_a_dead_holders_lock_frees_itself_with_its_lease(redis_mode):
    client = deployment.shared_redis()
    short = RedisWriteLocks(client, lease=0.05)
    held = short.hold(KEY)
    held.__enter__()  # the holder "dies" without releasing
    assert 0 < redis_mode.pttl(KEY.token) <= 50
    done = threading.Event()

    def other_replica():
        with RedisWriteLocks(client, poll=0.01).hold(KEY, timeout=30):
            done.set()

    t = threading.Thread(target=other_replica)
    t.start()
    t.join(30)
    assert done.is_set()


def test_redis_unreachable_falls_back_to_the_replicas_own_lock(monkeypatch):
    from tests.servers import free_port

    monkeypatch.setenv("CM_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    deployment.reset_for_tests()
    try:
        locks = write_locks()
        assert isinstance(locks, RedisWriteLocks)
        with locks.hold(KEY), pytest.raises(WriteLockTimeout), locks.hold(KEY, timeout=0):
            pass  # still exclusive within the replica
    finally:
        deployment.reset_for_tests()


def test_two_sessions_on_two_replicas_send_the_same_change_once(redis_mode, sandbox, tmp_path):
    """test_write_safety's race, with each session on its own replica: A is held inside its write
    until B provably waits for the Redis lock, so without it B would send a second unsubscribe."""
    from cmlib.audit import AuditLog, configured_secrets

    sb = sandbox
    audit = AuditLog(tmp_path / "audit.sqlite", secrets=configured_secrets(sb.client_api_key, env={}, secrets_toml={}))
    client = deployment.shared_redis()
    b_in_race = threading.Event()
    a_writing = threading.Event()
    locks_a = RedisWriteLocks(client)
    locks_b = RedisWriteLocks(client, on_contended=lambda key: b_in_race.set(), poll=0.01)
    client_a = make_client(sb, sb.client_api_key)
    client_b = make_client(sb, sb.client_api_key)
    plan_a = prepare(sb, client_a, ANNA, {"Newsletter": False})
    plan_b = prepare(sb, client_b, ANNA, {"Newsletter": False})

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

    def run(name, cl, plan, locks):
        reports[name] = apply(cl, plan, audit, actor=name, locks=locks)

    sb.reset_counts()
    ta = threading.Thread(target=run, args=("A", ClientA(), plan_a, locks_a))
    ta.start()
    assert a_writing.wait(10)
    tb = threading.Thread(target=run, args=("B", ClientB(), plan_b, locks_b))
    tb.start()
    ta.join(20)
    tb.join(20)
    client_a.close()
    client_b.close()
    assert sb.request_counts["unsubscribe"] == 1
    assert state(sb, "Newsletter") == "Unsubscribed"
    assert [r.status for r in reports["A"].results] == ["done"]
    [rb] = reports["B"].results
    assert rb.status == "already" and reports["B"].ok
    assert redis_mode.get(WriteKey.of(sb.main_client_id, ANNA).token) is None
