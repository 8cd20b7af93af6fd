"""The one table of subscriber states: what each is called where a person reads it, and its colours.

Campaign Monitor names states ``Active``, ``Unconfirmed``, ``Unsubscribed``, ``Bounced`` and
``Deleted``; support leads and product.md say *subscribed, pending, unsubscribed, bounced,
deleted*. Tabs, badges, the subscription dialog, the bulk matrix, chart, CSV and Excel all take
their word and colour from here, so no two places can disagree. States stay open strings: a
value the API invents later is shown as it is, in a neutral colour.

Each word is kept in English (:attr:`StateStyle.word`, a message id and the stable key data is
grouped and filtered by) and translated where a person reads it: :func:`state_word` or
:meth:`StateStyle.label` (Russian: подписан, отписан, не подтверждён, отказ доставки, удалён).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .i18n import N_, Language, t


class SubscriberState(StrEnum):
    """The API's own values (a ``StrEnum``, so ``SubscriberState.ACTIVE == "Active"``)."""

    ACTIVE = "Active"
    UNCONFIRMED = "Unconfirmed"
    UNSUBSCRIBED = "Unsubscribed"
    BOUNCED = "Bounced"
    DELETED = "Deleted"


@dataclass(frozen=True)
class StateStyle:
    word: str  # the product's word in English: a message id, and the key summaries and filters use
    badge: str  # one of st.badge's colour names
    color: str  # strong colour (chart bars, text)
    background: str  # light cell background, readable with dark text

    def label(self, lang: Language | str | None = None) -> str:
        """The word as a person reads it in ``lang`` (default: the current language); a state
        the API invented later keeps the API's own name, untranslated."""
        return t(self.word, lang=lang) if self.word in _PRODUCT_WORDS else self.word


# In the order the states matter to a support lead (also the summary's and chart's order).
STATE_STYLES: dict[str, StateStyle] = {
    SubscriberState.ACTIVE: StateStyle(N_("subscribed"), "green", "#16a34a", "#dcfce7"),
    SubscriberState.UNSUBSCRIBED: StateStyle(N_("unsubscribed"), "red", "#dc2626", "#fee2e2"),
    # Confirmed opt-in list, confirmation link not clicked yet.
    SubscriberState.UNCONFIRMED: StateStyle(N_("pending"), "orange", "#ea580c", "#ffedd5"),
    SubscriberState.BOUNCED: StateStyle(N_("bounced"), "violet", "#7c3aed", "#ede9fe"),
    SubscriberState.DELETED: StateStyle(N_("deleted"), "gray", "#6b7280", "#e5e7eb"),
}
UNKNOWN_STYLE = StateStyle("", "blue", "#2563eb", "#dbeafe")
UNKNOWN_WORD = N_("unknown")  # a membership without any state at all
_PRODUCT_WORDS = frozenset({style.word for style in STATE_STYLES.values()} | {UNKNOWN_WORD})

# States in which the person receives mail from the list (or will, once confirmed).
SUBSCRIBED_STATES = frozenset({SubscriberState.ACTIVE, SubscriberState.UNCONFIRMED})


def state_style(state: str | None) -> StateStyle:
    """The style of a state; an unknown one keeps the API's own name as its word."""
    known = STATE_STYLES.get(state or "")
    if known is not None:
        return known
    return StateStyle(state or UNKNOWN_WORD, UNKNOWN_STYLE.badge, UNKNOWN_STYLE.color, UNKNOWN_STYLE.background)


def state_word(state: str | None, lang: Language | str | None = None) -> str:
    """``"Active"`` -> ``"subscribed"`` / ``"подписан"``, in ``lang`` (default: the current
    language); ``"Spam"`` -> ``"Spam"`` (shown as the API names it)."""
    return state_style(state).label(lang)


def state_key(state: str | None) -> str:
    """``"Active"`` -> ``"subscribed"`` in English whatever the language: for grouping, counting
    and filtering (a bulk run's tally, the matrix's cells), translated only where shown."""
    return state_style(state).word
