"""Results as marketing reads them: a summary per list and state, and the email × list matrix.

One :class:`Layout` decides the output columns for the page's table, its CSV/Excel downloads
and the CLI's streamed file, so all three agree: ``Row, Email, Status``, one column per list
holding the state there in the product's words (subscribed, unsubscribed, pending, bounced,
deleted, from :mod:`cmlib.states`), ``On no list``, ``Suppressed since`` and ``Suppression
reason`` (from the client's suppression list, read once per run), ``Error``, the activity
columns when asked for, every other column of the input, unchanged, and last one
``<list> (API state)`` column per list with Campaign Monitor's own value (``Active``,
``Unconfirmed``…) for machines.

Cells keep their types: counts are ints, rates floats, dates ``datetime`` (empty: None), so
the page, the CSV (ISO dates) and Excel (date cells) each show them as what they are.

Every input row appears: a duplicate shows the states of the row it repeats (and says which),
an invalid or failed row says why in ``Error``.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from .. import lazy_text as later
from ..i18n import N_, Language, resolve, t, translations
from ..lazy_text import text_of
from ..models import SuppressedAddress
from ..states import STATE_STYLES, UNKNOWN_WORD, StateStyle, state_key, state_style
from ..suppression import SuppressionIndex, reason_word
from .engine import LookupResult
from .structure import unique_names
from .tally import ResultTally
from .validate import BulkInput, InputRow, Verdict

if TYPE_CHECKING:  # pandas is imported where tables are built: the CLI streams rows and never needs it
    import pandas as pd

    from .jobs import JobSnapshot


class Status(StrEnum):
    """A row's outcome in the ``Status`` column (a ``StrEnum``: ``Status.NOT_RUN == "not run"``)."""

    OK = "ok"
    PARTIAL = "partial"  # memberships known, part of the activity missing
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    ERROR = "error"
    NOT_RUN = "not run"


PROBLEM_STATUSES = frozenset({Status.PARTIAL, Status.INVALID, Status.ERROR, Status.NOT_RUN})
# How a person reads a status (the Status column's value is the enum's, in English, for a layout in English).
STATUS_WORDS = {Status.OK: N_("ok"), Status.PARTIAL: N_("partial"), Status.INVALID: N_("invalid"),
                Status.DUPLICATE: N_("duplicate"), Status.ERROR: N_("error"), Status.NOT_RUN: N_("not run")}

# Column keys: the English headers, translated by a Layout in another language (Layout.column).
COL_ROW = N_("Row")
COL_EMAIL = N_("Email")
COL_STATUS = N_("Status")
COL_NO_LIST = N_("On no list")
COL_ERROR = N_("Error")
COL_OTHER_LISTS = N_("Other lists")
COL_SUPPRESSED_SINCE = N_("Suppressed since")
COL_SUPPRESSION_REASON = N_("Suppression reason")
COL_RECEIVED = N_("Campaigns received")
COL_LAST_SENT = N_("Last campaign sent")
COL_OPEN_RATE = N_("Open rate %")
COL_CLICK_RATE = N_("Click rate %")
COL_LAST_CAMPAIGN = N_("Last campaign")
ACTIVITY_COLUMNS = (COL_RECEIVED, COL_OPEN_RATE, COL_CLICK_RATE, COL_LAST_CAMPAIGN, COL_LAST_SENT)
RATE_COLUMNS = (COL_OPEN_RATE, COL_CLICK_RATE)
API_STATE_SUFFIX = " (API state)"  # "Newsletter (API state)": the API's own value, for machines
API_STATE_HEADER = N_("{list} (API state)")
SUMMARY_INDEX = N_("List")  # the summary's row header
YES, NO = N_("yes"), N_("no")
NO_REASON_GIVEN = N_("(no reason given)")

# The summary's order (the order of cmlib.states, which also gives every word and colour), in
# the words a person reads: subscribed, unsubscribed, pending, bounced, deleted.
SUMMARY_STATES = tuple(style.word for style in STATE_STYLES.values())
_STYLE_OF_WORD = {style.word: style for style in STATE_STYLES.values()}

# Pseudo-states for the matrix filter (keys; translated where shown).
FILTER_ON_NO_LIST = N_("(on no list)")
FILTER_PROBLEM = N_("(error or not looked up)")

