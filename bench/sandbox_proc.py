"""The sandbox in its own process, for benchmarks.

In the benchmark's own process the server's threads would compete with the client for the
GIL and make our client look slower than it is against a real, remote API.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def sandbox_process(*args: str) -> Iterator[str]:
    """``python -m cmlib sandbox --port 0 --seed 7 ARGS``; yields its base URL, stops it after."""
    cmd = [sys.executable, "-m", "cmlib", "sandbox", "--port", "0", "--seed", "7", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # "Campaign Monitor sandbox on http://127.0.0.1:PORT/api/v3.3"
        if " on http" not in first:
            raise RuntimeError(f"sandbox did not start: {first!r}")
        url = first.split(" on ", 1)[1].strip()
        for line in proc.stdout:  # wait for the banner to end
            if "Ctrl-C" in line:
                break
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
