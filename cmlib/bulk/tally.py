"""Counts kept as results arrive, so nobody has to walk 100,000 results to know them.

A job adds each result to its :class:`ResultTally` once, as it is recorded; the page's counters
and the per-list summary then cost a few dictionary reads per rerun, whatever the size of the
run, and every session watching the job reads the same counts.
"""
from __future__ import annotations

from collections.abc import Iterable

from ..states import state_key
from .engine import LookupResult

__all__ = ["ResultTally"]


class ResultTally:
    """Distinct addresses by outcome, and per list by state (in the product's words)."""

    __slots__ = ("by_list", "failed", "looked_up", "on_no_list", "words")

    def __init__(self) -> None:
        self.looked_up = 0  # with memberships known (activity may be incomplete)
        self.failed = 0
        self.on_no_list = 0
        self.by_list: dict[str, dict[str, int]] = {}  # list id -> state word -> distinct addresses
        self.words: list[str] = []  # every state word seen, in the order first seen

    @property
    def done(self) -> int:
        return self.looked_up + self.failed

    def add(self, res: LookupResult, sign: int = 1) -> None:
        """Count one result (``sign=-1`` takes back one that is being replaced)."""
        if not res.ok:
            self.failed += sign
            return
        self.looked_up += sign
        if not res.memberships:
            self.on_no_list += sign
        for lid, state in res.memberships:
            word = state_key(state)
            per = self.by_list.setdefault(lid, {})
            per[word] = per.get(word, 0) + sign
            if word not in self.words:
                self.words.append(word)

    def copy(self) -> ResultTally:
        other = ResultTally()
        other.looked_up, other.failed, other.on_no_list = self.looked_up, self.failed, self.on_no_list
        other.by_list = {lid: dict(per) for lid, per in self.by_list.items()}
        other.words = list(self.words)
        return other

    @classmethod
    def of(cls, results: Iterable[LookupResult]) -> ResultTally:
        tally = cls()
        for res in results:
            tally.add(res)
        return tally
