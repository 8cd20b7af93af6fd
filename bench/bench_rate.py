"""Rate benchmark: a bulk run with default flags learns the account's limit, and a person's
lookup stays fast while a bulk run uses the whole budget (issue 15).

    .venv/bin/python bench/bench_rate.py [--quick]

Every run is the bulk engine (cmlib.bulk.jobs.BulkJob on a client made like ``python -m cmlib
bulk`` makes it: ``bulk_client_options()``, no cache, default flags -- no --rate) against a
sandbox in its own process with 50 ms latency per request. Nothing learned is carried from one
scenario to the next (as in a fresh process).

(a) Limit 150/s with X-RateLimit headers: at least 90% of the limit in useful calls/s, at most
    2% of calls answered 429.
(b) Limit 60/s, 429s without headers (the pace is found by probing): at least 70% of the limit,
    at most 5% 429s.
(c) No limit: bounded only by the in-flight cap -- at least 90% of the same run with pacing
    switched off (``--rate off``), measured here too; no 429s.
    Every row accounted for in all three (a result for every distinct address, no errors).
    Baseline, same run, same no-limit sandbox: the official createsend wrapper, sequential
    (``Client.lists_for_email`` per address, as a script would), measured on --baseline
    addresses (at least 300, never extrapolated from fewer) and printed beside (a) and (c).
(d) Lookup latency: the three-address demo customer looked up (LookupService.lookup_many, no
    cache: every lookup cold; half a second apart, as a person reads the result) on the app's
    interactive connection, idle and then while a bulk run of the same credential saturates
    the 150/s limit of (a). Target: median busy / median
    idle <= 2, and the bulk run keeps the budget used (at least 90% of the limit in useful calls/s
    over the busy window, lookups and bulk together).

Exit status 0 when every target is met, 1 otherwise. The machine may be shared: the figures are
noisy, which is why they are ratios measured in one run.
"""
from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_sandbox import CountingHTTPConnection, point_createsend_at  # noqa: E402
from sandbox_proc import sandbox_process  # noqa: E402

from cmlib import runtime  # noqa: E402
from cmlib.bulk.control import JobState  # noqa: E402
from cmlib.bulk.csv_input import parse_pasted  # noqa: E402
from cmlib.bulk.engine import bulk_client_options  # noqa: E402
from cmlib.bulk.jobs import BulkJob  # noqa: E402
from cmlib.bulk.validate import validate_table  # noqa: E402
from cmlib.config import Credentials  # noqa: E402
from cmlib.pacing import LEARN, RateSetting  # noqa: E402
from cmlib.ratelimit import PaceStatus, RateBudget, reset_rate_budgets  # noqa: E402
from cmlib.sandbox import CLIENT_API_KEY, DEMO_CUSTOMERS, MAIN_CLIENT_ID, Sandbox  # noqa: E402

LATENCY_MS = 50.0
LOOKUP_GAP = 0.5  # seconds between two lookups: a person reads the result (back to back, lookups alone fill a window)
LOOKUP_EMAILS = list(DEMO_CUSTOMERS["three_addresses"])


@dataclass(frozen=True)
class Run:
    n: int
    seconds: float
    useful: int  # calls answered, 429s excepted
    answers: int
    rate_limited: int
    results: int
    errors: int
    distinct: int
    final_rate: float | None

    @property
    def calls_per_s(self) -> float:
        return self.useful / self.seconds

    @property
    def share_429(self) -> float:
        return self.rate_limited / max(1, self.answers)

    @property
    def accounted(self) -> bool:
        return self.results == self.distinct and self.errors == 0


def addresses(n: int) -> list[str]:
    """The sandbox's own subscribers first (real memberships), then unknown addresses."""
    known = Sandbox(seed=7).data.emails(MAIN_CLIENT_ID)
    out = list(known[:n])
    i = 0
    while len(out) < n:
        out.append(f"rate.user{i}@example.net")
        i += 1
    return out


def creds(url: str) -> Credentials:
    return Credentials(api_key=CLIENT_API_KEY, client_id=MAIN_CLIENT_ID, api_url=url)


def bulk_job(url: str, emails: Sequence[str], rate: RateSetting = LEARN) -> tuple[BulkJob, RateBudget]:
    """A job on a client made as the bulk CLI makes it (default flags unless ``rate``)."""
    conn = runtime.connect(creds(url), cache=False,
                           options=bulk_client_options() if rate is LEARN else bulk_client_options(rate))
    job = BulkJob(conn.client, conn.client_id, validate_table(parse_pasted("\n".join(emails))), owned=conn)
    return job, conn.client.limiter.budget


def run_bulk(url: str, emails: Sequence[str], label: str, rate: RateSetting = LEARN) -> Run:
    reset_rate_budgets()  # a fresh process: nothing learned yet
    job, budget = bulk_job(url, emails, rate)
    t0 = time.perf_counter()
    job.start()
    last = t0
    while not job.join(1.0):
        if time.perf_counter() - last > 10:
            last = time.perf_counter()
            print(f"  ... {label}: {job.progress().describe()}; pace {budget.rate or 0:.0f}/s", flush=True)
    seconds = time.perf_counter() - t0
    snap = job.snapshot()
    st = budget.status()
    return Run(len(emails), seconds, st.answers - st.rate_limited, st.answers, st.rate_limited, len(snap.results),
               sum(1 for r in snap.results.values() if not r.ok), job.input.counts.valid, st.rate)


