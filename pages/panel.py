"""Helpdesk panel: one customer's card for a ticket sidebar (issue 13). Logic in ui/panel.py."""
from ui.language import apply_language
from ui.panel import render_panel_page
from ui.shell import ensure_shell

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
apply_language()  # the session's language, also when this page runs on its own
render_panel_page()