_TRANSLATED_STYLES: dict[Language, tuple[object, dict[str, StateStyle]]] = {}


def _style_of_word(word: str) -> StateStyle | None:
    """The style of a product word in any language ("subscribed", «подписан»)."""
    found = _STYLE_OF_WORD.get(word)
    if found is not None:
        return found
    for lang in Language:
        if lang is Language.EN:
            continue
        catalog = translations(lang)
        held = _TRANSLATED_STYLES.get(lang)
        if held is None or held[0] is not catalog:  # built once per loaded catalog
            held = (catalog, {t(s.word, lang=lang): s for s in STATE_STYLES.values()})
            _TRANSLATED_STYLES[lang] = held
        found = held[1].get(word)
        if found is not None:
            return found
    return None


def label_style(label: str) -> StateStyle:
    """The style of a state as the matrix and summary show it: a product word in any language
    ("subscribed", «подписан»), or the API's own name for a state cmlib.states does not know ("Spam")."""
    return _style_of_word(label) or state_style(label)


def state_color(label: str) -> str:
    return label_style(label).color


def state_background(label: str) -> str:
    return label_style(label).background


@dataclass(frozen=True)
class RowOutcome:
    status: Status
    result: LookupResult | None  # the memberships shown for the row (a duplicate's: its original's)
    error: str


def resolve_row(row: InputRow, results: Mapping[str, LookupResult], not_run_reason: str) -> RowOutcome:
    """The verdict for one input row given the results so far; ``error`` is a
    :class:`~cmlib.lazy_text.LazyText` each reader reads in their language."""
    if row.status == Verdict.INVALID:
        return RowOutcome(Status.INVALID, None, later.t("Invalid address: {reason}", reason=row.reason))
    res = results.get(row.key or "")
    if row.status == Verdict.DUPLICATE:
        original = str(row.duplicate_of)
        if res is None:
            reason = not_run_reason.clause() if isinstance(not_run_reason, later.LazyText) else not_run_reason
            return RowOutcome(Status.DUPLICATE, None, later.t("Duplicate of row {row} ({reason})", row=original,
                                                              reason=reason))
        if not res.ok:
            return RowOutcome(Status.DUPLICATE, None, later.t("Duplicate of row {row}, which failed: {reason}",
                                                              row=original, reason=res.error))
        return RowOutcome(Status.DUPLICATE, res, later.t("Duplicate of row {row}", row=original))
    if res is None:
        return RowOutcome(Status.NOT_RUN, None, not_run_reason)
    if not res.ok:
        return RowOutcome(Status.ERROR, None, res.error or "")
    if res.warning:
        return RowOutcome(Status.PARTIAL, res, res.warning)
    return RowOutcome(Status.OK, res, "")


def _joined(previous: str, value: str) -> str:
    """A list cell can hold two states when the API lists one list twice: "subscribed, deleted"."""
    return value if not previous else f"{previous}, {value}"