@dataclass(frozen=True)
class Baseline:
    """The official wrapper, one call after another: what a script without our engine gets."""

    n: int
    seconds: float
    calls: int
    rows: int  # addresses answered (an unknown address answers an empty list: still a row)
    errors: int

    @property
    def calls_per_s(self) -> float:
        return self.calls / self.seconds


def run_createsend(url: str, emails: Sequence[str]) -> Baseline:
    """createsend, sequential, pointed at the sandbox as bench_sandbox does (plain HTTP, counted)."""
    import createsend  # only this scenario needs it

    client = createsend.Client(point_createsend_at(url), MAIN_CLIENT_ID)
    calls0 = CountingHTTPConnection.calls
    rows = errors = 0
    t0 = time.perf_counter()
    for email in emails:
        try:
            client.lists_for_email(email)
            rows += 1
        except Exception:  # a baseline counts failures, it does not stop on them
            errors += 1
    return Baseline(len(emails), time.perf_counter() - t0, CountingHTTPConnection.calls - calls0, rows, errors)


@dataclass(frozen=True)
class Latency:
    idle: list[float]
    busy: list[float]
    calls_per_lookup: int
    busy_calls_per_s: float  # useful calls/s of the credential (bulk + lookups) over the busy window
    bulk_rows_per_s: float
    busy_429: float

    @property
    def ratio(self) -> float:
        return statistics.median(self.busy) / statistics.median(self.idle)


