"""How a Postgres schema gets the shared layout (``wfkit.worlds.sql.schema``) and keeps it.

Everything lives in one Postgres schema (``wfkit`` by default) so several worlds
(and test sessions) can share a database. ``ensure_schema`` first reads the
stored version without a lock (an up-to-date store costs one query and needs no
CREATE privilege) and lets ``wfkit.worlds.sql.migrations.plan_migrations`` judge
it: a store it refuses (newer than this code, an invalid version, tables without
a version row) is left as it was. Otherwise it takes the schema's advisory lock,
judges again (another process may have done the work meanwhile), and creates the
schema at ``SCHEMA_VERSION`` in one transaction, or applies each pending step of
``MIGRATIONS``: the step's indexes on existing tables first, built with ``CREATE
INDEX CONCURRENTLY`` so workers keep writing meanwhile, then its DDL, its
``schema_history`` row and the new version in one transaction. A step
interrupted half-way leaves the store at the previous version; the next attempt
drops an index the interruption left invalid and builds it again.

Why the lock is a *session* lock taken by polling ``pg_try_advisory_lock``: a
concurrent index build cannot run in a transaction (so the transaction-scoped
lock cannot span it), and it waits for every transaction whose snapshot is older
than its own, which includes a statement blocked in ``pg_advisory_lock``: a
second process waiting that way would deadlock with the build. Polling holds no
snapshot between tries. The lock is released before the connection goes back
to the pool (or the connection is discarded). Statement timeouts are lifted for
the migration: building an index on a big table may take minutes.

Besides the declared tables, two triggers send the LISTEN/NOTIFY wake-ups from
inside the writing transaction: a statement-level one on ``queue_messages``
inserts (channel ``queue_channel``) and a row-level one on ``streams`` (channel
``stream_channel``, payload the JSON array ``[run_id, name]``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, text
from sqlalchemy.engine import Connection, Engine

from wfkit.worlds.base import WorldError
from wfkit.worlds.postgres.sql import notify_channels, quote_ident
from wfkit.worlds.sql import SCHEMA_VERSION, Tables
from wfkit.worlds.sql.migrations import (
    CREATED_SUMMARY,
    LAYOUT_TABLES,
    Migration,
    OnlineIndex,
    Plan,
    history_row,
    plan_migrations,
)

__all__ = ["drop_schema", "ensure_schema"]

log = logging.getLogger("wfkit.worlds.migrate")

LOCK_POLL_SECONDS = (0.01, 0.5)
"""First and longest pause between two tries for the migration lock."""


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


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha1(f"wfkit:{schema}".encode()).digest()[:8], "big", signed=True)


def _plan(connection: Connection, tables: Tables) -> Plan:
    """Read the stored version and judge it (``plan_migrations``)."""
    schema = _schema(tables)
    names = set(
        connection.execute(
            text(
                "SELECT c.relname FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
            ),
            {"schema": schema},
        ).scalars()
    )
    found: object = None
    if tables.schema_version.name in names:
        found = connection.execute(
            tables.schema_version.select()
            .with_only_columns(tables.schema_version.c.version)
            .where(tables.schema_version.c.id == 1)
        ).scalar_one_or_none()
    return plan_migrations(
        found, has_tables=bool(names & LAYOUT_TABLES), store=f"Postgres schema {schema!r}"
    )


def ensure_schema(engine: Engine, tables: Tables) -> Plan:
    """Create the schema or bring it up to ``SCHEMA_VERSION``.

    Args:
        engine: the world's engine (autocommit connections).
        tables: the world's tables (their schema is the store).

    Returns:
        What was found and done, as judged under the lock (``Plan.found`` is None
        for a new schema; an up-to-date store's plan has no steps).

    Raises:
        SchemaVersionError: the store's version is newer than this code, invalid, or
            missing from a schema that holds wfkit tables; nothing was changed.
        WorldError: a migration step failed (the store keeps its last whole version).
    """
    with engine.connect() as connection:
        plan = _plan(connection, tables)
    if plan.up_to_date:
        return plan
    schema = _schema(tables)
    with engine.connect() as connection:
        _take_lock(connection, schema)
        try:
            connection.exec_driver_sql("SET statement_timeout = 0")
            plan = _plan(connection, tables)
            if plan.create:
                _create(connection, tables)
            for step in plan.steps:
                _apply_step(connection, tables, step)
        finally:
            _release_lock(connection, schema)
    if plan.steps:
        log.info(
            "migrated Postgres schema %r from version %s to %s",
            schema,
            plan.found,
            SCHEMA_VERSION,
        )
    return plan


def _take_lock(connection: Connection, schema: str) -> None:
    """Hold the schema's advisory lock on this session, polling for it (see the
    module docstring for why a blocking wait would deadlock)."""
    pause, longest = LOCK_POLL_SECONDS
    waited = False
    key = {"key": _lock_key(schema)}
    while not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        if not waited:
            log.info("waiting for another process to migrate Postgres schema %r", schema)
            waited = True
        time.sleep(pause)
        pause = min(pause * 2, longest)


def _release_lock(connection: Connection, schema: str) -> None:
    """Give the lock back; a connection that cannot is discarded (which ends its
    session, and the lock with it), never returned to the pool holding it. Never
    raises: the migration's own outcome is what the caller must see."""
    try:
        connection.execute(text("RESET statement_timeout"))
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _lock_key(schema)})
    except sa_exc.DBAPIError as error:
        log.warning("discarding the migration connection of %r: %s", schema, error.orig)
        connection.invalidate()


