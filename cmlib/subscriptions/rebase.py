"""After a conflict: the operator's choices carried over to the states read just before writing.

When :func:`~cmlib.subscriptions.apply.apply_plan` finds that the subscriptions changed since
the dialog opened, it writes nothing and returns the re-read states. Throwing the operator's
ticks away then would make them redo every choice; keeping the old form as it was would
silently override what happened meanwhile. :func:`rebase_choices` does neither:

* a list the operator did not touch shows its new state (a person who just left a list they were
  left ticked on is never resubscribed by a stale form);
* a list the operator changed keeps their choice, on the new state. When the change meanwhile
  already did what they asked, the choice is moot (nothing left to send there); when that very
  list changed in another way (e.g. unsubscribed became bounced) the choice stays but is named,
  so they look at it again.

The caller makes a new plan from the carried ticks (:func:`~cmlib.subscriptions.plan.plan_changes`)
and the operator confirms it again: nothing is applied on their behalf.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..i18n import Language, t
from .snapshot import Snapshot, StateChange, diff_states
from .wording import join_names, state_text


@dataclass(frozen=True)
class Rebased:
    """The form on the new states, and what to tell the operator about it."""

    ticks: Mapping[str, bool]  # list_id -> ticked, on the new snapshot
    changes: tuple[StateChange, ...]  # every list whose state changed meanwhile
    kept: tuple[str, ...] = ()  # list_ids where the operator's choice still asks for a change
    moot: tuple[StateChange, ...] = ()  # changed meanwhile the way the operator wanted: nothing left to do
    revisit: tuple[StateChange, ...] = ()  # changed meanwhile, the operator's choice kept: look again

    def describe(self, lang: Language | str | None = None) -> list[str]:
        """What happened to the operator's choices, one sentence each (for the dialog)."""
        out: list[str] = []
        if self.moot:
            items = "; ".join(t("{list} ({state})", lang=lang, list=c.list_name, state=state_text(c.after, lang=lang))
                              for c in self.moot)
            out.append(t("Already so now, nothing left to do: {items}.", lang=lang, items=items))
        if self.revisit:
            out.append(t("Changed meanwhile, your choice kept — check it again: {changes}.", lang=lang,
                         changes="; ".join(c.describe(lang) for c in self.revisit)))
        untouched = [c.list_name for c in self.changes if c not in self.moot and c not in self.revisit]
        if untouched:
            out.append(t("The form shows the new state of {names}.", lang=lang,
                         names=join_names(untouched, lang=lang)))
        return out


def rebase_choices(old: Snapshot, new: Snapshot, ticks: Mapping[str, bool]) -> Rebased:
    """The operator's ``ticks`` (made on ``old``) carried over to ``new``; see the module docstring.

    ``ticks`` maps list_id -> ticked for every list the form showed; a list only ``new`` knows
    (the address was added to it meanwhile) shows its new state.
    """
    changes = diff_states(old, new)
    changed = {c.list_id: c for c in changes}
    out: dict[str, bool] = {}
    kept: list[str] = []
    moot: list[StateChange] = []
    revisit: list[StateChange] = []
    for lid in dict.fromkeys([*ticks, *new.state_map]):
        now = new.is_subscribed(lid)
        if lid not in ticks or bool(ticks[lid]) == old.is_subscribed(lid):
            out[lid] = now  # not the operator's choice: the new truth
            continue
        want = bool(ticks[lid])
        out[lid] = want
        change = changed.get(lid)
        if want == now:
            if change is not None:
                moot.append(change)
            continue
        kept.append(lid)
        if change is not None:
            revisit.append(change)
    return Rebased(ticks=out, changes=tuple(changes), kept=tuple(kept), moot=tuple(moot), revisit=tuple(revisit))
