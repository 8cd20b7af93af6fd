import threading
import time

import pytest

from cmlib.concurrency import map_all, run_many
from cmlib.ratelimit import RateLimiter


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
    current = peak = 0
    lock = threading.Lock()

    def work(_):
        nonlocal current, peak
        with lim.slot():
            with lock:
                current += 1
                peak = max(peak, current)
            time.sleep(0.01)
            with lock:
                current -= 1

    list(run_many(work, range(30), max_workers=10))
    assert peak <= 3


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
