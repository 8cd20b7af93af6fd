"""The credential's budget learns its pace and serves a person before a bulk run (issue 15),
all on a fake clock: headers set the pace, a 429 halves it, quiet demand raises it step by step up
to a cap, what was learned outlives the clients, and interactive callers get the next slot."""
from __future__ import annotations

import itertools
import threading

import pytest
import responses

from cmlib.bulk.engine import bulk_client_options
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.pacing import (
    LEARN,
    Lane,
    LearnedRate,
    Pacer,
    PacingTuning,
    ProcessRateMemory,
    RateSignal,
    RateSource,
    call_lane,
    rate_memory,
    use_rate_memory,
)
from cmlib.ratelimit import Grant, RateBudget, budget_count, limiter_for
from cmlib.retry import RetryPolicy

URL = "https://api.test/api/v3.3"
TUNING = PacingTuning(start=20.0, step=2.0, epoch=0.25)


class FakeTime:
    """A clock that only moves when the code under test sleeps (one thread at a time)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


class SteppedTime:
    """A clock for several threads: ``sleep`` blocks until the test moves the time past its end."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeping: list[float] = []  # when each sleeping thread wakes
        self.cond = threading.Condition()

    def clock(self) -> float:
        return self.now  # no lock: the budget reads the clock under its own

    def sleep(self, s: float) -> None:
        with self.cond:
            until = self.now + s
            self.sleeping.append(until)
            self.cond.notify_all()
            try:
                assert self.cond.wait_for(lambda: self.now >= until, timeout=30), "the test never moved the clock"
            finally:
                self.sleeping.remove(until)

    def advance(self, s: float) -> None:
        with self.cond:
            self.now += s
            self.cond.notify_all()

    def wait_for_sleeper(self, done) -> None:
        """Until a thread waits for a time still to come (or ``done()``)."""
        with self.cond:
            assert self.cond.wait_for(lambda: any(u > self.now for u in self.sleeping) or done(), timeout=30)


def wait_until(condition) -> None:
    """Wait for other threads to reach a state (polled; never a timing assertion)."""
    pause = threading.Event()
    for _ in range(10_000):
        if condition():
            return
        pause.wait(0.002)
    raise AssertionError("the threads never got there")


def budget(ft: FakeTime, rate=LEARN, burst: int = 1, tuning: PacingTuning = TUNING) -> RateBudget:
    return RateBudget(rate, burst=burst, clock=ft.clock, sleep=ft.sleep, tuning=tuning)


def answer(b: RateBudget, status: int = 200, *, sent: Grant | None = None, **headers) -> None:
    """The answer to a request the budget let through (``sent``), or to one taken just now."""
    grant = sent or b.acquire()
    b.observe(grant, RateSignal(status, headers.get("limit"), headers.get("remaining"), headers.get("reset")))


def busy_epoch(b: RateBudget, ft: FakeTime) -> None:
    """Demand above the pace for one epoch: callers queue (the clock moves by their waits)."""
    start = ft.now
    while ft.now - start < TUNING.epoch:
        answer(b)


# --------------------------------------------------------------------------- headers
def test_a_header_lowers_the_pace_and_the_requests_are_spaced_by_it():
    ft = FakeTime()
    b = budget(ft, rate=LEARN, tuning=PacingTuning(start=100.0))
    answer(b, limit=600, remaining=599, reset=60)  # the account allows 600 a minute
    assert (b.rate, b.status().source) == (pytest.approx(9.5, rel=0.01), RateSource.HEADERS)  # 95% of 10/s
    t0 = ft.now
    for _ in range(20):
        b.acquire()
    assert ft.now - t0 == pytest.approx(20 / b.rate)  # not 20 requests in 0.2 s at the old 100/s


def test_a_header_raises_a_cautious_start_to_what_the_account_allows():
    ft = FakeTime()
    b = budget(ft)
    assert b.rate == 20.0  # a credential never seen: the old interactive pace
    answer(b, limit=150, remaining=149, reset=1)
    assert b.rate == pytest.approx(142.5)


def test_what_remains_of_a_long_window_lowers_the_pace():
    """Someone else spends the same key: 30 requests left for the next 30 s, not 600/60."""
    ft = FakeTime()
    b = budget(ft)
    answer(b, limit=600, remaining=599, reset=60)
    assert b.rate == pytest.approx(9.5, rel=0.01)  # 600 per 60-second window
    answer(b, limit=600, remaining=30, reset=30)
    assert b.rate == pytest.approx(0.95)  # 1/s is what is left, 95% of it


