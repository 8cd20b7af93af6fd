"""What AppTest-based tests share: reading markdown as a person sees it, opening a page as a browser does."""
from __future__ import annotations

import re
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
