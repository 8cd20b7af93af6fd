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
  (``CM_BULK_PATIENCE``, default 5 minutes). Watchers see the pause in :class:`Progress`.
* **A page rerun loses nothing.** :class:`BulkJob` owns the run in a background thread and
  holds the results, so the Streamlit page only polls it and can be rerun, or left and
  revisited, while the run continues.
"""
from __future__ import annotations

import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

from ..breaker import CircuitBreaker, not_answering
from ..client import CampaignMonitor
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
from .validate import BulkInput

T = TypeVar("T")

# Failures worth one more try after the client's own retries gave up.
TRANSIENT_ERRORS = (RateLimitedError, ServerError, TransportError, UnexpectedResponseError)

STATE_PENDING = "pending"
STATE_RUNNING = "running"
STATE_CANCELLING = "cancelling"
STATE_DONE = "done"
STATE_CANCELLED = "cancelled"
STATE_FAILED = "failed"
FINISHED_STATES = frozenset({STATE_DONE, STATE_CANCELLED, STATE_FAILED})

DEFAULT_PATIENCE = 300.0
PATIENCE_ENV = "CM_BULK_PATIENCE"


def patience_from_env(environ: Mapping[str, str] = os.environ) -> float | None:
    """Seconds a run waits for a silent API before it stops (``CM_BULK_PATIENCE``); ``off`` or
    ``none``: wait for as long as it takes (someone can still cancel). Unreadable: the default."""
    raw = (environ.get(PATIENCE_ENV) or "").strip().lower()
    if not raw:
        return DEFAULT_PATIENCE
    if raw in ("off", "none", "forever", "inf"):
        return None
    try:
        value = float(raw)
    except ValueError:
        return DEFAULT_PATIENCE
    return max(0.0, value) if value == value else DEFAULT_PATIENCE  # NaN: default


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
    reason = err.reason if isinstance(err, CMError) else f"{type(err).__name__}: {err}"
    if isinstance(err, AuthenticationError):
        return f"Not looked up: authentication failed ({reason})"
    after = " after retries" if isinstance(err, TRANSIENT_ERRORS) else ""
    again = " and a final re-pass" if repassed else ""
    return f"Looking up the lists of {email} failed{after}{again}: {reason}"


class BulkLookup:
    """Per-address lookups for one client; reference data (lists, campaigns) loaded once."""

    def __init__(self, client: CampaignMonitor, client_id: str, *, with_activity: bool = False) -> None:
        self.client = client
        self.client_id = client_id
        self.with_activity = with_activity
        self.list_names: dict[str, str] = {}  # every list of the client first, in the API's order
        self.campaign_index: dict[str, Campaign] = {}
        self.notes: list[str] = []  # non-fatal problems with reference data, for the summary
        self._lock = threading.Lock()
        self._interned: dict[str, str] = {}

    def prepare(self) -> None:
        """Load the client's lists (so lists nobody is on still get a column) and, for
        activity, the campaigns index. Raises AuthenticationError; other failures are noted."""
        try:
            for ref in self.client.lists(self.client_id):
                self.list_names.setdefault(ref.list_id, ref.name)
        except AuthenticationError:
            raise
        except CMError as exc:
            self.notes.append(f"Could not load the client's lists ({exc.reason}); only lists someone is on "
                              "are shown.")
        if self.with_activity:
            try:
                self.campaign_index = LookupService(self.client, self.client_id).campaign_index()
            except AuthenticationError:
                raise
            except CMError as exc:
                self.notes.append(f"Could not load the client's sent campaigns ({exc.reason}); campaign names "
                                  "come from the subscriber history and sent dates may be missing.")

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
        histories: dict[str, list[HistoryItem]] = {}
        problems: list[str] = []
        for m in ms:
            if cancel is not None and cancel.is_set():
                problems.append("the run was cancelled before the history was loaded")
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
                problems.append(f"history on list “{m.list_name}”: {exc.reason}")
        camps = received_campaigns(histories, self.campaign_index)
        act = Activity.of(camps)
        last = camps[0] if camps else None
        summary = ActivitySummary(
            received=act.received, opened=act.opened, clicked=act.clicked,
            open_rate=act.open_rate, click_rate=act.click_rate,
            last_campaign=(last.subject or last.name) if last else "",
            last_sent=last.sent if last else None,
        )
        warning = ("Activity incomplete: " + "; ".join(problems)) if problems else None
        return LookupResult(email=email, memberships=pairs, activity=summary, warning=warning)


class _NotStarted(Exception):
    """A queued task reached after a cancel: it is reported as not looked up, not as failed."""


@dataclass(frozen=True)
class Pause:
    """The run is waiting for Campaign Monitor to answer again."""

    since: datetime | None  # when the API stopped answering (UTC)
    started: float  # RunControl.clock() when the run paused
    patience: float | None  # seconds it waits before stopping; None: until cancelled

    def message(self, waiting: int, noun: str = "addresses") -> str:
        text = f"{not_answering(self.since)} — paused, {waiting:,} {noun} waiting"
        if self.patience is not None:
            text += f"; the run stops if it does not answer within {format_duration(self.patience)}"
        return text


@dataclass
class RunControl:
    """Shared between a run and whoever watches it: cancel it, learn why it stopped, or see
    that it is paused because Campaign Monitor is not answering.

    ``clock`` and ``sleep`` are injectable so tests drive a pause with a fake clock; ``sleep``
    defaults to a wait that a cancel cuts short. ``on_pause``/``on_resume`` are called (from a
    worker thread) when a pause begins and ends -- the CLI prints them on stderr.
    """

    cancel: threading.Event = field(default_factory=threading.Event)
    fatal: str | None = None  # set when authentication failed mid-run
    patience: float | None = DEFAULT_PATIENCE
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Any] | None = None
    poll: float = 1.0  # longest single wait while paused: a cancel or a closed breaker is seen this fast
    on_pause: Callable[[Pause], None] | None = None
    on_resume: Callable[[], None] | None = None
    gave_up: str | None = None  # set when the run stopped because the API stayed silent too long
    _pause: Pause | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def stopped(self) -> bool:
        return self.cancel.is_set()

    @property
    def pause(self) -> Pause | None:
        return self._pause

    def _wait(self, seconds: float) -> None:
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.cancel.wait(seconds)

    def wait_for_api(self, breaker: CircuitBreaker) -> bool:
        """Hold a worker while the breaker refuses calls. True: try the address again now
        (the breaker closed, or a probe may go); False: stop (cancelled, or out of patience)."""
        with self._lock:
            began = self._pause is None
            if began:
                self._pause = Pause(breaker.status().down_since, self.clock(), self.patience)
            pause = self._pause
        if began and self.on_pause is not None:
            self.on_pause(pause)
        while True:
            if self.cancel.is_set():
                return False
            if self.patience is not None and self.clock() - pause.started >= self.patience:
                self._give_up(pause)
                return False
            delay = breaker.seconds_until_probe()
            if delay is None or delay <= 0:
                return True
            if self.patience is not None:
                delay = min(delay, max(0.0, pause.started + self.patience - self.clock()))
            self._wait(max(0.0, min(delay, self.poll)))

    def api_answered(self) -> None:
        """A lookup succeeded: a pause, if any, is over."""
        if self._pause is None:
            return
        with self._lock:
            ended, self._pause = self._pause is not None, None
        if ended and self.on_resume is not None and not self.cancel.is_set():
            self.on_resume()

    def _give_up(self, pause: Pause) -> None:
        with self._lock:
            if self.gave_up is None:
                waited = format_duration(self.patience)
                self.gave_up = (f"{not_answering(pause.since)}; the run stopped after waiting {waited} for it to "
                                "answer again")
        self.cancel.set()

    def not_looked_up(self, cancelled: str = "Not looked up: the run was cancelled") -> str:
        """The reason written for rows the run never reached."""
        if self.fatal:
            return f"Not looked up: the run stopped because authentication failed ({self.fatal})"
        if self.gave_up:
            return f"Not looked up: {self.gave_up}"
        if self.stopped:
            return cancelled
        return "Not looked up"


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
    for o in run_many(lambda i: one(held[i][0]), range(len(held)), max_workers=max_workers,
                      cancel=control.cancel):
        task = held[o.item][0]
        res = judge(task, o.error, o.result, final=True)
        if res is not None:
            seen.add(o.item)
            yield task, res
    for i, (task, err) in enumerate(held):  # cancelled before the re-pass reached them: the first error stands
        if i not in seen and not outage_ended_it(err):
            yield task, LookupResult(email=email_of(task), error=describe_failure(err, email_of(task)))


# --------------------------------------------------------------------------- progress
def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


@dataclass(frozen=True)
class Progress:
    state: str
    done: int
    total: int
    errors: int
    elapsed: float
    rate: float  # addresses per second, recent
    eta: float | None  # seconds left, None while unknown
    paused: Pause | None = None  # set while the run waits for Campaign Monitor to answer

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 1.0

    @property
    def waiting(self) -> int:
        """Addresses not looked up yet."""
        return max(0, self.total - self.done)

    def pause_message(self) -> str | None:
        """"Campaign Monitor is not answering since 14:02 UTC — paused, 705 addresses waiting"."""
        if self.paused is None or self.state not in (STATE_RUNNING, STATE_CANCELLING):
            return None
        return self.paused.message(self.waiting)

    def describe(self) -> str:
        parts = [f"{self.done:,} / {self.total:,} addresses"]
        if self.paused is not None and self.state in (STATE_RUNNING, STATE_CANCELLING):
            parts.append("paused: Campaign Monitor is not answering")
        elif self.rate > 0:
            parts.append(f"{self.rate:.1f}/s")
        if self.paused is None and self.state in (STATE_RUNNING, STATE_CANCELLING) and self.done < self.total:
            parts.append(f"about {format_duration(self.eta)} left" if self.eta is not None else "estimating time left")
        if self.errors:
            parts.append(f"{self.errors:,} failed")
        return " · ".join(parts)


class RateMeter:
    """Recent throughput: completions over the last ``window`` seconds (overall before that)."""

    def __init__(self, window: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.started = clock()
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.Lock()

    def record(self, done: int) -> None:
        now = self.clock()
        with self._lock:
            if self._samples and now - self._samples[-1][0] < 0.2:
                return
            self._samples.append((now, done))
            while len(self._samples) > 2 and now - self._samples[1][0] > self.window:
                self._samples.popleft()

    def rate(self, done: int) -> float:
        now = self.clock()
        with self._lock:
            if self._samples and now - self._samples[0][0] >= 1.0:
                t0, d0 = self._samples[0]
                return max(0.0, (done - d0) / (now - t0))
        elapsed = now - self.started
        return done / elapsed if elapsed > 0.5 else 0.0


# --------------------------------------------------------------------------- the page's job
@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for rendering (safe to read while the job runs)."""

    job_id: str
    input: BulkInput
    results: dict[str, LookupResult]  # by lower-cased address
    list_names: dict[str, str]
    with_activity: bool
    state: str
    fatal: str | None
    notes: tuple[str, ...]
    started_at: datetime
    gave_up: str | None = None  # the run stopped because Campaign Monitor stayed silent too long

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def not_run_reason(self) -> str:
        if self.fatal:
            return f"Not looked up: the run stopped because authentication failed ({self.fatal})"
        if self.gave_up:
            return f"Not looked up: {self.gave_up}"
        if self.state in (STATE_CANCELLED, STATE_CANCELLING):
            return "Not looked up: the run was cancelled"
        if self.state == STATE_FAILED:
            return "Not looked up: the run stopped"
        return "Not looked up yet"


