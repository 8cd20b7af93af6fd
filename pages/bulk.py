"""Bulk lookup: which of these addresses are subscribed, and to what. Logic in ui/bulk_view.py
(rendering) and cmlib/bulk (reading, validation, the run, the matrix, the exports)."""
from ui.bulk_view import render_bulk_page
from ui.language import apply_language
from ui.shell import ensure_shell

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
apply_language()  # the session's language, also when this page runs on its own
render_bulk_page()
