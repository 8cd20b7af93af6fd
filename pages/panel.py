"""Helpdesk panel: one customer's card for a ticket sidebar (issue 13). Logic in ui/panel.py."""
from ui.panel import render_panel_page
from ui.shell import ensure_shell

ensure_shell(__file__)  # before anything is drawn (the imports above draw nothing)
render_panel_page()