@contextmanager
def _transaction(connection: Connection) -> Iterator[None]:
    """A READ COMMITTED transaction on the migration's connection, which otherwise
    runs in autocommit mode (for ``CREATE INDEX CONCURRENTLY``)."""
    connection.commit()  # ends SQLAlchemy's autobegun no-op of autocommit mode
    connection.execution_options(isolation_level="READ COMMITTED")
    try:
        with connection.begin():
            yield
    finally:
        connection.execution_options(isolation_level="AUTOCOMMIT")


def _create(connection: Connection, tables: Tables) -> None:
    """A new store at ``SCHEMA_VERSION``, in one transaction."""
    schema = _schema(tables)
    with _transaction(connection):
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}")
        tables.metadata.create_all(connection, checkfirst=True)
        for ddl in _trigger_ddl(schema):
            connection.exec_driver_sql(ddl)
        connection.execute(
            tables.schema_version.insert().values(
                id=1, version=SCHEMA_VERSION, updated_at=func.now()
            )
        )
        connection.execute(history_row(tables, SCHEMA_VERSION, CREATED_SUMMARY, func.now()))


def _apply_step(connection: Connection, tables: Tables, step: Migration) -> None:
    """One step: its new columns and online indexes, then its DDL, history row and version in one
    transaction."""
    schema = _schema(tables)
    q = quote_ident(schema)
    try:
        for statement in step.postgresql_columns:
            connection.exec_driver_sql(statement.replace("{schema}", q))
        for index in step.postgresql_indexes:
            _build_online(connection, schema, index)
        with _transaction(connection):
            for statement in step.postgresql_sql(q):
                connection.exec_driver_sql(statement)
            connection.execute(history_row(tables, step.version, step.summary, func.now()))
            connection.execute(
                tables.schema_version.update()
                .where(tables.schema_version.c.id == 1)
                .values(version=step.version, updated_at=func.now())
            )
    except sa_exc.DBAPIError as error:
        raise WorldError(
            f"migrating Postgres schema {schema!r} to version {step.version} failed "
            f"(it stays at version {step.version - 1}): {error.orig}"
        ) from error


def _build_online(connection: Connection, schema: str, index: OnlineIndex) -> None:
    """Build ``index`` without blocking writes; first drop what an interrupted build
    of it left behind (an index marked invalid)."""
    valid = connection.execute(
        text(
            "SELECT i.indisvalid FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = :schema AND c.relname = :name"
        ),
        {"schema": schema, "name": index.name},
    ).scalar_one_or_none()
    q = quote_ident(schema)
    if valid is False:
        connection.exec_driver_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {q}.{index.name}")
    connection.exec_driver_sql(index.create_sql(q))


def drop_schema(engine: Engine, schema: str) -> None:
    """Drop the whole Postgres schema and everything in it (tests, resets)."""
    with engine.connect() as connection:
        connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
