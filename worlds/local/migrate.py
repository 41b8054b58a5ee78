"""How a SQLite file gets the shared layout (``wfkit.worlds.sql.schema``) and keeps it.

``ensure_schema`` runs when a ``LocalWorld`` opens its file, in one ``BEGIN
IMMEDIATE`` transaction taken behind the write gate, so several processes opening
one file at once take turns: the first creates or migrates it, the others then
find it up to date. It reads the stored version and lets
``wfkit.worlds.sql.migrations.plan_migrations`` judge it before touching
anything (a file it refuses is left as it was); then it creates a new file at
``SCHEMA_VERSION``, or applies the pending steps of ``MIGRATIONS`` in order,
each recorded in ``schema_history``; and it re-creates indexes stored in an
older spelling of the same definition. SQLite's DDL is transactional: a failed
or interrupted migration leaves the file at its old version, whole.

Waiting on the gate (``flock``) rather than on SQLite's busy timeout lets the
other processes wait out a migration that takes longer than that timeout on a
big file; their readers are not blocked meanwhile (WAL).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine, exc, select, text

from wfkit.worlds.base import WorldError
from wfkit.worlds.local.db import WriteGate, translated_errors
from wfkit.worlds.local.sql import TABLES
from wfkit.worlds.sql import SCHEMA_VERSION
from wfkit.worlds.sql.migrations import (
    CREATED_SUMMARY,
    LAYOUT_TABLES,
    Migration,
    Plan,
    history_row,
    plan_migrations,
)

__all__ = ["ensure_schema"]

log = logging.getLogger("wfkit.worlds.migrate")


def ensure_schema(write_engine: Engine, path: Path, gate: WriteGate) -> Plan:
    """Create the file's tables, or migrate them to ``SCHEMA_VERSION``.

    Args:
        write_engine: the world's engine with the ``BEGIN IMMEDIATE`` option.
        path: the database file (for messages).
        gate: the world's write gate, held for the whole transaction.

    Returns:
        What was found and done (``Plan.found`` is None for a new file).

    Raises:
        SchemaVersionError: the file's version is newer than this code, invalid,
            or missing from a file that holds wfkit tables; nothing was changed.
        WorldError: the database refused the work, or the file is not a SQLite
            database (nothing was changed).
    """
    with gate.held(), translated_errors(), _unreadable_file(path), write_engine.begin() as conn:
        found, has_tables = _stored_version(conn)
        plan = plan_migrations(found, has_tables=has_tables, store=str(path))
        if plan.create:
            TABLES.metadata.create_all(conn)
            conn.execute(TABLES.schema_version.insert().values(id=1, version=SCHEMA_VERSION))
            conn.execute(history_row(TABLES, SCHEMA_VERSION, CREATED_SUMMARY, _now()))
        for step in plan.steps:
            _apply_step(conn, step)
        _update_index_forms(conn)
    if plan.steps:
        log.info("migrated %s from schema version %s to %s", path, plan.found, SCHEMA_VERSION)
    return plan


@contextmanager
def _unreadable_file(path: Path) -> Iterator[None]:
    """A file SQLite cannot read as a database (``file is not a database``, a damaged
    header) is one line naming it, not a driver traceback."""
    try:
        yield
    except exc.DatabaseError as error:
        if isinstance(error, exc.OperationalError | exc.IntegrityError):
            raise
        raise WorldError(
            f"{path} is not a SQLite database wfkit can open ({error.orig}); point "
            "WFKIT_WORLD at another file or move this one away"
        ) from None


def _stored_version(conn: Connection) -> tuple[object, bool]:
    """The version in the ``schema_version`` row (None without one) and whether the
    file holds any of the layout's tables."""
    names = set(conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars())
    found: object = None
    if TABLES.schema_version.name in names:
        version = TABLES.schema_version.c.version
        found = conn.execute(
            select(version).where(TABLES.schema_version.c.id == 1)
        ).scalar_one_or_none()
    return found, bool(names & LAYOUT_TABLES)


def _apply_step(conn: Connection, step: Migration) -> None:
    """Run one step's DDL, record it and move the version row to its version."""
    for statement in step.sqlite:
        conn.exec_driver_sql(statement)
    conn.execute(history_row(TABLES, step.version, step.summary, _now()))
    conn.execute(
        TABLES.schema_version.update()
        .where(TABLES.schema_version.c.id == 1)
        .values(version=step.version)
    )


def _now() -> str:
    """A ``schema_history`` time as SQLite stores times (ISO 8601 text)."""
    return datetime.now(UTC).isoformat()


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
