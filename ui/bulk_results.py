"""The Bulk page's results: the per-list summary, one page of the email × list matrix, and the
downloads -- drawn for several people at once without holding a matrix per person.

What a rerun costs, whatever the size of the run:

* the summary is built once per state of the job (:meth:`cmlib.bulk.jobs.JobHandle.memo`, from
  counts the job keeps as results arrive) and shared by every session watching it;
* a filter is resolved to the row numbers it keeps (an array of ints, kept in the session until
  the filter or the results change), and only the page on screen (at most
  :data:`cmlib.bulk.view.PAGE_SIZE` rows) becomes a table, coloured;
* the CSV and Excel files are built when someone clicks Download (Streamlit's deferred
  downloads), from the job's results, not from a table kept for the purpose.

Every string from the file or the API (column names, list names, cells) is shown through a
dataframe or ``md_escape``; the downloads are protected against formula injection in cmlib.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import streamlit as st

from cmlib.bulk.control import JobState
from cmlib.bulk.export import CSV_MIME, XLSX_MIME
from cmlib.bulk.jobs import JobHandle, JobSnapshot
from cmlib.bulk.matrix import (
    COL_LAST_SENT,
    COL_ROW,
    COL_SUPPRESSED_SINCE,
    FILTER_ON_NO_LIST,
    FILTER_PROBLEM,
    Layout,
    chart_colors,
    layout_for,
    style_matrix,
    summarise,
)
from cmlib.bulk.tally import ResultTally
from cmlib.bulk.view import (
    PAGE_SIZE,
    MatrixFilter,
    filter_options,
    matching_rows,
    matrix_csv,
    matrix_excel,
    page_count,
    page_frame,
    page_rows,
)
from cmlib.errors import CMError
from cmlib.i18n import N_, Language, csv_dialect, current_language, nt, t
from cmlib.lazy_text import text_of
from cmlib.timezones import DisplayZone, ZoneSource, parse_cm_time_zone
from ui.connection import get_connection
from ui.display_zone import client_time_zone
from ui.text import md_escape

FILTER_LISTS_KEY = "bulk.filter.lists"
FILTER_STATES_KEY = "bulk.filter.states"
PAGE_KEY = "bulk.page"
EXPORT_FILTERED_KEY = "bulk.export.filtered"
EXPORT_SEP_KEY = "bulk.export.sep"
ROWS_KEY = "bulk.rows"  # (job id, results version, filter) -> the row numbers the filter keeps

ROWS_PER_PAGE = PAGE_SIZE  # read at each rerun (a test sets a small page)

SEPARATORS = {",": N_("Comma (,)"), ";": N_("Semicolon (;) — Excel with Russian settings"), "\t": N_("Tab")}


_DATETIME_FORMATS = {Language.EN: "YYYY-MM-DD HH:mm", Language.RU: "DD.MM.YYYY HH:mm"}


def _default_separator(snap: JobSnapshot, lang: Language) -> str:
    """A Russian reader's spreadsheet expects ``;`` (:func:`cmlib.i18n.csv_dialect`); otherwise the
    input's own separator, comma when it had none of ours."""
    if lang is not Language.EN:
        return csv_dialect(lang)[0]
    delimiter = snap.input.detected.delimiter
    return delimiter if delimiter in SEPARATORS else ","


def file_stem(name: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", name or "")
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40]
    return stem or "bulk"


