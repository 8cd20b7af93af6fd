"""The Bulk page: addresses in (a CSV upload or pasted text), a background run, the summary and
the email × list matrix out, with CSV/Excel downloads.

The run belongs to a :class:`cmlib.bulk.jobs.BulkJob` in a process-wide registry, not to the
script run: a rerun, a visit to another page or a browser reload (the job id is also in the
URL) finds the job again with everything that finished, and says what it ran on (the file's
name, or pasted addresses) and when it started. A link to a run that is gone (expired, evicted,
or the server restarted) says so instead of showing nothing. Each run has a client of its own
with bulk options (not the interactive one the Lookup page uses), which the job closes when the
run ends; the registry cancels its jobs when Streamlit drops it. With ``CM_DATABASE_URL`` on
Postgres the page talks to the durable job book instead (:mod:`cmlib.bulk.durable`) through the
same :class:`~cmlib.bulk.jobs.JobHandle`: runs are queued for ``python -m cmlib worker`` and any
replica shows, cancels and downloads any run from the database.

The "Look up" button is always there: a text area hands its text to the script only when it
loses focus, so a button that appeared only after that was missing right after a paste. The
click itself takes the focus away, and the run starts from the text as pasted (or says what is
missing).

Progress sits right beside that button, where the person who just clicked is looking, in a
fragment that redraws every half second from one :class:`~cmlib.bulk.progress.Progress`: the
bar, its sentence ("176 / 300 addresses · 20.0/s · about 6 s left") and the counters (looked
up, on no list, suppressed, failed, not looked up) are one reading and always agree. While
Campaign Monitor is not answering the run pauses (see :mod:`cmlib.bulk.engine`) and the
fragment says so at once. The results below (:mod:`ui.bulk_results`) are paged and built on
demand, so several people can watch big runs at once.

States read as everywhere else in the app (subscribed, unsubscribed, pending, bounced,
deleted: :mod:`cmlib.states`); the downloads also carry the API's own value per list.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

import streamlit as st

from cmlib.bulk.control import JobState, format_duration, patience_from_env
from cmlib.bulk.jobs import JobBook, JobHandle, open_job_book
from cmlib.bulk.matrix import problems_frame
from cmlib.bulk.pasted import parse_pasted
from cmlib.bulk.progress import Progress
from cmlib.bulk.structure import CHOSEN_BY_YOU, read_bytes
from cmlib.bulk.table import BulkInputError, Table
from cmlib.bulk.validate import BulkInput, InputSource, Limits, limits_from_env, validate_table
from cmlib.errors import CMError
from cmlib.i18n import N_, Language, current_language, format_number, nt, t
from cmlib.lazy_text import text_of
from cmlib.timezones import format_time
from ui.bulk_results import (  # re-exported: the page's tests know these keys from here
    EXPORT_FILTERED_KEY,
    EXPORT_SEP_KEY,
    FILTER_LISTS_KEY,
    FILTER_STATES_KEY,
    PAGE_KEY,
    render_results,
)
from ui.connection import get_connection
from ui.display_zone import display_zone
from ui.text import md_escape

__all__ = [
    "ACTIVITY_KEY", "CANCEL_KEY", "CLEAR_KEY", "EXPORT_FILTERED_KEY", "EXPORT_SEP_KEY", "FILTER_LISTS_KEY",
    "FILTER_STATES_KEY", "JOB_KEY", "PAGE_KEY", "PASTE_KEY", "PROGRESS_EVERY", "REFRESH_KEY", "SOURCE_KEY",
    "SOURCE_PASTE", "SOURCE_UPLOAD", "START_KEY", "UPLOAD_KEY", "current_job", "registry", "render_bulk_page",
]

SOURCE_KEY = "bulk.source"
PASTE_KEY = "bulk.paste"
UPLOAD_KEY = "bulk.upload"
ACTIVITY_KEY = "bulk.activity"
START_KEY = "bulk.start"
CANCEL_KEY = "bulk.cancel"
REFRESH_KEY = "bulk.refresh"
CLEAR_KEY = "bulk.clear"
JOB_KEY = "bulk.job_id"  # the job this session watches
START_REQUESTED_KEY = "bulk.start_requested"  # "Look up" was clicked: start from this run's input
START_ERROR_KEY = "bulk.start_error"  # why the last "Look up" could not start a run
FINAL_SHOWN_KEY = "bulk.final_shown"  # job id whose final state a full run has rendered
PARSED_KEY = "bulk.parsed"  # (signature, Table | error) of the current input
VALIDATED_KEY = "bulk.validated"  # (input signature, column, row limit) -> BulkInput | error
QUERY_JOB = "job"

PROGRESS_EVERY = 0.5  # seconds between progress redraws while a run is going

SOURCE_PASTE = N_("Paste addresses")  # the radio's options, in English (the options are these, translated)
SOURCE_UPLOAD = N_("Upload a CSV file")


def _release_registry(reg: object) -> None:
    """``on_release``: when Streamlit drops the registry, its in-process runs stop and release
    their clients (durable runs go on in their workers)."""
    if isinstance(reg, JobBook):
        reg.close()


@st.cache_resource(show_spinner=False, on_release=_release_registry)
def registry() -> JobBook:
    """Every bulk job this server can show (one book shared by all sessions): this process's
    runs, or with ``CM_DATABASE_URL`` on Postgres every replica's (run by the workers)."""
    return open_job_book()


