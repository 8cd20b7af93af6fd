"""``python -m cmlib bulk IN.csv -o OUT.csv``: the Bulk page's lookup for files of any size.

The same run loop as the page (:class:`cmlib.bulk.engine.BulkRun`), on a client of its own with
bulk options, streamed so memory stays flat: the input is read in chunks of rows, each chunk's
lookups run on the shared bounded pool, and its rows are written in input order before the
next chunk is read. Only one small entry per distinct
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

``--lang ru`` speaks Russian: the messages on stderr, the file's headers, state and status words
and reasons, and a ``;``-separated file with decimal commas (what Excel with Russian regional
settings opens as numbers). English is the default, whatever ``CM_LANGUAGE`` says: scripts that
read the output keep working.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import lazy_text as later
from .bulk.cli_output import ProgressLine, Tally, count_outcome
from .bulk.control import Pause, RunControl, format_duration, patience_from_env
from .bulk.engine import BULK_CONCURRENCY, BULK_RATE, BulkLookup, BulkRun, LookupResult, bulk_client_options
from .bulk.export import CsvSink, open_csv_output
from .bulk.matrix import Layout, resolve_row, suppression_of
from .bulk.streaming import FileInfo, inspect_file, iter_file_rows
from .bulk.table import DELIMITER_NAMES, BulkInputError
from .bulk.validate import InputRow, Validator, extra_column_names
from .errors import AuthenticationError, CMError
from .i18n import Language, csv_dialect, nt, t, use_language
from .lazy_text import text_of
from .logs import cli_logging
from .pacing import LEARN, RateSetting
from .retry import RetryPolicy
from .suppression import SuppressionIndex

if TYPE_CHECKING:
    from .runtime import Connection

DEFAULT_CONCURRENCY = BULK_CONCURRENCY
DEFAULT_RATE = BULK_RATE
DEFAULT_CHUNK = 2000
CTRL_C_REASON = later.t("Not looked up: the run was cancelled (Ctrl-C)")
_DELIMS = {"input": None, "comma": ",", "semicolon": ";", "tab": "\t"}


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def _rate(text: str) -> RateSetting:
    if text.strip().lower() == LEARN:
        return LEARN
    if text.strip().lower() in ("0", "off", "none", "unlimited"):
        return None
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got {text!r}") from None
    if v <= 0:
        raise argparse.ArgumentTypeError("must be above 0 (or 'off')")
    return v


def _language(text: str) -> Language:
    lang = Language.parse(text)
    if lang is None:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(lang.value for lang in Language)}, got {text!r}")
    return lang


def output_format(args: argparse.Namespace, input_delimiter: str) -> tuple[str, str]:
    """(separator, decimal mark) of OUT.csv: ``--output-delimiter``, else the input's (English) or
    the language's (Russian: ``;``); a decimal comma where the language has one, unless the
    separator is a comma."""
    sep, decimal = csv_dialect(args.lang)
    chosen = _DELIMS.get(args.output_delimiter or "input") or (sep if args.lang is not Language.EN else input_delimiter)
    return chosen, ("." if chosen == "," else decimal)


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
                   help="at most R requests per second, shared by all workers (default 'learn': the account's "
                        "limit, from its X-RateLimit headers or found by probing; 'off': no pacing)")
    p.add_argument("--with-activity", action="store_true",
                   help="also the last campaign and open/click rates: one extra call per list membership")
    p.add_argument("--output-delimiter", choices=sorted(_DELIMS), default=None,
                   help="separator of OUT.csv (default: the same as the input's; with --lang ru a semicolon)")
    p.add_argument("--lang", type=_language, default=Language.EN, metavar="LANG",
                   help="language of the messages and of OUT.csv's headers and words: en (default) or ru "
                        "(Russian: semicolon-separated, decimal comma)")
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


class _Memo(dict[str, LookupResult]):
    """Distinct address -> its result, compacted: membership-only results are shared objects
    (most addresses fall into a handful of membership patterns) and never hold the address."""

    def __init__(self) -> None:
        super().__init__()
        self._shared: dict[tuple[tuple[str, str], ...], LookupResult] = {}

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


@dataclass(frozen=True)
class Tuning:
    """Internal knobs, not options a user sets: ``retry`` replaces the client's retry policy and
    ``repass_delay`` the pause before the final re-pass, so tests never sleep through real backoff."""

    retry: RetryPolicy | None = None
    repass_delay: float = 2.0


def run(args: argparse.Namespace, tuning: Tuning = Tuning()) -> int:
    with cli_logging(args.verbose), use_language(getattr(args, "lang", Language.EN)):
        return _run(args, tuning)


def _inspect(args: argparse.Namespace) -> FileInfo | None:
    """The input, checked before anything connects: None (said on stderr) when it is unusable."""
    try:
        info = inspect_file(args.input, email_column=args.column)
    except BulkInputError as exc:
        _err(exc.text())
        return None
    det = info.detected
    if det.email_column is None:
        cols = ", ".join(repr(text_of(c)) for c in det.columns)
        _err(t("no column with email addresses found in {path} (columns: {columns}); name it with --column",
               path=args.input, columns=cols))
        return None
    if args.max_rows is not None and info.data_rows > args.max_rows:
        _err(t("{path} has {rows} rows; --max-rows is {limit}", path=args.input, rows=info.data_rows,
               limit=args.max_rows))
        return None
    problem = output_problem(args.output, args.input)
    if problem:
        _err(problem)
        return None
    return info


@dataclass
class _Writer:
    """The CLI's side of the run loop: keeps one small entry per distinct address, counts
    progress, and writes each chunk's rows in input order once the chunk is done."""

    info: FileInfo
    layout: Layout
    sink: CsvSink
    progress: ProgressLine
    control: RunControl
    suppression: SuppressionIndex | None = None  # the client's suppression list, read once for the run
    lang: Language = Language.EN  # worker threads call on_pause/on_resume: they say it in the run's language
    memo: _Memo = field(default_factory=_Memo)
    tally: Tally = field(default_factory=Tally)
    lookups: int = 0
    in_chunk: int = 0  # lookups finished in the chunk not written yet
    suppressed_rows: int = 0

    def on_result(self, row: InputRow, res: LookupResult) -> None:
        self.memo.keep(row.key or "", res)
        self.lookups += 1
        self.in_chunk += 1
        self.progress.update(self.tally.rows + self.in_chunk, self.lookups)

    def on_chunk(self, chunk: Sequence[InputRow]) -> None:
        reason = self.control.not_looked_up(CTRL_C_REASON)
        for r in chunk:
            outcome = resolve_row(r, self.memo, reason)
            suppressed = suppression_of(self.suppression, r)
            self.sink.write(self.layout.cells(r, outcome, suppressed))
            count_outcome(self.tally, outcome)
            if suppressed is not None:
                self.suppressed_rows += 1
        self.in_chunk = 0
        self.progress.update(self.tally.rows, self.lookups)
        self.sink.flush()

    def on_pause(self, pause: Pause) -> None:
        waiting = max(0, self.info.data_rows - self.tally.rows - self.in_chunk)
        self.progress.note(f"cmlib bulk: {pause.message(waiting, 'rows', lang=self.lang)}")

    def on_resume(self) -> None:
        self.progress.note("cmlib bulk: " + t("Campaign Monitor is answering again; the run continues",
                                              lang=self.lang))