def render_results(job: JobHandle) -> None:
    snap: JobSnapshot = job.snapshot()
    finished = snap.finished
    # The session's language, passed explicitly: the downloads are built later, on another thread.
    lang = current_language()
    if snap.fatal:
        st.error(md_escape(t("The run stopped: {reason}. Check the credentials in Settings; the addresses not "
                             "looked up are marked in the matrix.", reason=text_of(snap.fatal, lang))))
    elif snap.gave_up:
        st.error(md_escape(t("{reason}. The addresses not looked up are marked in the matrix; run them again "
                             "when it answers.", reason=text_of(snap.gave_up, lang))), icon=":material/cloud_off:")
    for note in snap.notes:
        st.warning(md_escape(text_of(note, lang)))
    if not snap.results and not finished:
        st.caption(t("Results appear here when the run ends, or when you press “Show results so far”."))
        return
    layout = layout_for(snap, lang=lang)
    summary, _counts = job.memo(f"summary.{lang.value}", snap.version, lambda: summarise(snap, layout))
    if finished:
        heading = t("Results")
        if snap.state == JobState.CANCELLED:
            heading = t("Results (the run was cancelled; what finished is kept)")
        st.subheader(heading)
    else:
        st.subheader(t("Results so far"))
        st.caption(nt("As of {done} of {n} address; the counters above are live — press “Show results so far” to "
                      "bring the tables up to date.",
                      "As of {done} of {n} addresses; the counters above are live — press “Show results so far” to "
                      "bring the tables up to date.", snap.input.counts.valid, done=len(snap.results)))

    st.markdown(t("**Per list: distinct addresses in each state**"))
    st.dataframe(summary, width="stretch")
    if len(summary) and int(summary.to_numpy().sum()) > 0:
        # horizontal: "x" is the list axis (labelled by the table above), "y" the counts
        colors: list[Any] = chart_colors(list(summary.columns))  # the colours of cmlib.states, by state
        st.bar_chart(summary, color=colors, stack=True, horizontal=True, sort=False, x_label="",
                     y_label=t("addresses"))
    _matrix_section(snap, layout, summary)


def _rows_for(snap: JobSnapshot, layout: Layout, flt: MatrixFilter) -> Sequence[int]:
    """The row numbers a filter keeps, resolved once per filter and state of the results."""
    if not flt.active:
        return range(len(snap.input.rows))
    key = (snap.job_id, snap.version, flt)
    cached = st.session_state.get(ROWS_KEY)
    if cached and cached[0] == key:
        return cached[1]
    rows = matching_rows(snap, layout, flt)
    st.session_state[ROWS_KEY] = (key, rows)
    return rows


def _matrix_section(snap: JobSnapshot, layout: Layout, summary: Any) -> None:
    st.markdown(t("**Email × list matrix** (one row per input row)"))
    f1, f2 = st.columns(2)
    lists = f1.multiselect(t("Lists"), layout.list_columns, key=FILTER_LISTS_KEY, placeholder=t("All lists"))
    tally = snap.tally if snap.tally is not None else ResultTally.of(snap.results.values())
    # The options are keys (the English product words); a person reads them in the layout's language.
    states = f2.multiselect(t("States"), filter_options(tally), key=FILTER_STATES_KEY, placeholder=t("Any state"),
                            format_func=lambda key: _filter_word(key, layout))
    flt = MatrixFilter(tuple(lists), tuple(states))
    kept = _rows_for(snap, layout, flt)
    total = len(snap.input.rows)
    size = ROWS_PER_PAGE
    pages = page_count(len(kept), size)
    page = 1
    if pages > 1:
        held = st.session_state.get(PAGE_KEY)
        if isinstance(held, int) and held > pages:  # a narrower filter: the page it was on is gone
            st.session_state[PAGE_KEY] = pages
        page = int(st.number_input(nt("Page (of {pages}, {n} row each)", "Page (of {pages}, {n} rows each)", size,
                                      pages=pages), min_value=1, max_value=pages, value=1, step=1, key=PAGE_KEY))
    on_page = page_rows(kept, page, size)
    first = (min(max(1, page), pages) - 1) * size
    st.caption(_showing(first, len(on_page), len(kept), total, filtered=flt.active))
    frame = page_frame(snap, layout, on_page)
    # The "(API state)" columns are for machines: in the downloads, not on screen.
    zone = _client_zone_name()
    row_col, since_col, sent_col = (layout.column(c) for c in (COL_ROW, COL_SUPPRESSED_SINCE, COL_LAST_SENT))
    st.dataframe(style_matrix(frame, layout), hide_index=True, width="stretch", column_order=layout.shown_columns,
                 column_config={
                     row_col: st.column_config.NumberColumn(row_col, format="%d", pinned=True),
                     since_col: st.column_config.DatetimeColumn(t("{column} ({zone})", column=since_col, zone=zone),
                                                                format=_DATETIME_FORMATS[layout.lang]),
                     sent_col: st.column_config.DatetimeColumn(t("{column} ({zone})", column=sent_col, zone=zone),
                                                               format=_DATETIME_FORMATS[layout.lang]),
                 })
    st.caption(t("Dates in the matrix and the downloads are Campaign Monitor's, in the client's time zone ({zone}).",
                 zone=zone))
    _downloads(snap, layout, summary, kept, filtered=flt.active)


