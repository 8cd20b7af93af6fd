"""The Bulk page: addresses in (a CSV upload or pasted text), a background run, the summary and
the email × list matrix out, with CSV/Excel downloads.

The run belongs to a :class:`cmlib.bulk.jobs.BulkJob` in a process-wide registry, not to the
script run: a rerun, a visit to another page or a browser reload (the job id is also in the
URL) finds the job again with everything that finished. The page only polls it, from a
fragment that reruns every second while the job is running. A link to a run that is gone
(expired, evicted, or the server restarted) says so instead of showing nothing. Each run has a
client of its own with bulk options (not the interactive one the Lookup page uses), which the
job closes when the run ends; the registry cancels its jobs when Streamlit drops it.

States read as everywhere else in the app (subscribed, unsubscribed, pending, bounced,
deleted: :mod:`cmlib.states`); the downloads also carry the API's own value per list.

While Campaign Monitor is not answering the run pauses (see :mod:`cmlib.bulk.engine`) and the
progress fragment shows it at once: "Campaign Monitor is not answering since … — paused, N
addresses waiting", instead of a counter that stops and an ETA that grows.

Every string from the file or the API (column names, list names, cells) is shown through a
dataframe or ``md_escape``; the downloads are neutralised against formula injection in cmlib.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

import streamlit as st

from cmlib.bulk.control import JobState, format_duration, patience_from_env
from cmlib.bulk.export import CSV_MIME, XLSX_MIME, to_csv_bytes, to_excel_bytes
from cmlib.bulk.jobs import BulkJob, JobRegistry, JobSnapshot
from cmlib.bulk.matrix import (
    COL_ROW,
    Layout,
    build_matrix,
    chart_colors,
    filter_matrix,
    filter_states,
    layout_for,
    problems_frame,
    style_matrix,
    summarise,
)
from cmlib.bulk.pasted import parse_pasted
from cmlib.bulk.structure import read_bytes
from cmlib.bulk.table import BulkInputError, Table
from cmlib.bulk.validate import BulkInput, Limits, limits_from_env, validate_table
from cmlib.errors import CMError
from ui.connection import get_connection
from ui.text import md_escape

SOURCE_KEY = "bulk.source"
PASTE_KEY = "bulk.paste"
UPLOAD_KEY = "bulk.upload"
ACTIVITY_KEY = "bulk.activity"
START_KEY = "bulk.start"
CANCEL_KEY = "bulk.cancel"
REFRESH_KEY = "bulk.refresh"
CLEAR_KEY = "bulk.clear"
JOB_KEY = "bulk.job_id"  # the job this session watches
START_ERROR_KEY = "bulk.start_error"  # why the last "Look up" could not start a run
FINAL_SHOWN_KEY = "bulk.final_shown"  # job id whose final state a full run has rendered
PARSED_KEY = "bulk.parsed"  # (signature, Table | error) of the current input
TABLES_KEY = "bulk.tables"  # (job id, results count, state) -> the tables built from them
VALIDATED_KEY = "bulk.validated"  # (input signature, column, row limit) -> BulkInput | error
FILTER_LISTS_KEY = "bulk.filter.lists"
FILTER_STATES_KEY = "bulk.filter.states"
EXPORT_FILTERED_KEY = "bulk.export.filtered"
EXPORT_SEP_KEY = "bulk.export.sep"
QUERY_JOB = "job"

SOURCE_PASTE = "Paste addresses"
SOURCE_UPLOAD = "Upload a CSV file"
SEPARATORS = {",": "Comma (,)", ";": "Semicolon (;) — Excel with Russian settings", "\t": "Tab"}


def _release_registry(reg: object) -> None:
    """``on_release``: when Streamlit drops the registry, its runs stop and release their clients."""
    if isinstance(reg, JobRegistry):
        reg.close()


@st.cache_resource(show_spinner=False, on_release=_release_registry)
def registry() -> JobRegistry:
    """Every bulk job of this server process (one registry shared by all sessions)."""
    return JobRegistry()


# --------------------------------------------------------------------------- input
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


def _read_input(limits: Limits) -> tuple[Table | None, str, str]:
    """(table, signature, source name) of what the user gave, or (None, ...) with a message shown."""
    source = st.radio("Addresses from", [SOURCE_PASTE, SOURCE_UPLOAD], key=SOURCE_KEY, horizontal=True)
    if source == SOURCE_UPLOAD:
        up = st.file_uploader(
            f"CSV file (comma, semicolon or tab separated; UTF-8, UTF-16, Windows-1251 or Latin-1; "
            f"up to {limits.max_mb:g} MB and {limits.max_rows:,} rows)",
            type=["csv", "txt", "tsv"], key=UPLOAD_KEY,
        )
        if up is None:
            return None, "", ""
        if up.size > limits.max_bytes:
            st.error(f"The file is {up.size / 1e6:.1f} MB; the limit is {limits.max_mb:g} MB. Split it into smaller "
                     "files or use the command line (`python -m cmlib bulk`).")
            return None, "", ""
        data = up.getvalue()
        parsed = _parse(SOURCE_UPLOAD, data, limits)
        name = up.name
        sig = _signature(SOURCE_UPLOAD, data)
    else:
        text = st.text_area(
            "Addresses — one per line, or separated by commas or spaces; or paste a range copied from Excel "
            "(with its header row)", key=PASTE_KEY, height=180,
            placeholder="anna@example.com\nivan@example.com, maria+news@example.com",
        )
        if not text or not text.strip():
            return None, "", ""
        parsed = _parse(SOURCE_PASTE, text, limits)
        name = "pasted"
        sig = _signature(SOURCE_PASTE, text)
    if isinstance(parsed, BulkInputError):
        st.error(md_escape(str(parsed)))
        return None, "", ""
    return parsed, sig, name


def _choose_column(table: Table, sig: str) -> Table | None:
    det = table.detected
    if det.flat_list:
        return table
    st.caption(md_escape(f"Read as {det.describe()}."))
    if len(det.columns) == 1 and det.email_column == 0:
        return table  # nothing to choose
    cols = list(range(len(det.columns)))
    if det.email_column is None:
        st.warning("No column with email addresses was found. Choose the column that holds them.")
    choice = st.selectbox(
        "Email column", cols, index=det.email_column, format_func=lambda i: det.columns[i],
        key=f"bulk.column.{sig}", placeholder="Choose the email column",
        help="Detected from the header (English or Russian names) or, failing that, from the content. "
             "Every other column is kept and copied to the results.",
    )
    if choice is None:
        return None
    if choice != det.email_column:
        return Table(replace(det, email_column=choice, email_column_reason="chosen by you"), table.rows)
    if det.email_column_reason:
        st.caption(md_escape(f"Detected by {det.email_column_reason}."))
    return table


def _validate(table: Table, sig: str, name: str, limits: Limits) -> BulkInput | None:
    key = (sig, table.detected.email_column, limits.max_rows)
    cached = st.session_state.get(VALIDATED_KEY)
    if cached and cached[0] == key:
        result = cached[1]
    else:
        try:
            result = validate_table(table, max_rows=limits.max_rows, source_name=name)
        except BulkInputError as exc:
            result = exc
        st.session_state[VALIDATED_KEY] = (key, result)
    if isinstance(result, BulkInputError):
        st.error(md_escape(str(result)))
        return None
    return result


def _validation_panel(bi: BulkInput) -> None:
    c = bi.counts
    cols = st.columns(4)
    cols[0].metric("Rows", f"{c.rows:,}")
    cols[1].metric("Valid addresses", f"{c.valid:,}", help="Distinct valid addresses: one lookup each.")
    cols[2].metric("Invalid", f"{c.invalid:,}")
    cols[3].metric("Duplicates", f"{c.duplicates:,}", help="Rows repeating an earlier row's address "
                   "(case-insensitive). They get the earlier row's result.")
    if c.invalid or c.duplicates:
        with st.expander(f"Invalid and duplicate rows ({c.invalid + c.duplicates:,})"):
            st.dataframe(problems_frame(bi), hide_index=True, width="stretch")


def _cost_caption(n: int, rate: float | None, list_count: int | None) -> str:
    """The price of a run in API calls, said before it starts."""
    t = f", about {format_duration(n / rate)} at {rate:g} requests/s" if rate else ""
    base = f"Membership only: **{n:,} calls** (one per distinct address){t}."
    extra = ("With activity: **{n:,} + one call per list membership + 1** (the campaigns index) — for example "
             "{ex:,} calls if each address is on two lists{upper}.")
    upper = f", at most {n * (1 + list_count) + 1:,} with this client's {list_count} lists" if list_count else ""
    return base + " " + extra.format(n=n, ex=3 * n + 1, upper=upper)


def _list_count(conn: Any) -> int | None:
    try:
        return len(conn.client.lists(conn.client_id))
    except CMError:
        return None


# --------------------------------------------------------------------------- job
def current_job() -> BulkJob | None:
    jid = st.session_state.get(JOB_KEY) or st.query_params.get(QUERY_JOB)
    job = registry().get(jid)
    if job is not None:
        st.session_state[JOB_KEY] = job.id
        if st.query_params.get(QUERY_JOB) != job.id:
            st.query_params[QUERY_JOB] = job.id
    return job


def _start(conn: Any, bi: BulkInput, with_activity: bool) -> None:
    old = current_job()
    if old is not None and not old.finished:
        return
    st.session_state.pop(START_ERROR_KEY, None)
    try:
        # A client of its own, with bulk options, for the same credential; the job closes it.
        job = BulkJob.connect(conn.credentials, bi, with_activity=with_activity, patience=patience_from_env())
    except CMError as err:
        st.session_state[START_ERROR_KEY] = f"The run could not start: {err.reason}"
        return
    registry().add(job)
    st.session_state[JOB_KEY] = job.id
    st.session_state.pop(FINAL_SHOWN_KEY, None)
    st.query_params[QUERY_JOB] = job.id
    job.start()


def _missing_job_notice() -> None:
    """A link (or this session) names a run the server no longer has: say so, not nothing."""
    jid = st.query_params.get(QUERY_JOB) or st.session_state.get(JOB_KEY)
    if not jid:
        return
    st.session_state.pop(JOB_KEY, None)
    shown = jid if len(jid) <= 40 else jid[:40] + "…"
    reg = registry()
    st.warning(md_escape(f"The bulk run “{shown}” was not found: it has expired (finished runs are kept for "
                         f"{reg.max_age / 3600:g} hours, at most the last {reg.max_jobs}) or the server was "
                         "restarted since. Start a new run below."), icon=":material/history:")


def _clear() -> None:
    jid = st.session_state.pop(JOB_KEY, None)
    if jid:
        registry().remove(jid)
    if QUERY_JOB in st.query_params:
        del st.query_params[QUERY_JOB]


def _progress_section(job: BulkJob) -> None:
    running = not job.finished

    @st.fragment(run_every=1.0 if running else None)
    def progress_fragment() -> None:
        p = job.progress()
        st.progress(p.fraction, text=p.describe())
        paused = p.pause_message()
        if paused:
            st.warning(md_escape(paused + ". It continues by itself when Campaign Monitor answers again; nothing "
                                 "is marked failed because of the outage."), icon=":material/cloud_off:")
        if not job.finished:
            left = st.columns([1, 2, 4])
            left[0].button("Cancel", key=CANCEL_KEY, on_click=job.cancel, icon=":material/stop:",
                           disabled=job.state == JobState.CANCELLING)
            if left[1].button("Show results so far", key=REFRESH_KEY, icon=":material/refresh:"):
                st.rerun()  # the whole page: the results section is outside this fragment
            if job.state == JobState.CANCELLING:
                left[2].caption("Cancelling: no new lookups start; those in flight finish and are kept.")
            else:
                left[2].caption("You can leave this page: the run continues and the results so far stay here.")
        elif st.session_state.get(FINAL_SHOWN_KEY) != job.id:
            st.rerun()  # the run just ended: redraw the whole page with the final results

    progress_fragment()


def _file_stem(name: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name or "")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40]
    return stem or "bulk"


def _results_section(job: BulkJob) -> None:
    snap: JobSnapshot = job.snapshot()
    finished = snap.finished
    if snap.fatal:
        st.error(md_escape(f"The run stopped: {snap.fatal}. Check the credentials in Settings; the addresses not "
                           "looked up are marked in the matrix."))
    elif snap.gave_up:
        st.error(md_escape(f"{snap.gave_up}. The addresses not looked up are marked in the matrix; run them again "
                           "when it answers."), icon=":material/cloud_off:")
    for note in snap.notes:
        st.warning(md_escape(note))
    if not snap.results and not finished:
        st.caption("Results appear here when the run ends, or when you press “Show results so far”.")
        return
    layout, summary, counts, matrix = _tables(snap)
    heading = "Results" if finished else "Results so far"
    if snap.state == JobState.CANCELLED:
        heading = "Results (the run was cancelled; what finished is kept)"
    st.subheader(heading)
    m = st.columns(5)
    m[0].metric("Looked up", f"{counts.looked_up:,}")
    m[1].metric("On no list", f"{counts.on_no_list:,}")
    m[2].metric("Failed", f"{counts.failed:,}", help="Lookups that failed after retries; the reason is in the "
                "matrix's Error column.")
    m[3].metric("Not looked up", f"{counts.not_run:,}")
    m[4].metric("Invalid / duplicates", f"{counts.invalid_rows:,} / {counts.duplicate_rows:,}",
                help="Input rows that were not looked up because the address is invalid, or because an "
                "earlier row has the same address (they show that row's result).")

    st.markdown("**Per list: distinct addresses in each state**")
    st.dataframe(summary, width="stretch")
    if len(summary) and int(summary.to_numpy().sum()) > 0:
        # horizontal: "x" is the list axis (labelled by the table above), "y" the counts
        colors: list[Any] = chart_colors(list(summary.columns))  # the colours of cmlib.states, by state
        st.bar_chart(summary, color=colors, stack=True, horizontal=True, sort=False, x_label="",
                     y_label="addresses")

    _matrix_section(matrix, layout, snap, summary)


def _tables(snap: JobSnapshot) -> tuple[Layout, Any, Any, Any]:
    """Layout, summary, counts and matrix, rebuilt only when the results changed: a filter
    click on a 100,000-row result must not rebuild the whole matrix."""
    key = (snap.job_id, len(snap.results), snap.state)
    cached = st.session_state.get(TABLES_KEY)
    if cached and cached[0] == key:
        return cached[1]
    layout = layout_for(snap)
    summary, counts = summarise(snap, layout)
    tables = (layout, summary, counts, build_matrix(snap, layout))
    st.session_state[TABLES_KEY] = (key, tables)
    return tables


def _matrix_section(matrix: Any, layout: Layout, snap: JobSnapshot, summary: Any) -> None:
    st.markdown("**Email × list matrix** (one row per input row)")
    f1, f2 = st.columns(2)
    lists = f1.multiselect("Lists", layout.list_columns, key=FILTER_LISTS_KEY,
                           placeholder="All lists")
    states = f2.multiselect("States", filter_states(matrix, layout), key=FILTER_STATES_KEY,
                            placeholder="Any state")
    shown = filter_matrix(matrix, layout, lists, states)
    st.caption(f"Showing {len(shown):,} of {len(matrix):,} rows.")
    styled = style_matrix(shown, layout)
    if styled is shown and len(shown):
        st.caption("Colours are shown for smaller selections; filter by list or state to see them.")
    # The "(API state)" columns are for machines: in the downloads, not on screen.
    st.dataframe(styled, hide_index=True, width="stretch", column_order=layout.shown_columns,
                 column_config={COL_ROW: st.column_config.NumberColumn(COL_ROW, format="%d", pinned=True)})

    st.markdown("**Download**")
    d1, d2, d3 = st.columns([2, 2, 3])
    default_sep = snap.input.detected.delimiter if snap.input.detected.delimiter in SEPARATORS else ","
    seps: list[str] = list(SEPARATORS)
    sep = d3.selectbox("CSV separator", seps, index=seps.index(default_sep),
                       format_func=lambda d: SEPARATORS.get(d, d), key=EXPORT_SEP_KEY) or default_sep
    only_shown = d3.checkbox("Only the rows shown (filters applied)", key=EXPORT_FILTERED_KEY,
                             disabled=len(shown) == len(matrix))
    data = shown if only_shown else matrix
    if len(data) > 20_000:
        d3.caption("Large result: the Excel file takes a while to build (about half a minute per 100,000 rows); "
                   "the CSV is ready at once.")
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    stem = f"{_file_stem(snap.input.source_name)}-status-{stamp}"
    d1.download_button("Download CSV", data=lambda: to_csv_bytes(data, delimiter=sep), file_name=f"{stem}.csv",
                       mime=CSV_MIME, icon=":material/download:", key="bulk.download.csv")
    d2.download_button("Download Excel", data=lambda: to_excel_bytes(data, state_columns=layout.list_columns,
                                                                    summary=summary),
                       file_name=f"{stem}.xlsx", mime=XLSX_MIME, icon=":material/download:",
                       key="bulk.download.xlsx")


# --------------------------------------------------------------------------- page
def render_bulk_page() -> None:
    st.title("Bulk lookup")
    st.caption("Which of these addresses are already subscribed, and to what? One API call per address; "
               "every row of the input ends up in the results, with a reason when it could not be looked up.")
    limits = limits_from_env()
    try:
        conn = get_connection()
    except CMError as err:
        st.error(md_escape(f"Cannot connect to Campaign Monitor: {err.reason}"))
        return
    job = current_job()
    running = job is not None and not job.finished
    if job is None:
        _missing_job_notice()

    table, sig, name = _read_input(limits)
    bi: BulkInput | None = None
    if table is not None:
        chosen = _choose_column(table, sig)
        if chosen is not None:
            bi = _validate(chosen, sig, name, limits)
    if bi is not None:
        _validation_panel(bi)
        with_activity = st.checkbox("Include activity (last campaign, open and click rates)", key=ACTIVITY_KEY)
        # A run's own client spends the credential's one rate budget, the one this client shows.
        st.caption(_cost_caption(bi.counts.valid, conn.client.limiter.rate,
                                 _list_count(conn) if with_activity else None))
        st.button("Look up", key=START_KEY, type="primary", icon=":material/play_arrow:",
                  disabled=running or bi.counts.valid == 0, on_click=_start, args=(conn, bi, with_activity),
                  help="A run is in progress; cancel it or wait for it to finish." if running else None)
        start_error = st.session_state.get(START_ERROR_KEY)
        if start_error:
            st.error(md_escape(str(start_error)))
        job = current_job()

    if job is None:
        return
    st.divider()
    if job.finished:
        st.session_state[FINAL_SHOWN_KEY] = job.id
    _progress_section(job)
    _results_section(job)
    st.button("Clear results", key=CLEAR_KEY, on_click=_clear, icon=":material/delete:",
              help="Forget this run (cancels it when it is still running).")
