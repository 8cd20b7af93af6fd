"""Settings: credentials, cache, health and access. The view is ui/settings_view.py; the checks
live in cmlib (diagnostics, config, access)."""
from ui.shell import ensure_shell

ensure_shell(__file__)

from ui.settings_view import render_settings_page  # noqa: E402

render_settings_page()
