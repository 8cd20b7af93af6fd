"""Lookup: one customer, every address, as tabs (product.md cases 1-5). Logic in ui/profile.py."""
from ui.profile import render_lookup_page
from ui.shell import ensure_shell

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
render_lookup_page()
