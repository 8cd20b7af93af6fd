"""What AppTest-based tests share: reading markdown as a person sees it, opening a page as a browser does."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from streamlit.testing.v1 import AppTest

from ui.text import WORD_JOINER


def shown(md: str) -> str:
    """What a markdown string displays: backslash escapes resolved, invisible word joiners dropped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", md).replace(WORD_JOINER, "")


def open_page(path: str, browser_zone: str | None = None, **session: Any) -> AppTest:
    """One run of a page as a browser opens it: Streamlit knows the browser's time zone (None: it
    does not), with ``session`` preset in the session state."""
    at = AppTest.from_file(path, default_timeout=30)
    if browser_zone is not None:
        at.context["timezone"] = browser_zone
    for k, v in session.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


_TEXT_ATTRS = ("label", "value", "body", "help", "placeholder", "caption")


def shown_columns(node) -> list[str]:
    """The columns a dataframe element draws: its column_order when set, minus hidden ones."""
    frame = node.value
    order = list(node.proto.column_order) or [str(c) for c in frame.columns]
    try:
        config = json.loads(node.proto.columns or "{}")
    except ValueError:
        config = {}
    return [c for c in order if c in frame.columns and not config.get(c, {}).get("hidden")]


def _dataframe_texts(node, where: str) -> Iterator[tuple[str, str]]:
    frame = node.value
    for column in shown_columns(node):
        yield f"{where} column", column
        for value in frame[column].tolist():
            yield f"{where} [{column}]", str(value)


def visible_texts(at: AppTest) -> list[tuple[str, str]]:
    """(where, text) for every string an element of the page shows a person."""
    out: list[tuple[str, str]] = []

    def walk(node, where: str) -> None:
        kind = getattr(node, "type", type(node).__name__)
        if kind == "dataframe":
            out.extend(_dataframe_texts(node, where))
        elif kind in ("vega_lite_chart", "arrow_vega_lite_chart"):
            out.append((f"{where} chart", node.proto.spec))
        else:
            for attr in _TEXT_ATTRS:
                try:
                    value = getattr(node, attr)
                except Exception:  # an attribute this element type does not have
                    continue
                if isinstance(value, str):
                    out.append((f"{where} {kind}.{attr}", shown(value)))
            options = getattr(node, "options", None)
            if isinstance(options, (list, tuple)):
                out.extend((f"{where} {kind}.options", shown(str(o))) for o in options)
        children = getattr(node, "children", None)
        if isinstance(children, dict):
            for key, child in children.items():
                walk(child, f"{where}/{key}")

    walk(at._tree, "")
    return out
