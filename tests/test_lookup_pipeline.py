"""Issue 15: a cold lookup's per-list calls start as soon as their address's memberships are in,
and connections are opened ahead while the first calls wait.

No timing here (bench/bench_lookup_page.py measures it): calls are held on events to show what
goes out while what else is still outstanding. A wait on an event has a generous timeout only so
that a regression fails the test instead of hanging it.
"""
from __future__ import annotations

import contextvars
import math
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest
import responses

from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.concurrency import TaskStream
from cmlib.errors import AuthenticationError, TransportError
from cmlib.lookup import CASE_FAILED, DEFAULT_CALLS_PER_ADDRESS, LookupService
from cmlib.sandbox import DEMO_CUSTOMERS
from tests.sandbox_fixtures import make_client

THREE = list(DEMO_CUSTOMERS["three_addresses"])
BASE = "https://api.test/api/v3.3"
CID = "client1"
HOLD = 20  # seconds: only ever reached when the behaviour under test is gone


def wrap(client: Any, name: str, before: Any = None, after: Any = None) -> None:
    """Replace one endpoint method of ``client`` by one that calls ``before(*args)`` and
    ``after(*args)`` around the real call."""
    real = getattr(client, name)

    def call(*args: Any, **kwargs: Any) -> Any:
        if before is not None:
            before(*args)
        try:
            return real(*args, **kwargs)
        finally:
            if after is not None:
                after(*args)

    setattr(client, name, call)


# ------------------------------------------------------------------ pipelining
def test_an_address_calls_go_out_while_another_address_memberships_are_held(sandbox):
    """Without the pipeline the held address would keep every per-list call back: deadlock."""
    client = make_client(sandbox)
    first, slow = THREE[0], THREE[1]
    sent = threading.Event()
    held: list[bool] = []

    def hold_memberships(_client_id: str, email: str) -> None:
        if email == slow:
            held.append(sent.wait(HOLD))

    def note_call(_list_id: str, email: str) -> None:
        if email == first:
            sent.set()

    wrap(client, "lists_for_email", before=hold_memberships)
    wrap(client, "subscriber", before=note_call)
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        profiles = svc.lookup_many(THREE, suppression=True, time_zone=True)
    client.close()
    assert held == [True], "no per-list call went out while another address's memberships were held"
    assert [p.email for p in profiles] == THREE
    assert all(not p.failed and p.lists and not p.all_problems() for p in profiles)


def test_a_complete_address_is_handed_over_while_another_memberships_are_held(sandbox):
    client = make_client(sandbox)
    slow = THREE[2]
    others = threading.Event()
    held: list[bool] = []
    seen: list[str] = []

    def hold_memberships(_client_id: str, email: str) -> None:
        if email == slow:
            held.append(others.wait(HOLD))

    def on_profile(profile: Any) -> None:
        seen.append(profile.email)
        if set(seen) >= set(THREE[:2]):
            others.set()

    wrap(client, "lists_for_email", before=hold_memberships)
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        profiles = svc.lookup_many(THREE, suppression=True, on_profile=on_profile)
    client.close()
    assert held == [True] and sorted(seen[:2]) == sorted(THREE[:2]) and seen[2] == slow
    assert [p.email for p in profiles] == THREE and all(p.lists for p in profiles)


def test_no_address_is_handed_over_before_the_campaigns_and_suppression_list_are_in(sandbox):
    """Every per-list call finishes while the campaigns are held (they do not wait for them),
    yet no address is handed over until the campaigns and the suppression list are in."""
    client = make_client(sandbox)
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        calls = Counter()
        for name in ("subscriber", "history", "list_details"):
            wrap(client, name, after=lambda *_a, n=name: calls.update([n]))
        svc.lookup_many(THREE)
        expected = sum(calls.values())
        calls.clear()
        per_list_done = threading.Event()
        for name in ("subscriber", "history", "list_details"):
            wrap(client, name, after=lambda *_a: per_list_done.set() if sum(calls.values()) >= expected else None)
        real_campaigns = svc.campaign_index
        held: list[bool] = []
        seen_before_campaigns: list[list[str]] = []
        seen: list[str] = []

        def campaigns(fresh: bool = False) -> Any:
            held.append(per_list_done.wait(HOLD))
            seen_before_campaigns.append(list(seen))
            return real_campaigns(fresh)

        svc.campaign_index = campaigns  # type: ignore[method-assign]
        profiles = svc.lookup_many(THREE, suppression=True, on_profile=lambda p: seen.append(p.email))
    client.close()
    assert held == [True] and seen_before_campaigns == [[]]
    assert sorted(seen) == sorted(THREE) and sum(calls.values()) == expected
    assert all(p.campaigns and not p.all_problems() for p in profiles)