# --------------------------------------------------------------------------- input
@dataclass(frozen=True)
class InputState:
    """What the input section produced: a validated input to run, or why there is none (said
    when someone presses "Look up" anyway)."""

    bulk_input: BulkInput | None
    missing: str = ""


def _signature(*parts: Any) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:20]


def _parse(kind: str, content: bytes | str, limits: Limits) -> Table | BulkInputError:
    """Parse once per distinct input; reruns (a click anywhere) reuse the table."""
    sig = _signature(kind, content)
    cached = st.session_state.get(PARSED_KEY)
    if cached and cached[0] == sig:
        return cached[1]
    try:
        if kind == SOURCE_UPLOAD:
            assert isinstance(content, bytes)
            result: Table | BulkInputError = read_bytes(content, max_bytes=limits.max_bytes)
        else:
            result = parse_pasted(str(content))
    except BulkInputError as exc:
        result = exc
    st.session_state[PARSED_KEY] = (sig, result)
    return result


def _short_number(value: float) -> str:
    """``0.0005``, ``20``, ``2.5`` (Russian ``2,5``): as many decimals as the value has, like ``{:g}``."""
    from babel.numbers import get_decimal_symbol

    return f"{value:g}".replace(".", get_decimal_symbol(current_language().value))


def _read_input(limits: Limits) -> tuple[Table | None, str, str, str]:
    """(table, signature, file name, why there is none) of what the user gave; problems with
    the input itself are shown where it is."""
    # The options are the labels in the session's language (what the widget's value is, too); a
    # choice made before the language was switched is carried over to the same option.
    options = [t(SOURCE_PASTE), t(SOURCE_UPLOAD)]
    held = st.session_state.get(SOURCE_KEY)
    if held is not None and held not in options:
        uploading = any(held == t(SOURCE_UPLOAD, lang=lang) for lang in Language)
        st.session_state[SOURCE_KEY] = options[1] if uploading else options[0]
    source = st.radio(t("Addresses from"), options, key=SOURCE_KEY, horizontal=True)
    if source == options[1]:
        up = st.file_uploader(
            t("CSV file (comma, semicolon or tab separated; UTF-8, UTF-16, Windows-1251 or Latin-1; up to {mb} MB "
              "and {rows} rows)", mb=_short_number(limits.max_mb), rows=limits.max_rows),
            type=["csv", "txt", "tsv"], key=UPLOAD_KEY,
        )
        if up is None:
            return None, "", "", t("Choose a CSV file first.")
        if up.size > limits.max_bytes:
            st.error(t("The file is {size} MB; the limit is {limit} MB. Split it into smaller files or use the "
                       "command line (`python -m cmlib bulk`).", size=format_number(up.size / 1e6, digits=1),
                       limit=_short_number(limits.max_mb)))
            return None, "", "", t("The file is too big (see above).")
        data = up.getvalue()
        parsed = _parse(SOURCE_UPLOAD, data, limits)
        name = up.name
        sig = _signature(SOURCE_UPLOAD, data)
    else:
        text = st.text_area(
            t("Addresses — one per line, or separated by commas or spaces; or paste a range copied from Excel "
              "(with its header row)"), key=PASTE_KEY, height=160,
            placeholder="anna@example.com\nivan@example.com, maria+news@example.com",
        )
        if not text or not text.strip():
            return None, "", "", t("Paste some addresses first (one per line), or upload a CSV file.")
        parsed = _parse(SOURCE_PASTE, text, limits)
        name = ""
        sig = _signature(SOURCE_PASTE, text)
    if isinstance(parsed, BulkInputError):
        st.error(md_escape(parsed.text()))
        return None, "", "", t("The input cannot be used as it is (see above).")
    return parsed, sig, name, ""


