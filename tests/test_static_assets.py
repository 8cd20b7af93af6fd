"""Streamlit's frontend files answered from memory (ui.static_assets): the same bytes and headers
as Streamlit's own file handler gives, every other request passed on untouched, each file read once.
"""
from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from streamlit.web.server.starlette.starlette_static_routes import create_streamlit_static_handler

from ui import static_assets
from ui.static_assets import STATIC_ROOT, StaticAssets, asset_paths


def _scope(path: str, method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": headers or [], "server": ("127.0.0.1", 8501), "client": ("127.0.0.1", 50000)}


def _call(app, scope: dict) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[dict] = []
    asked: list[int] = []

    async def receive() -> dict:
        """The request, then nothing: a client that stays connected (Starlette listens for a
        disconnect while it streams a file, and stops listening when the file is sent)."""
        asked.append(1)
        if len(asked) > 1:
            await asyncio.Event().wait()
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


class Recorder:
    """The app behind the middleware: records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"passed on"})


def _one_of_each_kind() -> list[str]:
    """One path per file extension in Streamlit's static folder (js, css, woff2, png, svg, ...)."""
    by_ext: dict[str, str] = {}
    for path in asset_paths():
        by_ext.setdefault(Path(path).suffix, path)
    return sorted(by_ext.values())


def test_the_table_holds_streamlits_frontend_files_and_nothing_else():
    paths = asset_paths()
    assert any(p.startswith("/static/js/index.") and p.endswith(".js") for p in paths)
    assert all(p.startswith("/static/") and ".." not in p for p in paths)
    assert all(file.is_file() and STATIC_ROOT / "static" in file.parents for file in paths.values())
    assert "/index.html" not in paths and "/static/index.html" not in paths  # the page itself stays Streamlit's


@pytest.mark.parametrize("path", _one_of_each_kind())
def test_each_kind_of_file_is_answered_as_streamlit_answers_it(path):
    ours = _call(StaticAssets(Recorder(), base=""), _scope(path))
    theirs = _call(create_streamlit_static_handler(str(STATIC_ROOT), None), _scope(path))
    assert ours[0] == theirs[0] == 200
    assert ours[2] == theirs[2]
    assert sorted(ours[1]) == sorted(theirs[1])  # the same headers, no more, no fewer
    assert ours[1] == theirs[1]  # and the same values, the ETag included


def test_head_gets_the_headers_without_the_body():
    path = _one_of_each_kind()[0]
    status, headers, body = _call(StaticAssets(Recorder(), base=""), _scope(path, "HEAD"))
    assert status == 200 and body == b""
    assert int(headers[b"content-length"]) == (STATIC_ROOT / path.removeprefix("/")).stat().st_size


@pytest.mark.parametrize("scope", [
    _scope("/"),  # the page: Streamlit's, never cached
    _scope("/static/js/no-such-file.js"),
    _scope("/static/js/../../index.html"),
    _scope("//static/js/x.js"),
    _scope("/_stcore/health"),
    _scope("/static/css", "GET"),  # a folder
    _scope(next(iter(asset_paths())), "POST"),
    _scope(next(iter(asset_paths())), "GET", [(b"Range", b"bytes=0-9")]),
    _scope(next(iter(asset_paths())), "GET", [(b"if-none-match", b'"x"')]),
    {"type": "websocket", "path": "/_stcore/stream", "headers": []},
], ids=["page", "unknown", "dot-dot", "double-slash", "health", "folder", "post", "range", "conditional", "websocket"])
def test_anything_else_goes_on_to_streamlit(scope):
    inner = Recorder()

    async def go() -> None:
        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            pass

        await StaticAssets(inner, base="")(scope, receive, send)

    asyncio.run(go())
    assert inner.paths == [scope["path"]]


def test_a_conditional_request_with_our_etag_gets_streamlits_304():
    """Revalidation goes on to Streamlit, which must recognise the ETag this answer gave."""
    path = _one_of_each_kind()[0]
    etag = _call(StaticAssets(Recorder(), base=""), _scope(path))[1][b"etag"]
    inner = create_streamlit_static_handler(str(STATIC_ROOT), None)
    status, _, body = _call(StaticAssets(inner, base=""), _scope(path, "GET", [(b"if-none-match", etag)]))
    assert status == 304 and body == b""


def test_under_a_base_path_only_the_prefixed_paths_are_answered():
    path = _one_of_each_kind()[0]
    inner = Recorder()
    mw = StaticAssets(inner, base="/cm")
    assert _call(mw, _scope("/cm" + path))[0] == 200
    assert _call(mw, _scope(path))[2] == b"passed on"
    assert inner.paths == [path]


def test_the_prefix_is_streamlits_base_url_path_when_none_is_given(monkeypatch):
    monkeypatch.setattr(static_assets, "base_path", lambda: "/team")
    path = _one_of_each_kind()[0]
    assert _call(StaticAssets(Recorder()), _scope("/team" + path))[0] == 200


def test_a_file_is_read_once_and_then_served_from_memory(monkeypatch):
    path = _one_of_each_kind()[0]
    reads: list[Path] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        reads.append(self)
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    mw = StaticAssets(Recorder(), base="")
    bodies = {_call(mw, _scope(path))[2] for _ in range(3)}
    assert len(bodies) == 1 and len(reads) == 1


def test_the_first_read_is_done_off_the_event_loop_and_once_for_requests_at_the_same_time(monkeypatch):
    """The event loop serves every session's websocket: a file of several MB is not read on it.
    Two browsers asking for the same file at once still make one read."""
    path = _one_of_each_kind()[0]
    readers: list[threading.Thread] = []
    real = Path.read_bytes

    def counting(self: Path) -> bytes:
        readers.append(threading.current_thread())
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", counting)
    mw = StaticAssets(Recorder(), base="")
    loop_threads: list[threading.Thread] = []
    bodies: list[bytes] = []

    async def one() -> None:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        await mw(_scope(path), receive, send)
        bodies.append(b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"))

    async def both() -> None:
        loop_threads.append(threading.current_thread())
        await asyncio.gather(one(), one())

    asyncio.run(both())
    assert len(readers) == 1 and readers[0] is not loop_threads[0]
    assert bodies[0] == bodies[1] == (STATIC_ROOT / "static" / path.removeprefix("/static/")).read_bytes()
