"""What one HTTP exchange tells: its figures for the health panel, and the error it means.

Kept apart from the transport (:mod:`cmlib.client`) so the wording of a failed answer ("HTML
502 response instead of JSON (a proxy or outage page)", "read timeout after 20s") lives in one
place and never includes the API key: only statuses, headers the API sets and the body's own
``Code``/``Message``.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests

from . import lazy_text as later
from .errors import CMError, RateLimitedError, error_for


@dataclass(frozen=True)
class CallStats:
    """What the last HTTP exchange looked like (for the Settings health panel)."""

    endpoint: str
    status: int | None
    latency_ms: float
    from_cache: bool
    at: datetime
    rate_limit_limit: int | None = None
    rate_limit_remaining: int | None = None
    rate_limit_reset: float | None = None


def int_header(headers: Any, name: str) -> int | None:
    try:
        v = headers.get(name)
        return int(float(v)) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def float_header(headers: Any, name: str) -> float | None:
    try:
        v = headers.get(name)
        return float(v) if v not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _api_code(body: Any) -> int | None:
    raw = body.get("Code")
    try:
        return int(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None


def error_from_response(resp: requests.Response, endpoint: str, ctx: dict[str, Any]) -> CMError:
    """The error an HTTP answer of 400 or more means, with the API's Code/Message when it sent them."""
    status = resp.status_code
    code: int | None = None
    message: str | None = None
    body: Any = None
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and ("Code" in body or "Message" in body):
        code = _api_code(body)
        message = str(body.get("Message") or "").strip() or None
    if message is None:
        ctype = resp.headers.get("Content-Type", "")
        text = (resp.text or "").strip()
        if not text:
            message = f"empty {status} response"
        elif "html" in ctype.lower() or text[:1] == "<":
            message = f"HTML {status} response instead of JSON (a proxy or outage page)"
        else:
            message = f"non-JSON {status} response"
    if status == 429 or code == 429:
        return RateLimitedError(message or "rate limited", status=status, code=code, endpoint=endpoint,
                                reset_seconds=float_header(resp.headers, "X-RateLimit-Reset"),
                                limit=int_header(resp.headers, "X-RateLimit-Limit"),
                                remaining=int_header(resp.headers, "X-RateLimit-Remaining"), **ctx)
    result_data = body.get("ResultData") if isinstance(body, dict) else None
    return error_for(status, code, message, endpoint=endpoint, result_data=result_data, **ctx)


def transport_reason(exc: BaseException, timeout: tuple[float, float]) -> str:
    """Why no HTTP answer came, e.g. "read timeout after 20s", "connection failed: ConnectionError"
    (a :class:`~cmlib.lazy_text.LazyText`: English as the string, said in a reader's language where shown)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return later.t("connect timeout after {seconds}s", seconds=format(timeout[0], "g"))
    if isinstance(exc, requests.exceptions.Timeout):
        return later.t("read timeout after {seconds}s", seconds=format(timeout[1], "g"))
    return later.t("connection failed: {kind}", kind=type(exc).__name__)
