"""Who is acting, on its own, for AppTest: the panel's ``operator=`` handed to ui.identity the way
ui/panel.py does, then ``acting()`` as "name|source" (or "nobody")."""
from __future__ import annotations

import streamlit as st

from ui.identity import acting, use_link_operator

use_link_operator(st.query_params.get("operator"))
actor = acting()
st.text(f"{actor.name}|{actor.source}" if actor else "nobody")