def test_an_explicit_rate_is_a_cap_that_headers_never_exceed():
    ft = FakeTime()
    b = budget(ft, rate=40.0)
    assert b.rate == 40.0
    answer(b, limit=150, remaining=149, reset=1)
    assert b.rate == 40.0
    answer(b, limit=10, remaining=9, reset=1)
    assert b.rate == pytest.approx(9.5)


def test_headers_are_read_from_the_answer():
    sig = RateSignal.from_headers(429, {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0",
                                        "X-RateLimit-Reset": "1"})
    assert sig == RateSignal(429, 150, 0, 1.0) and sig.rate_limited
    assert RateSignal.from_headers(200, {}) == RateSignal(200)


# --------------------------------------------------------------------------- probing
def test_a_429_halves_the_pace_once_per_congestion():
    ft = FakeTime()
    b = budget(ft, rate=LEARN, tuning=PacingTuning(start=40.0))
    before_cut = b.acquire()
    also_before = b.acquire()
    answer(b, 429, sent=before_cut)
    assert (b.rate, b.status().source) == (20.0, RateSource.PROBED)
    answer(b, 429, sent=also_before)  # sent at the old pace, before the cut: the same congestion
    assert b.rate == 20.0
    answer(b, 429)  # sent after the cut, but while the overfilled window lasts
    assert b.rate == 20.0
    ft.sleep(TUNING.hold)
    answer(b, 429)  # a second later, still refused: too fast still
    assert b.rate == 10.0
    assert (b.status().answers, b.status().rate_limited) == (4, 4)


def test_after_a_cut_the_pace_climbs_quickly_back_towards_what_the_api_let_through():
    ft = FakeTime()
    b = budget(ft, rate=100.0)
    answer(b)
    ft.sleep(2.0)
    for _ in range(80):  # a window of 80 requests per second let through...
        answer(b)
    ft.sleep(0.1)
    answer(b, 429)  # ...then refused: 100/s was too fast
    assert (b.rate, b.status().ceiling) == (40.0, 80.0)  # half of what got through
    busy_epoch(b, ft)
    assert b.rate == pytest.approx(40 + (0.9 * 80 - 40) * 0.75)  # most of the way back to 90% of it at once


def test_without_429s_the_pace_rises_step_by_step_up_to_the_cap():
    ft = FakeTime()
    b = budget(ft, rate=30.0)  # the cap; the pace starts there
    answer(b, 429)
    assert b.rate == 15.0
    seen = [b.rate]
    for _ in range(12):
        busy_epoch(b, ft)
        seen.append(b.rate)
    rises = [after - before for before, after in itertools.pairwise(seen)]
    assert all(r >= 0 for r in rises) and sum(1 for r in rises if r > 0) >= 4  # step by step, never down
    assert max(seen) == seen[-1] == 30.0  # up to the cap, never above it
    # quickly back towards where the 429 came, then a step at a time
    assert rises[0] > TUNING.step and TUNING.step in [pytest.approx(r) for r in rises]


def test_before_any_429_the_steps_grow_so_a_high_limit_is_found_in_seconds():
    ft = FakeTime()
    b = budget(ft)
    start = ft.now
    while b.rate < 300:
        busy_epoch(b, ft)
    assert ft.now - start < 3.0  # from 20/s to 300/s in a few epochs, not 140 steps of 2
    answer(b, 429)
    assert b.rate < 300 * 0.75  # then a 429 halves it like any other


def test_an_idle_client_does_not_raise_a_pace_it_never_tried():
    ft = FakeTime()
    b = budget(ft, burst=40)
    for _ in range(50):  # a person's lookups: a few calls now and then, never waiting for the pace
        for _ in range(3):
            answer(b)
        ft.sleep(1.0)
    assert b.rate == 20.0


def test_unpaced_budgets_learn_nothing():
    ft = FakeTime()
    b = budget(ft, rate=None)
    answer(b, 429)
    answer(b, limit=10, remaining=0, reset=1)
    assert b.rate is None and not b.learns


# --------------------------------------------------------------------------- remembered
def test_the_learned_rate_is_remembered_per_credential_for_the_next_client():
    ft = FakeTime()
    kw = {"clock": ft.clock, "sleep": ft.sleep, "max_in_flight": 4}
    first = limiter_for(URL, "key-1", rate=LEARN, **kw)
    first.observe(first.acquire(), RateSignal(429))  # 20/s was too fast for this account
    assert first.rate == 10.0
    first.close()
    assert budget_count() == 0  # no client holds the budget any more...
    again = limiter_for(URL, "key-1", rate=LEARN, **kw)
    assert again.budget is not first.budget and again.rate == 10.0  # ...but its pace is remembered
    assert limiter_for(URL, "key-2", rate=LEARN, **kw).rate == 20.0  # another credential: its own
    capped = limiter_for(URL, "key-3", rate=LEARN, **kw)
    capped.observe(capped.acquire(), RateSignal(200, 1000, 999, 1))
    capped.close()
    assert limiter_for(URL, "key-3", rate=50.0, **kw).rate == 50.0  # an explicit cap still holds
    assert all("key-1" not in repr(v) for v in vars(rate_memory()).values())  # kept by a hash, never the key


