"""Bulk lookup benchmark: throughput against a rate-limited API, vs the official wrapper, and
the CLI's peak memory on 100,000 addresses.

    .venv/bin/python bench/bench_bulk.py [--quick]

(1) Throughput. 10,000 addresses (1,000 with --quick) through the bulk engine
    (cmlib.bulk.engine.BulkJob: one listsforemail per address on the shared bounded pool)
    against a sandbox with 100 ms latency and a 100 requests/s rate limit per key. Our client
    is set to rate=95/s (just under the limit), 20 in flight, burst 1 (strict spacing). Target: at least 90% of the
    rate limit, with the sandbox's 429s rare (under 1% of requests), and every row accounted for.
(2) Baseline. The official ``createsend`` wrapper calling lists_for_email in a loop, the
    obvious way, measured on 50 addresses (20 with --quick) against the same sandbox and
    extrapolated linearly to the full size (it is sequential, so linear is fair; said so below).
(3) Memory. ``python -m cmlib bulk`` on a 100,000-row CSV (20,000 with --quick) as a
    subprocess against a sandbox with no latency and no rate limit; peak RSS of the CLI process
    from getrusage(RUSAGE_CHILDREN) in a one-child wrapper, next to a 1,000-row run to show the
    growth. Target: under 300 MB.
(4) Memory of showing results. A finished 20,000-row run (5,000 with --quick) on the Bulk page,
    opened by two sessions (AppTest, in a child process of its own): the growth of the process's
    peak RSS (VmHWM, reset just before) and of its RSS after both, against a baseline page that
    shows the same run the way the page did before issue 12 -- the whole matrix built, styled
    and kept per session. Target: at most half the baseline's peak growth. ``--memory-only``
    runs just this part.

The sandboxes run in their own processes, like a remote API: in-process, their handler threads
would compete with the client for the GIL. Exit status 0 when every target is met, 1 otherwise.
"""
from __future__ import annotations

import argparse
import gc
import http.client
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import createsend  # noqa: E402
import createsend.createsend as cs_mod  # noqa: E402
from sandbox_proc import sandbox_process  # noqa: E402

from cmlib.bulk.csv_input import parse_pasted  # noqa: E402
from cmlib.bulk.jobs import BulkJob  # noqa: E402
from cmlib.bulk.validate import validate_table  # noqa: E402
from cmlib.client import CampaignMonitor, ClientOptions  # noqa: E402
from cmlib.sandbox import CLIENT_API_KEY, MAIN_CLIENT_ID, Sandbox  # noqa: E402

RATE_LIMIT = 100.0
LATENCY_MS = 100.0
OUR_RATE = 95.0  # a little under the limit: its 1-second windows must never see a 101st request
OUR_IN_FLIGHT = 20

# Runs one command and prints its peak RSS in KB: RUSAGE_CHILDREN of a process whose only child
# is the CLI, so nothing else (a sandbox, an earlier run) is mixed into the number.
_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(rc)")


def addresses(n: int) -> list[str]:
    """The sandbox's own subscribers first (real memberships), then unknown addresses."""
    known = Sandbox(seed=7).data.emails(MAIN_CLIENT_ID)
    out = list(known[:n])
    i = 0
    while len(out) < n:
        out.append(f"bench.user{i}@example.net")
        i += 1
    return out


