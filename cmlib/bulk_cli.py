"""``python -m cmlib bulk IN.csv -o OUT.csv``: the Bulk page's lookup for files of any size.

The same engine as the page (:mod:`cmlib.bulk`), streamed so memory stays flat: the input is
read in chunks of rows, each chunk's lookups run on the shared bounded pool, and its rows are
written in input order before the next chunk is read. Only one small entry per distinct
address is kept (to fill in duplicates), never the rows or full results.

Exit status: 0 when every row has a result (duplicates included), 3 when some rows ended in
errors (invalid address, lookup failed, not looked up) -- they are still written, with the
reason in the Error column -- 2 on bad arguments or unusable input, 1 when the credentials
are rejected before the run starts. Ctrl-C stops starting new lookups, finishes those in
flight and still writes every row (the rest as "not looked up").

When Campaign Monitor stops answering, the client's circuit breaker opens and the run pauses
instead of retrying: stderr says "Campaign Monitor is not answering since HH:MM UTC — paused,
N rows waiting" at once, one probe goes out every few seconds, and the run continues when the
API is back. After ``--patience`` seconds without an answer (``CM_BULK_PATIENCE``, default 5
minutes) it stops, writes every row (the rest as "not looked up", never as failed) and exits 3
with the reason on stderr.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Sequence, TextIO

from .logs import cli_logging
from .bulk.csv_input import DELIMITER_NAMES, BulkInputError, FileInfo, inspect_file, iter_file_rows
from .bulk.engine import (
    BulkLookup,
    LookupResult,
    Pause,
    RateMeter,
    RunControl,
    format_duration,
    patience_from_env,
    run_lookups,
)
from .bulk.export import open_csv_output
from .bulk.matrix import (
    STATUS_DUPLICATE,
    STATUS_ERROR,
    STATUS_INVALID,
    STATUS_NOT_RUN,
    STATUS_PARTIAL,
    Layout,
    RowOutcome,
    resolve_row,
)
from .bulk.validate import ROW_VALID, InputRow, Validator, extra_column_names
from .errors import AuthenticationError, CMError

DEFAULT_CONCURRENCY = 16
DEFAULT_RATE = 25.0
DEFAULT_CHUNK = 2000
_DELIMS = {"input": None, "comma": ",", "semicolon": ";", "tab": "\t"}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _rate(text: str) -> float | None:
    if text.strip().lower() in ("0", "off", "none", "unlimited"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be above 0 (or 'off')")
    return v


def _patience(text: str) -> float | None:
    if text.strip().lower() in ("off", "none", "forever"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds (or 'off'), got {text!r}") from None
    if not v >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds (or 'off')")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m cmlib bulk",
        description="Look up the list memberships of every address in a CSV file and write an email × list "
                    "matrix (UTF-8 with BOM, spreadsheet-safe).",
        epilog="Exit status: 0 every row has a result, 3 some rows ended in errors (still written), "
               "2 bad arguments or input, 1 credentials rejected. Credentials: CM_API_KEY / CM_CLIENT_ID / "
               "CM_API_URL, the app's saved settings, else the local demo sandbox.",
    )
    p.add_argument("input", metavar="IN.csv", help="CSV file: comma, semicolon or tab; UTF-8/UTF-16/cp1251/Latin-1")
    p.add_argument("-o", "--output", metavar="OUT.csv", required=True, help="where to write the matrix")
    p.add_argument("--column", metavar="NAME", help="the email column (header name or 1-based number); "
                   "default: detected")
    p.add_argument("--concurrency", type=_positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                   help=f"requests in flight (default {DEFAULT_CONCURRENCY})")
    p.add_argument("--rate", type=_rate, default=DEFAULT_RATE, metavar="R",
                   help=f"requests per second, shared by all workers (default {DEFAULT_RATE:g}; 'off' for none)")
    p.add_argument("--with-activity", action="store_true",
                   help="also the last campaign and open/click rates: one extra call per list membership")
    p.add_argument("--output-delimiter", choices=sorted(_DELIMS), default="input",
                   help="separator of OUT.csv (default: the same as the input's)")
    p.add_argument("--chunk-size", type=_positive_int, default=DEFAULT_CHUNK, help=argparse.SUPPRESS)
    p.add_argument("--max-rows", type=_positive_int, default=None, metavar="N",
                   help="refuse inputs with more than N rows (default: no limit)")
    p.add_argument("--no-repass", action="store_true", help="do not retry failed addresses once more at the end")
    p.add_argument("--patience", type=_patience, default=patience_from_env(), metavar="SECONDS",
                   help="when Campaign Monitor stops answering, how long the run waits for it before stopping "
                        "(the rest is written as not looked up); default CM_BULK_PATIENCE or 300; 'off' waits "
                        "until Ctrl-C")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.add_argument("-v", "--verbose", action="store_true", help="log every retry (429, 5xx) on stderr")
    return p


class ProgressLine:
    """``\\r``-rewritten status on stderr: rows done/total, addresses per second, time left."""

    def __init__(self, total: int, out: TextIO, enabled: bool = True) -> None:
        self.total = total
        self.out = out
        self.enabled = enabled
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self.interval = 0.25 if self.tty else 2.0
        self.meter = RateMeter()
        self.lookups = 0
        self.rows = 0
        self._last = 0.0
        self._width = 0
        self._lock = threading.Lock()  # notes come from worker threads, updates from the main one

    def update(self, rows: int, lookups: int, force: bool = False) -> None:
        self.rows, self.lookups = rows, lookups
        self.meter.record(rows)
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        with self._lock:
            self._draw(now, rows, lookups)

    def _draw(self, now: float, rows: int, lookups: int) -> None:
        self._last = now
        rate = self.meter.rate(rows)
        elapsed = now - self.meter.started
        lookup_rate = lookups / elapsed if elapsed > 0 else 0.0
        left = self.total - rows
        eta = format_duration(left / rate) if rate > 0 and left > 0 else ("0 s" if left <= 0 else "?")
        text = (f"{rows:,}/{self.total:,} rows ({rows / self.total * 100 if self.total else 100:.0f}%)  "
                f"{lookup_rate:.1f} addresses/s  ETA {eta}")
        pad = max(0, self._width - len(text))
        self._width = len(text)
        self.out.write("\r" + text + " " * pad)
        self.out.flush()

    def finish(self) -> None:
        with self._lock:
            if self.enabled and self._width:
                self.out.write("\n")
                self.out.flush()
                self._width = 0

    def note(self, text: str) -> None:
        """A line of its own on stderr, even with -q; the progress line is redrawn below it."""
        with self._lock:
            if self.enabled and self._width:
                self.out.write("\r" + " " * self._width + "\r")
                self._width = 0
            self.out.write(text + "\n")
            self.out.flush()


@dataclass
class Tally:
    rows: int = 0
    looked_up: int = 0
    on_no_list: int = 0
    invalid: int = 0
    duplicates: int = 0
    failed: int = 0
    not_run: int = 0
    partial: int = 0

    @property
    def errors(self) -> int:
        return self.invalid + self.failed + self.not_run + self.partial


class _Memo(dict):
    """Distinct address -> its result, compacted: membership-only results are shared objects
    (most addresses fall into a handful of membership patterns) and never hold the address."""

    def __init__(self) -> None:
        super().__init__()
        self._shared: dict[tuple, LookupResult] = {}

    def keep(self, key: str, res: LookupResult) -> None:
        if res.ok and res.activity is None and res.warning is None:
            shared = self._shared.get(res.memberships)
            if shared is None:
                shared = self._shared[res.memberships] = LookupResult(email="", memberships=res.memberships)
            self[key] = shared
        else:
            self[key] = res


def _chunks(rows: Iterator[InputRow], size: int) -> Iterator[list[InputRow]]:
    chunk: list[InputRow] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _err(msg: str) -> None:
    print(f"cmlib bulk: {msg}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    with cli_logging(args.verbose):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        info: FileInfo = inspect_file(args.input, email_column=args.column)
    except BulkInputError as exc:
        _err(str(exc))
        return 2
    det = info.detected
    if det.email_column is None:
        cols = ", ".join(repr(c) for c in det.columns)
        _err(f"no column with email addresses found in {args.input} (columns: {cols}); name it with --column")
        return 2
    if args.max_rows is not None and info.data_rows > args.max_rows:
        _err(f"{args.input} has {info.data_rows:,} rows; --max-rows is {args.max_rows:,}")
        return 2
    problem = output_problem(args.output, args.input)
    if problem:
        _err(problem)
        return 2

    from .client import ClientOptions
    from .runtime import connect

    opts = ClientOptions(rate=args.rate, max_in_flight=args.concurrency, pool_size=max(32, args.concurrency))
    try:
        conn = connect(cache=False, options=opts)
    except CMError as exc:  # e.g. an API URL the key must not be sent to (cmlib.urls)
        _err(f"cannot connect: {exc.message}")
        return 1
    for note in conn.notes:  # e.g. "CM_API_URL is ignored: the saved key only goes to its own URL"
        _err(note)
    if not args.quiet:
        where = "the local demo sandbox (no credentials configured)" if conn.is_demo else conn.credentials.api_url
        print(f"Reading {args.input}: {det.describe()}; email column “{det.columns[det.email_column]}” "
              f"({det.email_column_reason}); {info.data_rows:,} rows. Looking up in {where}.", file=sys.stderr)
    lookup = BulkLookup(conn.client, conn.client_id, with_activity=args.with_activity)
    calls_before = conn.client.calls_made
    try:
        lookup.prepare()
    except AuthenticationError as exc:
        _err(f"authentication failed: {exc.reason}. Check CM_API_KEY / CM_CLIENT_ID.")
        conn.client.close()
        return 1
    for note in lookup.notes:
        _err(note)

    layout = Layout(dict(lookup.list_names), extra_column_names(det), with_activity=args.with_activity,
                    other_lists_column=True)
    delimiter = _DELIMS[args.output_delimiter] or det.delimiter
    progress = ProgressLine(info.data_rows, sys.stderr, enabled=not args.quiet)
    tally = Tally()
    in_chunk = 0

    def on_pause(pause: Pause) -> None:
        waiting = max(0, info.data_rows - tally.rows - in_chunk)
        progress.note(f"cmlib bulk: {pause.message(waiting, 'rows')}")

    def on_resume() -> None:
        progress.note("cmlib bulk: Campaign Monitor is answering again; the run continues")

    control = RunControl(patience=args.patience, on_pause=on_pause, on_resume=on_resume)
    previous_handler = None

    def on_sigint(signum, frame):  # first Ctrl-C: stop gently; second: the default (abort)
        control.cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    try:
        previous_handler = signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main thread (tests calling main() from a worker)
        previous_handler = None

    validator = Validator()
    memo = _Memo()
    started = time.monotonic()
    lookups_done = 0
    fh = None
    try:
        fh, sink = open_csv_output(args.output, layout.headers, delimiter)
        rows = validator.iter_rows(iter_file_rows(info), det.email_column)
        for chunk in _chunks(rows, args.chunk_size):
            tasks = [r for r in chunk if r.status == ROW_VALID]
            in_chunk = 0
            if tasks and not control.stopped:
                for row, res in run_lookups(lookup, tasks, lambda r: r.email or "", control=control,
                                            max_workers=args.concurrency, repass=not args.no_repass):
                    memo.keep(row.key or "", res)
                    lookups_done += 1
                    in_chunk += 1
                    progress.update(tally.rows + in_chunk, lookups_done)
            reason = control.not_looked_up("Not looked up: the run was cancelled (Ctrl-C)")
            for r in chunk:
                outcome = resolve_row(r, memo, reason)
                sink.write(layout.cells(r, outcome))
                _count(tally, outcome)
            in_chunk = 0
            progress.update(tally.rows, lookups_done)
            sink.flush()
    except OSError as exc:
        progress.finish()
        _err(f"could not write {args.output}: {exc.strerror or exc}")
        return 2
    except CMError as exc:  # defensive: run_lookups captures per-address errors
        progress.finish()
        _err(f"lookup failed: {exc}")
        return 3
    finally:
        if fh is not None:
            fh.close()
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        conn.client.close()
    progress.update(tally.rows, lookups_done, force=True)
    progress.finish()
    elapsed = time.monotonic() - started
    calls = conn.client.calls_made - calls_before
    if not args.quiet:
        print(f"Wrote {tally.rows:,} rows to {args.output} in {format_duration(elapsed)}: "
              f"{tally.looked_up:,} addresses looked up ({tally.on_no_list:,} on no list), "
              f"{tally.duplicates:,} duplicate rows, {tally.invalid:,} invalid, {tally.failed:,} failed, "
              f"{tally.partial:,} with incomplete activity, {tally.not_run:,} not looked up; "
              f"{calls:,} API calls; separator: {DELIMITER_NAMES.get(delimiter, delimiter)}.", file=sys.stderr)
    if control.fatal:
        _err(f"the run stopped: authentication failed ({control.fatal})")
    elif control.gave_up:
        _err(f"{control.gave_up}. {tally.not_run:,} rows were not looked up (written with that reason); run them "
             "again when it answers.")
    return 3 if tally.errors else 0


def output_problem(output: str, input_path: str) -> str | None:
    """Why OUT.csv cannot be written, found before any lookup (not after a long run)."""
    if os.path.isdir(output):
        return f"{output} is a folder: give the name of the file to write, e.g. {os.path.join(output, 'out.csv')}"
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        return f"the folder of {output} does not exist"
    if os.path.exists(output):
        if os.path.samefile(output, input_path):
            return "the output file must not be the input file"
        if not os.access(output, os.W_OK):
            return f"cannot write {output}: permission denied"
    elif not os.access(out_dir, os.W_OK | os.X_OK):
        return f"cannot create {output}: the folder is not writable"
    return None


def _count(t: Tally, outcome: RowOutcome) -> None:
    t.rows += 1
    s = outcome.status
    if s == STATUS_DUPLICATE:
        t.duplicates += 1
        if outcome.result is None:  # its original failed or was not looked up
            t.failed += 1
    elif s == STATUS_INVALID:
        t.invalid += 1
    elif s == STATUS_ERROR:
        t.failed += 1
    elif s == STATUS_NOT_RUN:
        t.not_run += 1
    else:
        t.looked_up += 1
        if s == STATUS_PARTIAL:
            t.partial += 1
        if outcome.result is not None and not outcome.result.memberships:
            t.on_no_list += 1


def main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
