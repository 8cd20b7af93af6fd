"""Server entry: ``streamlit run serve.py`` serves ``app.py`` and warms it up at start.

The same app as ``streamlit run app.py`` (which still works, e.g. for AppTest), through Streamlit's
ASGI ``st.App`` so it has a start-up hook: :func:`ui.warm_start.warm` runs before the server
accepts its first connection, so the first visit after a (re)start no longer pays for importing
the app (issue 15: 2.2 s -> 1.2 s to the page heading on a 2-core machine). And a middleware,
:class:`ui.prefetch.DeepLinkPrefetch`: a deep link's lookup starts with the browser's request for
the page instead of ~0.6 s later, when Streamlit runs the page. And another,
:class:`ui.static_assets.StaticAssets`: Streamlit's own frontend files answered from memory, a
fifth of the server time Streamlit's file handler takes for the sixty a new browser session
fetches.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.middleware import Middleware

from ui.prefetch import DeepLinkPrefetch
from ui.static_assets import StaticAssets


@asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    from ui.warm_start import warm

    await asyncio.to_thread(warm)  # off the event loop; start-up waits for it
    yield None


app = st.App("app.py", lifespan=_lifespan, middleware=[Middleware(StaticAssets), Middleware(DeepLinkPrefetch)])
