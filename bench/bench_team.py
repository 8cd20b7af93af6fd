"""Team benchmark: two replicas' bulk runs share one account's rate budget through Redis (issue 16).

    .venv/bin/python bench/bench_team.py [--quick]

One sandbox limited to 50 requests/s (50 ms latency; in this process, so its answers can be
counted), redis-server started as ``make team`` starts it, and two ``python -m cmlib bulk IN.csv
-o OUT.csv`` processes started together with default flags -- two replicas' worth of bulk runs --
each with its own data folder and both with the same ``CM_REDIS_URL``, so they draw on one rate
budget. Measured from the sandbox's answers, from the first request to the last:

- useful calls/s (answers other than 429) as a share of the limit: target at least 90%;
- share of the calls answered 429: target at most 2%;
- every row written by both runs, exit status 0.

Beside it, the same two runs without ``CM_REDIS_URL``: two in-process budgets, each believing it
has the whole account's limit -- what the shared budget is for (no target; for comparison).
Exit status 0 when every target is met, 1 otherwise or when redis-server is not installed.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from cmlib.deployment import REDIS_URL_ENV  # noqa: E402
from cmlib.sandbox import CLIENT_API_KEY, MAIN_CLIENT_ID, Sandbox  # noqa: E402
from cmlib.team import ServerMissing, Supervisor, free_port, locate_redis_server, redis_spec  # noqa: E402

LIMIT = 50.0
LATENCY_MS = 50.0
REPLICAS = 2


@dataclass(frozen=True)
class Outcome:
    label: str
    rows: int  # addresses per run
    seconds: float  # first request to last request
    answers: int
    rate_limited: int
    exits: tuple[int, ...]
    written: tuple[int, ...]  # data rows in each output file

    @property
    def useful_per_s(self) -> float:
        return (self.answers - self.rate_limited) / self.seconds if self.seconds else 0.0

    @property
    def share_of_limit(self) -> float:
        return self.useful_per_s / LIMIT

    @property
    def share_429(self) -> float:
        return self.rate_limited / max(1, self.answers)

    @property
    def complete(self) -> bool:
        return all(rc == 0 for rc in self.exits) and all(n == self.rows for n in self.written)


def addresses(n: int, offset: int) -> list[str]:
    """The sandbox's own subscribers first (real memberships), then unknown addresses; distinct per run."""
    known = Sandbox(seed=7).data.emails(MAIN_CLIENT_ID)
    out = [e for i, e in enumerate(known) if i % REPLICAS == offset][:n]
    i = 0
    while len(out) < n:
        out.append(f"team.run{offset}.user{i}@example.net")
        i += 1
    return out


class AnswerClock:
    """Samples the sandbox's answer counters, so the window runs from the first request to the last."""

    def __init__(self, sb: Sandbox) -> None:
        self.sb = sb
        self.first: float | None = None
        self.last: float | None = None
        self._stop = threading.Event()
        self._seen = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            served = self.sb.requests_served
            if served != self._seen:
                now = time.perf_counter()
                if self.first is None:
                    self.first = now
                self.last, self._seen = now, served

    def __enter__(self) -> AnswerClock:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def seconds(self) -> float:
        return (self.last - self.first) if self.first is not None and self.last is not None else 0.0