def _choose_column(table: Table, sig: str, details: Any) -> Table | None:
    """The email column: detected, or chosen here when the file leaves a choice. How the file
    was read is said in ``details`` (below the button)."""
    det = table.detected
    if det.flat_list:
        return table
    details.caption(md_escape(t("Read as {how}.", how=det.describe())))
    if len(det.columns) == 1 and det.email_column == 0:
        return table  # nothing to choose
    cols = list(range(len(det.columns)))
    if det.email_column is None:
        st.warning(t("No column with email addresses was found. Choose the column that holds them."))
    choice = st.selectbox(
        t("Email column"), cols, index=det.email_column, format_func=lambda i: det.column_name(i),
        key=f"bulk.column.{sig}", placeholder=t("Choose the email column"),
        help=t("Detected from the header (English or Russian names) or, failing that, from the content. "
               "Every other column is kept and copied to the results."),
    )
    if choice is None:
        return None
    if choice != det.email_column:
        return Table(replace(det, email_column=choice, email_column_reason=CHOSEN_BY_YOU), table.rows)
    if det.email_column_reason:
        details.caption(md_escape(t("Email column detected by {why}.", why=text_of(det.email_column_reason))))
    return table


def _validate(table: Table, sig: str, name: str, limits: Limits) -> BulkInput | None:
    key = (sig, table.detected.email_column, limits.max_rows)
    cached = st.session_state.get(VALIDATED_KEY)
    if cached and cached[0] == key:
        result = cached[1]
    else:
        try:
            result = validate_table(table, max_rows=limits.max_rows, source_name=name,
                                    source=InputSource.UPLOADED if name else InputSource.PASTED)
        except BulkInputError as exc:
            result = exc
        st.session_state[VALIDATED_KEY] = (key, result)
    if isinstance(result, BulkInputError):
        st.error(md_escape(result.text()))
        return None
    assert isinstance(result, BulkInput)
    return result


def _validation_panel(bi: BulkInput) -> None:
    c = bi.counts
    cols = st.columns(4)
    cols[0].metric(t("Rows"), format_number(c.rows))
    cols[1].metric(t("Valid addresses"), format_number(c.valid), help=t("Distinct valid addresses: one lookup each."))
    cols[2].metric(t("Invalid"), format_number(c.invalid))
    cols[3].metric(t("Duplicates"), format_number(c.duplicates), help=t("Rows repeating an earlier row's address "
                   "(case-insensitive). They get the earlier row's result."))
    if c.invalid or c.duplicates:
        with st.expander(t("Invalid and duplicate rows ({n})", n=c.invalid + c.duplicates)):
            st.dataframe(problems_frame(bi, lang=current_language()), hide_index=True, width="stretch")


def _input_section(limits: Limits, details: Any) -> InputState:
    """The input and the email column here; what validation found goes to ``details``, below
    the button, so the button (and the progress beside it) stays where the person is looking."""
    table, sig, name, missing = _read_input(limits)
    if table is None:
        return InputState(None, missing)
    chosen = _choose_column(table, sig, details)
    if chosen is None:
        return InputState(None, t("Choose the email column first."))
    bi = _validate(chosen, sig, name, limits)
    if bi is None:
        return InputState(None, t("The input cannot be used as it is (see above)."))
    with details:
        _validation_panel(bi)
    if bi.counts.valid == 0:
        return InputState(None, t("None of the rows holds a valid address: there is nothing to look up."))
    return InputState(bi)


def _cost_caption(n: int, rate: float | None, list_count: int | None) -> str:
    """The price of a run in API calls, said before it starts."""
    if rate:
        base = nt("Membership only: **{n} call** (one per distinct address), about {duration} at {rate} requests/s, "
                  "plus the suppression list (one call per {thousand} suppressed addresses).",
                  "Membership only: **{n} calls** (one per distinct address), about {duration} at {rate} "
                  "requests/s, plus the suppression list (one call per {thousand} suppressed addresses).", n,
                  duration=format_duration(n / rate), rate=rate, thousand=1000)
    else:
        base = nt("Membership only: **{n} call** (one per distinct address), plus the suppression list (one call "
                  "per {thousand} suppressed addresses).",
                  "Membership only: **{n} calls** (one per distinct address), plus the suppression list (one call "
                  "per {thousand} suppressed addresses).", n, thousand=1000)
    if list_count:
        extra = t("With activity: **{n} + one call per list membership + 1** (the campaigns index) — for example "
                  "{example} calls if each address is on two lists, at most {most} with this client's {lists} lists.",
                  n=n, example=3 * n + 1, most=n * (1 + list_count) + 1, lists=list_count)
    else:
        extra = t("With activity: **{n} + one call per list membership + 1** (the campaigns index) — for example "
                  "{example} calls if each address is on two lists.", n=n, example=3 * n + 1)
    return base + " " + extra


