"""Settings: credentials, cache, health and access. The view is ui/settings_view.py; the checks
live in cmlib (diagnostics, config, access)."""
from ui.language import apply_language
from ui.shell import ensure_shell

ensure_shell(__file__)
apply_language()  # the session's language, also when this page runs on its own

from ui.settings_view import render_settings_page  # noqa: E402

render_settings_page()
