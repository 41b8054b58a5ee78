"""How a SQLite file gets the shared layout (``wfkit.worlds.sql.schema``).

``ensure_schema`` runs when a ``LocalWorld`` opens its file, in one ``BEGIN
IMMEDIATE`` transaction (which several processes opening the file at once take
in turn): it refuses a file written by a newer wfkit before touching anything,
creates missing tables and indexes, records ``SCHEMA_VERSION`` in a new file and
re-creates indexes stored in an older spelling of the same definition.

A layout change adds its step here (and in ``wfkit.worlds.postgres.migrate``)
together with the new ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, select, text

from wfkit.worlds.base import SchemaVersionError
from wfkit.worlds.local.db import translated_errors
from wfkit.worlds.local.sql import TABLES
from wfkit.worlds.sql import SCHEMA_VERSION

__all__ = ["ensure_schema"]


def ensure_schema(write_engine: Engine, path: Path) -> None:
    """Create the tables if missing and check the schema version.

    Raises:
        SchemaVersionError: the file was written by a newer wfkit.
    """
    with translated_errors(), write_engine.begin() as conn:
        # Check before creating anything: a newer file must be left untouched.
        has_version = conn.execute(
            text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        ).first()
        stored = None
        if has_version is not None:
            stored = conn.execute(select(TABLES.schema_version.c.version)).scalar_one_or_none()
        if stored is not None and stored > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} uses schema version {stored}, but this wfkit understands up to "
                f"{SCHEMA_VERSION}: upgrade wfkit, or point WFKIT_WORLD at another database"
            )
        TABLES.metadata.create_all(conn)
        if stored is None:
            conn.execute(TABLES.schema_version.insert().values(id=1, version=SCHEMA_VERSION))
        _update_index_forms(conn)


def _update_index_forms(conn: Connection) -> None:
    """Recreate indexes whose stored definition is an older, slower spelling of
    the current one (the same index: no schema version change)."""
    for table in TABLES.metadata.sorted_tables:
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is None:
                continue
            stored = conn.execute(
                text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": index.name},
            ).scalar_one_or_none()
            if stored is not None and not stored.endswith(str(where)):
                index.drop(conn)
                index.create(conn)
