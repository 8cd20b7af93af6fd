"""One rate budget per credential across processes (``CM_REDIS_URL``), against a real redis-server.

Nothing here measures durations on the wall clock: the bucket hands out slots in Redis time, and
the tests check those slots (spaced by at least 1/rate whoever reserved them), what a refused
reservation reports, and what is stored.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import responses

from cmlib import deployment
from cmlib.breaker import credential_fingerprint
from cmlib.pacing import LEARN, Lane, LearnedRate, ProcessRateMemory, RateSignal, RateSource, rate_memory
from cmlib.ratelimit import RateBudget, SlotWaitTooLong, limiter_for
from cmlib.shared_rate import RedisRateMemory, Reservation, SharedBucket
from cmlib.write_locks import LocalWriteLocks, write_locks

ROOT = Path(__file__).resolve().parent.parent
API = "https://api.test/api/v3.3"
FP = credential_fingerprint(API, "key-1")



class Recording(SharedBucket):
    """The credential's bucket, keeping every slot it handed out (Redis time)."""

    def __init__(self, *a, **kw) -> None:
        super().__init__(*a, **kw)
        self.slots: list[float] = []
        self._slots_lock = threading.Lock()

    def reserve(self, interval: float, tau: float = 0.0, max_wait: float | None = None) -> Reservation:
        r = super().reserve(interval, tau, max_wait)
        if r.granted:
            with self._slots_lock:
                self.slots.append(r.slot)
        return r


def replica_budget(rate: float, **kw) -> tuple[RateBudget, Recording]:
    """A budget as a replica's registry would make it: its own lanes and pacer, the shared bucket."""
    bucket = Recording(deployment.shared_redis(), FP)
    return RateBudget(rate, shared=bucket, **kw), bucket


def assert_spaced(slots: list[float], rate: float) -> None:
    ordered = sorted(slots)
    gaps = [b - a for a, b in itertools.pairwise(ordered)]
    assert min(gaps) >= 1 / rate - 2e-6, f"two slots {min(gaps) * 1000:.3f} ms apart at {rate}/s"


def test_without_the_url_nothing_is_shared():
    lim = limiter_for(API, "key-1", rate=LEARN, max_in_flight=4)
    assert lim.budget.shared is None
    assert isinstance(rate_memory(), ProcessRateMemory) and isinstance(write_locks(), LocalWriteLocks)
    lim.close()


def test_the_registry_wires_the_shared_bucket_only_on_the_real_clock(redis_mode):
    lim = limiter_for(API, "key-1", rate=LEARN, max_in_flight=4)
    assert isinstance(lim.budget.shared, SharedBucket) and isinstance(rate_memory(), RedisRateMemory)
    fake = limiter_for(API, "key-1", rate=LEARN, max_in_flight=4, clock=lambda: 0.0, sleep=lambda s: None)
    assert fake.budget.shared is None  # an injected clock (tests, simulations) stays in the process
    lim.close()
    fake.close()
    assert "key-1" not in " ".join(k.decode() for k in redis_mode.scan_iter())


def test_threads_of_several_replicas_never_exceed_the_budget(redis_mode):
    rate = 400.0
    budgets = [replica_budget(rate) for _ in range(3)]
    start = threading.Barrier(3 * 4)

    def work(budget: RateBudget, lane: Lane) -> None:
        start.wait(10)
        for _ in range(10):
            budget.acquire(lane)

    threads = [threading.Thread(target=work, args=(b, Lane.BULK)) for b, _ in budgets for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    slots = [s for _, bucket in budgets for s in bucket.slots]
    assert len(slots) == 120
    assert_spaced(slots, rate)  # bulk slots: one every 1/rate of Redis time, whoever asked
    assert all(len(bucket.slots) == 40 for _, bucket in budgets)


def test_processes_share_one_budget(redis_mode, redis_url):
    """Three processes reserve from one bucket: together their slots are spaced at the rate."""
    code = (
        "import json, sys\n"
        "from cmlib import deployment\n"
        "from cmlib.shared_rate import SharedBucket\n"
        "b = SharedBucket(deployment.shared_redis(), sys.argv[1])\n"
        "print(json.dumps([b.reserve(1 / 300).slot for _ in range(30)]))\n"
    )
    env = {**os.environ, "CM_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", code, FP], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(3)]
    slots = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        slots.extend(json.loads(out))
    assert len(slots) == 90 and len(set(slots)) == 90
    assert_spaced(slots, 300.0)


