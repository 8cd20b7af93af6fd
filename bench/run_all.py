"""``make bench``: run every bench/bench_*.py in turn and print their reports (bench_bulk,
bench_lookup_page, bench_rate, bench_sandbox, bench_team -- two replicas' bulk runs on one Redis
rate budget, needs redis-server: any new bench_*.py is picked up by its name).

Benchmarks compare ratios within one run (ours vs. a baseline measured now, on this
machine), never absolute times baked into tests. Pass ``--quick`` for smaller sizes.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    failed = []
    for script in scripts:
        print(f"\n##### {script.name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(script), *argv], cwd=HERE.parent)
        print(f"##### {script.name}: exit {rc} in {time.perf_counter() - t0:.1f}s", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print("benchmarks that failed to run:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
