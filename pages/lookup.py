"""Lookup: one customer, every address, as tabs (product.md cases 1-5). Logic in ui/profile.py."""
from ui.language import apply_language
from ui.profile import render_lookup_page
from ui.shell import ensure_shell

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
apply_language()  # the session's language, also when this page runs on its own
render_lookup_page()