def test_a_persons_fan_out_may_go_ahead_by_the_burst_bulk_never(redis_mode):
    bucket = SharedBucket(deployment.shared_redis(), FP)
    interval = 1.0
    first = [bucket.reserve(interval, tau=2 * interval) for _ in range(4)]
    assert [r.wait for r in first[:3]] == [0.0, 0.0, 0.0]  # a burst of three at once...
    assert first[3].wait > 0.5  # ...then the pace (the next slot is a second after the first)
    other = SharedBucket(deployment.shared_redis(), credential_fingerprint(API, "key-2"))
    bulk = [other.reserve(interval) for _ in range(2)]
    assert bulk[0].wait == 0.0 and bulk[1].slot - bulk[0].slot == pytest.approx(interval, abs=2e-6)


def test_a_429_on_one_replica_pauses_every_replica_for_the_announced_reset(redis_mode):
    a, _ = replica_budget(50.0)
    b, b_bucket = replica_budget(50.0)
    grant = a.acquire()
    a.observe(grant, RateSignal(429, limit=None, remaining=0, reset=30.0))
    assert 29 < b.paused_for() <= 30  # B never saw the 429
    with pytest.raises(SlotWaitTooLong) as exc:  # an interactive caller with 5 s left is told at once
        b.acquire(Lane.INTERACTIVE, time_left=lambda: 5.0)
    assert 29 < exc.value.wait <= 30
    assert b_bucket.slots == []  # nothing was reserved for the refused caller
    assert b.status().waiting == {Lane.INTERACTIVE: 0, Lane.BULK: 0}
    # A caller that may wait gets the first slot after the pause, in Redis time.
    pause_until = int(redis_mode.get(f"cm:rate:{{{FP}}}:pause")) / 1e6
    r = b_bucket.reserve(1 / 50)
    assert r.slot >= pause_until and r.wait > 29 and r.paused
    after = b_bucket.reserve(1 / 50, tau=5 / 50)
    assert after.slot - r.slot == pytest.approx(1 / 50, abs=2e-6)  # no burst into the reopened window


