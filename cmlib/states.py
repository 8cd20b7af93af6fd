"""The one table of subscriber states: what each is called where a person reads it, and its colours.

Campaign Monitor names states ``Active``, ``Unconfirmed``, ``Unsubscribed``, ``Bounced`` and
``Deleted``; support leads and product.md say *subscribed, pending, unsubscribed, bounced,
deleted*. Tabs, badges, the subscription dialog, the bulk matrix, chart, CSV and Excel all take
their word and colour from here, so no two places can disagree. States stay open strings: a
value the API invents later is shown as it is, in a neutral colour.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class SubscriberState(StrEnum):
    """The API's own values (a ``StrEnum``, so ``SubscriberState.ACTIVE == "Active"``)."""

    ACTIVE = "Active"
    UNCONFIRMED = "Unconfirmed"
    UNSUBSCRIBED = "Unsubscribed"
    BOUNCED = "Bounced"
    DELETED = "Deleted"


@dataclass(frozen=True)
class StateStyle:
    word: str  # the product's word, shown to people
    badge: str  # one of st.badge's colour names
    color: str  # strong colour (chart bars, text)
    background: str  # light cell background, readable with dark text


# In the order the states matter to a support lead (also the summary's and chart's order).
STATE_STYLES: dict[str, StateStyle] = {
    SubscriberState.ACTIVE: StateStyle("subscribed", "green", "#16a34a", "#dcfce7"),
    SubscriberState.UNSUBSCRIBED: StateStyle("unsubscribed", "red", "#dc2626", "#fee2e2"),
    # Confirmed opt-in list, confirmation link not clicked yet.
    SubscriberState.UNCONFIRMED: StateStyle("pending", "orange", "#ea580c", "#ffedd5"),
    SubscriberState.BOUNCED: StateStyle("bounced", "violet", "#7c3aed", "#ede9fe"),
    SubscriberState.DELETED: StateStyle("deleted", "gray", "#6b7280", "#e5e7eb"),
}
UNKNOWN_STYLE = StateStyle("", "blue", "#2563eb", "#dbeafe")

# States in which the person receives mail from the list (or will, once confirmed).
SUBSCRIBED_STATES = frozenset({SubscriberState.ACTIVE, SubscriberState.UNCONFIRMED})


def state_style(state: str | None) -> StateStyle:
    """The style of a state; an unknown one keeps the API's own name as its word."""
    known = STATE_STYLES.get(state or "")
    if known is not None:
        return known
    return StateStyle(state or "unknown", UNKNOWN_STYLE.badge, UNKNOWN_STYLE.color, UNKNOWN_STYLE.background)


def state_word(state: str | None) -> str:
    """``"Active"`` -> ``"subscribed"``; ``"Spam"`` -> ``"Spam"`` (shown as the API names it)."""
    return state_style(state).word
