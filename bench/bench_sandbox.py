"""Benchmark against the local sandbox with 100 ms latency per request: our engine vs createsend.

    .venv/bin/python bench/bench_sandbox.py [--latency-ms 100] [--scan 1000] [--baseline-sample 100]

(a) Lookup of the three-address demo customer (ivan@, ivan.work@, ivan.old@: four lists each):
    ours = cmlib.lookup.LookupService.lookup_many (two concurrent waves: memberships + campaigns,
    then subscriber + history + list settings per list) on a client with ClientOptions(rate=200,
    max_in_flight=32); baseline = the official createsend wrapper making the same calls one after
    another, the obvious way. Then the same lookup again, answered from our HTTP cache.
(b) Membership scan of 1,000 addresses (900 the sandbox knows + 100 unknown): ours = the bulk
    engine (cmlib.bulk.engine: one listsforemail per address on the shared bounded pool);
    baseline = createsend in a loop, measured on a sample and extrapolated linearly (said so in
    the output). Every row is checked against the sandbox's own data: none may be lost.

The sandbox runs in its own process (``python -m cmlib.sandbox.cli``), like a remote API would:
in-process, its handler threads would compete with the client for the GIL and bill the client
for the server's CPU. ``--in-process`` runs it in this process instead, for comparison.

Exit status 0 when every target is met (cold lookup >= 5x, cached repeat < 50 ms, scan >= 8x,
no row lost), 1 otherwise.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import createsend  # noqa: E402
import createsend.createsend as cs_mod  # noqa: E402
from sandbox_proc import sandbox_process  # noqa: E402

from cmlib.bulk.engine import BulkLookup, RunControl, run_lookups  # noqa: E402
from cmlib.cache import CacheSettings  # noqa: E402
from cmlib.client import CampaignMonitor, ClientOptions  # noqa: E402
from cmlib.lookup import LookupService  # noqa: E402
from cmlib.ratelimit import RateLimiter  # noqa: E402
from cmlib.sandbox import CLIENT_API_KEY, DEMO_CUSTOMERS, MAIN_CLIENT_ID, Sandbox, Store  # noqa: E402
from cmlib.sandbox.seed import build_world, resolve_now  # noqa: E402

WORKERS = 32
T = TypeVar("T")


@dataclass
class Row:
    name: str
    seconds: float
    calls: int
    note: str = ""


class CountingHTTPConnection(http.client.HTTPConnection):
    """What createsend gets instead of its HTTPS connection: plain HTTP, and counted."""

    calls = 0
    _lock = threading.Lock()

    def request(self, *args: Any, **kwargs: Any) -> None:
        with CountingHTTPConnection._lock:
            CountingHTTPConnection.calls += 1
        super().request(*args, **kwargs)


def point_createsend_at(base_url: str) -> dict[str, str]:
    """createsend always speaks HTTPS: swap its connection class and base URI (see cm-api.md)."""
    cs_mod.VerifiedHTTPSConnection = CountingHTTPConnection
    createsend.CreateSend.base_uri = base_url
    cs_mod.CreateSendBase.timeout = 30
    return {"api_key": CLIENT_API_KEY}


def client_options(rate: float | None) -> ClientOptions:
    """rate/s, WORKERS in flight and, where the client has a token bucket, a burst the size of a fan-out."""
    kw: dict = {"rate": rate, "max_in_flight": WORKERS, "pool_size": WORKERS}
    if "burst" in {f.name for f in dataclasses.fields(ClientOptions)}:
        kw["burst"] = WORKERS
    return ClientOptions(**kw)


def calls_of(client: CampaignMonitor | None) -> int:
    """HTTP exchanges so far: our client counts its own (cache hits excluded), createsend's are counted above."""
    return client.calls_made if client is not None else CountingHTTPConnection.calls


def timed(counter: Callable[[], int], fn: Callable[[], T]) -> tuple[float, int, T]:
    before = counter()
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, counter() - before, result


@contextlib.contextmanager
def sandbox_url(latency_ms: float, now: datetime, in_process: bool) -> Iterator[str]:
    """Base URL of a seed-7 sandbox with the given latency and data "now"."""
    if in_process:
        with Sandbox(seed=7, latency_ms=latency_ms, now=now) as sb:
            yield sb.base_url
        return
    with sandbox_process("--latency-ms", str(latency_ms), "--now", now.isoformat()) as url:
        yield url


# ---------------------------------------------------------------------------- (a) lookup
_SERVICES: dict[int, LookupService] = {}


