"""The Lookup page's partial draws (cmlib.redraw): none in the first moments of a lookup, then at
most one per interval -- on a fake clock."""
from __future__ import annotations

from cmlib.redraw import DrawPacer


def test_no_partial_draw_before_the_first_interval():
    now = [100.0]
    pacer = DrawPacer(first_after=0.2, every=0.5, clock=lambda: now[0])
    assert not pacer.due() and abs(pacer.wait_left() - 0.2) < 1e-9
    now[0] = 100.19
    assert not pacer.due()
    now[0] = 100.25
    assert pacer.due() and pacer.wait_left() == 0.0


def test_after_a_draw_the_next_waits_the_interval():
    now = [100.0]
    pacer = DrawPacer(first_after=0.2, every=0.5, clock=lambda: now[0])
    now[0] = 101.0
    assert pacer.due()
    pacer.drawn()
    assert not pacer.due() and abs(pacer.wait_left() - 0.5) < 1e-9
    now[0] = 101.5
    assert pacer.due()


def test_a_zero_first_interval_draws_at_once():
    assert DrawPacer(first_after=0.0, every=0.2, clock=lambda: 100.0).due()