class _CtrlC:
    """First Ctrl-C: stop gently (finish what is in flight, write every row); second: abort."""

    def __init__(self, control: RunControl) -> None:
        self.control = control
        self.previous: Any = None

    def __enter__(self) -> _CtrlC:
        try:
            self.previous = signal.signal(signal.SIGINT, self._handle)
        except ValueError:  # not the main thread (tests calling main() from a worker)
            self.previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.control.cancel.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def _connect(args: argparse.Namespace, retry: RetryPolicy | None) -> Connection | None:
    """The run's own client, with bulk options (None, said on stderr, when none can be made)."""
    from .runtime import connect

    try:
        conn = connect(cache=False, options=bulk_client_options(args.rate, args.concurrency, retry))
    except CMError as exc:  # e.g. an API URL the key must not be sent to (cmlib.urls)
        _err(t("cannot connect: {reason}", reason=text_of(exc.message)))
        return None
    for note in conn.notes:  # e.g. "CM_API_URL is ignored: the saved key only goes to its own URL"
        _err(text_of(note))
    return conn


def _run(args: argparse.Namespace, tuning: Tuning) -> int:
    info = _inspect(args)
    if info is None:
        return 2
    conn = _connect(args, tuning.retry)
    if conn is None:
        return 1
    with conn:
        return _run_on(args, info, conn, tuning)


