import gc
import threading
import time

import pytest

from cmlib import ratelimit
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.concurrency import map_all, run_many
from cmlib.ratelimit import RateLimiter, budget_count, limiter_for


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def clock(self):
        return self.now

    def sleep(self, s):
        with self.lock:
            self.now += s


def test_rate_spaces_requests():
    ft = FakeTime()
    lim = RateLimiter(rate=10, max_in_flight=4, clock=ft.clock, sleep=ft.sleep)
    for _ in range(11):
        lim.acquire()
    assert ft.now == pytest.approx(1.0)  # 11 requests at 10/s need 1 s


def test_pause_holds_everyone():
    ft = FakeTime()
    lim = RateLimiter(rate=None, clock=ft.clock, sleep=ft.sleep)
    lim.pause_for(5)
    lim.acquire()
    assert ft.now == pytest.approx(5)


def test_in_flight_is_bounded():
    lim = RateLimiter(rate=None, max_in_flight=3)
    inside = threading.Semaphore(0)
    go = threading.Event()
    current = peak = 0
    lock = threading.Lock()

    def work(_):
        nonlocal current, peak
        with lim.slot():
            with lock:
                current += 1
                peak = max(peak, current)
            inside.release()
            go.wait(10)
            with lock:
                current -= 1

    runner = threading.Thread(target=lambda: list(run_many(work, range(8), max_workers=8)))
    runner.start()
    for _ in range(3):
        assert inside.acquire(timeout=10)
    with lock:
        assert current == 3
    assert not lim._sem.acquire(blocking=False)  # every place is taken: the rest wait
    go.set()
    runner.join(10)
    assert peak == 3


def test_run_many_captures_errors_and_keeps_the_rest():
    def f(x):
        if x % 3 == 0:
            raise ValueError(x)
        return x * 2

    out = list(run_many(f, range(10), max_workers=4))
    assert len(out) == 10
    assert sorted(o.result for o in out if o.ok) == [2, 4, 8, 10, 14, 16]
    assert sorted(o.item for o in out if not o.ok) == [0, 3, 6, 9]


def test_run_many_cancel_stops_new_work_and_keeps_finished():
    cancel = threading.Event()
    started = []

    def f(x):
        started.append(x)
        if x == 5:
            cancel.set()
        time.sleep(0.005)
        return x

    out = list(run_many(f, range(1000), max_workers=2, cancel=cancel, window=4))
    assert len(out) == len(started) < 1000
    assert all(o.ok for o in out)


def test_run_many_is_lazy_over_input():
    consumed = 0

    def gen():
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield i

    it = run_many(lambda x: x, gen(), max_workers=2, window=8)
    next(it)
    assert consumed <= 9


def test_map_all_keeps_order_with_duplicates():
    out = map_all(lambda s: s.upper(), ["a", "b", "a"], max_workers=3)
    assert [o.result for o in out] == ["A", "B", "A"]


def test_burst_then_spacing():
    ft = FakeTime()
    lim = RateLimiter(rate=10, burst=5, clock=ft.clock, sleep=ft.sleep)
    for _ in range(5):
        lim.acquire()
    assert ft.now == 0  # the burst goes at once
    for _ in range(10):
        lim.acquire()
    assert ft.now == pytest.approx(1.0)


def test_no_burst_right_after_a_pause():
    ft = FakeTime()
    lim = RateLimiter(rate=10, burst=5, clock=ft.clock, sleep=ft.sleep)
    lim.pause_for(3)
    lim.acquire()
    lim.acquire()
    assert ft.now == pytest.approx(3.2)


# --------------------------------------------------------------------------- one budget per credential
URL = "https://api.test/api/v3.3"


def test_clients_of_one_credential_share_the_rate_and_keep_their_own_in_flight_cap():
    ft = FakeTime()
    kw = {"clock": ft.clock, "sleep": ft.sleep}
    interactive = limiter_for(URL, "key-1", rate=10, max_in_flight=3, burst=1, **kw)
    bulk = limiter_for(URL, "key-1", rate=50, max_in_flight=2, burst=20, **kw)  # a later client: shares as is
    assert bulk.budget is interactive.budget and (bulk.rate, bulk.burst) == (10, 1)
    for _ in range(5):
        interactive.acquire()
    bulk.acquire()  # waits behind the interactive client's five: one budget, not two
    assert ft.now == pytest.approx(0.5)
    interactive.pause_for(3)  # a 429 seen by one client holds every client of the key
    bulk.acquire()
    assert ft.now >= 3.5  # not before the announced reset (then spaced again at the rate)
    with bulk.slot(), bulk.slot():  # the bulk client's two places are taken...
        assert not bulk._sem.acquire(blocking=False)
        with interactive.slot():  # ...the interactive client's are its own
            pass


def test_other_credentials_and_other_clocks_have_their_own_budget():
    a = limiter_for(URL, "key-1", rate=10, max_in_flight=3)
    assert limiter_for(URL, "key-2", rate=10, max_in_flight=3).budget is not a.budget
    assert limiter_for(URL + "/other", "key-1", rate=10, max_in_flight=3).budget is not a.budget
    ft = FakeTime()
    assert limiter_for(URL, "key-1", rate=10, max_in_flight=3, clock=ft.clock, sleep=ft.sleep).budget is not a.budget
    assert all("key-1" not in repr(k) for k in list(ratelimit._budgets))  # keyed by a hash, never the key


def test_a_budget_lives_as_long_as_an_open_client_holds_it():
    before = budget_count()
    interactive = CampaignMonitor("key-3", URL, options=ClientOptions(rate=10), cache=None)
    bulk = CampaignMonitor("key-3", URL, options=ClientOptions(rate=10), cache=None)
    assert budget_count() == before + 1
    bulk.close()
    bulk.close()  # idempotent: gives its hold back once
    assert budget_count() == before + 1  # the interactive client still spends it
    interactive.close()
    assert budget_count() == before
    fresh = CampaignMonitor("key-3", URL, cache=None)  # a client opened afterwards: a new, full budget
    assert fresh.limiter.budget is not interactive.limiter.budget
    fresh.close()
    lim = limiter_for(URL, "key-5", rate=10, max_in_flight=3)
    del lim
    gc.collect()
    assert budget_count() == before  # never closed, but gone with its last user


def test_every_client_object_of_a_credential_spends_one_budget():
    first = CampaignMonitor("key-4", URL, options=ClientOptions(rate=20, burst=40, max_in_flight=32), cache=None)
    second = CampaignMonitor("key-4", URL, options=ClientOptions(rate=25, burst=1, max_in_flight=16), cache=None)
    own = RateLimiter(rate=None)
    explicit = CampaignMonitor("key-4", URL, cache=None, limiter=own)
    assert second.limiter.budget is first.limiter.budget and second.limiter.rate == 20
    assert (first.limiter.max_in_flight, second.limiter.max_in_flight) == (32, 16)
    assert explicit.limiter is own  # passed explicitly: its own, as before
