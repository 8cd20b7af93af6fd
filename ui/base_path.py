"""The server's URL prefix (``server.baseUrlPath``) as the ASGI middlewares in ``serve.py`` see paths."""
from __future__ import annotations


def base_path() -> str:
    """``""``, or ``"/prefix"`` when Streamlit is served under one. Read from Streamlit's config
    when the first request arrives (the config is loaded by then, not at import)."""
    from streamlit import config

    base = str(config.get_option("server.baseUrlPath") or "").strip("/")
    return f"/{base}" if base else ""