def _run_on(args: argparse.Namespace, info: FileInfo, conn: Connection, tuning: Tuning) -> int:
    det = info.detected
    assert det.email_column is not None  # _inspect refused the file otherwise
    if not args.quiet:
        where = (t("the local demo sandbox (no credentials configured)") if conn.is_demo
                 else conn.credentials.api_url)
        print(nt("Reading {path}: {how}; email column “{column}” ({why}); {n} row. Looking up in {where}.",
                 "Reading {path}: {how}; email column “{column}” ({why}); {n} rows. Looking up in {where}.",
                 info.data_rows, path=args.input, how=det.describe(), column=det.column_name(det.email_column),
                 why=text_of(det.email_column_reason), where=where), file=sys.stderr)
    control = RunControl(patience=args.patience)
    loop = BulkRun(BulkLookup(conn.client, conn.client_id, with_activity=args.with_activity), control,
                   max_workers=args.concurrency, repass=not args.no_repass, repass_delay=tuning.repass_delay)
    calls_before = conn.client.calls_made
    try:
        loop.prepare()
    except AuthenticationError as exc:
        _err(t("authentication failed: {reason}. Check CM_API_KEY / CM_CLIENT_ID.", reason=exc.describe()))
        return 1
    for note in loop.lookup.notes:
        _err(text_of(note))

    lang = args.lang
    layout = Layout(dict(loop.lookup.list_names), extra_column_names(det), with_activity=args.with_activity,
                    other_lists_column=True, lang=lang)
    delimiter, decimal = output_format(args, det.delimiter)
    progress = ProgressLine(info.data_rows, sys.stderr, enabled=not args.quiet, lang=lang)
    started = time.monotonic()
    try:
        with _CtrlC(control), open_csv_output(args.output, layout.headers, delimiter, decimal) as sink:
            writer = _Writer(info, layout, sink, progress, control, loop.lookup.suppression, lang=lang)
            control.on_pause, control.on_resume = writer.on_pause, writer.on_resume
            rows = Validator().iter_rows(iter_file_rows(info), det.email_column)
            loop.run(_chunks(rows, args.chunk_size), writer.on_result, writer.on_chunk)
    except OSError as exc:
        progress.finish()
        _err(t("could not write {path}: {reason}", path=args.output, reason=exc.strerror or str(exc)))
        return 2
    except CMError as exc:  # defensive: run_lookups captures per-address errors
        progress.finish()
        _err(t("lookup failed: {reason}", reason=exc.describe()))
        return 3
    tally = writer.tally
    progress.update(tally.rows, writer.lookups, force=True)
    progress.finish()
    if not args.quiet:
        print(_summary(tally, writer.suppressed_rows, conn.client.calls_made - calls_before, args.output,
                       format_duration(time.monotonic() - started), delimiter), file=sys.stderr)
    if control.fatal:
        _err(t("the run stopped: authentication failed ({reason})", reason=control.fatal))
    elif control.gave_up:
        _err(nt("{reason}. {n} row was not looked up (written with that reason); run it again when it answers.",
                "{reason}. {n} rows were not looked up (written with that reason); run them again when it answers.",
                tally.not_run, reason=text_of(control.gave_up)))
    return 3 if tally.errors else 0


def _summary(tally: Tally, suppressed: int, calls: int, output: str, took: str, delimiter: str) -> str:
    """The closing line on stderr, in the current language: what was written, and the outcome of the rows."""
    counts = [
        nt("{n} address looked up ({no_list} on no list)", "{n} addresses looked up ({no_list} on no list)",
           tally.looked_up, no_list=tally.on_no_list),
        nt("{n} duplicate row", "{n} duplicate rows", tally.duplicates),
        nt("{n} invalid", "{n} invalid", tally.invalid),
        nt("{n} failed", "{n} failed", tally.failed),
        nt("{n} with incomplete activity", "{n} with incomplete activity", tally.partial),
        nt("{n} not looked up", "{n} not looked up", tally.not_run),
        nt("{n} on the suppression list", "{n} on the suppression list", suppressed),
    ]
    return nt("Wrote {n} row to {path} in {duration}: {counts}; {calls}; separator: {separator}.",
              "Wrote {n} rows to {path} in {duration}: {counts}; {calls}; separator: {separator}.", tally.rows,
              path=output, duration=took, counts=", ".join(counts),
              calls=nt("{n} API call", "{n} API calls", calls),
              separator=t(DELIMITER_NAMES.get(delimiter, delimiter)))


def output_problem(output: str, input_path: str) -> str | None:
    """Why OUT.csv cannot be written, found before any lookup (not after a long run), in the
    current language."""
    if os.path.isdir(output):
        return t("{path} is a folder: give the name of the file to write, e.g. {example}", path=output,
                 example=os.path.join(output, "out.csv"))
    out_dir = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(out_dir):
        return t("the folder of {path} does not exist", path=output)
    if os.path.exists(output):
        if os.path.samefile(output, input_path):
            return t("the output file must not be the input file")
        if not os.access(output, os.W_OK):
            return t("cannot write {path}: permission denied", path=output)
    elif not os.access(out_dir, os.W_OK | os.X_OK):
        return t("cannot create {path}: the folder is not writable", path=output)
    return None


def main(argv: Sequence[str], tuning: Tuning = Tuning()) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return 0 if exc.code in (0, None) else 2
    return run(args, tuning)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
