"""A local emulator of the Campaign Monitor v3.3 API parts the dashboard uses.

Real HTTP on 127.0.0.1, the fixtures' response shapes, Campaign Monitor's write rules, seeded
demo data with documented demo customers, and fault knobs (latency, 429s, 500s, broken JSON,
hangs, failing lists). See :class:`Sandbox`, :func:`get_demo_sandbox` and ``DEMO_CUSTOMERS``.
"""
from __future__ import annotations

from .demo import (
    ACCOUNT_API_KEY,
    CLIENT_API_KEY,
    DEMO_CUSTOMERS,
    MAIN_CLIENT_ID,
    OTHER_CLIENT_ID,
    VIP_LIST_NAME,
    DemoCase,
)
from .errors import ApiError
from .faults import Faults, parse_rate
from .service import Sandbox, get_demo_sandbox
from .store import Store

__all__ = [
    "ACCOUNT_API_KEY",
    "CLIENT_API_KEY",
    "DEMO_CUSTOMERS",
    "MAIN_CLIENT_ID",
    "OTHER_CLIENT_ID",
    "VIP_LIST_NAME",
    "ApiError",
    "DemoCase",
    "Faults",
    "Sandbox",
    "Store",
    "get_demo_sandbox",
    "parse_rate",
]
