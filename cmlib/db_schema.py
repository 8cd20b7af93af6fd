"""Column types and schema upkeep that behave the same on SQLite and Postgres.

- :class:`UtcDateTime`: times go in as UTC and come back timezone-aware (UTC) on both. Postgres
  stores ``timestamptz``; SQLite, which has no time type, stores the text the audit log always
  stored (``2026-03-01T09:30:00Z``), so existing files keep their rows and their ordering.
  Whole seconds on both, so a row reads back the same whichever database holds it.
- :func:`fold`: the text a case-insensitive search compares. SQLite's ``lower()`` only folds
  ASCII ("Élodie" would not match "élodie") and the two databases' collations differ, so the
  folding is done in Python, stored beside the original, and the search term folded the same way.
- :func:`ensure_table`: create a table, or bring an existing one up to date (missing columns
  and indexes), found by SQLAlchemy's inspection instead of a migration tool: the tables are
  few and only ever gain nullable or defaulted columns.
"""
from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect, Table, Text, inspect, text
from sqlalchemy.schema import CreateColumn
from sqlalchemy.types import TypeDecorator, TypeEngine

from .utc import SQLITE_TIME_FORMAT, as_utc, iso_utc

__all__ = ["SQLITE_TIME_FORMAT", "UtcDateTime", "as_utc", "ensure_table", "fold", "iso_utc"]


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, aware (UTC) on the way out of either database; see the module docstring."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(Text())
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | str | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        moment = as_utc(value)
        return moment.strftime(SQLITE_TIME_FORMAT) if dialect.name == "sqlite" else moment

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """The stored time, aware UTC; None for text that is not a time (a hand-edited file)."""
        if value is None:
            return None
        try:
            return as_utc(value)
        except (TypeError, ValueError):
            return None


def fold(value: str) -> str:
    """Text as a case-insensitive search sees it: compatibility-normalised, then Unicode case folded.

    ``casefold`` rather than ``lower`` so "Straße" matches "STRASSE"; NFKC so a name typed with
    a decomposed accent (e + U+0301) matches the same name stored precomposed.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())


def ensure_table(conn: Connection, table: Table) -> list[str]:
    """Create ``table`` if absent, else add the columns and indexes it lacks; returns the columns added.

    Run inside :meth:`cmlib.database.Database.prepare` (one transaction under a lock), so two
    processes never both add a column. An added column must be nullable or have a server default.
    """
    inspector = inspect(conn)
    if not inspector.has_table(table.name):
        table.create(conn)
        return []
    have = {c["name"] for c in inspector.get_columns(table.name)}
    added: list[str] = []
    for column in table.columns:
        if column.name not in have:
            ddl = CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD COLUMN {ddl}"))
            added.append(column.name)
    indexes = {i["name"] for i in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes:
            index.create(conn)
    return added
