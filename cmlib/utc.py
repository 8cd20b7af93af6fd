"""Instants as the stored records write them: aware UTC, whole seconds, ``2026-03-01T09:30:00Z``.

Split from :mod:`cmlib.db_schema` (which uses and re-exports them) so that what reads a stored
time -- an audit row shown on the Lookup page's dialog, say -- does not import SQLAlchemy.
"""
from __future__ import annotations

from datetime import UTC, datetime

SQLITE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def as_utc(value: datetime | str) -> datetime:
    """An aware UTC datetime, whole seconds, from a datetime or ISO 8601 text (naive means UTC).

    Raises ValueError for text that is not ISO 8601.
    """
    moment = datetime.fromisoformat(value.strip()) if isinstance(value, str) else value
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0)


def iso_utc(value: datetime) -> str:
    """``2026-03-01T09:30:00Z``: how times are written in the audit log's rows and CSV."""
    return as_utc(value).strftime(SQLITE_TIME_FORMAT)
