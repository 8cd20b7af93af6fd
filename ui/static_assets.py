"""Streamlit's own frontend files (``/static/...``) answered from memory.

A new browser session fetches about sixty JavaScript modules (2.3 MB) before it can draw
anything. Streamlit's Starlette server answers each through ``StaticFiles``: a ``stat`` and an
open in worker threads, then the body in 64 KiB reads, each one more thread hop -- about 2 ms of
Python per file, on the same two cores the browser needs to compile them (61 files over six
connections: ~140 ms of server time; from memory ~25 ms). The files are package content that
cannot change while the server runs (their names carry a content hash and Streamlit marks them
immutable), so each is read once, on its first request, and then sent in one piece with the
headers Streamlit gives it. Only files a browser asked for are kept: at most the folder's size
(25 MB in Streamlit 1.67, most of it charts this app never draws), per server process.

Only a plain ``GET`` or ``HEAD`` of a file in Streamlit's ``static/static`` folder is answered
here; anything else (a range or conditional request, an unknown name, any other path) goes on
to Streamlit unchanged. Names are looked up in a table built from the folder's listing, so no
part of a request's path reaches the file system. ServeStatic, the ASGI WhiteNoise, was no help
here: it reads every file through a thread pool of its own, as Starlette does.
"""
from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import streamlit

from ui.base_path import base_path

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

# Streamlit's folder of built frontend files; its ``static`` subfolder is served at ``/static/``.
STATIC_ROOT = Path(streamlit.__file__).parent / "static"
# As Streamlit answers for its hashed files (starlette_static_routes: public, immutable, a year).
CACHE_CONTROL = b"public, immutable, max-age=31536000"
# Requests left to Streamlit's own handler: partial and conditional ones.
PASS_ON_HEADERS = frozenset((b"range", b"if-range", b"if-none-match", b"if-modified-since"))


def asset_paths(root: Path = STATIC_ROOT) -> dict[str, Path]:
    """``/static/js/index.<hash>.js`` -> its file, for every file under ``root/static``."""
    folder = root / "static"
    return {f"/static/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*")) if p.is_file()}


def content_type(name: str) -> bytes:
    """As Starlette's ``FileResponse`` names it: the guessed type, text with its charset."""
    kind = mimetypes.guess_type(name)[0] or "text/plain"
    return (kind + "; charset=utf-8" if kind.startswith("text/") else kind).encode("latin-1")


@dataclass(frozen=True)
class Loaded:
    body: bytes
    headers: list[tuple[bytes, bytes]]


class Asset:
    """One file: read on its first request, then kept (for the life of the server process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._loaded: Loaded | None = None

    @property
    def loaded(self) -> Loaded | None:
        """What :meth:`load` kept, once it has run (no lock: the reference is set once)."""
        return self._loaded

    def load(self) -> Loaded:
        with self._lock:
            if self._loaded is None:
                body = self.path.read_bytes()
                stat = self.path.stat()
                modified = formatdate(stat.st_mtime, usegmt=True).encode("ascii")
                # Starlette's own ETag for the file (FileResponse.set_stat_headers): a conditional
                # request, which goes on to Streamlit, then matches what this answer gave.
                etag = hashlib.md5(f"{stat.st_mtime}-{stat.st_size}".encode(), usedforsecurity=False).hexdigest()
                self._loaded = Loaded(body, [
                    (b"content-type", content_type(self.path.name)),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"accept-ranges", b"bytes"),  # a range request is Streamlit's to answer
                    (b"last-modified", modified),
                    (b"etag", f'"{etag}"'.encode("ascii")),
                    (b"cache-control", CACHE_CONTROL),
                ])
            return self._loaded


class StaticAssets:
    """ASGI middleware (``st.App(middleware=[Middleware(StaticAssets)])``)."""

    def __init__(self, app: ASGIApp, root: Path = STATIC_ROOT, base: str | None = None) -> None:
        self.app = app
        self._root = root
        self._base = base
        self._assets: dict[str, Asset] | None = None
        self._lock = threading.Lock()

    def _table(self) -> dict[str, Asset]:
        if self._assets is None:
            with self._lock:
                if self._assets is None:
                    prefix = base_path() if self._base is None else self._base
                    self._assets = {prefix + path: Asset(file) for path, file in asset_paths(self._root).items()}
        return self._assets

    def asset_for(self, scope: Scope) -> Asset | None:
        """The file this request is a plain ``GET``/``HEAD`` of, if any."""
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return None
        if any(name.lower() in PASS_ON_HEADERS for name, _ in scope.get("headers") or ()):
            return None
        return self._table().get(str(scope.get("path", "")))

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        asset = self.asset_for(scope)
        if asset is None:
            await self.app(scope, receive, send)
            return
        # The first request reads the file in a worker thread (up to 4.7 MB: never on the event
        # loop, which serves every session's websocket); every later one is answered from memory.
        loaded = asset.loaded
        if loaded is None:
            loaded = await asyncio.to_thread(asset.load)
        await send({"type": "http.response.start", "status": 200, "headers": loaded.headers})
        await send({"type": "http.response.body", "body": loaded.body if scope["method"] == "GET" else b""})