def _list_count(conn: Any) -> int | None:
    try:
        return len(conn.client.lists(conn.client_id))
    except CMError:
        return None


# --------------------------------------------------------------------------- job
def current_job() -> JobHandle | None:
    jid = st.session_state.get(JOB_KEY) or st.query_params.get(QUERY_JOB)
    job = registry().get(jid)
    if job is not None:
        st.session_state[JOB_KEY] = job.id
        if st.query_params.get(QUERY_JOB) != job.id:
            st.query_params[QUERY_JOB] = job.id
    return job


def _request_start() -> None:
    """``on_click`` of "Look up": the run starts in the script, from the input as this rerun reads
    it (a text area pasted into a moment ago hands over its text with this very click)."""
    st.session_state[START_REQUESTED_KEY] = True


def _start(conn: Any, state: InputState, with_activity: bool) -> None:
    old = current_job()
    if old is not None and not old.finished:
        st.session_state[START_ERROR_KEY] = t("A run is in progress; cancel it or wait for it to finish.")
        return
    bi = state.bulk_input
    if bi is None:
        st.session_state[START_ERROR_KEY] = state.missing or t("There is nothing to look up yet.")
        return
    try:
        # Started here on a client of its own (closed by the job), or queued for the workers.
        job = registry().submit(conn.credentials, bi, with_activity=with_activity, patience=patience_from_env())
    except CMError as err:
        st.session_state[START_ERROR_KEY] = t("The run could not start: {reason}", reason=err.describe())
        return
    st.session_state[JOB_KEY] = job.id
    st.session_state.pop(FINAL_SHOWN_KEY, None)
    st.query_params[QUERY_JOB] = job.id


def _missing_job_notice() -> None:
    """A link (or this session) names a run the server no longer has: say so, not nothing."""
    jid = st.query_params.get(QUERY_JOB) or st.session_state.get(JOB_KEY)
    if not jid:
        return
    st.session_state.pop(JOB_KEY, None)
    shown = jid if len(jid) <= 40 else jid[:40] + "…"
    reg = registry()
    st.warning(md_escape(t("The bulk run “{run}” was not found: it has expired (finished runs are kept for {hours} "
                           "hours, at most the last {jobs}) or the server was restarted since. Start a new run below.",
                           run=shown, hours=reg.max_age / 3600, jobs=reg.max_jobs)), icon=":material/history:")


def _clear() -> None:
    jid = st.session_state.pop(JOB_KEY, None)
    if jid:
        registry().remove(jid)
    if QUERY_JOB in st.query_params:
        del st.query_params[QUERY_JOB]


def job_caption(job: JobHandle, started: str) -> str:
    """What the run is about, said wherever it is shown (a link to it too): "300 addresses from
    the uploaded file “event.csv” · membership only · started 2026-11-25 16:00 MSK"."""
    bi = job.input
    what = t("with activity") if job.with_activity else t("membership only")
    rows = nt("{n} row", "{n} rows", bi.counts.rows)
    return nt("Run of {n} address ({rows}) from {source} · {what} · started {started}",
              "Run of {n} addresses ({rows}) from {source} · {what} · started {started}", bi.counts.valid,
              rows=rows, source=bi.describe_source(), what=what, started=started)


def _counters(p: Progress, job: JobHandle) -> None:
    """The counters of the one reading ``p``: they add up to the bar's "done / total"."""
    c = job.input.counts
    m = st.columns(6)
    m[0].metric(t("Looked up"), format_number(p.looked_up))
    m[1].metric(t("On no list"), format_number(p.on_no_list))
    m[2].metric(t("Suppressed"), format_number(p.suppressed), help=t("Addresses on the client's suppression list "
                "(read once at the start of the run): Campaign Monitor sends them nothing, and a subscribe would add "
                "them only with Resubscribe. The matrix says since when and why."))
    m[3].metric(t("Failed"), format_number(p.errors), help=t("Lookups that failed after retries; the reason is in "
                "the matrix's Error column."))
    m[4].metric(t("Not looked up"), format_number(p.waiting))
    m[5].metric(t("Invalid / dup."), t("{invalid} / {duplicates}", invalid=c.invalid, duplicates=c.duplicates),
                help=t("Input rows that were not looked up because the address is invalid, or because an "
                       "earlier row has the same address (they show that row's result)."))


