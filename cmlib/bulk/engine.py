"""The bulk run: one ``listsforemail`` call per distinct address, on the shared bounded pool.

Why it looks like this:

* **Cost.** ``listsforemail`` answers every list and state of an address in one call, so a
  membership-only run costs exactly one call per distinct valid address. "Include activity"
  adds one ``history`` call per list the address is on, plus the client's campaigns index
  once per run (a page per 1,000 campaigns), joined with :func:`cmlib.lookup.received_campaigns`.
* **Speed without 429 storms.** Calls go through :func:`cmlib.concurrency.run_many` and the
  client's shared :class:`~cmlib.ratelimit.RateLimiter`, so the run is as fast as the budget
  allows and a 429 pauses every worker until the announced reset.
* **Losing nothing.** Every address ends with a :class:`LookupResult`: its memberships, or
  the reason it failed. A transient failure that survived the client's retries (an outage
  longer than the retry budget) gets one more try in a final re-pass. Cancelling keeps every
  finished result; an authentication failure stops the run (every further call would fail
  the same way) and is reported once.
* **An outage is not the rows' fault.** When Campaign Monitor stops answering, the client's
  circuit breaker (:mod:`cmlib.breaker`) opens and calls fail at once; the run then *pauses*:
  every worker waits (one probe goes out now and then), rows stay "not looked up" -- never
  "failed" for a reason that is not theirs -- and the run continues by itself when the API
  answers again, or stops with a clear message after ``patience`` seconds without an answer
  (``CM_BULK_PATIENCE``, default 5 minutes). Watchers see the pause in :class:`~.control.RunControl`.
* **One run loop.** :class:`BulkRun` is the loop both callers use: the page's
  :class:`~cmlib.bulk.jobs.BulkJob` (one chunk, the whole input, in a background thread) and
  ``python -m cmlib bulk`` (chunks streamed from the file, written as each completes).
* **Its own client.** A bulk run uses a client of its own with :func:`bulk_client_options`
  (paced for a long run, not for one person's lookup), opened by its owner and closed when the
  run ends, so nothing it holds (connections, per-address cache keys) outlives it.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from .. import lazy_text as later
from ..breaker import CircuitBreaker
from ..client import CampaignMonitor, ClientOptions
from ..concurrency import run_many
from ..errors import (
    ApiUnavailableError,
    AuthenticationError,
    CMError,
    NotInListError,
    RateLimitedError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from ..lookup import Activity, LookupService, received_campaigns
from ..models import Campaign, HistoryItem
from ..pacing import LEARN, Lane, RateSetting
from ..retry import RetryPolicy
from ..suppression import SuppressionIndex
from .control import JobState, RunControl
from .validate import InputRow, Verdict

# RunControl is re-exported: callers that drive run_lookups themselves (bench/bench_sandbox.py)
# import it with the engine.
__all__ = [
    "BULK_CONCURRENCY", "BULK_RATE", "TRANSIENT_ERRORS", "ActivitySummary", "BulkLookup", "BulkRun",
    "LookupResult", "RunControl", "breaker_of", "bulk_client_options", "describe_failure", "is_outage",
    "run_lookups",
]

T = TypeVar("T")

# Failures worth one more try after the client's own retries gave up.
TRANSIENT_ERRORS = (RateLimitedError, ServerError, TransportError, UnexpectedResponseError)

# A bulk run's pace: the credential's learned one (cmlib.pacing), in the bulk lane, so a
# person's lookups go first; never a burst. The CLI's --rate (a cap) and --concurrency override them.
BULK_RATE: RateSetting = LEARN
BULK_CONCURRENCY = 16


def bulk_client_options(rate: RateSetting = BULK_RATE, concurrency: int = BULK_CONCURRENCY,
                        retry: RetryPolicy | None = None) -> ClientOptions:
    """ClientOptions for a bulk run's own client (the page's job and the CLI alike).

    ``retry`` replaces the default policy; the CLI's tests pass a quick one so they never sleep
    through real backoff.
    """
    opts = ClientOptions(rate=rate, max_in_flight=concurrency, pool_size=max(32, concurrency), lane=Lane.BULK)
    if retry is not None:
        opts.retry = retry
    return opts


def breaker_of(lookup: Any) -> CircuitBreaker | None:
    """The circuit breaker behind a lookup's client, if it has one (test doubles may not)."""
    return getattr(getattr(lookup, "client", None), "breaker", None)