def test_the_memory_is_an_interface_a_shared_store_can_replace():
    class Shared(ProcessRateMemory):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[tuple[str, LearnedRate]] = []

        def remember(self, credential: str, learned: LearnedRate) -> None:
            self.writes.append((credential, learned))
            super().remember(credential, learned)

    shared = Shared()
    shared.remember("elsewhere", LearnedRate(7.0, RateSource.PROBED))
    previous = use_rate_memory(shared)
    try:
        ft = FakeTime()
        lim = limiter_for(URL, "key-9", rate=LEARN, max_in_flight=2, clock=ft.clock, sleep=ft.sleep)
        lim.observe(lim.acquire(), RateSignal(200, 60, 59, 1))
        [(fingerprint, learned)] = [w for w in shared.writes if w[0] != "elsewhere"]
        assert "key-9" not in fingerprint and learned == LearnedRate(57.0, RateSource.HEADERS, None, 60, 1.0)
        assert Pacer(LEARN, TUNING, shared.recall("elsewhere")).rate == 7.0
    finally:
        use_rate_memory(previous)


@responses.activate
def test_a_client_learns_from_a_429_and_the_next_client_of_the_key_starts_there():
    ft = FakeTime()

    def client(key: str) -> CampaignMonitor:
        return CampaignMonitor(key, URL, cache=None, clock=ft.clock, sleep=ft.sleep, rng=lambda: 0.5,
                               options=ClientOptions(retry=RetryPolicy(max_attempts=2)))

    responses.get(f"{URL}/clients.json", json={"Code": 429, "Message": "Rate limit"}, status=429)
    responses.get(f"{URL}/clients.json", json=[])
    first = client("key-a")
    assert first.clients() == []
    assert first.limiter.rate == 10.0  # 20/s met a 429
    assert ft.sleeps == [pytest.approx(1.5)]  # only the refused call backed off; nothing paused the key
    first.close()
    second = client("key-a")
    assert second.limiter.rate == 10.0
    assert client("key-b").limiter.rate == 20.0


@responses.activate
def test_a_client_paces_by_the_headers_of_an_ordinary_answer():
    ft = FakeTime()
    responses.get(f"{URL}/clients.json", json=[],
                  headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "9", "X-RateLimit-Reset": "1"})
    c = CampaignMonitor("key-h", URL, cache=None, clock=ft.clock, sleep=ft.sleep)
    c.clients()
    assert c.limiter.rate == pytest.approx(9.5)


# --------------------------------------------------------------------------- lanes
def test_interactive_callers_are_served_first_when_both_lanes_wait():
    st = SteppedTime()
    kw = {"rate": 10.0, "max_in_flight": 8, "clock": st.clock, "sleep": st.sleep}
    bulk = limiter_for(URL, "key-l", lane=Lane.BULK, **kw)
    person = limiter_for(URL, "key-l", lane=Lane.INTERACTIVE, **kw)
    assert bulk.budget is person.budget
    bulk.acquire()  # the only slot of this instant
    grants: dict[str, Grant] = {}

    def take(name: str, limiter) -> None:
        grant = limiter.acquire()
        with st.cond:
            grants[name] = grant
            st.cond.notify_all()

    threads = [threading.Thread(target=take, args=(f"bulk{i}", bulk)) for i in range(3)]
    for t in threads:
        t.start()
    wait_until(lambda: bulk.budget.status().waiting[Lane.BULK] == 3)  # the bulk run's workers queue first...
    people = [threading.Thread(target=take, args=(f"person{i}", person)) for i in range(2)]
    for t in people:
        t.start()
    waiting = {Lane.BULK: 3, Lane.INTERACTIVE: 2}
    wait_until(lambda: bulk.budget.status().waiting == waiting)  # ...then two lookups' calls arrive
    everyone = threads + people
    for _ in range(50):
        if len(grants) == len(everyone):
            break
        st.wait_for_sleeper(lambda: len(grants) == len(everyone))
        st.advance(0.1)
    for t in everyone:
        t.join(30)
    order = sorted(grants, key=lambda name: grants[name].seq)
    assert order[:2] == ["person0", "person1"]  # the next slots went to the person
    assert sorted(order[2:]) == ["bulk0", "bulk1", "bulk2"]  # the bulk run got what was left
    assert {grants[n].lane for n in order[:2]} == {Lane.INTERACTIVE}


