"""Fetch the frontend code of the widgets this app draws all at once, as the first thing a page draws.

Streamlit's frontend fetches a widget's code the first time such a widget appears, so a new
browser session fetched it one widget after another as the page's elements arrived: the
sidebar's links, the operator's text box, the language radio, the buttons, the address box, then
the dialog's checkboxes. On a deep link that chain ran for ~300 ms after the
elements themselves had arrived (issue 15). The script here is the first element ``app.py``
draws (in the sidebar, which the frontend draws first): once its own code is in, it asks for
every module in :data:`PAGE_WIDGETS` at once, so they load side by side while the rest of the
page is still being sent.

The file names come from the installed Streamlit (``Checkbox.<hash>.js``), never from anyone's
input; a release that renames a file just loads that widget the usual way. The script carries no
data and runs once per browser tab.
"""
from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

# The lazily loaded widgets the Lookup and panel pages and the subscription dialog draw. Not the
# metric: only Bulk and Settings draw one, and its code and number-formatting libraries would be
# compiled on every first page, in the middle of drawing it.
PAGE_WIDGETS = ("PageLink", "TextInput", "Radio", "Button", "ChatInput", "Checkbox")


def widget_chunks(static_js: Path | None = None, widgets: tuple[str, ...] = PAGE_WIDGETS) -> list[str]:
    """File names of ``widgets``' frontend modules in this Streamlit."""
    folder = static_js or Path(st.__file__).parent / "static" / "static" / "js"
    return [found[0].name for widget in widgets if (found := sorted(folder.glob(f"{widget}.*.js")))]


CHUNKS = widget_chunks()

# The element's own box is hidden, so the sidebar's first element keeps its place.
_SCRIPT = """<style>[data-testid="stElementContainer"]:has(#cm-preload) {display: none;}</style>
<span id="cm-preload"></span><script>(function () {
  if (window.__cmPreload) return;
  window.__cmPreload = true;
  var entry = document.querySelector('script[src*="static/js/index."]');
  if (entry) CHUNKS.forEach(function (file) { import(new URL(file, entry.src).href).catch(function () {}); });
})();</script>""".replace("CHUNKS", json.dumps(CHUNKS))


def install() -> None:
    """Draw the (invisible) script as the sidebar's first element: the frontend draws the
    sidebar before the page, and it fetches widget code in the order it meets the widgets (React
    stops at the first one still loading), so only the first element is sure to be first."""
    st.sidebar.html(_SCRIPT, unsafe_allow_javascript=True)
