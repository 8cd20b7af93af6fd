"""The admin-saved settings in a database table, for a team deployment (``CM_DATABASE_URL``).

Several replicas behind a load balancer must all see what an admin saved on any of them: a JSON
file per replica cannot do that, a row in the shared database does. One row per setting (name,
JSON value), so two replicas saving different settings at once never undo each other's change
(an upsert per name, not a rewrite of the whole document).

The stored API key is a secret, kept as the JSON file kept it: readable by the app's database
user only (a SQLite file is created 0600 by :mod:`cmlib.database`; on Postgres, grant the table
to the app's role alone), never in a log or an error message (the engine hides bound
parameters, and this class has no repr of its data).
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, MetaData, String, Table, Text, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from .database import Backend, Database, DatabaseUrlError, database
from .db_schema import UtcDateTime, ensure_table
from .errors import ConfigurationError

_METADATA = MetaData()
SETTINGS_TABLE = Table(
    "settings", _METADATA,
    Column("name", String(200), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", UtcDateTime(), nullable=False),
)
_S = SETTINGS_TABLE.c


class SettingsUnavailableError(ConfigurationError):
    """The settings database cannot be read or written (server down, no permission).

    Raised rather than reading as "nothing saved": that would quietly switch every replica to
    demo mode while the database is away.
    """


def _prepare(conn: Connection) -> None:
    ensure_table(conn, SETTINGS_TABLE)


class DatabaseSettings:
    """The settings rows of one database: the storage behind :class:`cmlib.config.SettingsStore`."""

    def __init__(self, url: str) -> None:
        self._url = url

    def __repr__(self) -> str:
        return f"DatabaseSettings({self.location!r})"

    @property
    def location(self) -> str:
        """The file, or the URL without its password."""
        try:
            return database(self._url).location
        except DatabaseUrlError:
            return "the configured database URL (not usable)"

    def _database(self) -> Database:
        db = database(self._url)
        db.prepare("settings", _prepare)
        return db

    def _unavailable(self, exc: SQLAlchemyError) -> SettingsUnavailableError:
        # The driver's own message (e.g. "connection refused"); never the statement or its parameters.
        reason = str(getattr(exc, "orig", None) or type(exc).__name__).strip().splitlines()[0]
        return SettingsUnavailableError(f"the saved settings in {self.location} cannot be reached: {reason}")

    def load(self) -> dict[str, Any]:
        try:
            with self._database().read() as conn:
                rows = conn.execute(select(_S.name, _S.value)).all()
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from None
        data: dict[str, Any] = {}
        for name, value in rows:
            try:
                data[name] = json.loads(value)
            except ValueError:
                continue  # a hand-edited row that is not JSON reads as unset, like a corrupt file
        return data

    def save(self, data: Mapping[str, Any]) -> None:
        """Replace every setting with ``data`` (one transaction: readers see the old or the new set)."""
        try:
            with self._database().write() as conn:
                conn.execute(delete(SETTINGS_TABLE))
                for name, value in data.items():
                    self._upsert(conn, name, value)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from None

    def update(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Set (or, for None, remove) the named settings only; returns every setting afterwards."""
        try:
            with self._database().write() as conn:
                for name, value in values.items():
                    if value is None:
                        conn.execute(delete(SETTINGS_TABLE).where(_S.name == name))
                    else:
                        self._upsert(conn, name, value)
        except SQLAlchemyError as exc:
            raise self._unavailable(exc) from None
        return self.load()

    def _upsert(self, conn: Connection, name: str, value: Any) -> None:
        row = {"name": str(name), "value": json.dumps(value, sort_keys=True), "updated_at": datetime.now(UTC)}
        dialect = postgresql if database(self._url).backend is Backend.POSTGRES else sqlite
        stmt = dialect.insert(SETTINGS_TABLE).values(**row)
        conn.execute(stmt.on_conflict_do_update(index_elements=[_S.name],
                                                set_={"value": stmt.excluded.value,
                                                      "updated_at": stmt.excluded.updated_at}))