def test_each_list_settings_are_asked_once_for_every_address_on_it(sandbox):
    client = make_client(sandbox)
    asked: list[str] = []
    wrap(client, "list_details", before=lambda list_id: asked.append(list_id))
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        profiles = svc.lookup_many(THREE)
    client.close()
    on_lists = [s.list_id for p in profiles for s in p.lists]
    assert len(on_lists) > len(set(on_lists))  # the demo customer's addresses share lists
    assert sorted(asked) == sorted(set(on_lists))
    assert all(s.unsubscribes_from_all is not None for p in profiles for s in p.lists)


def test_a_repeated_address_is_looked_up_once(sandbox):
    client = make_client(sandbox)
    asked: list[str] = []
    wrap(client, "lists_for_email", before=lambda _c, email: asked.append(email))
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        a, b = svc.lookup_many([THREE[0], THREE[0]])
    client.close()
    assert asked == [THREE[0]] and a is b and a.lists


def test_a_failed_address_and_unreadable_campaigns_are_problems_not_errors(sandbox):
    client = make_client(sandbox)
    bad, good = THREE[0], THREE[1]

    def fail(_client_id: str, email: str) -> None:
        if email == bad:
            raise TransportError("connection reset", endpoint="GET listsforemail", email=email)

    wrap(client, "lists_for_email", before=fail)
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        def no_campaigns(fresh: bool = False) -> Any:
            raise TransportError("connection reset", endpoint="GET campaigns")

        svc.campaign_index = no_campaigns  # type: ignore[method-assign]
        failed, ok = svc.lookup_many([bad, good])
    client.close()
    assert failed.case == CASE_FAILED and bad in failed.problems[0].message
    assert not ok.failed and ok.lists and [p.where for p in ok.problems] == ["campaigns"]


@pytest.mark.parametrize("where", ["memberships", "history"])
def test_an_authentication_failure_anywhere_raises(sandbox, where):
    client = make_client(sandbox)

    def refuse(*_args: Any) -> None:
        raise AuthenticationError("Invalid API Key", status=401, code=100)

    wrap(client, "lists_for_email" if where == "memberships" else "history", before=refuse)
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc, pytest.raises(AuthenticationError):
        svc.lookup_many(THREE, suppression=True, time_zone=True)
    client.close()


def test_remembered_addresses_come_first_once_the_suppression_list_is_in(sandbox):
    client = make_client(sandbox)
    with LookupService(client, sandbox.main_client_id, memo_ttl=600) as svc:
        svc.lookup_many(THREE[:1])
        seen: list[tuple[str, bool]] = []
        profiles = svc.lookup_many(THREE, suppression=True,
                                   on_profile=lambda p: seen.append((p.email, p.suppression is not None)))
    client.close()
    assert seen[0][0] == THREE[0] and sorted(e for e, _ in seen) == sorted(THREE)
    assert [p.email for p in profiles] == THREE


# ------------------------------------------------------------------ connections opened ahead
def idle_open(client: Any) -> int:
    pool = client._connection_pool()
    return sum(1 for conn in list(pool.pool.queue) if conn is not None and conn.is_connected)


def test_connections_are_opened_as_the_next_request_goes_out_and_none_is_sent(sandbox):
    client = make_client(sandbox)
    with ThreadPoolExecutor(4) as pool:
        client.open_connections(4, submit=pool.submit)
        assert client._connection_pool().num_connections == 0  # waits for a request to go out
        client.client_details(sandbox.main_client_id)
    assert sandbox.requests_served == 1  # no request of their own: nothing counts against the rate limit
    assert idle_open(client) == 4  # the request used one of them and gave it back
    client.client_details(sandbox.main_client_id)  # an opening happens once
    assert client._connection_pool().num_connections == 4
    client.close()