def run_pair(label: str, n: int, work: Path, redis_url: str | None) -> Outcome:
    """Two bulk CLI processes at once against a fresh sandbox (fresh rate windows)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    with Sandbox(seed=7, latency_ms=LATENCY_MS, rate_limit=LIMIT) as sb, AnswerClock(sb) as clock:
        procs, outputs = [], []
        for i in range(REPLICAS):
            folder = work / f"{label}-{i}"
            folder.mkdir()
            src, out = folder / "in.csv", folder / "out.csv"
            src.write_text("email\n" + "\n".join(addresses(n, i)) + "\n", encoding="utf-8")
            env = dict(base, PYTHONPATH=str(ROOT), CM_DATA_DIR=str(folder / "data"),
                       CM_SECRETS_PATH=str(folder / "no-secrets.toml"), CM_API_URL=sb.base_url,
                       CM_API_KEY=CLIENT_API_KEY, CM_CLIENT_ID=MAIN_CLIENT_ID)
            if redis_url:
                env[REDIS_URL_ENV] = redis_url
            procs.append(subprocess.Popen([sys.executable, "-m", "cmlib", "bulk", str(src), "-o", str(out), "-q"],
                                          cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          text=True))
            outputs.append(out)
        exits = []
        for p in procs:
            _, err = p.communicate()
            exits.append(p.returncode)
            if p.returncode:
                print(f"  a bulk run exited {p.returncode}: {err.strip()[-500:]}", flush=True)
        status = sb.status_counts
    written = []
    for out in outputs:
        with open(out, encoding="utf-8-sig", newline="") as fh:
            written.append(max(0, sum(1 for _ in csv.reader(fh)) - 1))
    return Outcome(label, n, clock.seconds, sum(status.values()), status.get(429, 0), tuple(exits), tuple(written))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs")
    args = ap.parse_args(argv)
    n = 600 if args.quick else 2_000
    try:
        redis_server = locate_redis_server()
    except ServerMissing as exc:
        print(f"not run: {exc}")
        return 1
    print(f"Team benchmark{' (quick)' if args.quick else ''}: {REPLICAS} bulk CLI runs of {n:,} addresses at once, "
          f"default flags, against one sandbox limited to {LIMIT:g}/s with {LATENCY_MS:g} ms latency.", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
        work = Path(tmp)
        with Supervisor([redis_spec(redis_server, free_port(), work / "redis")], out=io.StringIO()) as sup:
            redis_url = sup.specs[0].url
            print(f"shared budget: both runs with {REDIS_URL_ENV}={redis_url} ...", flush=True)
            shared = run_pair("shared", n, work, redis_url)
        print("comparison: the same two runs without it (two in-process budgets) ...", flush=True)
        apart = run_pair("apart", n, work, None)

    def line(o: Outcome) -> str:
        return (f"{o.label}: {REPLICAS} x {o.rows:,} addresses in {o.seconds:.1f} s, {o.useful_per_s:.1f} useful "
                f"calls/s = {o.share_of_limit:.0%} of {LIMIT:g}/s; {o.answers:,} calls, {o.rate_limited} answered 429 "
                f"({o.share_429:.2%}); exits {', '.join(map(str, o.exits))}; rows written "
                f"{', '.join(f'{w:,}' for w in o.written)}")

    print()
    print(line(shared))
    print(line(apart) + "   (comparison, no target)")
    table = [
        ("two replicas, one Redis budget: throughput", ">= 90%",
         f"{shared.share_of_limit:.0%} ({shared.useful_per_s:.1f}/s of {LIMIT:g}/s)", shared.share_of_limit >= 0.9),
        ("two replicas, one Redis budget: 429s", "<= 2%", f"{shared.share_429:.2%} ({shared.rate_limited})",
         shared.share_429 <= 0.02),
        ("two replicas, one Redis budget: every row written", "all",
         f"{sum(shared.written):,}/{REPLICAS * shared.rows:,}, exits {shared.exits}", shared.complete),
    ]
    w = max(len(t[0]) for t in table)
    print()
    print(f"{'measure':<{w}}  {'target':<8}  {'measured':<40}  ok")
    for name, target, measured, ok in table:
        print(f"{name:<{w}}  {target:<8}  {measured:<40}  {'yes' if ok else 'NO'}")
    print(f"{'without Redis (two in-process budgets)':<{w}}  {'-':<8}  "
          f"{apart.share_of_limit:.0%} of the limit, {apart.share_429:.2%} 429s")
    return 0 if all(t[3] for t in table) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