class Layout:
    """The output columns, fixed before the first row is written (the CLI streams).

    A list's column holds the state in the product's word (subscribed, unsubscribed, pending,
    bounced, deleted: :mod:`cmlib.states`), what a person reads; its ``<list> (API state)``
    column, after everything else, holds Campaign Monitor's own value (``Active``,
    ``Unconfirmed``…) for scripts and for anyone matching the API's documentation.

    A layout speaks one language (``lang``, default the current one), fixed when it is made:
    headers, state and status words, "yes"/"no" and the row reasons are in it, so a download
    built later on another thread (or the CLI's ``--lang``) says the same as the page. The
    API-state columns hold Campaign Monitor's values in every language. Code refers to the
    fixed columns by their English keys (``COL_ROW``…) through :meth:`column`.
    """

    def __init__(self, list_names: Mapping[str, str], extra_columns: Sequence[str], *, with_activity: bool,
                 other_lists_column: bool = False, lang: Language | str | None = None) -> None:
        self.lang = resolve(lang)
        self.list_ids = list(list_names)
        self.with_activity = with_activity
        self.other_lists_column = other_lists_column
        fixed_keys = [COL_ROW, COL_EMAIL, COL_STATUS]
        tail_keys = [COL_NO_LIST, COL_SUPPRESSED_SINCE, COL_SUPPRESSION_REASON, COL_ERROR]
        tail_keys += list(ACTIVITY_COLUMNS) if with_activity else []
        if other_lists_column:
            tail_keys.insert(0, COL_OTHER_LISTS)
        self._names = {key: t(key, lang=self.lang) for key in fixed_keys + tail_keys}
        fixed = [self._names[k] for k in fixed_keys]
        tail = [self._names[k] for k in tail_keys]
        # List names are API data: two lists may share a name, or one may be called "Email".
        list_cols = unique_names([list_names[i] or t("List {id}", lang=self.lang, id=i) for i in self.list_ids],
                                 taken=fixed + tail)
        self.list_columns = list_cols
        self.list_column_of = dict(zip(self.list_ids, list_cols, strict=True))
        extra = unique_names([text_of(c, self.lang) or t("Column", lang=self.lang) for c in extra_columns],
                             taken=fixed + tail + list_cols)
        self.extra_columns = extra
        self.api_state_columns = unique_names([t(API_STATE_HEADER, lang=self.lang, list=c) for c in list_cols],
                                              taken=fixed + tail + list_cols + extra)
        self.headers = fixed + list_cols + tail + extra + self.api_state_columns
        self._list_index = {lid: i for i, lid in enumerate(self.list_ids)}
        self.yes, self.no = t(YES, lang=self.lang), t(NO, lang=self.lang)
        self._no_reason = t(NO_REASON_GIVEN, lang=self.lang)

    def column(self, key: str) -> str:
        """The header of a fixed column (``COL_ROW``…) in this layout's language."""
        return self._names.get(key, key)

    def status_word(self, status: Status) -> str:
        """A status as the Status column says it in this layout's language."""
        return status.value if self.lang is Language.EN else t(STATUS_WORDS[status], lang=self.lang)

    def state_word(self, key: str) -> str:
        """A state key ("subscribed", or the API's name for a state it invented) in this layout's language."""
        return t(key, lang=self.lang) if key in _STYLE_OF_WORD or key == UNKNOWN_WORD else key

    @property
    def shown_columns(self) -> list[str]:
        """Every column but the API-state ones: what the page's table shows (downloads keep all)."""
        return [c for c in self.headers if c not in set(self.api_state_columns)]

    @property
    def date_columns(self) -> list[str]:
        """Columns holding ``datetime`` values (date cells in Excel, ISO dates in CSV)."""
        return [self.column(COL_SUPPRESSED_SINCE)] + ([self.column(COL_LAST_SENT)] if self.with_activity else [])

    def cells(self, row: InputRow, outcome: RowOutcome, suppressed: SuppressedAddress | None = None) -> list[Any]:
        """One output row; ``suppressed`` is the row's entry on the suppression list, if any."""
        n_lists = len(self.list_ids)
        words: list[str] = [""] * n_lists
        raw: list[str] = [""] * n_lists
        res = outcome.result
        others: list[str] = []
        if res is not None:
            for lid, state in res.memberships:
                idx = self._list_index.get(lid)
                word = self.state_word(state_key(state))
                if idx is None:
                    others.append(f"{lid}: {word}")
                else:
                    words[idx] = _joined(words[idx], word)
                    raw[idx] = _joined(raw[idx], state)
        out: list[Any] = [row.row, row.shown_email, self.status_word(outcome.status), *words]
        if self.other_lists_column:
            out.append("; ".join(others))
        out.append((self.yes if not res.memberships else self.no) if res is not None else "")
        out += ([suppressed.date, reason_word(suppressed.reason, self.lang) if suppressed.reason else self._no_reason]
                if suppressed is not None else [None, ""])
        out.append(text_of(outcome.error, self.lang))
        if self.with_activity:
            act = res.activity if res is not None else None
            if act is None:
                out += [None, None, None, "", None]
            else:
                out += [act.received, round(act.open_rate * 100, 1) if act.received else None,
                        round(act.click_rate * 100, 1) if act.received else None, act.last_campaign,
                        act.last_sent]
        extra = list(row.extra[: len(self.extra_columns)])
        extra += [""] * (len(self.extra_columns) - len(extra))
        # A ragged row with more cells than the header keeps them all: joined into the last column.
        if len(row.extra) > len(self.extra_columns) and self.extra_columns:
            extra[-1] = "\t".join(row.extra[len(self.extra_columns) - 1:])
        return out + extra + raw


