"""The Lookup page's partial draws (cmlib.redraw): none in the first moments of a lookup, then at
most one per interval -- on a fake clock."""
from __future__ import annotations

from cmlib.redraw import DrawPacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_partial_draw_before_the_first_interval():
    clock = FakeClock()
    pacer = DrawPacer(first_after=0.2, every=0.5, clock=clock)
    assert not pacer.due() and abs(pacer.wait_left() - 0.2) < 1e-9
    clock.now = 100.19
    assert not pacer.due()
    clock.now = 100.25
    assert pacer.due() and pacer.wait_left() == 0.0


def test_after_a_draw_the_next_waits_the_interval():
    clock = FakeClock()
    pacer = DrawPacer(first_after=0.2, every=0.5, clock=clock)
    clock.now += 1.0
    assert pacer.due()
    pacer.drawn()
    assert not pacer.due() and abs(pacer.wait_left() - 0.5) < 1e-9
    clock.now += 0.5
    assert pacer.due()


def test_a_zero_first_interval_draws_at_once():
    assert DrawPacer(first_after=0.0, every=0.2, clock=FakeClock()).due()