def is_outage(err: BaseException, breaker: CircuitBreaker | None) -> bool:
    """Whether a failure belongs to the API rather than to the address: the breaker refused
    the call, or the call found no answer and the breaker is open now."""
    if isinstance(err, ApiUnavailableError):
        return True
    return isinstance(err, TransportError) and breaker is not None and breaker.status().is_open


@dataclass(frozen=True, slots=True)
class ActivitySummary:
    """What "include activity" adds per address (see :class:`cmlib.lookup.Activity`)."""

    received: int
    opened: int
    clicked: int
    open_rate: float
    click_rate: float
    last_campaign: str = ""
    last_sent: datetime | None = None


@dataclass(frozen=True, slots=True)
class LookupResult:
    """The outcome for one distinct address. Compact on purpose: 100,000 of them must fit.

    ``memberships`` holds ``(list_id, state)`` pairs; list names live once per run in
    :attr:`BulkLookup.list_names`. ``error`` means nothing is known about the address;
    ``warning`` means the memberships are right but part of the activity is missing.
    """

    email: str
    memberships: tuple[tuple[str, str], ...] = ()
    activity: ActivitySummary | None = None
    error: str | None = None
    warning: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def on_no_list(self) -> bool:
        return self.ok and not self.memberships


def describe_failure(err: BaseException, email: str, *, repassed: bool = False) -> str:
    """The row's reason (a :class:`~cmlib.lazy_text.LazyText`: each reader reads it in their language)."""
    if isinstance(err, AuthenticationError):
        return later.t("Not looked up: authentication failed ({reason})", reason=err)
    if isinstance(err, TRANSIENT_ERRORS):
        if repassed:
            return later.t("Looking up the lists of {email} failed after retries and a final re-pass: {reason}",
                           email=email, reason=err)
        return later.t("Looking up the lists of {email} failed after retries: {reason}", email=email, reason=err)
    if repassed:
        return later.t("Looking up the lists of {email} failed and a final re-pass: {reason}", email=email,
                       reason=err)
    return later.t("Looking up the lists of {email} failed: {reason}", email=email, reason=err)