def suppression_of(index: SuppressionIndex | None, row: InputRow) -> SuppressedAddress | None:
    """The row's entry on the suppression list (invalid rows have no address to look for)."""
    if index is None or not row.email:
        return None
    return index.get(row.email)


def iter_matrix_rows(layout: Layout, rows: Iterable[InputRow], results: Mapping[str, LookupResult],
                     not_run_reason: str, suppression: SuppressionIndex | None = None) -> Iterable[list[Any]]:
    for r in rows:
        yield layout.cells(r, resolve_row(r, results, not_run_reason), suppression_of(suppression, r))


def layout_for(snapshot: JobSnapshot, *, lang: Language | str | None = None) -> Layout:
    """The layout of a run's results in ``lang`` (default: the current language)."""
    return Layout(snapshot.list_names, snapshot.input.extra_columns, with_activity=snapshot.with_activity, lang=lang)


def typed_frame(layout: Layout, data: list[list[Any]]) -> pd.DataFrame:
    """Rows of :meth:`Layout.cells` as a frame whose columns keep their types: whole numbers
    (``Int64``, empty allowed) never turn into ``4.0``, dates are datetimes."""
    import pandas as pd

    df = pd.DataFrame(data, columns=layout.headers)
    row = layout.column(COL_ROW)
    df[row] = df[row].astype("int64")
    for col in layout.date_columns:
        df[col] = pd.to_datetime(df[col], errors="coerce")
    if layout.with_activity:
        received = layout.column(COL_RECEIVED)
        df[received] = pd.array(pd.to_numeric(df[received], errors="coerce"), dtype="Int64")
        for key in RATE_COLUMNS:
            col = layout.column(key)
            df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def build_matrix(snapshot: JobSnapshot, layout: Layout | None = None) -> pd.DataFrame:
    """One row per input row, in input order, as far as the run has got (the whole matrix: the
    CLI and tests; the page builds only the page it shows, :mod:`.view`)."""
    layout = layout or layout_for(snapshot)
    data = list(iter_matrix_rows(layout, snapshot.input.rows, snapshot.results, snapshot.not_run_reason(),
                                 snapshot.suppression))
    return typed_frame(layout, data)


@dataclass(frozen=True)
class SummaryCounts:
    looked_up: int  # distinct addresses with a result
    on_no_list: int
    failed: int
    not_run: int
    invalid_rows: int
    duplicate_rows: int
    suppressed: int = 0  # distinct valid addresses on the client's suppression list


def summarise(snapshot: JobSnapshot, layout: Layout | None = None) -> tuple[pd.DataFrame, SummaryCounts]:
    """Per list (rows, by its matrix column name) the number of distinct addresses in each state.

    Columns are the states in the product's words (subscribed, unsubscribed, pending, bounced,
    deleted), in that order, in the layout's language; a state the API invents later gets its
    own column, under the API's name, rather than vanishing. Every list of the client is a row,
    even with zeros: "nobody from the event is on Webinars" is an answer too.
    """
    import pandas as pd

    layout = layout or layout_for(snapshot)
    tally = snapshot.tally if snapshot.tally is not None else ResultTally.of(snapshot.results.values())
    # every list of the client is a row (zeros too), then any list only the results name
    counts: dict[str, dict[str, int]] = {lid: {} for lid in layout.list_ids} | tally.by_list
    states = list(SUMMARY_STATES) + [s for s in tally.words if s not in SUMMARY_STATES]
    index = [layout.list_column_of.get(lid, lid) for lid in counts]
    df = pd.DataFrame([[counts[lid].get(s, 0) for s in states] for lid in counts], index=index,
                      columns=[layout.state_word(s) for s in states], dtype="int64")
    df.index.name = t(SUMMARY_INDEX, lang=layout.lang)
    not_run = max(0, snapshot.input.counts.valid - len(snapshot.results))
    return df, SummaryCounts(tally.looked_up, tally.on_no_list, tally.failed, not_run, snapshot.input.counts.invalid,
                             snapshot.input.counts.duplicates, suppressed_count(snapshot.input, snapshot.suppression))


