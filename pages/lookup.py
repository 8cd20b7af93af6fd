"""Lookup: one customer, every address, as tabs (product.md cases 1-5). Logic in ui/profile.py."""
from ui.shell import ensure_shell

ensure_shell(__file__)
from ui.profile import render_lookup_page

render_lookup_page()