def lookup_latency(url: str, bulk_size: int, repeats: int) -> Latency:
    reset_rate_budgets()
    interactive = runtime.connect(creds(url), cache=False)  # the app's connection: interactive defaults
    try:
        svc = interactive.lookup_service()

        def lookup() -> float:
            time.sleep(LOOKUP_GAP)
            t0 = time.perf_counter()
            profiles = svc.lookup_many(LOOKUP_EMAILS)
            elapsed = time.perf_counter() - t0
            if any(p.failed for p in profiles):
                raise SystemExit(f"a lookup failed: {[p.all_problems() for p in profiles]}")
            return elapsed

        before = interactive.client.calls_made
        lookup()  # warm-up: connections, the learned pace
        calls = interactive.client.calls_made - before
        idle = [lookup() for _ in range(repeats)]
        job, budget = bulk_job(url, addresses(bulk_size))
        job.start()
        try:
            # saturating: well into the run, with the pace learned
            job.wait(lambda p: p.done >= 400 or p.state != JobState.RUNNING, timeout=120)
            st0: PaceStatus = budget.status()
            done0, t0 = job.progress().done, time.perf_counter()
            busy = [lookup() for _ in range(repeats)]
            window = time.perf_counter() - t0
            st1 = budget.status()
            done1 = job.progress().done
            if job.finished:
                raise SystemExit("the bulk run ended before the lookups did: give it more addresses")
        finally:
            job.cancel()
            job.join(60)
    finally:
        interactive.close()
    useful = (st1.answers - st1.rate_limited) - (st0.answers - st0.rate_limited)
    answers = st1.answers - st0.answers
    return Latency(idle, busy, calls, useful / window, (done1 - done0) / window,
                   (st1.rate_limited - st0.rate_limited) / max(1, answers))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs, fewer lookups")
    ap.add_argument("--baseline", type=int, default=300,
                    help="addresses the createsend baseline looks up for real (at least 300)")
    args = ap.parse_args(argv)
    size_a, size_b, size_c = (1_500, 600, 1_500) if args.quick else (5_000, 2_000, 4_000)
    repeats = 3 if args.quick else 7
    logging.getLogger("cmlib").setLevel(logging.ERROR)  # a retry warning per 429 would drown the report
    data = tempfile.mkdtemp(prefix="bench-rate-")
    os.environ.update(CM_DATA_DIR=data, CM_SECRETS_PATH=os.path.join(data, "no-secrets.toml"))

    print(f"Rate benchmark{' (quick)' if args.quick else ''}: bulk runs with default flags (bulk_client_options(): "
          f"learn the pace, {bulk_client_options().max_in_flight} in flight) against a sandbox with "
          f"{LATENCY_MS:g} ms latency.", flush=True)
    lat = f"{LATENCY_MS:g}"
    with sandbox_process("--latency-ms", lat, "--rate-limit", "150/s") as url:
        print(f"(a) {size_a:,} addresses, limit 150/s with headers ...", flush=True)
        a = run_bulk(url, addresses(size_a), "(a)")
    with sandbox_process("--latency-ms", lat, "--rate-limit", "150/s") as url:  # a fresh window, nothing learned
        print(f"(d) lookup latency idle vs during a saturating bulk run ({repeats} lookups each) ...", flush=True)
        d = lookup_latency(url, 8_000 if not args.quick else 4_000, repeats)
    with sandbox_process("--latency-ms", lat, "--rate-limit", "60/s", "--no-rate-limit-headers") as url:
        print(f"(b) {size_b:,} addresses, limit 60/s, 429s without headers ...", flush=True)
        b = run_bulk(url, addresses(size_b), "(b)")
    with sandbox_process("--latency-ms", lat) as url:
        print(f"(c) {size_c:,} addresses, no limit: default flags, then --rate off ...", flush=True)
        c = run_bulk(url, addresses(size_c), "(c)")
        c_off = run_bulk(url, addresses(size_c), "(c, off)", rate=None)
        n_base = max(300, args.baseline)
        print(f"baseline: createsend, sequential, {n_base} addresses ...", flush=True)
        base = run_createsend(url, addresses(n_base))

    def line(name: str, r: Run, limit: float | None) -> str:
        share = f" = {r.calls_per_s / limit:.0%} of {limit:g}/s" if limit else ""
        return (f"{name}: {r.n:,} addresses in {r.seconds:.1f} s, {r.calls_per_s:.1f} useful calls/s{share}; "
                f"{r.answers:,} calls, {r.rate_limited} answered 429 ({r.share_429:.2%}); pace at the end "
                f"{r.final_rate or 0:.0f}/s; {r.results:,}/{r.distinct:,} rows, {r.errors} errors")

    print()
    print(line("(a) 150/s, headers", a, 150))
    print(line("(b) 60/s, no headers", b, 60))
    print(line("(c) no limit, learn", c, None))
    print(line("(c) no limit, --rate off", c_off, None))
    print(f"baseline: createsend, sequential: {base.n:,} addresses in {base.seconds:.1f} s, "
          f"{base.calls_per_s:.1f} calls/s ({base.calls:,} calls); {base.rows:,}/{base.n:,} rows, "
          f"{base.errors} errors; "
          f"(a) is {a.calls_per_s / base.calls_per_s:.1f}x, (c) {c.calls_per_s / base.calls_per_s:.1f}x its pace")
    print(f"(d) lookup of {len(LOOKUP_EMAILS)} addresses ({d.calls_per_lookup} calls): idle "
          f"{', '.join(f'{x * 1000:.0f}' for x in d.idle)} ms; during bulk "
          f"{', '.join(f'{x * 1000:.0f}' for x in d.busy)} ms; meanwhile {d.busy_calls_per_s:.1f} useful calls/s "
          f"in all ({d.bulk_rows_per_s:.1f} bulk rows/s, {d.busy_429:.2%} 429s)")

    c_share = c.calls_per_s / c_off.calls_per_s
    in_flight_bound = bulk_client_options().max_in_flight / (LATENCY_MS / 1000)
    table = [
        ("(a) 150/s with headers: throughput", ">= 90%", f"{a.calls_per_s / 150:.0%} ({a.calls_per_s:.1f}/s)",
         a.calls_per_s >= 0.9 * 150),
        ("(a) 429s", "<= 2%", f"{a.share_429:.2%} ({a.rate_limited})", a.share_429 <= 0.02),
        ("(a) every row accounted for", "all", f"{a.results:,}/{a.distinct:,}, {a.errors} errors", a.accounted),
        ("(b) 60/s, no headers: throughput", ">= 70%", f"{b.calls_per_s / 60:.0%} ({b.calls_per_s:.1f}/s)",
         b.calls_per_s >= 0.7 * 60),
        ("(b) 429s", "<= 5%", f"{b.share_429:.2%} ({b.rate_limited})", b.share_429 <= 0.05),
        ("(b) every row accounted for", "all", f"{b.results:,}/{b.distinct:,}, {b.errors} errors", b.accounted),
        ("(c) no limit: vs --rate off", ">= 90%", f"{c_share:.0%} ({c.calls_per_s:.0f}/s vs {c_off.calls_per_s:.0f}/s; "
         f"in-flight bound {in_flight_bound:.0f}/s)", c_share >= 0.9),
        ("(c) 429s", "0", f"{c.rate_limited}", c.rate_limited == 0),
        ("(c) every row accounted for", "all", f"{c.results:,}/{c.distinct:,}, {c.errors} errors", c.accounted),
        ("(d) lookup busy / idle (medians)", "<= 2", f"{d.ratio:.2f} ({statistics.median(d.busy) * 1000:.0f} ms vs "
         f"{statistics.median(d.idle) * 1000:.0f} ms)", d.ratio <= 2),
        ("(d) budget used during lookups", ">= 90%", f"{d.busy_calls_per_s / 150:.0%} ({d.busy_calls_per_s:.1f}/s)",
         d.busy_calls_per_s >= 0.9 * 150),
    ]
    w = max(len(t[0]) for t in table)
    print()
    print(f"{'measure':<{w}}  {'target':<8}  {'measured':<55}  ok")
    for name, target, measured, ok in table:
        print(f"{name:<{w}}  {target:<8}  {measured:<55}  {'yes' if ok else 'NO'}")
    return 0 if all(t[3] for t in table) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