def ours_lookup(client: CampaignMonitor, client_id: str, emails: list[str], *, shared: bool = True) -> int:
    """Returns how many (address, list) rows came back.

    Like the app (one LookupService per connection, see cmlib.runtime.Connection), the service
    is shared per client unless ``shared=False``, which measures the HTTP cache alone.
    """
    if shared:
        svc = _SERVICES.get(id(client))
        if svc is None:
            svc = _SERVICES[id(client)] = LookupService(client, client_id, max_workers=WORKERS)
        return sum(len(p.lists) for p in svc.lookup_many(emails))
    with LookupService(client, client_id, max_workers=WORKERS, memo_ttl=0) as svc:
        return sum(len(p.lists) for p in svc.lookup_many(emails))


def createsend_lookup(auth: dict[str, str], client_id: str, emails: list[str]) -> int:
    """The obvious sequential way, fetching what our lookup fetches."""
    client = createsend.Client(auth, client_id)
    client.campaigns()  # subjects and sent dates for the history
    rows = 0
    seen_lists: set[str] = set()
    for email in emails:
        for m in client.lists_for_email(email):
            sub = createsend.Subscriber(auth, m.ListID, email)
            sub.get(include_tracking_preference=True)
            sub.history()
            if m.ListID not in seen_lists:
                seen_lists.add(m.ListID)
                createsend.List(auth, m.ListID).details()  # is it AllClientLists?
            rows += 1
    return rows


# ---------------------------------------------------------------------------- (b) scan
def ours_scan(client: CampaignMonitor, client_id: str, emails: list[str]) -> dict[str, tuple]:
    lookup = BulkLookup(client, client_id)
    out: dict[str, tuple] = {}
    for _, result in run_lookups(lookup, emails, lambda e: e, control=RunControl(), max_workers=WORKERS):
        if result.ok:
            out[result.email] = tuple(sorted(result.memberships))
    return out


def createsend_scan(auth: dict[str, str], client_id: str, emails: list[str]) -> dict[str, tuple]:
    client = createsend.Client(auth, client_id)
    return {e: tuple(sorted((m.ListID, m.SubscriberState) for m in client.lists_for_email(e))) for e in emails}


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--scan", type=int, default=1000, help="addresses in the membership scan")
    ap.add_argument("--baseline-sample", type=int, default=100,
                    help="addresses createsend scans for real (the rest is extrapolated); 0 = all")
    ap.add_argument("--in-process", action="store_true", help="run the sandbox in this process")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cm-bench-") as tmp_dir:
        return run(args, Path(tmp_dir))


