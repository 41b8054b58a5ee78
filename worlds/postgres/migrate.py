"""How a Postgres schema gets the shared layout (``wfkit.worlds.sql.schema``).

Everything lives in one Postgres schema (``wfkit`` by default) so several worlds
(and test sessions) can share a database. ``schema_version`` holds one row with
the layout version; ``ensure_schema`` creates or upgrades under an advisory lock
so concurrent processes do not race, and refuses a store written by a newer
wfkit (``SchemaVersionError``). A layout change adds its step to ``_MIGRATIONS``
(and to ``wfkit.worlds.local.migrate``) together with the new ``SCHEMA_VERSION``.

Besides the declared tables, two triggers send the LISTEN/NOTIFY wake-ups from
inside the writing transaction: a statement-level one on ``queue_messages``
inserts (channel ``queue_channel``) and a row-level one on ``streams`` (channel
``stream_channel``, payload the JSON array ``[run_id, name]``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from sqlalchemy import func, text
from sqlalchemy.engine import Connection, Engine

from wfkit.worlds.base import SchemaVersionError
from wfkit.worlds.postgres.sql import notify_channels, quote_ident
from wfkit.worlds.sql import SCHEMA_VERSION, Tables

__all__ = ["drop_schema", "ensure_schema"]


def _schema(tables: Tables) -> str:
    schema = tables.metadata.schema
    if schema is None:
        raise ValueError("the Postgres world's tables live in a named schema")
    return schema


def _trigger_ddl(schema: str) -> list[str]:
    q = quote_ident(schema)
    queue_channel, stream_channel = notify_channels(schema)
    return [
        f"""CREATE OR REPLACE FUNCTION {q}.notify_queue() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('{queue_channel}', ''); RETURN NULL; END $$""",
        f"""CREATE TRIGGER queue_messages_notify AFTER INSERT ON {q}.queue_messages
            FOR EACH STATEMENT EXECUTE FUNCTION {q}.notify_queue()""",
        f"""CREATE OR REPLACE FUNCTION {q}.notify_stream() RETURNS trigger
            LANGUAGE plpgsql AS $$
            DECLARE payload text := json_build_array(NEW.run_id, NEW.name)::text;
            BEGIN
                IF octet_length(payload) >= 7900 THEN payload := ''; END IF;
                PERFORM pg_notify('{stream_channel}', payload);
                RETURN NULL;
            END $$""",
        f"""CREATE TRIGGER streams_notify AFTER INSERT OR UPDATE ON {q}.streams
            FOR EACH ROW EXECUTE FUNCTION {q}.notify_stream()""",
    ]


def _create_v1(connection: Connection, tables: Tables) -> None:
    tables.metadata.create_all(connection, checkfirst=True)
    for ddl in _trigger_ddl(_schema(tables)):
        connection.exec_driver_sql(ddl)


_MIGRATIONS: dict[int, Callable[[Connection, Tables], None]] = {1: _create_v1}
"""``_MIGRATIONS[v]`` upgrades a store at version ``v - 1`` to ``v``."""


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha1(f"wfkit:{schema}".encode()).digest()[:8], "big", signed=True)


def _refuse_newer(schema: str, current: int) -> None:
    if current > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"Postgres schema {schema!r} is at version {current}, but this wfkit "
            f"understands up to version {SCHEMA_VERSION}: upgrade wfkit (or use another schema)"
        )


def _stored_version(connection: Connection, tables: Tables) -> int | None:
    """The stored layout version, or None when there is no version table yet."""
    table = f"{quote_ident(_schema(tables))}.schema_version"
    exists = connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": table}).scalar()
    if not exists:
        return None
    found = connection.execute(
        tables.schema_version.select().where(tables.schema_version.c.id == 1)
    ).first()
    return int(found.version) if found is not None else 0


def ensure_schema(engine: Engine, tables: Tables) -> int:
    """Create the schema or bring it up to ``SCHEMA_VERSION``; return the version found.

    An up-to-date store is only read (no DDL, no lock, so a role without CREATE
    privileges can use a schema made by another). Otherwise it runs in one
    transaction under ``pg_advisory_xact_lock`` so that processes starting
    together create or upgrade the tables once.

    Raises:
        SchemaVersionError: the store's version is newer than this code understands.
    """
    schema = _schema(tables)
    with engine.connect() as connection:
        current = _stored_version(connection, tables)
    if current is not None:
        _refuse_newer(schema, current)
        if current == SCHEMA_VERSION:
            return current
    with (
        engine.connect().execution_options(isolation_level="READ COMMITTED") as connection,
        connection.begin(),
    ):
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(schema)})
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        tables.schema_version.create(connection, checkfirst=True)
        current = _stored_version(connection, tables) or 0
        _refuse_newer(schema, current)
        for version in range(current + 1, SCHEMA_VERSION + 1):
            _MIGRATIONS[version](connection, tables)
        if current != SCHEMA_VERSION:
            values = {"version": SCHEMA_VERSION, "updated_at": func.now()}
            if current == 0:
                connection.execute(tables.schema_version.insert().values(id=1, **values))
            else:
                connection.execute(
                    tables.schema_version.update()
                    .where(tables.schema_version.c.id == 1)
                    .values(**values)
                )
        return current


def drop_schema(engine: Engine, schema: str) -> None:
    """Drop the whole Postgres schema and everything in it (tests, resets)."""
    with engine.connect() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
