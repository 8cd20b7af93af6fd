"""The page's matrix without the whole matrix: a filter keeps row numbers, a page becomes a
small table, and both say exactly what the full matrix (and its filter) says."""
from __future__ import annotations

import pandas as pd
import pytest

from cmlib.bulk.matrix import FILTER_ON_NO_LIST, FILTER_PROBLEM, build_matrix, filter_matrix, filter_states, layout_for
from cmlib.bulk.tally import ResultTally
from cmlib.bulk.view import (
    MatrixFilter,
    filter_options,
    matching_rows,
    page_count,
    page_frame,
    page_rows,
)
from tests.test_bulk_matrix import snapshot

FILTERS = [
    ((), ()),
    (("Newsletter",), ()),
    ((), ("subscribed",)),
    (("<b>VIP</b> **x**",), ("subscribed",)),
    (("Newsletter",), ("unsubscribed",)),
    ((), (FILTER_ON_NO_LIST,)),
    ((), (FILTER_PROBLEM,)),
    (("Offers",), ("Spam", FILTER_PROBLEM)),
    ((), ("pending", FILTER_ON_NO_LIST)),
]


@pytest.mark.parametrize(("lists", "states"), FILTERS)
def test_a_filter_keeps_the_rows_the_full_matrix_filter_keeps(lists, states):
    snap = snapshot()
    layout = layout_for(snap)
    df = build_matrix(snap, layout)
    expected = list(filter_matrix(df, layout, list(lists), list(states))["Row"])
    kept = matching_rows(snap, layout, MatrixFilter(lists, states))
    assert [snap.input.rows[i].row for i in kept] == expected


def test_no_filter_is_every_row_without_a_list_of_them():
    snap = snapshot()
    kept = matching_rows(snap, layout_for(snap), MatrixFilter())
    assert isinstance(kept, range) and len(kept) == len(snap.input.rows)


def test_a_page_is_the_same_rows_and_cells_as_the_full_matrix():
    snap = snapshot(with_activity=True)
    layout = layout_for(snap)
    full = build_matrix(snap, layout)
    rows = range(len(snap.input.rows))
    assert page_count(len(rows), 4) == 3 and page_count(0, 4) == 1
    second = page_rows(rows, 2, size=4)
    assert list(second) == [4, 5, 6, 7]
    assert list(page_rows(rows, 99, size=4)) == [8]  # past the end: the last page
    frame = page_frame(snap, layout, second)
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), full.iloc[4:8].reset_index(drop=True))
    assert str(frame["Campaigns received"].dtype) == "Int64"


def test_filter_options_come_from_the_counts_not_from_a_scan():
    snap = snapshot()
    layout = layout_for(snap)
    tally = ResultTally.of(snap.results.values())
    assert filter_options(tally) == filter_states(build_matrix(snap, layout), layout)
