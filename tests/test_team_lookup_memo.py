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