def test_a_pause_set_by_the_client_reaches_other_processes(redis_mode, redis_url):
    a, _ = replica_budget(10.0)
    a.pause_for(20.0)
    code = ("from cmlib import deployment\nfrom cmlib.shared_rate import SharedBucket\nimport sys\n"
            "print(SharedBucket(deployment.shared_redis(), sys.argv[1]).paused_for())\n")
    env = {**os.environ, "CM_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, FP], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert 15 < float(out.stdout) <= 20


def test_the_learned_rate_is_remembered_for_every_process(redis_mode, redis_url):
    lim = limiter_for(API, "key-1", rate=LEARN, max_in_flight=4)
    lim.observe(lim.acquire(), RateSignal(200, 60, 59, 1))  # headers: 60 per second
    assert lim.rate == pytest.approx(57.0)
    lim.close()
    deployment.reset_for_tests()  # as if this process were gone
    again = limiter_for(API, "key-1", rate=LEARN, max_in_flight=4)
    assert again.rate == pytest.approx(57.0) and again.budget.pacer.source == RateSource.HEADERS
    again.close()
    code = ("import sys\nfrom cmlib.pacing import rate_memory\n"
            "print(rate_memory().recall(sys.argv[1]))\n")
    env = {**os.environ, "CM_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code, FP], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert "rate=57.0" in out.stdout and "HEADERS" in out.stdout
    [name] = list(redis_mode.scan_iter(match="cm:rate:*:learned"))
    assert FP.encode() in name and redis_mode.ttl(name) > 0
    assert json.loads(redis_mode.get(name))["limit"] == 60


def test_an_unreadable_learned_rate_is_not_trusted(redis_mode):
    memory = RedisRateMemory(deployment.shared_redis())
    redis_mode.set(f"cm:rate:{{{FP}}}:learned", b"\x80\x04not json")
    assert memory.recall(FP) is None
    memory.remember(FP, LearnedRate(12.5, RateSource.PROBED, ceiling=25.0))
    assert RedisRateMemory(deployment.shared_redis()).recall(FP) == LearnedRate(12.5, RateSource.PROBED, 25.0)


def test_interactive_callers_go_before_the_processs_bulk_work(redis_mode):
    """Three bulk callers queue; a person comes last. The first bulk caller already holds a
    reserved slot (it sleeps until it), the person reserves the next one, the other two after."""
    release = threading.Event()
    sleepers = threading.Semaphore(0)

    def held_sleep(seconds: float) -> None:  # a caller waiting for its slot stays there until released
        sleepers.release()
        assert release.wait(30)

    budget, bucket = replica_budget(2.0, sleep=held_sleep)
    budget.acquire(Lane.BULK)  # the bucket is busy: every next slot is in the future
    order: list[str] = []

    def take(lane: Lane, name: str) -> None:
        budget.acquire(lane)
        order.append(name)

    bulk = [threading.Thread(target=take, args=(Lane.BULK, f"bulk{i}")) for i in range(3)]
    for t in bulk:
        t.start()
    assert sleepers.acquire(timeout=30)  # one bulk caller reserved and waits for its slot...
    for _ in range(3000):  # ...and the two others queue behind it
        if budget.status().waiting[Lane.BULK] == 3:
            break
        threading.Event().wait(0.01)
    assert budget.status().waiting[Lane.BULK] == 3
    person = threading.Thread(target=take, args=(Lane.INTERACTIVE, "person"))
    person.start()
    assert sleepers.acquire(timeout=30)  # the person reserved the next slot without waiting for the bulk line
    assert len(bucket.slots) == 3
    release.set()
    for t in [*bulk, person]:
        t.join(30)
    assert sorted(order) == ["bulk0", "bulk1", "bulk2", "person"]
    assert order.index("person") <= 1  # only the bulk caller whose slot was reserved before it came went first


def test_redis_unreachable_falls_back_to_the_process_bucket(monkeypatch):
    from tests.servers import free_port

    monkeypatch.setenv("CM_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    deployment.reset_for_tests()
    try:
        lim = limiter_for(API, "key-1", rate=None, max_in_flight=4)
        assert lim.budget.shared is not None
        with lim.slot():
            pass  # answered by the process's own bucket
        assert not lim.budget.shared.available()
        assert lim.budget.paused_for() == 0.0
        lim.close()
    finally:
        deployment.reset_for_tests()


def test_acquire_reaches_redis_once_per_request(redis_mode):
    budget, bucket = replica_budget(1000.0)
    calls = []
    real = bucket.reserve

    def counting(*a, **kw):
        calls.append(a)
        return real(*a, **kw)

    bucket.reserve = counting  # type: ignore[method-assign]
    for _ in range(5):
        budget.acquire(Lane.BULK)
    assert len(calls) == 5  # one EVALSHA per acquire: no polling


@responses.activate
def test_a_person_is_told_at_once_when_another_replica_paused_the_credential(redis_mode):
    from cmlib.client import CampaignMonitor, ClientOptions
    from cmlib.deadline import call_deadline
    from cmlib.errors import RateLimitedError
    from cmlib.retry import NO_RETRY

    SharedBucket(deployment.shared_redis(), FP).pause(60.0)  # another replica got a 429, reset in 60 s
    responses.get(f"{API}/clients/c1/listsforemail.json", json=[])
    client = CampaignMonitor("key-1", API, options=ClientOptions(retry=NO_RETRY), cache=None)
    with call_deadline(10.0), pytest.raises(RateLimitedError) as exc:
        client.lists_for_email("c1", "p@x.com")
    assert "longer than the time left; not sent" in str(exc.value) and len(responses.calls) == 0
    client.close()


def test_a_shared_budget_full_at_the_pace_counts_as_used_when_probing():
    """Each process's own grants are only its share of a shared budget: waiting for a slot of the
    shared bucket is what says the pace was used in full, so probing still raises it."""
    from cmlib.pacing import Pacer, PacingTuning

    tuning = PacingTuning(start=10.0)
    alone, shared_one = Pacer(LEARN, tuning), Pacer(LEARN, tuning)
    alone.note_throttled()  # waited, but granted nothing itself: not evidence of a used pace
    shared_one.note_saturated()
    assert not alone.observe(RateSignal(200), 0.0, 1.0) and alone.rate == 10.0
    assert shared_one.observe(RateSignal(200), 0.0, 1.0) and shared_one.rate == 20.0
