"""``python -m cmlib sandbox``: serve the emulator on a loopback port until Ctrl-C.

Prints what a person needs to point the app, curl or the official wrapper at it: the base URL,
the two demo keys (fixed, local-only values, not secrets), the client IDs and the demo customers.
"""
from __future__ import annotations

import argparse
import sys
import threading
from datetime import datetime
from typing import TextIO

from .demo import DEMO_CUSTOMERS, MAIN_CLIENT_NAME, OTHER_CLIENT_NAME
from .faults import parse_rate
from .service import Sandbox


def _rate(text: str) -> float | None:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    """A TCP port, checked here so a typo is a usage error, not a traceback from bind()."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port: use 1-65535, or 0 for any free port")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (0 <= value < float("inf")):  # also refuses nan and inf
        raise argparse.ArgumentTypeError("must be a number, 0 or more")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def _now(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("use ISO format, e.g. 2025-06-02T12:00") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cmlib sandbox",
        description="Local Campaign Monitor v3.3 emulator with seeded demo data and fault knobs.",
    )
    p.add_argument("--port", type=_port, default=8765, help="port on 127.0.0.1 (0 = any free port; default 8765)")
    p.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1"],
                   help="always 127.0.0.1: the demo keys must never be reachable from the network")
    p.add_argument("--seed", type=int, default=7, help="demo data seed (default 7)")
    p.add_argument("--now", type=_now, default=None, help="the data's 'now' (default: current time, to the minute)")
    p.add_argument("--latency-ms", type=_non_negative, default=0.0, help="fixed delay per request")
    p.add_argument("--jitter-ms", type=_non_negative, default=0.0, help="extra random delay 0..N ms per request")
    p.add_argument("--rate-limit", type=_rate, default=None, metavar="N/s",
                   help="requests per API key, e.g. 50/s or 3000/min; beyond it 429")
    p.add_argument("--no-rate-limit-headers", action="store_true",
                   help="send 429s without X-RateLimit-* headers")
    p.add_argument("--fault-rate", type=_share, default=0.0, help="share of requests answered 500 with an HTML body")
    p.add_argument("--malformed-rate", type=_share, default=0.0, help="share of 200s with truncated JSON")
    p.add_argument("--hang-rate", type=_share, default=0.0, help="share of requests held --hang-seconds first")
    p.add_argument("--hang-seconds", type=_non_negative, default=30.0,
                   help="how long a hung request is held (default 30)")
    p.add_argument("--fail-list", action="append", default=[], metavar="LIST_ID",
                   help="a list ID whose every request answers 500 (repeatable)")
    p.add_argument("--write-answer-fault", choices=["502", "hang"], default=None,
                   help="apply every write, then answer an HTML 502 or hang --hang-seconds (a lost answer)")
    p.add_argument("--down", action="store_true", help="close every connection without answering (API down)")
    return p


def describe(sb: Sandbox, out: TextIO) -> None:
    f = sb.faults
    print(f"Campaign Monitor sandbox on {sb.base_url}", file=out)
    print(f"  account API key : {sb.account_api_key}   (sees both clients)", file=out)
    print(f"  client API key  : {sb.client_api_key}   (only {MAIN_CLIENT_NAME})", file=out)
    print(f"  main client ID  : {sb.main_client_id}   ({MAIN_CLIENT_NAME})", file=out)
    print(f"  other client ID : {sb.other_client_id}   ({OTHER_CLIENT_NAME})", file=out)
    print(f"  seed {sb.seed}, data 'now' {sb.data.now:%Y-%m-%d %H:%M}", file=out)
    knobs = [
        f"latency {f.latency_ms:g}ms+{f.jitter_ms:g}ms jitter" if f.latency_ms or f.jitter_ms else "",
        (f"rate limit {f.rate_limit:g}/s per key{'' if f.rate_limit_headers else ' (no headers)'}"
         if f.rate_limit else ""),
        f"HTML 500s {f.error_rate:.0%}" if f.error_rate else "",
        f"malformed JSON {f.malformed_rate:.0%}" if f.malformed_rate else "",
        f"hangs {f.hang_rate:.0%} x {f.hang_seconds:g}s" if f.hang_rate else "",
        f"failing lists {len(f.fail_list_ids)}" if f.fail_list_ids else "",
        f"writes applied then answered {f.write_answer_fault}" if f.write_answer_fault else "",
        "down (no answers)" if f.down else "",
    ]
    print("  faults: " + (", ".join(k for k in knobs if k) or "none"), file=out)
    print("Demo customers:", file=out)
    for case, addresses in DEMO_CUSTOMERS.items():
        print(f"  {case:<24} {', '.join(addresses)}", file=out)
    print("Point the app at it: CM_API_URL=<base URL> CM_API_KEY=<a key> CM_CLIENT_ID=<main client ID>", file=out)
    print("Ctrl-C to stop.", file=out, flush=True)


def main(argv: list[str] | None = None, *, stop: threading.Event | None = None, out: TextIO | None = None) -> int:
    """Run until Ctrl-C (or until ``stop`` is set, which tests use). Returns an exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        argv = argv[1:]
    out = out or sys.stdout
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help or a bad argument: argparse already printed why
        return int(exc.code or 0)
    sb = Sandbox(
        seed=args.seed, latency_ms=args.latency_ms, port=args.port, host=args.host, now=args.now,
        jitter_ms=args.jitter_ms, rate_limit=args.rate_limit, rate_limit_headers=not args.no_rate_limit_headers,
        error_rate=args.fault_rate, malformed_rate=args.malformed_rate, hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds, fail_list_ids=args.fail_list,
        write_answer_fault=args.write_answer_fault, down=args.down,
    )
    try:
        sb.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except (OverflowError, ValueError) as exc:  # anything bind() refuses that _port let through
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    describe(sb, out)
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        print("\nstopping sandbox", file=out)
    finally:
        sb.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
