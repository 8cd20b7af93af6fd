"""Issue 16: two replicas' bulk runs at once, against one account's limit, share one budget.

Two ``python -m cmlib bulk`` processes (each its own data folder, as two replicas have) run
together with default flags against one sandbox limiting the account to 50 requests/s, both
with the same ``CM_REDIS_URL``. Together they must stay within 2% of calls answered 429 and
account for every row. (Without the shared budget the same pair gets about 6% 429s: each
process believes it has the whole limit; ``bench/bench_team.py`` prints both, with the share of
the limit reached, which is a throughput figure and belongs to the benchmark, not to a test.)
"""
from __future__ import annotations

from bench.bench_team import run_pair


def test_two_replicas_bulk_runs_stay_within_the_accounts_limit(redis_url, tmp_path):
    outcome = run_pair("shared", 150, tmp_path, redis_url)
    assert outcome.complete, outcome
    assert outcome.answers >= 2 * 150
    assert outcome.share_429 <= 0.02, outcome
