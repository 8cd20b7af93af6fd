"""Issue 15, the dialog: the client's lists are read in the background once the dialog's button is
drawn (``cmlib.subscriptions.catalog``), so opening it sends no request for them; they are kept
only as long as the HTTP cache would keep them, only when complete, and the connection that owns
them closes them."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cmlib.cache import CacheSettings
from cmlib.config import Credentials
from cmlib.errors import ConfigurationError
from cmlib.runtime import connect
from cmlib.subscriptions import load_lists, read_for_editing, snapshot_from_lookup
from cmlib.subscriptions.catalog import ListCatalog, catalog_max_age
from tests.sandbox_fixtures import make_client
from tests.test_app_subscriptions import HARNESS, OPERATOR, click, ticks
from ui.identity import NAME_KEY
from ui.subscriptions import button_key

ANNA = "anna@example.com"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_prefetched_lists_are_what_the_dialog_would_read(sandbox):
    client = make_client(sandbox)
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=600)
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        lists = catalog.lists()
    assert lists is not None and lists == load_lists(client, sandbox.main_client_id)
    assert [li.name for li in lists][:2] == ["Newsletter", "Product updates"]
    client.close()


def test_opening_with_the_kept_lists_reads_no_list_and_keeps_the_lookups_settings(sandbox):
    client = make_client(sandbox)
    cid = sandbox.main_client_id
    catalog = ListCatalog(client, cid, max_age=600)
    with ThreadPoolExecutor(max_workers=4) as pool:
        catalog.prefetch(pool)
        assert catalog.lists() is not None
        profile = _lookup(client, cid, ANNA)
        seed = snapshot_from_lookup(profile, cid, max_age=60)
        assert seed is not None
        sandbox.reset_counts()
        lists, snapshot = read_for_editing(client, cid, ANNA, executor=pool, seed=seed, lists=catalog.lists())
    assert sandbox.request_counts["lists"] == 0 and sandbox.request_counts["list_details"] == 0
    assert lists == load_lists(client, cid)
    assert snapshot.is_subscribed(sandbox.data.list_by_name(cid, "Newsletter").list_id)
    client.close()


def _lookup(client, client_id, email):
    from cmlib.lookup import LookupService

    with LookupService(client, client_id, memo_ttl=0) as svc:
        return svc.lookup(email)


def test_kept_lists_expire_with_the_caches_reference_expiry(sandbox):
    clock = FakeClock()
    client = make_client(sandbox)
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=600, clock=clock)
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        assert catalog.lists() is not None
        clock.now += 599
        assert catalog.lists(wait=0) is not None
        clock.now += 1
        assert catalog.lists(wait=0) is None  # as old as a cached read may be: the dialog reads itself
        sandbox.reset_counts()
        catalog.prefetch(pool)  # drawn again: read again
        assert catalog.lists() is not None
    assert sandbox.request_counts["lists"] == 1
    client.close()


def test_a_young_catalog_is_not_read_again(sandbox):
    client = make_client(sandbox)
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=600)
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        assert catalog.lists() is not None
        sandbox.reset_counts()
        for _ in range(5):  # every run draws the button again
            catalog.prefetch(pool)
        assert catalog.lists() is not None
    assert sandbox.request_counts["lists"] == 0 and sandbox.request_counts["list_details"] == 0
    client.close()


def test_lists_with_a_failing_list_are_not_kept(sandbox):
    cid = sandbox.main_client_id
    sandbox.set_faults(fail_list_ids={sandbox.data.list_by_name(cid, "Offers").list_id})
    client = make_client(sandbox)
    catalog = ListCatalog(client, cid, max_age=600)
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        assert catalog.lists() is None  # the dialog's own read reports the failing list
    client.close()


def test_nothing_is_kept_when_caching_is_off(sandbox):
    assert catalog_max_age(None) == 0
    assert catalog_max_age(CacheSettings(enabled=False)) == 0
    assert catalog_max_age(CacheSettings(expiry={"lists": 600, "list_details": 300})) == 300
    client = make_client(sandbox)
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=0)
    sandbox.reset_counts()
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        assert catalog.lists(wait=0) is None
    assert sandbox.requests_served == 0
    client.close()


def test_the_connection_owns_its_catalog_and_closes_it(sandbox):
    creds = Credentials(api_key=sandbox.client_api_key, client_id=sandbox.main_client_id, api_url=sandbox.base_url)
    conn = connect(creds, cache=CacheSettings(backend="memory"))
    catalog = conn.list_catalog()
    assert conn.list_catalog() is catalog  # one per connection
    catalog.prefetch(conn.executor)
    assert catalog.lists() is not None
    conn.close()
    assert catalog.closed and catalog.lists(wait=0) is None
    sandbox.reset_counts()
    with ThreadPoolExecutor(max_workers=1) as pool:
        catalog.prefetch(pool)  # a closed catalog reads nothing
    assert catalog.lists(wait=0) is None and sandbox.requests_served == 0
    with pytest.raises(ConfigurationError):
        conn.list_catalog()


def test_a_prefetch_on_a_shut_down_pool_is_skipped(sandbox):
    client = make_client(sandbox)
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=600)
    pool = ThreadPoolExecutor(max_workers=1)
    pool.shutdown()
    catalog.prefetch(pool)  # never raises
    assert catalog.lists(wait=0) is None
    client.close()


def test_the_dialog_opens_without_reading_the_lists_once_its_button_was_drawn(app_env, monkeypatch):
    """Not even from the HTTP cache: the dialog takes the lists the catalog read in the background."""
    from cmlib.subscriptions import snapshot as snapshot_module
    from ui.connection import get_connection

    loads = []
    real_load = snapshot_module.load_lists

    def recording(*args, **kwargs):
        loads.append(args)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(snapshot_module, "load_lists", recording)
    at = AppTest.from_file(HARNESS, default_timeout=30)
    at.session_state["harness_emails"] = [ANNA]
    at.session_state[NAME_KEY] = OPERATOR
    at.run()
    assert not at.exception, at.exception
    assert get_connection().list_catalog().lists() is not None  # read in the background after the button
    app_env.reset_counts()
    click(at, button_key("open", ANNA))
    assert ticks(at, app_env, ANNA)["Newsletter"] is True
    assert app_env.request_counts["lists"] == 0 and app_env.request_counts["list_details"] == 0
    assert loads == []


def test_the_page_loads_the_dialogs_checkbox_code_early(tmp_path):
    """The dialog draws the page's first checkbox, whose frontend code Streamlit fetches on first
    use: the app's first element (ui.preload) fetches it with the other widgets' code. Found in
    this Streamlit; a release without such a file loads nothing early (and the page works as before)."""
    import streamlit as st

    from ui import preload

    static_js = Path(st.__file__).parent / "static" / "static" / "js"
    assert preload.CHUNKS and all((static_js / name).is_file() for name in preload.CHUNKS)
    assert len(preload.CHUNKS) == len(preload.PAGE_WIDGETS)
    assert any(name.startswith("Checkbox.") for name in preload.CHUNKS)
    assert json.dumps(preload.CHUNKS) in preload._SCRIPT
    assert preload.widget_chunks(tmp_path) == []


def test_the_background_reads_go_behind_what_a_person_waits_for(sandbox):
    """Nobody waits for the catalog: its reads go in the bulk lane of the credential's budget, so
    a lookup is served first (also while a 429 pauses the budget)."""
    from cmlib.pacing import Lane, current_lane

    client = make_client(sandbox)
    lanes: list[Lane | None] = []
    real_lists, real_details = client.lists, client.list_details

    def lists(client_id, **kw):
        lanes.append(current_lane())
        return real_lists(client_id, **kw)

    def list_details(list_id, **kw):
        lanes.append(current_lane())
        return real_details(list_id, **kw)

    client.lists, client.list_details = lists, list_details  # type: ignore[method-assign]
    catalog = ListCatalog(client, sandbox.main_client_id, max_age=600)
    with ThreadPoolExecutor(max_workers=2) as pool:
        catalog.prefetch(pool)
        assert catalog.lists() is not None
    assert len(lanes) > 1 and set(lanes) == {Lane.BULK}
    assert current_lane() is None  # nothing leaks into the caller's context
    client.close()