class BulkJob:
    """A bulk run owned by a background thread; the page holds the job and polls it."""

    def __init__(
        self,
        client: CampaignMonitor,
        client_id: str,
        bulk_input: BulkInput,
        *,
        with_activity: bool = False,
        max_workers: int | None = None,
        repass: bool = True,
        repass_delay: float = 2.0,
        patience: float | None = DEFAULT_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Any] | None = None,
    ) -> None:
        self.id = secrets.token_urlsafe(12)
        self.input = bulk_input
        self.with_activity = with_activity
        self.lookup = BulkLookup(client, client_id, with_activity=with_activity)
        self.max_workers = max_workers or max(1, client.limiter.max_in_flight)
        self.repass = repass
        self.repass_delay = repass_delay
        self.control = RunControl(patience=patience, clock=clock, sleep=sleep)
        self.total = bulk_input.counts.valid
        self.created_at = datetime.now(timezone.utc)
        self._results: dict[str, LookupResult] = {}
        self._errors = 0
        self._lock = threading.Lock()
        self._state = STATE_PENDING
        self._thread: threading.Thread | None = None
        self._meter = RateMeter()
        self._started = time.monotonic()
        self._ended: float | None = None
        self.calls_at_start = client.calls_made

    # -- control
    def start(self) -> "BulkJob":
        with self._lock:
            if self._thread is not None:
                return self
            self._state = STATE_RUNNING
            self._started = time.monotonic()
            self._meter = RateMeter()
            self._thread = threading.Thread(target=self._run, name=f"bulk-{self.id}", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop starting new lookups; those in flight finish and are kept."""
        self.control.cancel.set()
        with self._lock:
            if self._state == STATE_RUNNING:
                self._state = STATE_CANCELLING

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.finished

    @property
    def state(self) -> str:
        return self._state

    @property
    def finished(self) -> bool:
        return self._state in FINISHED_STATES

    def _run(self) -> None:
        try:
            self.lookup.prepare()
            tasks = self.input.to_lookup
            for row, res in run_lookups(self.lookup, tasks, lambda r: r.email or "", control=self.control,
                                        max_workers=self.max_workers, repass=self.repass,
                                        repass_delay=self.repass_delay):
                with self._lock:
                    self._results[row.key or ""] = res
                    if not res.ok:
                        self._errors += 1
                    done = len(self._results)
                self._meter.record(done)
            end_state = STATE_FAILED if (self.control.fatal or self.control.gave_up) else (
                STATE_CANCELLED if self.control.cancel.is_set() else STATE_DONE)
        except AuthenticationError as exc:
            self.control.fatal = exc.reason
            end_state = STATE_FAILED
        except Exception as exc:  # a bug must still end the job visibly, keeping its results
            self.control.fatal = f"{type(exc).__name__}: {exc}"
            end_state = STATE_FAILED
        with self._lock:
            self._state = end_state
            self._ended = time.monotonic()

    # -- observation
    def progress(self) -> Progress:
        with self._lock:
            done, errors, state = len(self._results), self._errors, self._state
        end = self._ended if self._ended is not None else time.monotonic()
        elapsed = end - self._started
        rate = self._meter.rate(done) if self._ended is None else (done / elapsed if elapsed > 0 else 0.0)
        left = self.total - done
        eta = (left / rate) if rate > 0 and left > 0 else (0.0 if left <= 0 else None)
        return Progress(state, done, self.total, errors, elapsed, rate, eta, paused=self.control.pause)

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            results = dict(self._results)
            state = self._state
        with self.lookup._lock:
            names = dict(self.lookup.list_names)
        return JobSnapshot(job_id=self.id, input=self.input, results=results, list_names=names,
                           with_activity=self.with_activity, state=state, fatal=self.control.fatal,
                           notes=tuple(self.lookup.notes), started_at=self.created_at,
                           gave_up=self.control.gave_up)

    def calls_made(self) -> int:
        """HTTP calls since the job was created (approximate when the client is shared)."""
        return self.lookup.client.calls_made - self.calls_at_start


class JobRegistry:
    """Jobs of one server process, by id: a page rerun, a visit to another page or a browser
    reload (the id is in the URL) finds its job again. Old finished jobs are dropped."""

    def __init__(self, max_jobs: int = 20, max_age_seconds: float = 24 * 3600) -> None:
        self.max_jobs = max_jobs
        self.max_age = max_age_seconds
        self._jobs: dict[str, BulkJob] = {}
        self._lock = threading.Lock()

    def add(self, job: BulkJob) -> BulkJob:
        with self._lock:
            self._jobs[job.id] = job
            self._evict()
        return job

    def get(self, job_id: str | None) -> BulkJob | None:
        if not job_id:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def remove(self, job_id: str) -> None:
        with self._lock:
            job = self._jobs.pop(job_id, None)
        if job is not None:
            job.cancel()

    def __len__(self) -> int:
        return len(self._jobs)

    def _evict(self) -> None:
        now = datetime.now(timezone.utc)
        for jid, job in list(self._jobs.items()):
            if job.finished and (now - job.created_at).total_seconds() > self.max_age:
                del self._jobs[jid]
        finished = [j for j in self._jobs.values() if j.finished]
        finished.sort(key=lambda j: j.created_at)
        while len(self._jobs) > self.max_jobs and finished:
            del self._jobs[finished.pop(0).id]
