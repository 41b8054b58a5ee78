"""The SQL layer the local (SQLite) and Postgres worlds share.

DBOS serves SQLite and Postgres from one SQL class whose subclasses differ only
in engine, migrations and the unique-violation check; this package is that
class's shared part for wfkit. It imports only ``wfkit.worlds.base`` (and
SQLAlchemy); the worlds import it.

Modules::

    schema      the stored layout, declared once: every table's columns (``Col``,
                ``Kind``), the indexes of each database, ``build_tables`` and
                ``SCHEMA_VERSION`` — the one place the current layout lives
    migrations  the versioned steps that bring an older store to ``SCHEMA_VERSION``
                (DDL per database) and ``plan_migrations``, which judges a stored
                version before anything is changed
    codecs      ``RowCodec``: a record's INSERT values, UPDATE values and the record
                back from a row, derived from the columns (``Codecs`` per database)
    records     ``RecordStatements`` (lookups by key, as Core SELECTs) and the read
                views ``SqlRuns``/``SqlSteps``/``SqlHooks``/``SqlWaits``, which a
                world runs through its own ``Prepare`` function
    schedules   ``SqlSchedules``: ``world.schedules`` (cron schedules, world-level
                configuration) through the world's ``Prepare`` and ``PrepareWrite``
    tails       ``TailCache``: per run, the records this process left at its last
                write, so that a batch continuing from it is planned without reading

What each world adds is what its database does differently: the local world
(SQLite) its WAL, write gate, checkpointer and ``BEGIN IMMEDIATE`` transactions;
the Postgres world its ``SKIP LOCKED`` queue, LISTEN/NOTIFY, advisory-locked
migrations with online index builds and sqlstate mapping.
"""

from __future__ import annotations

from wfkit.worlds.sql.codecs import (
    Codecs,
    EncodeTime,
    RowCodec,
    RowLike,
    decode_events,
    dump_json,
    load_json,
)
from wfkit.worlds.sql.records import (
    Prepare,
    Query,
    RecordStatements,
    SqlHooks,
    SqlRuns,
    SqlSteps,
    SqlWaits,
)
from wfkit.worlds.sql.schedules import PrepareWrite, SqlSchedules
from wfkit.worlds.sql.schema import (
    CREATION_EVENTS,
    SCHEMA_VERSION,
    Col,
    Dialect,
    Kind,
    Tables,
    build_tables,
)

__all__ = [
    "CREATION_EVENTS",
    "SCHEMA_VERSION",
    "Codecs",
    "Col",
    "Dialect",
    "EncodeTime",
    "Kind",
    "Prepare",
    "PrepareWrite",
    "Query",
    "RecordStatements",
    "RowCodec",
    "RowLike",
    "SqlHooks",
    "SqlRuns",
    "SqlSchedules",
    "SqlSteps",
    "SqlWaits",
    "Tables",
    "build_tables",
    "decode_events",
    "dump_json",
    "load_json",
]
