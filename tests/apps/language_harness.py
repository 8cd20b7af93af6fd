"""The sidebar's language picker on its own, for AppTest (a full app run under st.navigation
re-runs only the page script after the first run, dropping the sidebar), plus what a fragment's
fresh thread would say: a thread of this script run without the run's language set."""
from __future__ import annotations

import threading

import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx

from cmlib.i18n import current_language, t
from ui.language import apply_language, language_picker

apply_language()
language_picker()
st.markdown(t("Lists"))

heard: dict[str, str] = {}


def _speak(where: str) -> None:
    heard[where] = current_language().value


inside = threading.Thread(target=_speak, args=("inside",))  # like a fragment rerun's thread
add_script_run_ctx(inside)
outside = threading.Thread(target=_speak, args=("outside",))  # like a bulk worker
for thread in (inside, outside):
    thread.start()
    thread.join()
st.session_state["heard"] = dict(heard)