class BulkLookup:
    """Per-address lookups for one client; reference data (lists, campaigns) loaded once."""

    def __init__(self, client: CampaignMonitor, client_id: str, *, with_activity: bool = False) -> None:
        self.client = client
        self.client_id = client_id
        self.with_activity = with_activity
        self.list_names: dict[str, str] = {}  # every list of the client first, in the API's order
        self.campaign_index: dict[str, Campaign] = {}
        self.suppression: SuppressionIndex | None = None  # read once per run by prepare()
        self.notes: list[str] = []  # non-fatal problems with reference data, for the summary
        self._lock = threading.Lock()
        self._interned: dict[str, str] = {}

    def prepare(self) -> None:
        """Load the client's lists (so lists nobody is on still get a column), its suppression
        list (one pass per run, not one per address) and, for activity, the campaigns index.
        Raises AuthenticationError; other failures are noted."""
        try:
            for ref in self.client.lists(self.client_id):
                self.list_names.setdefault(ref.list_id, ref.name)
        except AuthenticationError:
            raise
        except CMError as exc:
            self.notes.append(later.t("Could not load the client's lists ({reason}); only lists someone is on "
                                      "are shown.", reason=exc))
        self._load_suppression()
        if self.with_activity:
            try:
                # A service of its own for one call: closed at once, so no listener stays on the client.
                with LookupService(self.client, self.client_id) as svc:
                    self.campaign_index = svc.campaign_index()
            except AuthenticationError:
                raise
            except CMError as exc:
                self.notes.append(later.t("Could not load the client's sent campaigns ({reason}); campaign names "
                                          "come from the subscriber history and sent dates may be missing.",
                                          reason=exc))

    def _load_suppression(self) -> None:
        """The suppression list, read fresh: a run reports who is suppressed now, not two minutes ago."""
        try:
            self.suppression = SuppressionIndex.for_client(self.client, self.client_id, fresh=True)
        except AuthenticationError:
            raise
        except CMError as exc:
            self.notes.append(later.t("Could not load the client's suppression list ({reason}); the Suppressed "
                                      "columns are empty.", reason=exc))
            return
        if not self.suppression.complete:
            self.notes.append(later.nt("The client's suppression list is longer than the {n} address read; an "
                                       "address shown as not suppressed may still be.",
                                       "The client's suppression list is longer than the {n} addresses read; an "
                                       "address shown as not suppressed may still be.", len(self.suppression)))

    def _intern(self, s: str) -> str:
        return self._interned.setdefault(s, s)

    def lookup(self, email: str, cancel: threading.Event | None = None) -> LookupResult:
        """One address. Raises CMError when its memberships cannot be had.

        With activity, a cancel between the history calls keeps the memberships (the answer
        that matters) and marks the activity as not loaded, so a cancel takes effect within
        one request instead of one per list.
        """
        ms = self.client.lists_for_email(self.client_id, email)
        with self._lock:
            for m in ms:
                if m.list_id not in self.list_names:
                    self.list_names[m.list_id] = m.list_name
            pairs = tuple((self._intern(m.list_id), self._intern(m.state)) for m in ms)
        if not self.with_activity or not ms:
            return LookupResult(email=email, memberships=pairs,
                                activity=ActivitySummary(0, 0, 0, 0.0, 0.0) if self.with_activity else None)
        histories: dict[str, Sequence[HistoryItem]] = {}
        problems: list[later.LazyText] = []
        for m in ms:
            if cancel is not None and cancel.is_set():
                problems.append(later.t("the run was cancelled before the history was loaded"))
                break
            try:
                histories[m.list_id] = self.client.history(m.list_id, email)
            except AuthenticationError:
                raise
            except NotInListError:
                continue  # removed between the two calls: nothing was sent from that list since
            except CMError as exc:
                if is_outage(exc, breaker_of(self)):
                    raise  # the API went away: the whole address waits and is looked up again
                problems.append(later.t("history on list “{list}”: {reason}", list=m.list_name, reason=exc))
        camps = received_campaigns(histories, self.campaign_index)
        act = Activity.of(camps)
        last = camps[0] if camps else None
        summary = ActivitySummary(
            received=act.received, opened=act.opened, clicked=act.clicked,
            open_rate=act.open_rate, click_rate=act.click_rate,
            last_campaign=(last.subject or last.name) if last else "",
            last_sent=last.sent if last else None,
        )
        warning = (later.t("Activity incomplete: {problems}", problems=later.join("; ", problems))
                   if problems else None)
        return LookupResult(email=email, memberships=pairs, activity=summary, warning=warning)


class _NotStarted(Exception):
    """A queued task reached after a cancel: it is reported as not looked up, not as failed."""