def suppressed_count(bulk_input: BulkInput, index: SuppressionIndex | None) -> int:
    """Distinct valid addresses of the input that are on the suppression list."""
    if index is None or not len(index):
        return 0
    return sum(1 for r in bulk_input.rows if r.status == Verdict.VALID and suppression_of(index, r) is not None)


def filter_matrix(df: pd.DataFrame, layout: Layout, lists: Sequence[str] = (),
                  states: Sequence[str] = ()) -> pd.DataFrame:
    """Rows where one of ``lists`` (all when empty) holds one of ``states`` (any when empty).
    States are the product's words ("subscribed"), or as the layout's language says them.

    Two pseudo-states widen the choice: FILTER_ON_NO_LIST and FILTER_PROBLEM.
    """
    import pandas as pd

    if not lists and not states:
        return df
    cols = [c for c in (lists or layout.list_columns) if c in df.columns]
    keys = [s for s in states if s not in (FILTER_ON_NO_LIST, FILTER_PROBLEM)]
    real_states = set(keys) | {layout.state_word(s) for s in keys}
    mask = pd.Series(False, index=df.index)
    if real_states or not states:
        for c in cols:
            col = df[c].astype(str)
            if real_states:
                # a list cell can hold "subscribed, deleted" when the API lists one list twice
                mask |= col.str.split(", ").apply(lambda parts: any(p in real_states for p in parts))
            else:
                mask |= col != ""
    if FILTER_ON_NO_LIST in states:
        mask |= df[layout.column(COL_NO_LIST)] == layout.yes
    if FILTER_PROBLEM in states:
        mask |= df[layout.column(COL_STATUS)].isin({layout.status_word(s) for s in PROBLEM_STATUSES})
    return df[mask]


def filter_states(df: pd.DataFrame, layout: Layout) -> list[str]:
    """The states present in the matrix as keys (known ones first, :func:`.view.filter_options`'s
    order), then the pseudo-states."""
    key_of = {layout.state_word(k): k for k in SUMMARY_STATES}
    present: list[str] = []
    for c in layout.list_columns:
        if c in df.columns:
            for v in df[c].unique():
                for part in str(v).split(", "):
                    key = key_of.get(part, part)
                    if part and key not in present:
                        present.append(key)
    ordered = [s for s in SUMMARY_STATES if s in present] + [s for s in present if s not in SUMMARY_STATES]
    return [*ordered, FILTER_ON_NO_LIST, FILTER_PROBLEM]


def _cell_style(value: Any) -> str:
    if not isinstance(value, str) or not value:
        return ""
    state = value.split(", ")[0]
    return f"background-color: {state_background(state)}; color: {state_color(state)}; font-weight: 600"


def style_matrix(df: pd.DataFrame, layout: Layout, max_cells: int = 200_000) -> Any:
    """The matrix with state cells coloured (pandas Styler); the plain frame when too big to style.

    Styling every cell of a 100,000-row matrix makes the page slow, so the caller filters first
    and only frames under ``max_cells`` list cells are styled.
    """
    import pandas as pd

    cols = [c for c in layout.list_columns if c in df.columns]
    if not cols or len(df) * len(cols) > max_cells:
        return df
    pd.set_option("styler.render.max_elements", max(262144, len(df) * len(df.columns) + 1))
    return df.style.map(_cell_style, subset=cols)


def chart_colors(columns: Sequence[str]) -> list[str]:
    """The bar colours of the summary's state columns (product words, or the API's name)."""
    return [state_color(s) for s in columns]


def problems_frame(bulk_input: BulkInput, *, lang: Language | str | None = None) -> pd.DataFrame:
    """Invalid and duplicate rows for the validation panel: row, value as given, reason (in
    ``lang``, default the current language)."""
    import pandas as pd

    rows = [(r.row, r.raw,
             t("Invalid: {reason}", lang=lang, reason=text_of(r.reason, lang)) if r.status == Verdict.INVALID
             else t("Duplicate of row {row}", lang=lang, row=str(r.duplicate_of)))
            for r in bulk_input.rows if r.status != Verdict.VALID]
    return pd.DataFrame(rows, columns=[t(COL_ROW, lang=lang), t("Value", lang=lang), t("Reason", lang=lang)])
