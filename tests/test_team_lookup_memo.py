"""A lookup on replica B after a write on replica A shows the new state (issue 16), below the HTTP
cache too: the lookup service's in-process profile memo never hears of another replica's write,
so with the shared Redis cache it keeps nothing. Found by tests/browser/test_team_browser.py,
where B's fresh page showed the old state for the memo's minute.
"""
from __future__ import annotations

import pytest

from cmlib import deployment, runtime
from cmlib.client import CampaignMonitor, ClientOptions
from cmlib.lookup import LookupService

EMAIL = "anna@example.com"


@pytest.fixture
def shared_cache(redis_url, app_env, monkeypatch):
    monkeypatch.setenv("CM_REDIS_URL", redis_url)
    deployment.reset_for_tests()
    yield app_env
    deployment.reset_for_tests()


def _replica(sb) -> CampaignMonitor:
    return CampaignMonitor(sb.client_api_key, sb.base_url, options=ClientOptions(rate=None),
                           cache=runtime.cache_settings())


def _states(svc: LookupService) -> dict[str, str]:
    (profile,) = svc.lookup_many([EMAIL])
    return {m.list_name: m.state for m in profile.lists}


def test_a_write_on_one_replica_is_seen_by_the_others_next_lookup(shared_cache):
    sb = shared_cache
    a, b = _replica(sb), _replica(sb)
    webinars = sb.data.list_by_name(sb.main_client_id, "Webinars").list_id
    try:
        with LookupService(b, sb.main_client_id) as on_b:
            assert on_b.memo_ttl == 0
            assert _states(on_b)["Webinars"] == "Active"
            a.unsubscribe(webinars, EMAIL)
            assert _states(on_b)["Webinars"] == "Unsubscribed"
    finally:
        a.close()
        b.close()


def test_without_a_shared_cache_the_memo_stays(app_env):
    client = _replica(app_env)
    try:
        with LookupService(client, app_env.main_client_id) as svc:
            assert svc.memo_ttl > 0
    finally:
        client.close()


class _Suppressions:
    """A client's suppression list as the API would page it; counts reads and whether they
    bypassed the HTTP cache."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.reads: list[bool] = []

    def suppression_list(self, client_id, *, page=1, page_size=1000, fresh=False):
        from cmlib.models import Page, SuppressedAddress

        self.reads.append(fresh)
        items = tuple(SuppressedAddress(a, "Unsubscribed", None) for a in self.addresses)
        return Page(items, 1, page_size, len(items), 1, len(items))


def test_a_resubscribe_on_one_replica_reaches_the_others_suppression_copy(redis_mode):
    """Each replica keeps the client's suppression list in memory for two minutes; a write on A
    (which may take an address off the list) bumps a counter in Redis, so B's next lookup reads
    the list again, bypassing the HTTP cache, instead of showing the address as suppressed."""
    from cmlib.shared_generation import suppression_generation
    from cmlib.suppression import SuppressionMemo

    api = _Suppressions("anna@example.com")
    on_a = SuppressionMemo(api, "c1", ttl=120, shared=suppression_generation("c1"))
    on_b = SuppressionMemo(api, "c1", ttl=120, shared=suppression_generation("c1"))
    assert "anna@example.com" in on_b.get()
    assert "anna@example.com" in on_b.get() and api.reads == [False]  # kept: one read
    api.addresses.clear()  # the Resubscribe, made through replica A
    on_a.invalidate()
    assert "anna@example.com" not in on_b.get()
    assert api.reads[-1] is True  # read fresh, not from the shared HTTP cache's old pages
    reads = len(api.reads)
    on_b.get()
    assert len(api.reads) == reads  # and kept again until the next write
    other = SuppressionMemo(api, "c2", ttl=120, shared=suppression_generation("c2"))
    other.get()
    on_a.invalidate()
    reads = len(api.reads)
    other.get()
    assert len(api.reads) == reads  # another client's copy is untouched


def test_without_redis_the_counter_is_not_used(monkeypatch):
    from cmlib.shared_generation import suppression_generation

    monkeypatch.delenv("CM_REDIS_URL", raising=False)
    assert suppression_generation("c1") is None
