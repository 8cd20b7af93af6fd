"""ui/shell.py without a browser: the parameters it carries and its read of Streamlit internals.
The first-visit detour itself is tested on fresh servers in tests/browser/test_first_visit*.py."""
from __future__ import annotations

import sys

from ui import shell


def test_repeated_parameters_are_kept_with_every_value_in_order():
    link = shell.DeepLink("lookup.py", (("email", ("a@x.com", "b@y.org")), ("x", ("",))))
    assert link.query_params() == {"email": ["a@x.com", "b@y.org"], "x": [""]}
    assert shell.DeepLink("bulk.py", ()).query_params() is None


def test_a_renamed_internal_flag_means_no_detour(monkeypatch):
    from streamlit.runtime.pages_manager import PagesManager

    monkeypatch.setattr(PagesManager, "uses_pages_directory", True, raising=False)
    assert shell._running_outside_navigation() is True
    monkeypatch.delattr(PagesManager, "uses_pages_directory")
    assert shell._running_outside_navigation() is False  # AttributeError, not a crashed page


def test_a_moved_internal_module_means_no_detour(monkeypatch):
    monkeypatch.setitem(sys.modules, "streamlit.runtime.pages_manager", None)  # import raises ImportError
    assert shell._running_outside_navigation() is False
