"""The coloured state badge of product.md: subscribed green, unsubscribed red, pending orange,
deleted grey, bounced violet, and anything the API invents later shown as it is, in blue.

The words and colours are :data:`cmlib.states.STATE_STYLES` (the one table the tabs, the dialog,
the matrix and the exports also read), so a badge can never disagree with them; the word is said
in the session's language (``подписан``, ``отписан``…).
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from cmlib.states import state_style
from ui.text import md_escape


def badge_md(text: str, color: str, icon: str = "") -> str:
    """A badge as markdown (``:green-badge[subscribed]``) to stand inline in a line of markdown,
    beside a list's name: one element instead of a row of three. ``text`` is escaped here (brackets
    too, which ``st.badge`` would otherwise do); ``icon`` is a ``:material/…:`` name of ours."""
    body = md_escape(text)
    return f":{color}-badge[{icon + ' ' if icon else ''}{body}]"


def state_badge_md(state: str | None) -> str:
    """The state badge as markdown, in the same words and colours as :func:`render_state_badge`."""
    style = state_style(state)
    return badge_md(style.label(), style.badge)


def render_state_badge(state: str | None, container: Any = None, width: int | str = "content") -> None:
    """Draw the badge for ``state`` (in ``container`` when given; ``width`` in px to line up a
    column of them). API text is escaped."""
    style = state_style(state)
    target = container if container is not None else st
    # st.badge escapes square brackets itself; everything else is escaped here. No ``help``:
    # a badge with a tooltip is rendered twice in the DOM, which screen readers and tests see.
    target.badge(md_escape(style.label(), brackets=False), color=style.badge, width=width)