def run_lookups(
    lookup: BulkLookup,
    tasks: Iterable[T],
    email_of: Callable[[T], str],
    *,
    control: RunControl,
    max_workers: int = 8,
    repass: bool = True,
    repass_delay: float = 2.0,
) -> Iterator[tuple[T, LookupResult]]:
    """Yield ``(task, result)`` for every task that was started, as each finishes.

    A task whose lookup failed with a transient error is held back and tried once more after
    the main pass (after ``repass_delay`` seconds, cut short by a cancel); it is then yielded
    with its final result. Tasks never started because of a cancel are not yielded: the caller
    knows its tasks and reports those as not looked up.

    While Campaign Monitor is not answering (the client's breaker is open) a worker waits
    with its address (:meth:`RunControl.wait_for_api`) and looks it up again when the API is
    back; an address the run gave up on is not yielded either (not looked up, not failed).
    """
    held: list[tuple[T, BaseException]] = []
    breaker = breaker_of(lookup)

    def one(task: T) -> LookupResult:
        while True:
            # run_many stops submitting on cancel, but tasks already queued in its window would
            # still run: they end here instead, unstarted, so a cancel is prompt.
            if control.cancel.is_set():
                raise _NotStarted()
            try:
                result = lookup.lookup(email_of(task), control.cancel)
            except CMError as exc:
                if breaker is None or not is_outage(exc, breaker):
                    raise
            else:
                control.api_answered()
                return result
            if not control.wait_for_api(breaker):
                raise _NotStarted()

    def outage_ended_it(err: BaseException) -> bool:
        """The run stopped (out of patience, or cancelled) while the API was not answering: a
        transport failure is the outage's, not the row's, so the row is "not looked up"."""
        return isinstance(err, TransportError) and (
            control.gave_up is not None or (breaker is not None and breaker.status().is_open))

    def judge(task: T, outcome_error: BaseException | None, result: LookupResult | None,
              final: bool) -> LookupResult | None:
        email = email_of(task)
        if outcome_error is None:
            return result
        if isinstance(outcome_error, _NotStarted):
            return None
        if isinstance(outcome_error, AuthenticationError):
            if control.fatal is None:
                control.fatal = outcome_error.reason
            control.cancel.set()
            return LookupResult(email=email, error=describe_failure(outcome_error, email))
        # Held for the re-pass: transient failures, and (even without re-pass) the failures that
        # opened the breaker -- the outage's, so the address is tried again once it is over.
        if not final and isinstance(outcome_error, TRANSIENT_ERRORS) and (repass or outage_ended_it(outcome_error)):
            held.append((task, outcome_error))
            return None
        if control.stopped and outage_ended_it(outcome_error):
            return None  # the run stopped during the outage: not looked up
        return LookupResult(email=email, error=describe_failure(outcome_error, email, repassed=final and repass))

    for o in run_many(one, tasks, max_workers=max_workers, cancel=control.cancel):
        res = judge(o.item, o.error, o.result, final=False)
        if res is not None:
            yield o.item, res
    if not held:
        return
    if not control.stopped and repass_delay > 0:
        control.cancel.wait(repass_delay)
    if control.stopped:
        for task, err in held:
            if not outage_ended_it(err):
                yield task, LookupResult(email=email_of(task), error=describe_failure(err, email_of(task)))
        return
    seen: set[int] = set()
    for again in run_many(lambda i: one(held[i][0]), range(len(held)), max_workers=max_workers,
                          cancel=control.cancel):
        task = held[again.item][0]
        res = judge(task, again.error, again.result, final=True)
        if res is not None:
            seen.add(again.item)
            yield task, res
    for i, (task, err) in enumerate(held):  # cancelled before the re-pass reached them: the first error stands
        if i not in seen and not outage_ended_it(err):
            yield task, LookupResult(email=email_of(task), error=describe_failure(err, email_of(task)))


def _email_of(row: InputRow) -> str:
    return row.email or ""


class BulkRun:
    """The one run loop, used by the page's job and by the CLI.

    :meth:`prepare` loads the reference data (raises AuthenticationError, so a wrong key is
    reported before anything is written); :meth:`run` looks up the valid rows of each chunk,
    hands every result to ``on_result`` as it comes, then the finished chunk to ``on_chunk``
    (the CLI writes it then; its rows' reason for "not looked up" is final by then), and
    returns how the run ended. Cancel, pause and patience work through ``control``.
    """

    def __init__(self, lookup: BulkLookup, control: RunControl, *, max_workers: int, repass: bool = True,
                 repass_delay: float = 2.0) -> None:
        self.lookup = lookup
        self.control = control
        self.max_workers = max_workers
        self.repass = repass
        self.repass_delay = repass_delay

    def prepare(self) -> None:
        self.lookup.prepare()

    def run(self, chunks: Iterable[Sequence[InputRow]], on_result: Callable[[InputRow, LookupResult], None],
            on_chunk: Callable[[Sequence[InputRow]], None] | None = None) -> JobState:
        for chunk in chunks:
            tasks = [r for r in chunk if r.status == Verdict.VALID]
            if tasks and not self.control.stopped:
                for row, res in run_lookups(self.lookup, tasks, _email_of, control=self.control,
                                            max_workers=self.max_workers, repass=self.repass,
                                            repass_delay=self.repass_delay):
                    on_result(row, res)
            if on_chunk is not None:
                on_chunk(chunk)
        return self.control.end_state()