def _progress_section(job: JobHandle, started: str) -> None:
    running = not job.finished
    about = md_escape(job_caption(job, started))

    @st.fragment(run_every=PROGRESS_EVERY if running else None)
    def progress_fragment() -> None:
        p = job.progress()  # one reading for the bar, its sentence and the counters
        lang = current_language()  # a fragment rerun: said again in the session's language
        st.progress(p.fraction, text=p.describe(lang=lang))
        st.caption(about)
        paused = p.pause_message(lang=lang)
        if paused:
            st.warning(md_escape(t("{pause}. It continues by itself when Campaign Monitor answers again; nothing "
                                   "is marked failed because of the outage.", lang=lang, pause=paused)),
                       icon=":material/cloud_off:")
        if not p.finished:
            left = st.columns([1.3, 2, 3.5])
            left[0].button(t("Cancel", lang=lang), key=CANCEL_KEY, on_click=job.cancel, icon=":material/stop:",
                           disabled=p.state == JobState.CANCELLING)
            if left[1].button(t("Show results so far", lang=lang), key=REFRESH_KEY, icon=":material/refresh:"):
                st.rerun()  # the whole page: the results section is outside this fragment
            if p.state == JobState.CANCELLING:
                left[2].caption(t("Cancelling: no new lookups start; those in flight finish and are kept.",
                                  lang=lang))
            elif p.state == JobState.PENDING:
                left[2].caption(t("Queued: the run starts as soon as a worker is free (python -m cmlib worker).",
                                  lang=lang))
            else:
                left[2].caption(t("You can leave this page: the run continues and the results so far stay here.",
                                  lang=lang))
        _counters(p, job)
        if p.finished and st.session_state.get(FINAL_SHOWN_KEY) != job.id:
            st.rerun()  # the run just ended: redraw the whole page with the final results

    progress_fragment()


# --------------------------------------------------------------------------- page
def render_bulk_page() -> None:
    st.title(t("Bulk lookup"))
    st.caption(t("Which of these addresses are already subscribed, and to what? One API call per address; "
                 "every row of the input ends up in the results, with a reason when it could not be looked up."))
    limits = limits_from_env()
    try:
        conn = get_connection()
    except CMError as err:
        st.error(md_escape(t("Cannot connect to Campaign Monitor: {reason}", reason=err.describe())))
        return
    if current_job() is None:
        _missing_job_notice()

    # Drawn in this order: the input, then the button with the progress beside it, then what
    # validation found -- so a click, and the progress it starts, stay in view.
    top, action, details = st.container(), st.container(), st.container()
    with top:
        state = _input_section(limits, details)
        with_activity = st.checkbox(t("Include activity (last campaign, open and click rates)"), key=ACTIVITY_KEY)
    if state.bulk_input is not None:
        # A run's own client spends the credential's one rate budget, the one this client shows.
        details.caption(_cost_caption(state.bulk_input.counts.valid, conn.client.limiter.rate,
                                      _list_count(conn) if with_activity else None))
    if st.session_state.pop(START_REQUESTED_KEY, False):
        _start(conn, state, with_activity)
    job = current_job()
    running = job is not None and not job.finished
    # Progress right beside the button: where the person who just clicked it is looking.
    button_col, progress_col = action.columns([1, 6])
    button_col.button(t("Look up"), key=START_KEY, type="primary", icon=":material/play_arrow:", disabled=running,
                      on_click=_request_start, width="stretch",
                      help=t("A run is in progress; cancel it or wait for it to finish.") if running else None)
    start_error = st.session_state.pop(START_ERROR_KEY, None)  # said once, for the click that caused it
    if job is None:
        if start_error:
            progress_col.error(md_escape(str(start_error)))
        return
    with progress_col:
        if start_error:
            st.error(md_escape(str(start_error)))
        if job.finished:
            st.session_state[FINAL_SHOWN_KEY] = job.id
        _progress_section(job, format_time(job.created_at, display_zone(conn).zone))
    st.divider()
    render_results(job)
    st.button(t("Clear results"), key=CLEAR_KEY, on_click=_clear, icon=":material/delete:",
              help=t("Forget this run (cancels it when it is still running)."))
