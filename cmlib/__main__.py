"""``python -m cmlib {lookup,bulk,sandbox} ...``: the engine without Streamlit."""
from __future__ import annotations

import sys

USAGE = """usage: python -m cmlib COMMAND [ARGS]

commands:
  lookup EMAIL [EMAIL ...] [--json]   show lists, last campaigns and activity per address
  bulk IN.csv -o OUT.csv [...]        membership of every address in a CSV (see --help)
  sandbox [--port 8765] [...]         run the local Campaign Monitor emulator (demo data)
  worker [--concurrency 2] [...]      run durable bulk jobs (needs CM_DATABASE_URL on Postgres)
  team [--app-ports 8501,8502] [...]  Redis, Postgres, sandbox, two app replicas and a worker (make team)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "lookup":
        from .cli_lookup import main as run
    elif cmd == "bulk":
        from .bulk_cli import main as run
    elif cmd == "sandbox":
        from .sandbox.cli import main as run
    elif cmd == "worker":
        from .bulk.worker import main as run
    elif cmd == "team":
        from .team.cli import main as run
    else:
        print(f"unknown command: {cmd}\n\n{USAGE}", file=sys.stderr)
        return 2
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
