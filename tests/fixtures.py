"""The Campaign Monitor fixtures (the official wrapper's real response bodies, MIT).

A copy of ../shared/cm-fixtures lives in tests/data so the suite runs from any clone.
"""
from __future__ import annotations

import json
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "data" / "cm-fixtures"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture(name: str):
    return json.loads(fixture_text(name))
