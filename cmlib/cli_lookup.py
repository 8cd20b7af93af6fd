"""``python -m cmlib lookup EMAIL ... [--json]``: the Lookup page, in a terminal.

Exit status: 0 when every address was looked up (per-list failures are listed in ``errors``
and are not fatal), 1 when authentication failed or an address could not be looked up at all,
2 on bad arguments or when no argument is a valid address.

Times: the text output shows every time in the client's time zone as Campaign Monitor names it
(UTC when it cannot be read), with the zone named; ``--json`` gives ISO 8601 values with their
offset (Campaign Monitor's own dates without one when the client's zone is unknown).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from .emails import parse_addresses
from .errors import AuthenticationError, CMError
from .logs import cli_logging
from .lookup import Profile
from .presenters import UTC_TIMES, TimeDisplay, consent_fact, suppression_summary


def _pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def render_text(p: Profile, out: TextIO, times: TimeDisplay = UTC_TIMES) -> None:
    out.write(f"\n== {p.email}  (as of {times.clock(p.fetched_at)})\n")
    if p.failed:
        for pr in p.problems:
            out.write(f"  ERROR: {pr.message}\n")
        return
    if p.suppression is not None:
        out.write(f"  Suppressed: {suppression_summary(p.suppression, times)}. Campaign Monitor sends it no "
                  "email; adding it to a list needs Resubscribe (and the person's permission).\n")
    if not p.lists:
        out.write("  Not on any list.\n")
    else:
        out.write("  Lists:\n")
        for s in p.lists:
            flag = "  [unsubscribes from ALL client lists]" if s.unsubscribes_from_all else ""
            changed = times.show(s.state_changed) or "?"
            joined = times.show(s.joined or s.date_added) or "?"
            consent = consent_fact(s.consent_to_track)
            out.write(f"    - {s.list_name} ({s.state}) since {changed}, joined {joined}"
                      f"{', ' + consent if consent else ''}{flag}\n")
            if s.reason:
                out.write(f"        reason: {s.reason.describe(times.show)}\n")
    if p.lists and not p.campaigns:
        out.write("  No campaigns received yet.\n")
    elif p.campaigns:
        out.write("  Last campaigns:\n")
        for c in p.last_campaigns():
            sent = times.show(c.sent) or "?"
            out.write(f"    - {sent}  {c.subject}  opened: {'yes' if c.opened else 'no'}  "
                      f"clicked: {'yes' if c.clicked else 'no'}\n")
        a = p.activity
        out.write(f"  Activity: {a.received} received, open rate {_pct(a.open_rate)}, click rate "
                  f"{_pct(a.click_rate)}, {a.avg_opens:.2f} opens and {a.avg_clicks:.2f} clicks per email\n")
    for pr in p.all_problems():
        out.write(f"  ERROR: {pr.message}\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m cmlib lookup", description=__doc__.splitlines()[0])
    ap.add_argument("emails", nargs="+", metavar="EMAIL")
    ap.add_argument("--json", action="store_true", help="print a stable JSON document")
    ap.add_argument("--fresh", action="store_true", help="bypass the cache")
    ap.add_argument("--no-cache", action="store_true", help="do not use or write the HTTP cache")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every retry (429, 5xx) on stderr")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    with cli_logging(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    parsed = parse_addresses(args.emails)
    if parsed.empty:
        # e.g. `lookup ""` or only separators: argparse saw an argument, but it holds no address
        print("no email address given: every EMAIL argument is empty. Example: python -m cmlib lookup "
              "anna@example.com", file=sys.stderr)
        return 2
    if not parsed.valid:
        for bad in parsed.invalid:
            print(f"invalid address {bad.text!r}: {bad.reason}", file=sys.stderr)
        return 2

    from .runtime import connect

    try:
        conn = connect(cache=not args.no_cache)
    except CMError as exc:  # e.g. an API URL the key must not be sent to (cmlib.urls)
        print(f"cannot connect: {exc.message}", file=sys.stderr)
        return 1
    for note in conn.notes:  # e.g. "CM_API_URL is ignored: the saved key only goes to its own URL"
        print(note, file=sys.stderr)
    if conn.is_demo:
        print("Demo data: no credentials configured, using the local sandbox.", file=sys.stderr)
    emails = [a.email for a in parsed.valid]
    service = conn.lookup_service()
    try:
        profiles = service.lookup_many(emails, fresh=emails if args.fresh else (), suppression=True, time_zone=True)
        times = TimeDisplay.choose(None, service.client_time_zone())  # a terminal has no browser zone
    except AuthenticationError as exc:
        print(f"authentication failed: {exc.reason}. Check CM_API_KEY / CM_CLIENT_ID.", file=sys.stderr)
        return 1
    except CMError as exc:
        print(f"lookup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.client.close()

    if args.json:
        doc = [p.to_json(times.cm_zone) for p in profiles]
        doc += [{"email": bad.text, "lists": [], "campaigns": [], "activity": None,
                 "errors": [{"where": "input", "list_id": None, "list_name": None,
                             "message": f"invalid address: {bad.reason}"}]}
                for bad in parsed.invalid]
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for bad in parsed.invalid:
            print(f"skipped invalid address {bad.text!r}: {bad.reason}")
        for p in profiles:
            render_text(p, sys.stdout, times)
    return 1 if any(p.failed for p in profiles) else 0
