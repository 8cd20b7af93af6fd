"""What the server does once at start, before the first browser arrives (``serve.py``'s lifespan).

Streamlit runs no app code until a browser opens a session, so the first visit after a start
paid for importing the app (the UI modules, requests-cache, SQLAlchemy) and for opening the
settings database inside its first script run, while the same two cores were busy loading the
browser's JavaScript: measured ~1 s of a 2.2 s first visit (issue 15). Done here, at start, the
first visitor finds them ready. Only what the first page and the lookup need: the Bulk page's
pandas and openpyxl stay for the first bulk run.

Best effort: a failure here (say, a database that is not up yet) is logged and left for the
first page, which reports it where a person reads it.
"""
from __future__ import annotations

import importlib
import logging
import time

from ui import nodelay

log = logging.getLogger("ui.warm_start")

# The modules app.py and the Lookup page import, and the address syntax check the first lookup runs.
MODULES = ("ui.profile", "ui.sidebar", "ui.connection", "ui.shell", "ui.access", "ui.identity", "ui.demo",
           "ui.preload", "ui.language", "ui.favicon", "ui.subscriptions", "email_validator")


def warm() -> float:
    """Import :data:`MODULES` and requests-cache, read the credentials once (creating the settings
    database); returns the seconds it took. Never raises."""
    started = time.perf_counter()
    nodelay.install()  # before the first connection is accepted, so even the first page is sent at once
    try:
        for name in MODULES:
            importlib.import_module(name)
        from cmlib import cache, runtime

        cache.load_requests_cache()
        runtime.current_credentials()
    except Exception as exc:  # the first page reports it
        log.warning("warming up at start failed: %s", type(exc).__name__)
    return time.perf_counter() - started
