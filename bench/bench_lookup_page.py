"""Benchmark of the Lookup page on the sandbox: what a support lead waits for.

    .venv/bin/python bench/bench_lookup_page.py [--latency-ms 100] [--repeats 7] [--quick]

(a) Warm rerun: the page script re-run (AppTest) with the three-address demo customer already
    looked up, as after a tab click, a dialog or a sidebar edit. Nothing is fetched (results live
    in st.session_state); this is the pure cost of drawing three tabs. Target < 150 ms.
(b) Cold lookup of the same customer (ivan@, ivan.work@, ivan.old@, four lists each) with the
    sandbox answering every request after --latency-ms: LookupService.lookup_many on a fresh
    connection with the app's HTTP cache (sqlite) emptied first, the same without any cache
    layer, and the page's whole first run (AppTest, emptied cache, new connection).
    Target (issue 15): the whole first page run <= 3.5 x latency (350 ms at 100 ms), the lookup
    itself (with the suppression list and the client's zone, as the page asks) <= 2.5 round trips.

The sandbox runs in its own process on 127.0.0.1 (``sandbox_proc``), as Campaign Monitor runs on
its own machine: in this process its threads would take the interpreter lock from the client's
and bill the emulator's own work (~30 ms of CPU per lookup, all of it as the second wave of
answers arrives) to our lookup -- 2.5-2.7 round trips instead of 2.4 on a 2-core machine.
Requests are counted by the client (``calls_made``: real HTTP exchanges, cache hits excluded).
Prints measured vs target; no assertion, exit 0 (``make bench`` reports, it does not gate).
Medians over --repeats runs.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402
from sandbox_proc import sandbox_process  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from cmlib import runtime  # noqa: E402
from cmlib.config import Credentials  # noqa: E402
from cmlib.sandbox.demo import CLIENT_API_KEY, DEMO_CUSTOMERS, MAIN_CLIENT_ID  # noqa: E402
from ui.connection import get_connection  # noqa: E402
from ui.profile import RESULTS_KEY  # noqa: E402

PAGE = str(ROOT / "pages" / "lookup.py")
RERUN_TARGET_MS = 150.0
EMAILS = list(DEMO_CUSTOMERS["three_addresses"])


def ms(seconds: float) -> float:
    return seconds * 1000.0


def verdict(measured: float, target: float) -> str:
    return "met" if measured < target else "MISSED"


def clear_http_cache(creds: Credentials) -> None:
    conn = runtime.connect(creds)  # the app's configured cache (sqlite in CM_DATA_DIR)
    conn.client.clear_cache()
    conn.client.close()


def cold_page_run(at: AppTest, creds: Credentials, expected_tabs: int) -> float:
    """One page run that must fetch everything: an emptied HTTP cache, a new connection (no
    in-memory profiles) and no stored results. The AppTest is reused so its own one-off start-up
    (scanning installed packages for components, ~200 ms) is not billed to the page."""
    st.cache_resource.clear()  # closes the last run's connection first: it must not read while the cache is cleared
    st.cache_data.clear()
    clear_http_cache(creds)
    if RESULTS_KEY in at.session_state:
        del at.session_state[RESULTS_KEY]
    t0 = time.perf_counter()
    at.run()
    elapsed = time.perf_counter() - t0
    if at.exception:
        raise SystemExit(f"the page raised: {[e.value for e in at.exception]}")
    if len(at.tabs) != expected_tabs:
        raise SystemExit(f"expected {expected_tabs} tabs, got {len(at.tabs)}")
    return elapsed


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    args, _ = ap.parse_known_args(argv)
    repeats = 3 if args.quick else max(1, args.repeats)
    cold_target = 3.5 * args.latency_ms  # issue 15: whole first page run <= 350 ms at 100 ms
    trips_target = 2.5  # issue 15: a cold lookup in at most 2.5 round trips

    data = tempfile.mkdtemp(prefix="bench-lookup-")
    os.environ.update(CM_DATA_DIR=data, CM_SECRETS_PATH=os.path.join(data, "no-secrets.toml"))
    os.environ.pop("CM_CACHE_BACKEND", None)  # the app's default cache
    with sandbox_process("--latency-ms", f"{args.latency_ms:g}") as url:
        os.environ.update(CM_API_KEY=CLIENT_API_KEY, CM_CLIENT_ID=MAIN_CLIENT_ID, CM_API_URL=url)
        creds = Credentials(api_key=CLIENT_API_KEY, client_id=MAIN_CLIENT_ID, api_url=url)

        # (b1) the engine alone, cold: a fresh client each time, with the app's cache emptied
        # first, and without any cache layer for comparison
        engine: dict[bool, list[float]] = {True: [], False: []}
        requests_per_lookup = 0
        for _ in range(repeats):
            for cached in (True, False):
                if cached:
                    clear_http_cache(creds)
                conn = runtime.connect(creds, cache=cached)
                t0 = time.perf_counter()
                # as the page asks: suppression list and client time zone in the first wave too
                profiles = conn.lookup_service().lookup_many(EMAILS, suppression=True, time_zone=True)
                engine[cached].append(time.perf_counter() - t0)
                requests_per_lookup = conn.client.calls_made
                conn.client.close()
                assert all(not p.failed for p in profiles), [p.all_problems() for p in profiles]

        # (b2) the page's first run, cold (new connection, empty cache)
        at = AppTest.from_file(PAGE, default_timeout=60)
        at.query_params["email"] = EMAILS
        cold_page_run(at, creds, len(EMAILS))  # warm-up: AppTest's own start-up
        cold_page = [cold_page_run(at, creds, len(EMAILS)) for _ in range(repeats)]

        # (a) warm reruns of the last AppTest: results in session_state, nothing fetched
        page = get_connection()  # the page's own (st.cache_resource, this process)
        # the dialog's list catalog, read in the background by the last cold run, is in first:
        # what is counted below is what the reruns send
        page.list_catalog().lists(wait=30)
        page_client = page.client
        served = page_client.calls_made
        warm = []
        for _ in range(max(repeats, 10)):
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
        fetched_on_rerun = page_client.calls_made - served
        page.list_catalog().lists(wait=30)  # a background read the reruns started ends while the sandbox answers
        st.cache_resource.clear()  # then the page's connection is closed

    engine_ms = ms(statistics.median(engine[True]))
    bare_ms = ms(statistics.median(engine[False]))
    page_ms = ms(statistics.median(cold_page))
    warm_ms = ms(statistics.median(warm))
    warm_p90 = ms(sorted(warm)[int(0.9 * (len(warm) - 1))])

    print(f"Lookup page benchmark — sandbox in its own process, latency {args.latency_ms:.0f} ms/request, "
          f"{len(EMAILS)} addresses ({', '.join(EMAILS)}), medians of {repeats} runs")
    print(f"{'measure':<52}{'target':>12}{'measured':>12}  verdict")
    print(f"{'(a) warm rerun of the page (AppTest script time)':<52}{'< 150 ms':>12}{warm_ms:>9.0f} ms  "
          f"{verdict(warm_ms, RERUN_TARGET_MS)} (p90 {warm_p90:.0f} ms, {fetched_on_rerun} requests)")
    trips = (lambda v: f"{v / args.latency_ms:.1f} round trips") if args.latency_ms else (lambda v: "")
    print(f"{'(b) cold lookup, lookup_many, app cache emptied':<52}{f'< {cold_target:.0f} ms':>12}"
          f"{engine_ms:>9.0f} ms  "
          f"{verdict(engine_ms, cold_target)} ({requests_per_lookup} requests, {trips(engine_ms)})")
    print(f"{'    same, client without any cache layer':<52}{f'< {cold_target:.0f} ms':>12}{bare_ms:>9.0f} ms  "
          f"{verdict(bare_ms, cold_target)} ({trips(bare_ms)}; target <= {trips_target} round trips)")
    print(f"{'(b) cold lookup, whole first page run (AppTest)':<52}{f'< {cold_target:.0f} ms':>12}{page_ms:>9.0f} ms  "
          f"{verdict(page_ms, cold_target)} (includes the script and drawing the tabs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