def _client_zone_name() -> str:
    """The name of the zone Campaign Monitor's dates are written in (the client's), for headers."""
    try:
        text = client_time_zone(get_connection())
    except CMError:
        text = None
    tz = parse_cm_time_zone(text)
    return DisplayZone(tz, ZoneSource.CLIENT).label() if tz is not None else t("client time zone unknown")


def _filter_word(key: str, layout: Layout) -> str:
    """A state filter's option as a person reads it: a state word, or one of the two pseudo-states."""
    if key in (FILTER_ON_NO_LIST, FILTER_PROBLEM):
        return t(key, lang=layout.lang)
    return layout.state_word(key)


def _showing(first: int, on_page: int, kept: int, total: int, *, filtered: bool) -> str:
    """"Showing rows 501–1,000 of 1,234 matching of 5,000 rows." and its shorter forms."""
    if kept > on_page:
        if filtered:
            return nt("Showing rows {first}–{last} of {kept} matching of {n} row.",
                      "Showing rows {first}–{last} of {kept} matching of {n} rows.", total, first=first + 1,
                      last=first + on_page, kept=kept)
        return nt("Showing rows {first}–{last} of {n} row.", "Showing rows {first}–{last} of {n} rows.", total,
                  first=first + 1, last=first + on_page)
    if filtered:
        return nt("Showing {kept} matching of {n} row.", "Showing {kept} matching of {n} rows.", total, kept=kept)
    return nt("Showing {n} row.", "Showing {n} rows.", total)


def _downloads(snap: JobSnapshot, layout: Layout, summary: Any, kept: Sequence[int], *, filtered: bool) -> None:
    st.markdown(t("**Download**"))
    d1, d2, d3 = st.columns([2, 2, 3])
    default_sep = _default_separator(snap, layout.lang)
    seps: list[str] = list(SEPARATORS)
    sep = d3.selectbox(t("CSV separator"), seps, index=seps.index(default_sep),
                       format_func=lambda d: t(SEPARATORS.get(d) or str(d), lang=layout.lang),
                       key=EXPORT_SEP_KEY) or default_sep
    only_kept = d3.checkbox(t("Only the rows matching the filters"), key=EXPORT_FILTERED_KEY, disabled=not filtered)
    rows: Sequence[int] = kept if only_kept and filtered else range(len(snap.input.rows))
    if len(rows) > 20_000:
        d3.caption(t("Large result: the Excel file takes a while to build (about half a minute per {n} rows); "
                     "the CSV is quicker.", n=100_000))
    stamp = datetime.now().strftime("%Y%m%d-%H%M")
    stem = f"{file_stem(snap.input.source_name or 'pasted')}-status-{stamp}"
    # Built on click (deferred), from the job's results: nothing is held per session for them.
    # The layout carries the session's language: headers, state words and reasons, and the CSV's decimal mark.
    d1.download_button(t("Download CSV"), data=lambda: matrix_csv(snap, layout, rows, delimiter=sep),
                       file_name=f"{stem}.csv", mime=CSV_MIME, icon=":material/download:", key="bulk.download.csv")
    d2.download_button(t("Download Excel"), data=lambda: matrix_excel(snap, layout, rows, summary=summary),
                       file_name=f"{stem}.xlsx", mime=XLSX_MIME, icon=":material/download:",
                       key="bulk.download.xlsx")
