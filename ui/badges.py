"""The coloured state badge of product.md: subscribed green, unsubscribed red, pending orange,
deleted grey, bounced violet, and anything the API invents later shown as it is, in blue.

The mapping is pure so tests and other pages (the bulk matrix) can share it; only
:func:`render_state_badge` touches Streamlit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from cmlib.models import ACTIVE, BOUNCED, DELETED, UNCONFIRMED, UNSUBSCRIBED
from ui.text import md_escape


@dataclass(frozen=True)
class Badge:
    label: str
    color: str  # one of st.badge's colours


STATE_BADGES: dict[str, Badge] = {
    ACTIVE: Badge("subscribed", "green"),
    UNSUBSCRIBED: Badge("unsubscribed", "red"),
    UNCONFIRMED: Badge("pending", "orange"),  # confirmed opt-in list, confirmation link not clicked yet
    DELETED: Badge("deleted", "gray"),
    BOUNCED: Badge("bounced", "violet"),
}
UNKNOWN_COLOR = "blue"


def badge_for(state: str | None) -> Badge:
    """The badge of a state; an unknown state keeps its own name, in a neutral colour."""
    known = STATE_BADGES.get(state or "")
    if known:
        return known
    return Badge(state or "unknown", UNKNOWN_COLOR)


def render_state_badge(state: str | None, container: Any = None) -> None:
    """Draw the badge for ``state`` (in ``container`` when given). API text is escaped."""
    b = badge_for(state)
    target = container if container is not None else st
    # st.badge escapes square brackets itself; everything else is escaped here. No ``help``:
    # a badge with a tooltip is rendered twice in the DOM, which screen readers and tests see.
    target.badge(md_escape(b.label, brackets=False), color=b.color)
