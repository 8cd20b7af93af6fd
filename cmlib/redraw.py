"""When to redraw a page that is filling in while its data arrives.

The Lookup page draws its tabs at once and fills each address as it arrives. Every partial
draw sends every arrived address's elements again and the browser draws them again, and the
finished page (with its buttons) replaces it anyway; on a fast lookup the addresses arrive
within a few milliseconds of each other, so drawing each arrival doubled or tripled the work of
a first deep link for nothing a person could see (issue 15). A :class:`DrawPacer` lets partial
draws happen only once the wait is long enough to notice, and not more often than that, so a
slow address is still shown as soon as its neighbours are while a quick lookup is drawn once.
"""
from __future__ import annotations

import time
from collections.abc import Callable

# Under about a tenth to a fifth of a second a page that appears whole looks instant; a partial
# draw sooner than that is only drawn twice.
FIRST_AFTER = 0.2
EVERY = 0.2


class DrawPacer:
    """Says whether a partial draw is due: not before ``first_after`` seconds from its creation,
    then at most once every ``every`` seconds. ``clock`` is injectable for tests."""

    def __init__(self, first_after: float = FIRST_AFTER, every: float = EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._next = clock() + first_after

    def due(self) -> bool:
        return self._clock() >= self._next

    def wait_left(self) -> float:
        """Seconds until a draw is due (0 when it is)."""
        return max(0.0, self._next - self._clock())

    def drawn(self) -> None:
        """A partial draw happened now: the next one waits ``every`` seconds."""
        self._next = self._clock() + self._every
