"""Who is acting, for the audit log: the OIDC user, else the operator name typed in the sidebar."""
from __future__ import annotations

import streamlit as st

OPERATOR_KEY = "operator_name"


def oidc_user() -> str | None:
    """The logged-in user's email/name when Streamlit's built-in login is configured and used."""
    try:
        user = st.user
        if getattr(user, "is_logged_in", False):
            return str(user.get("email") or user.get("name") or user.get("sub") or "") or None
    except Exception:  # st.user raises when [auth] is not configured
        return None
    return None


def current_user() -> str:
    return oidc_user() or (st.session_state.get(OPERATOR_KEY) or "").strip() or "anonymous"
