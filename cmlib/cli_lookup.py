"""``python -m cmlib lookup EMAIL ... [--json]``: the Lookup page, in a terminal.

Exit status: 0 when every address was looked up (per-list failures are listed in ``errors``
and are not fatal), 1 when authentication failed or an address could not be looked up at all,
2 on bad arguments or when no argument is a valid address.

Times: the text output shows every time in the client's time zone as Campaign Monitor names it
(UTC when it cannot be read), with the zone named; ``--json`` gives ISO 8601 values with their
offset (Campaign Monitor's own dates without one when the client's zone is unknown).

Language: English unless ``--lang ru`` (a terminal's output is often read by scripts, so the
deployment's ``CM_LANGUAGE`` does not change it). In Russian the text output's words, dates and
numbers are Russian and a state is the product's word; the JSON document's keys and values stay
the same, only its ``message`` texts follow the language.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import TextIO

from .emails import parse_addresses
from .errors import AuthenticationError, CMError
from .i18n import Language, current_language, format_number, format_percent, t, use_language
from .logs import cli_logging
from .lookup import Profile
from .presenters import UTC_TIMES, TimeDisplay, consent_fact, suppression_summary
from .states import state_word


def _yes_no(flag: bool) -> str:
    return t("yes") if flag else t("no")


def _state(state: str) -> str:
    """English names the API's state (``Active``), as scripts reading this output expect; other
    languages say the product's word."""
    return state if current_language() is Language.EN else state_word(state)


def render_text(p: Profile, out: TextIO, times: TimeDisplay = UTC_TIMES) -> None:
    """One address as text, in the current language (:func:`cmlib.i18n.use_language`)."""
    out.write("\n" + t("== {email}  (as of {time})", email=p.email, time=times.clock(p.fetched_at)) + "\n")
    if p.failed:
        for pr in p.problems:
            out.write("  " + t("ERROR: {message}", message=pr.message) + "\n")
        return
    if p.suppression is not None:
        out.write("  " + t("Suppressed: {summary}. Campaign Monitor sends it no email; adding it to a list needs "
                           "Resubscribe (and the person's permission).",
                           summary=suppression_summary(p.suppression, times)) + "\n")
    if not p.lists:
        out.write("  " + t("Not on any list.") + "\n")
    else:
        out.write("  " + t("Lists:") + "\n")
        for s in p.lists:
            flag = "  " + t("[unsubscribes from ALL client lists]") if s.unsubscribes_from_all else ""
            changed = times.show(s.state_changed) or "?"
            joined = times.show(s.joined or s.date_added) or "?"
            consent = consent_fact(s.consent_to_track)
            line = t("{list} ({state}) since {changed}, joined {joined}", list=s.list_name, state=_state(s.state),
                     changed=changed, joined=joined)
            out.write(f"    - {line}{', ' + consent if consent else ''}{flag}\n")
            if s.reason:
                out.write("        " + t("reason: {reason}", reason=s.reason.describe(times.show)) + "\n")
    if p.lists and not p.campaigns:
        out.write("  " + t("No campaigns received yet.") + "\n")
    elif p.campaigns:
        out.write("  " + t("Last campaigns:") + "\n")
        for c in p.last_campaigns():
            sent = times.show(c.sent) or "?"
            out.write(f"    - {sent}  {c.subject}  "
                      + t("opened: {opened}  clicked: {clicked}", opened=_yes_no(c.opened),
                          clicked=_yes_no(c.clicked)) + "\n")
        a = p.activity
        out.write("  " + t("Activity: {received} received, open rate {open_rate}, click rate {click_rate}, "
                           "{avg_opens} opens and {avg_clicks} clicks per email",
                           received=a.received, open_rate=format_percent(a.open_rate),
                           click_rate=format_percent(a.click_rate),
                           avg_opens=format_number(a.avg_opens, digits=2),
                           avg_clicks=format_number(a.avg_clicks, digits=2)) + "\n")
    for pr in p.all_problems():
        out.write("  " + t("ERROR: {message}", message=pr.message) + "\n")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m cmlib lookup", description=__doc__.splitlines()[0])
    ap.add_argument("emails", nargs="+", metavar="EMAIL")
    ap.add_argument("--json", action="store_true", help="print a stable JSON document")
    ap.add_argument("--fresh", action="store_true", help="bypass the cache")
    ap.add_argument("--no-cache", action="store_true", help="do not use or write the HTTP cache")
    ap.add_argument("--lang", choices=[lang.value for lang in Language], default=Language.EN.value,
                    help="language of the output (default: en)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log every retry (429, 5xx) on stderr")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0) and 2
    with cli_logging(args.verbose), use_language(args.lang):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    parsed = parse_addresses(args.emails)
    if parsed.empty:
        # e.g. `lookup ""` or only separators: argparse saw an argument, but it holds no address
        print(t("no email address given: every EMAIL argument is empty. Example: {example}",
                example="python -m cmlib lookup anna@example.com"), file=sys.stderr)
        return 2
    if not parsed.valid:
        for bad in parsed.invalid:
            print(t("invalid address {address}: {reason}", address=repr(bad.text), reason=bad.reason),
                  file=sys.stderr)
        return 2

    from .runtime import connect

    try:
        conn = connect(cache=not args.no_cache)
    except CMError as exc:  # e.g. an API URL the key must not be sent to (cmlib.urls)
        print(t("cannot connect: {reason}", reason=exc.message), file=sys.stderr)
        return 1
    for note in conn.notes:  # e.g. "CM_API_URL is ignored: the saved key only goes to its own URL"
        print(note, file=sys.stderr)
    if conn.is_demo:
        print(t("Demo data: no credentials configured, using the local sandbox."), file=sys.stderr)
    emails = [a.email for a in parsed.valid]
    service = conn.lookup_service()
    try:
        profiles = service.lookup_many(emails, fresh=emails if args.fresh else (), suppression=True, time_zone=True)
        times = TimeDisplay.choose(None, service.client_time_zone())  # a terminal has no browser zone
    except AuthenticationError as exc:
        print(t("authentication failed: {reason}. Check CM_API_KEY / CM_CLIENT_ID.", reason=exc.reason),
              file=sys.stderr)
        return 1
    except CMError as exc:
        print(t("lookup failed: {reason}", reason=str(exc)), file=sys.stderr)
        return 1
    finally:
        conn.client.close()

    if args.json:
        doc = [p.to_json(times.cm_zone) for p in profiles]
        doc += [{"email": bad.text, "lists": [], "campaigns": [], "activity": None,
                 "errors": [{"where": "input", "list_id": None, "list_name": None,
                             "message": t("invalid address: {reason}", reason=bad.reason)}]}
                for bad in parsed.invalid]
        json.dump(doc, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        for bad in parsed.invalid:
            print(t("skipped invalid address {address}: {reason}", address=repr(bad.text), reason=bad.reason))
        for p in profiles:
            render_text(p, sys.stdout, times)
    return 1 if any(p.failed for p in profiles) else 0