def test_bulk_work_never_spends_a_saved_up_burst():
    ft = FakeTime()
    b = budget(ft, rate=10.0, burst=5)
    for _ in range(3):
        b.acquire(Lane.BULK)
    assert ft.now == pytest.approx(100.1)  # paced almost at once (one slot of catch-up), not 5 at once
    ft.sleep(1.0)  # idle: the burst builds up again
    for _ in range(5):
        b.acquire(Lane.INTERACTIVE)
    assert ft.now == pytest.approx(101.1)  # a person's fan-out goes at once


def test_during_a_bulk_run_a_persons_fan_out_goes_at_once_when_the_apis_window_has_room():
    ft = FakeTime()
    b = budget(ft, rate=10.0, burst=8)
    answer(b, limit=1000, remaining=900, reset=60)  # headers: plenty left in this window
    b.acquire(Lane.BULK)  # a bulk run keeps the budget busy: no token saved up
    t0 = ft.now
    for _ in range(8):
        b.acquire(Lane.INTERACTIVE)
    assert ft.now == t0  # the lookup's fan-out went at once, ahead of the pace...
    b.acquire(Lane.BULK)
    assert ft.now == pytest.approx(t0 + 0.8)  # ...and the bulk run repaid it by waiting (7 ahead, its own next)
    answer(b, limit=1000, remaining=3, reset=1, sent=b.acquire(Lane.BULK))  # the window is nearly full
    t1 = ft.now
    b.acquire(Lane.INTERACTIVE)
    assert ft.now == t1  # one ahead of the pace (two kept spare)...
    b.acquire(Lane.INTERACTIVE)
    assert ft.now - t1 == pytest.approx(0.2)  # ...then the pace again, after repaying it


def test_when_the_apis_window_is_full_nobody_goes_until_it_resets_or_an_answer_says_more():
    ft = FakeTime()
    b = budget(ft, rate=100.0)
    first = b.acquire()
    answer(b, limit=1000, remaining=2, reset=1, sent=first)  # two left in this window, which ends within 1 s
    t0 = ft.now
    b.acquire()
    b.acquire()
    b.acquire()  # a third would be refused: wait for the window instead of earning a 429
    assert t0 + 1.0 <= ft.now < t0 + 1.02
    early = b.acquire()
    b.acquire()
    answer(b, limit=1000, remaining=80, reset=1, sent=early)  # an answer says the new window has room
    t1 = ft.now
    b.acquire()
    assert ft.now - t1 == pytest.approx(0.01)  # the pace again, no waiting for a window


@responses.activate
def test_a_client_and_a_call_say_their_lane():
    lanes: list[Lane] = []
    responses.get(f"{URL}/clients.json", json=[])
    assert bulk_client_options().lane == Lane.BULK and ClientOptions().lane == Lane.INTERACTIVE
    run = CampaignMonitor("key-x", URL, cache=None, options=bulk_client_options(rate=None))
    person = CampaignMonitor("key-x", URL, cache=None, options=ClientOptions(rate=None))
    observe = run.limiter.budget.observe
    run.limiter.budget.observe = lambda grant, signal: (lanes.append(grant.lane), observe(grant, signal))[1]
    run.clients()
    person.clients()
    with call_lane(Lane.INTERACTIVE):
        run.clients()  # e.g. a person's check made with the run's client
    assert lanes == [Lane.BULK, Lane.INTERACTIVE, Lane.INTERACTIVE]


def test_the_bulk_cli_learns_by_default_and_keeps_rate_as_a_cap():
    from cmlib.bulk_cli import build_parser

    def rate(*flags: str):
        return build_parser().parse_args(["in.csv", "-o", "out.csv", *flags]).rate

    assert rate() is LEARN and rate("--rate", "learn") is LEARN
    assert rate("--rate", "40") == 40.0  # a cap: headers and 429s may still lower the pace below it
    assert rate("--rate", "off") is None
    assert RateBudget(rate("--rate", "40")).rate == 40.0 and RateBudget(rate()).rate == PacingTuning().start


def test_a_429_with_a_reset_holds_every_client_of_the_key_until_then():
    ft = FakeTime()
    kw = {"rate": LEARN, "max_in_flight": 4, "clock": ft.clock, "sleep": ft.sleep}
    person = limiter_for(URL, "key-r", **kw)
    run = limiter_for(URL, "key-r", lane=Lane.BULK, **kw)
    person.observe(person.acquire(), RateSignal(429, 150, 0, 3.0))
    t0 = ft.now
    run.acquire()
    assert ft.now - t0 >= 3.0  # the window the API announced, for the bulk run too