def run(args: argparse.Namespace, tmp: Path) -> int:
    os.environ["CM_DATA_DIR"] = str(tmp)  # never write cache files into the working tree
    failures: list[str] = []
    now = resolve_now()
    data = Store(build_world(7, now))  # the same seeded data the sandbox serves: the expected answers
    cid = MAIN_CLIENT_ID
    with sandbox_url(args.latency_ms, now, args.in_process) as base_url:
        auth = point_createsend_at(base_url)
        options = client_options(rate=200)
        print(f"sandbox {base_url} ({'in process' if args.in_process else 'own process'}), "
              f"latency {args.latency_ms:g} ms per request; our client: {options}\n")

        # (a) the three-address customer
        emails = list(DEMO_CUSTOMERS["three_addresses"])
        cs_calls = lambda: calls_of(None)  # noqa: E731
        t_cs, c_cs, rows_cs = timed(cs_calls, lambda: createsend_lookup(auth, cid, emails))
        plain = CampaignMonitor(CLIENT_API_KEY, base_url, options=options, cache=None)
        t_plain, c_plain, rows_plain = timed(lambda: calls_of(plain), lambda: ours_lookup(plain, cid, emails))
        cached = CampaignMonitor(CLIENT_API_KEY, base_url, options=options,
                                 cache=CacheSettings(path=tmp / "http_cache.sqlite", salt_path=tmp / "salt"))
        t_ours, c_ours, rows_ours = timed(lambda: calls_of(cached), lambda: ours_lookup(cached, cid, emails))
        t_warm, c_warm, rows_warm = timed(lambda: calls_of(cached), lambda: ours_lookup(cached, cid, emails))
        t_http, c_http, _ = timed(lambda: calls_of(cached),
                                  lambda: ours_lookup(cached, cid, emails, shared=False))
        # its own limiter: without one it would share the credential's budget with `plain` (cmlib.ratelimit)
        unpaced = CampaignMonitor(CLIENT_API_KEY, base_url, options=client_options(rate=None),
                                  cache=CacheSettings(path=tmp / "http_cache.sqlite", salt_path=tmp / "salt"),
                                  limiter=RateLimiter(None, WORKERS))
        t_unpaced, c_unpaced, _ = timed(lambda: calls_of(unpaced), lambda: ours_lookup(unpaced, cid, emails))
        ratio_plain = t_cs / t_plain if t_plain else float("inf")
        ratio_a = t_cs / t_ours if t_ours else float("inf")
        if not rows_ours == rows_cs == rows_warm == rows_plain:
            failures.append(f"lookup rows differ: ours {rows_ours}/{rows_plain}, cached {rows_warm}, "
                            f"createsend {rows_cs}")
        if ratio_a < 5:
            failures.append(f"cold lookup (with cache writes) only {ratio_a:.1f}x faster (target >= 5x)")
        if t_warm >= 0.05:
            failures.append(f"cached repeat took {t_warm * 1000:.0f} ms (target < 50 ms)")
        table_a = [
            Row("createsend, sequential", t_cs, c_cs, f"{rows_cs} address x list rows"),
            Row("ours, concurrent, no cache", t_plain, c_plain, f"{ratio_plain:.1f}x faster"),
            Row("ours, concurrent, sqlite cache (cold)", t_ours, c_ours, f"{ratio_a:.1f}x faster (target >= 5x)"),
            Row("ours, repeat from cache", t_warm, c_warm, "target < 50 ms (the app's path: profile memo)"),
            Row("  same, HTTP cache only", t_http, c_http, "diagnostic: a new service, 32 cache hits"),
            Row("  same, client rate limiter off", t_unpaced, c_unpaced, "diagnostic: is the client limiter the cost?"),
        ]

        # (b) the membership scan
        known = sorted(data.emails(cid), key=str.lower)[: max(0, args.scan - args.scan // 10)]
        unknown = [f"not.a.subscriber{i}@example.net" for i in range(args.scan - len(known))]
        scan = known + unknown
        scanner = CampaignMonitor(CLIENT_API_KEY, base_url, options=options, cache=None)
        t_scan, c_scan, got = timed(lambda: calls_of(scanner), lambda: ours_scan(scanner, cid, scan))
        sample = scan if args.baseline_sample <= 0 else scan[:: max(1, len(scan) // args.baseline_sample)][
            : args.baseline_sample]
        t_cs_sample, c_cs_sample, cs_got = timed(cs_calls, lambda: createsend_scan(auth, cid, sample))
        t_cs_scan = t_cs_sample * len(scan) / len(sample)
        ratio_b = t_cs_scan / t_scan if t_scan else float("inf")
        expected = {e: tuple(sorted((m.list_id, m.state) for m in data.memberships(cid, e))) for e in scan}
        lost = [e for e in scan if got.get(e) != expected[e]]
        cs_wrong = [e for e in sample if cs_got.get(e) != expected[e]]
        if lost:
            failures.append(f"scan lost or garbled {len(lost)} of {len(scan)} rows, e.g. {lost[:3]}")
        if cs_wrong:
            failures.append(f"createsend baseline disagrees on {len(cs_wrong)} rows")
        if ratio_b < 8:
            failures.append(f"scan only {ratio_b:.1f}x faster (target >= 8x)")
        extrapolated = len(sample) < len(scan)
        table_b = [
            Row(f"createsend, sequential{' (extrapolated)' if extrapolated else ''}", t_cs_scan,
                c_cs_sample * len(scan) // len(sample),
                f"measured {len(sample)} addresses in {t_cs_sample:.1f} s, x{len(scan) / len(sample):g}"
                if extrapolated else f"{len(cs_got)} rows"),
            Row("ours, bulk engine concurrent", t_scan, c_scan,
                f"{ratio_b:.1f}x faster (target >= 8x); {len(got)}/{len(scan)} rows, {len(lost)} lost"),
        ]

    def show(title: str, rows: list[Row]) -> None:
        print(title)
        print(f"  {'approach':<42} {'time':>10} {'calls':>7}  note")
        for r in rows:
            t = f"{r.seconds * 1000:.0f} ms" if r.seconds < 1 else f"{r.seconds:.2f} s"
            print(f"  {r.name:<42} {t:>10} {r.calls:>7}  {r.note}")
        print()

    show(f"(a) lookup of {', '.join(emails)}", table_a)
    show(f"(b) membership scan of {len(scan)} addresses ({len(known)} known, {len(unknown)} unknown)", table_b)
    if failures:
        print("MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