def test_an_opening_withdrawn_before_any_request_opens_nothing(sandbox):
    client = make_client(sandbox)
    client.open_connections(4)
    client.open_connections(0)  # e.g. the lookup was answered from the cache
    client.client_details(sandbox.main_client_id)
    assert client._connection_pool().num_connections == 1
    client.close()


@responses.activate
def test_a_transport_replaced_by_a_test_double_never_opens_a_connection():
    responses.get(f"{BASE}/clients/{CID}/campaigns.json", json={"Results": [], "NumberOfPages": 1})
    responses.get(f"{BASE}/clients/{CID}/listsforemail.json", json=[])
    client = CampaignMonitor("k" * 20, BASE, options=ClientOptions(rate=None), cache=None)
    with LookupService(client, CID, memo_ttl=0) as svc:
        [profile] = svc.lookup_many(["p@x.com"])
    assert profile.lists == () and client._connection_pool().num_connections == 0
    client.close()


def test_no_connections_are_opened_through_a_proxy_or_while_the_api_is_known_down(sandbox):
    """Checked when the opening starts (as a request goes out): here called directly."""
    client = make_client(sandbox)
    client.session.proxies["http"] = "http://proxy.invalid:3128"
    assert client._open_now(4, None) == 0
    client.session.proxies.clear()
    real_breaker = client.breaker
    client.breaker = SimpleNamespace(check=lambda: object())  # open: nothing would be sent anyway
    assert client._open_now(4, None) == 0
    client.breaker = real_breaker
    assert client._connection_pool().num_connections == 0
    assert client._open_now(4, None) == 4 and idle_open(client) == 4 and sandbox.requests_served == 0
    client.close()


def test_a_lookup_opens_as_many_connections_as_its_addresses_took_calls_last_time(sandbox):
    client = make_client(sandbox)
    asked: list[int] = []
    real = client.open_connections

    def open_connections(count: int, **kwargs: Any) -> None:
        if count:  # 0: the lookup withdrawing what no request took up
            asked.append(count)
        real(count, **kwargs)

    client.open_connections = open_connections  # type: ignore[method-assign]
    calls: list[str] = []
    for name in ("subscriber", "history", "list_details"):
        wrap(client, name, before=lambda *_a, n=name: calls.append(n))
    with LookupService(client, sandbox.main_client_id, memo_ttl=0) as svc:
        svc.lookup_many(THREE)
        first_lookup_calls = len(calls)
        svc.lookup_many(THREE[:1])
    client.close()
    assert asked == [math.ceil(len(THREE) * DEFAULT_CALLS_PER_ADDRESS), math.ceil(first_lookup_calls / len(THREE))]


# ------------------------------------------------------------------ TaskStream
def test_tasks_added_while_iterating_run_and_errors_are_outcomes():
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n * 10

    with ThreadPoolExecutor(4) as pool:
        stream: TaskStream[int, int] = TaskStream(work, pool)
        stream.add(0)
        seen = {}
        for outcome in stream:
            seen[outcome.item] = outcome
            if outcome.item < 3:
                stream.add(outcome.item + 1)
    assert sorted(seen) == [0, 1, 2, 3] and len(stream) == 0
    assert seen[1].result == 10 and isinstance(seen[2].error, ValueError) and seen[3].ok


def test_each_task_runs_in_a_copy_of_the_adders_context():
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    var.set("lookup")
    with ThreadPoolExecutor(2) as pool:
        stream: TaskStream[int, str] = TaskStream(lambda _n: var.get(), pool)
        stream.add(1)
        stream.add(2)
        assert [o.result for o in stream] == ["lookup", "lookup"]


def test_cancel_drops_tasks_not_started_and_keeps_running_ones():
    started, release = threading.Event(), threading.Event()
    ran: list[int] = []

    def work(n: int) -> int:
        if n == 0:
            started.set()
            assert release.wait(HOLD)
        ran.append(n)
        return n

    with ThreadPoolExecutor(1) as pool:
        stream: TaskStream[int, int] = TaskStream(work, pool)
        stream.add(0)
        assert started.wait(HOLD)
        stream.add(1)  # queued behind the one worker
        stream.cancel()
        release.set()
        assert [o.item for o in stream] == [0]
    assert ran == [0]