class _Count429(logging.Handler):
    """Counts the client's retry warnings caused by a 429 (one per 429 received)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "429" in record.getMessage():
            self.count += 1


def throughput(url: str, emails: list[str]) -> dict:
    client = CampaignMonitor(CLIENT_API_KEY, url, cache=None,
                             options=ClientOptions(rate=OUR_RATE, max_in_flight=OUR_IN_FLIGHT, burst=1,
                                                   pool_size=OUR_IN_FLIGHT + 4))
    counter = _Count429()
    log = logging.getLogger("cmlib.client")
    log.addHandler(counter)
    log.propagate = False
    try:
        bi = validate_table(parse_pasted("\n".join(emails)))
        job = BulkJob(client, MAIN_CLIENT_ID, bi, max_workers=OUR_IN_FLIGHT)
        job.lookup.prepare()  # the one lists call, outside the timed part
        calls_before = client.calls_made
        job.lookup.prepare = lambda: None  # type: ignore[method-assign]  # made once above, not in the timing
        t0 = time.perf_counter()
        job.start()
        last = 0.0
        while not job.join(1.0):
            if time.perf_counter() - last > 10:
                last = time.perf_counter()
                print(f"  ... {job.progress().describe()}", flush=True)
        seconds = time.perf_counter() - t0
        snap = job.snapshot()
    finally:
        log.removeHandler(counter)
        log.propagate = True
        client.close()
    calls = client.calls_made - calls_before
    return {
        "n": len(emails), "seconds": seconds, "rate": len(emails) / seconds, "calls": calls,
        "429": counter.count, "results": len(snap.results), "errors": sum(1 for r in snap.results.values() if not r.ok),
        "distinct": bi.counts.valid,
    }


def baseline(url: str, emails: list[str]) -> dict:
    cs_mod.VerifiedHTTPSConnection = http.client.HTTPConnection
    createsend.CreateSend.base_uri = url
    cs_mod.CreateSendBase.timeout = 30
    c = createsend.Client({"api_key": CLIENT_API_KEY}, MAIN_CLIENT_ID)
    t0 = time.perf_counter()
    for e in emails:
        c.lists_for_email(e)
    seconds = time.perf_counter() - t0
    return {"n": len(emails), "seconds": seconds, "rate": len(emails) / seconds}


def write_csv(path: Path, n: int) -> None:
    known = Sandbox(seed=7).data.emails(MAIN_CLIENT_ID)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write("Name;Email;Company;Note\r\n")
        for i in range(n):
            email = known[i % len(known)] if i % 10 == 0 else f"attendee{i}@event{i % 97}.example.org"
            fh.write(f"Attendee {i};{email};Company {i % 500};registered at the booth, day {i % 3 + 1}\r\n")


def cli_peak(url: str, rows: int, workdir: Path) -> dict:
    src = workdir / f"in-{rows}.csv"
    out = workdir / f"out-{rows}.csv"
    write_csv(src, rows)
    cmd = [sys.executable, "-c", _WRAPPER, sys.executable, "-m", "cmlib", "bulk", str(src), "-o", str(out),
           "--rate", "off", "--concurrency", "16", "-q"]
    env = dict(os.environ, PYTHONPATH=str(ROOT), CM_API_KEY=CLIENT_API_KEY, CM_CLIENT_ID=MAIN_CLIENT_ID,
               CM_API_URL=url, CM_DATA_DIR=str(workdir / "data"))
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak_kb = int(r.stderr.strip().splitlines()[-1])
    with open(out, encoding="utf-8-sig") as fh:
        written = sum(1 for _ in fh) - 1
    return {"rows": rows, "seconds": seconds, "peak_mb": peak_kb / 1024, "exit": r.returncode, "written": written,
            "stderr": r.stderr}


PAGE = str(ROOT / "pages" / "bulk.py")


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset VmHWM (Linux: write 5 to clear_refs) so the peak measured is the rendering's own."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _baseline_page() -> None:
    """The results as the page showed them before issue 12: the whole matrix built, its states
    scanned, styled and shown, and the tables kept in the session (AppTest.from_function runs
    this source as a script, so it imports what it uses)."""
    import streamlit as st

    from cmlib.bulk.matrix import build_matrix, filter_states, layout_for, style_matrix, summarise
    from ui.bulk_view import registry

    job = registry().get(st.query_params.get("job"))
    assert job is not None
    snap = job.snapshot()
    results = dict(snap.results)  # the old snapshot copied the results on every rerun
    layout = layout_for(snap)
    summary, counts = summarise(snap, layout)
    matrix = build_matrix(snap, layout)
    st.session_state["bulk.tables"] = (layout, summary, counts, matrix, results)
    st.dataframe(summary)
    st.multiselect("States", filter_states(matrix, layout))
    st.dataframe(style_matrix(matrix, layout), hide_index=True, column_order=layout.shown_columns)


def memory_child(kind: str, url: str, rows: int) -> dict:
    """In a process of its own: run a job, then open its results in two sessions and measure."""
    os.environ.update(CM_API_KEY=CLIENT_API_KEY, CM_CLIENT_ID=MAIN_CLIENT_ID, CM_API_URL=url,
                      CM_CACHE_BACKEND="memory", CM_DATA_DIR=tempfile.mkdtemp(prefix="bench-bulk-mem-"))
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    from streamlit.testing.v1 import AppTest

    from cmlib.bulk.engine import bulk_client_options
    from cmlib.bulk.structure import read_bytes
    from cmlib.bulk.validate import InputSource
    from cmlib.config import Credentials
    from ui.bulk_view import registry

    known = Sandbox(seed=7).data.emails(MAIN_CLIENT_ID)
    creds = Credentials(api_key=CLIENT_API_KEY, client_id=MAIN_CLIENT_ID, api_url=url)

    def finished_job(n: int) -> BulkJob:
        lines = ["Name;Email;Company;Note"] + [
            f"Attendee {i};{known[i % len(known)] if i % 10 == 0 else f'attendee{i}@event{i % 97}.example.org'};"
            f"Company {i % 500};registered at the booth, day {i % 3 + 1}" for i in range(n)]
        bi = validate_table(read_bytes("\n".join(lines).encode()), source_name="event.csv",
                            source=InputSource.UPLOADED)
        job = BulkJob.connect(creds, bi, options=bulk_client_options(rate=None, concurrency=16))
        registry().add(job)
        job.start()
        assert job.join(1800), "the run did not finish"
        return job

    def show(job: BulkJob) -> AppTest:
        at = AppTest.from_file(PAGE, default_timeout=600) if kind == "page" else \
            AppTest.from_function(_baseline_page, default_timeout=600)
        at.query_params["job"] = job.id
        at.run()
        assert not at.exception, at.exception
        return at

    show(finished_job(200))  # imports and caches warm: every code path of showing results has run once
    job = finished_job(rows)
    gc.collect()
    base = _status_kb("VmRSS")
    exact = _reset_peak()
    sessions = [show(job) for _ in range(2)]  # both kept alive: what they hold is measured too
    gc.collect()
    peak = (_status_kb("VmHWM") if exact else _status_kb("VmRSS")) - base
    retained = _status_kb("VmRSS") - base
    return {"kind": kind, "rows": rows, "sessions": len(sessions), "peak_mb": peak / 1024,
            "retained_mb": retained / 1024, "exact": exact}


def showing_memory(url: str, rows: int) -> dict[str, dict]:
    out = {}
    for kind in ("baseline", "page"):
        r = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-child", kind, "--url", url,
                            "--rows", str(rows)], cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"memory child {kind} failed:\n{r.stderr[-3000:]}")
        out[kind] = json.loads(r.stdout.strip().splitlines()[-1])
    return out


def print_memory(mem: dict[str, dict]) -> tuple[str, str, str, bool]:
    page, base = mem["page"], mem["baseline"]
    ratio = page["peak_mb"] / base["peak_mb"] if base["peak_mb"] > 0 else 0.0
    note = "" if page["exact"] else " (VmHWM could not be reset: RSS after, not peak)"
    print(f"Showing results ({page['rows']:,} rows, two sessions): page peak +{page['peak_mb']:.0f} MB, kept "
          f"+{page['retained_mb']:.0f} MB; baseline (whole matrix per session, as before) peak "
          f"+{base['peak_mb']:.0f} MB, kept +{base['retained_mb']:.0f} MB; ratio {ratio:.2f}{note}.")
    return (f"showing {page['rows']:,} rows, 2 sessions", "<= 0.5 x before",
            f"{ratio:.2f} (+{page['peak_mb']:.0f} vs +{base['peak_mb']:.0f} MB)", ratio <= 0.5)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1,000 / 20 / 20,000 / 5,000 instead of 10,000 / 50 / "
                    "100,000 / 20,000")
    ap.add_argument("--memory-only", action="store_true", help="only (4), the memory of showing results")
    ap.add_argument("--memory-child", choices=["page", "baseline"], help=argparse.SUPPRESS)
    ap.add_argument("--url", help=argparse.SUPPRESS)
    ap.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.url, args.rows)))
        return 0
    shown_rows = 5_000 if args.quick else 20_000
    if args.memory_only:
        with sandbox_process() as url:
            print(f"(4) showing the results of {shown_rows:,} rows: the page vs the whole matrix ...", flush=True)
            row = print_memory(showing_memory(url, shown_rows))
        print(f"{row[0]}  target {row[1]}  measured {row[2]}  {'yes' if row[3] else 'NO'}")
        return 0 if row[3] else 1
    n = 1_000 if args.quick else 10_000
    sample = 20 if args.quick else 50
    big = 20_000 if args.quick else 100_000

    print(f"Bulk benchmark{' (quick)' if args.quick else ''}: sandbox latency {LATENCY_MS:g} ms, rate limit "
          f"{RATE_LIMIT:g}/s; our client rate {OUR_RATE:g}/s, {OUR_IN_FLIGHT} in flight.", flush=True)
    emails = addresses(n)
    with sandbox_process("--latency-ms", str(LATENCY_MS), "--rate-limit", f"{RATE_LIMIT:g}/s") as url:
        print(f"(1) {n:,} addresses through the bulk engine ...", flush=True)
        ours = throughput(url, emails)
        print(f"(2) createsend, sequential, {sample} addresses ...", flush=True)
        time.sleep(1.1)  # a fresh rate-limit window
        base = baseline(url, emails[:sample])
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp, sandbox_process() as url:
        print(f"(3) python -m cmlib bulk on 1,000 and {big:,} rows (latency 0, no rate limit) ...", flush=True)
        small = cli_peak(url, 1_000, Path(tmp))
        large = cli_peak(url, big, Path(tmp))
        print(f"(4) showing the results of {shown_rows:,} rows: the page vs the whole matrix ...", flush=True)
        mem = showing_memory(url, shown_rows)

    share = ours["rate"] / RATE_LIMIT
    r429 = ours["429"] / max(1, ours["calls"])
    base_total = n / base["rate"]
    speedup = ours["rate"] / base["rate"]
    accounted = ours["results"] == ours["distinct"] and ours["errors"] == 0
    rows_ok = large["written"] == big and large["exit"] in (0, 3)

    print()
    print(f"Throughput: {n:,} addresses in {ours['seconds']:.1f} s = {ours['rate']:.1f} addresses/s "
          f"({ours['calls']:,} calls, {ours['429']} answered 429, {ours['errors']} errors).")
    print(f"Baseline (createsend, sequential): {base['n']} addresses in {base['seconds']:.2f} s = "
          f"{base['rate']:.1f}/s; EXTRAPOLATED linearly to {n:,}: {base_total:.0f} s (measured on {base['n']} only).")
    print(f"CLI memory: 1,000 rows peak {small['peak_mb']:.0f} MB in {small['seconds']:.1f} s; {big:,} rows peak "
          f"{large['peak_mb']:.0f} MB in {large['seconds']:.1f} s ({large['written']:,} rows written, "
          f"exit {large['exit']}); growth {large['peak_mb'] - small['peak_mb']:+.0f} MB.")
    if large["exit"] not in (0, 3):
        print(large["stderr"][-2000:])
    memory_row = print_memory(mem)

    table = [
        ("throughput vs rate limit", ">= 90%", f"{share:.0%} ({ours['rate']:.1f}/s of {RATE_LIMIT:g}/s)", share >= 0.9),
        ("429s from the sandbox", "< 1% of calls", f"{r429:.2%} ({ours['429']})", r429 < 0.01),
        ("every row accounted for", "all, no errors", f"{ours['results']:,}/{ours['distinct']:,}, "
         f"{ours['errors']} errors", accounted),
        ("vs createsend sequential", "faster (info)", f"{speedup:.1f}x ({ours['seconds']:.0f} s vs ~{base_total:.0f} s "
         "extrapolated)", speedup > 1),
        (f"CLI peak RSS, {big:,} rows", "< 300 MB", f"{large['peak_mb']:.0f} MB", large["peak_mb"] < 300),
        (f"CLI rows written, {big:,} rows", "all", f"{large['written']:,}", rows_ok),
        memory_row,
    ]
    w = max(len(t[0]) for t in table)
    print()
    print(f"{'measure':<{w}}  {'target':<15}  {'measured':<45}  ok")
    for name, target, measured, ok in table:
        print(f"{name:<{w}}  {target:<15}  {measured:<45}  {'yes' if ok else 'NO'}")
    return 0 if all(t[3] for t in table) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
