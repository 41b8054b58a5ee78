"""The Postgres world's tables, created and upgraded by the world itself.

Everything lives in one Postgres schema (``wfkit`` by default) so several worlds
(and test sessions) can share a database. ``schema_version`` holds one row with
the layout version; ``ensure_schema`` creates or upgrades under an advisory lock
so concurrent processes do not race, and refuses a store written by a newer
wfkit (``SchemaVersionError``).

Tables::

    events          append-only log: seq (bigint identity, PK), event_id (unique),
                    run_id, event_type, correlation_id, data (JSON TEXT),
                    created_at, spec_version; partial UNIQUE
                    (run_id, event_type, coalesce(correlation_id, '')) for the
                    creation events, so a duplicate creation is impossible
    runs            one row per run (materialized), FOR UPDATE-locked by writers;
                    ``last_event_id`` is the log's tail, read with the lock
    steps           PK (run_id, step_id), seq for creation order
    hooks           PK hook_id; partial UNIQUE (token) WHERE status = 'active'
    waits           PK (run_id, wait_id)
    queue_messages  PK message_id; partial UNIQUE (idempotency_key); visible_at
    streams         PK (run_id, name): next_index and the close marker
    stream_chunks   PK (run_id, name, idx): data bytea

Data columns are JSON in TEXT, never JSONB (ARCHITECTURE.md §2): ``json.dumps``
escapes NUL as ``\\u0000``, which TEXT stores and JSONB refuses.

Two triggers send the LISTEN/NOTIFY wake-ups from inside the writing transaction:
a statement-level one on ``queue_messages`` inserts (channel ``queue_channel``)
and a row-level one on ``streams`` (channel ``stream_channel``, payload the JSON
array ``[run_id, name]``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.engine import Connection, Engine

from wfkit.worlds.base import SchemaVersionError

__all__ = ["SCHEMA_VERSION", "Tables", "drop_schema", "ensure_schema", "notify_channels"]

SCHEMA_VERSION = 1
"""The layout this code writes; bump it and add a migration to ``_MIGRATIONS``."""

CREATION_EVENTS = ("run_created", "step_created", "hook_created", "hook_conflict", "wait_created")


def _ts(name: str, *, nullable: bool = False) -> Column[object]:
    return Column(name, DateTime(timezone=True), nullable=nullable)


@dataclass(frozen=True)
class Tables:
    """The SQLAlchemy Core tables of one schema."""

    schema: str
    metadata: MetaData
    schema_version: Table
    events: Table
    runs: Table
    steps: Table
    hooks: Table
    waits: Table
    queue_messages: Table
    streams: Table
    stream_chunks: Table

    @classmethod
    def build(cls, schema: str) -> Tables:
        """Define every table of the world inside Postgres schema ``schema``."""
        md = MetaData(schema=schema)
        schema_version = Table(
            "schema_version",
            md,
            Column("id", Integer, primary_key=True),
            Column("version", Integer, nullable=False),
            _ts("updated_at"),
        )
        events = Table(
            "events",
            md,
            Column("seq", BigInteger, Identity(), primary_key=True),
            Column("event_id", Text, nullable=False, unique=True),
            Column("run_id", Text, nullable=False),
            Column("event_type", Text, nullable=False),
            Column("correlation_id", Text),
            Column("data", Text, nullable=False),
            _ts("created_at"),
            Column("spec_version", Integer, nullable=False),
        )
        Index("events_run_seq", events.c.run_id, events.c.seq)
        Index(
            "events_creation_uq",
            events.c.run_id,
            events.c.event_type,
            func.coalesce(events.c.correlation_id, ""),
            unique=True,
            postgresql_where=events.c.event_type.in_(CREATION_EVENTS),
        )
        runs = Table(
            "runs",
            md,
            Column("run_id", Text, primary_key=True),
            Column("workflow_name", Text, nullable=False),
            Column("status", Text, nullable=False),
            Column("input", Text),
            Column("output", Text),
            Column("error", Text),
            Column("deployment_id", Text, nullable=False),
            Column("execution_context", Text, nullable=False),
            Column("spec_version", Integer, nullable=False),
            _ts("created_at"),
            _ts("updated_at"),
            _ts("started_at", nullable=True),
            _ts("completed_at", nullable=True),
            Column("last_event_id", Text),
        )
        Index("runs_status", runs.c.status)
        Index("runs_workflow_name", runs.c.workflow_name)
        steps = Table(
            "steps",
            md,
            Column("run_id", Text, nullable=False),
            Column("step_id", Text, nullable=False),
            Column("seq", BigInteger, Identity(), nullable=False),
            Column("step_name", Text, nullable=False),
            Column("status", Text, nullable=False),
            Column("input", Text),
            Column("output", Text),
            Column("error", Text),
            Column("attempt", Integer, nullable=False),
            _ts("retry_after", nullable=True),
            _ts("created_at"),
            _ts("updated_at"),
            _ts("started_at", nullable=True),
            _ts("completed_at", nullable=True),
            PrimaryKeyConstraint("run_id", "step_id"),
        )
        hooks = Table(
            "hooks",
            md,
            Column("hook_id", Text, primary_key=True),
            Column("run_id", Text, nullable=False),
            Column("seq", BigInteger, Identity(), nullable=False),
            Column("token", Text, nullable=False),
            Column("status", Text, nullable=False),
            Column("metadata", Text),
            Column("is_webhook", Boolean, nullable=False),
            Column("respond_with", Text),
            _ts("created_at"),
            _ts("updated_at"),
        )
        Index("hooks_run", hooks.c.run_id, hooks.c.seq)
        Index(
            "hooks_active_token_uq",
            hooks.c.token,
            unique=True,
            postgresql_where=hooks.c.status == "active",
        )
        waits = Table(
            "waits",
            md,
            Column("run_id", Text, nullable=False),
            Column("wait_id", Text, nullable=False),
            Column("seq", BigInteger, Identity(), nullable=False),
            Column("status", Text, nullable=False),
            _ts("resume_at"),
            _ts("created_at"),
            _ts("updated_at"),
            _ts("completed_at", nullable=True),
            PrimaryKeyConstraint("run_id", "wait_id"),
        )
        queue_messages = Table(
            "queue_messages",
            md,
            Column("message_id", Text, primary_key=True),
            Column("seq", BigInteger, Identity(), nullable=False),
            Column("queue", Text, nullable=False),
            Column("payload", Text, nullable=False),
            Column("attempt", Integer, nullable=False),
            Column("idempotency_key", Text),
            Column("run_id", Text),
            _ts("created_at"),
            _ts("visible_at"),
        )
        Index("queue_messages_visible", queue_messages.c.visible_at, queue_messages.c.seq)
        Index("queue_messages_run", queue_messages.c.run_id)
        Index(
            "queue_messages_key_uq",
            queue_messages.c.idempotency_key,
            unique=True,
            postgresql_where=queue_messages.c.idempotency_key.is_not(None),
        )
        streams = Table(
            "streams",
            md,
            Column("run_id", Text, nullable=False),
            Column("name", Text, nullable=False),
            Column("next_index", Integer, nullable=False),
            Column("closed", Boolean, nullable=False),
            _ts("created_at"),
            _ts("updated_at"),
            PrimaryKeyConstraint("run_id", "name"),
        )
        stream_chunks = Table(
            "stream_chunks",
            md,
            Column("run_id", Text, nullable=False),
            Column("name", Text, nullable=False),
            Column("idx", Integer, nullable=False),
            Column("data", LargeBinary, nullable=False),
            _ts("created_at"),
            PrimaryKeyConstraint("run_id", "name", "idx"),
        )
        return cls(
            schema=schema,
            metadata=md,
            schema_version=schema_version,
            events=events,
            runs=runs,
            steps=steps,
            hooks=hooks,
            waits=waits,
            queue_messages=queue_messages,
            streams=streams,
            stream_chunks=stream_chunks,
        )


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def notify_channels(schema: str) -> tuple[str, str]:
    """The (queue, stream) NOTIFY channel names of a schema: short, safe identifiers."""
    digest = hashlib.sha1(schema.encode()).hexdigest()[:24]
    return f"wfkit_q_{digest}", f"wfkit_s_{digest}"


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
    for ddl in _trigger_ddl(tables.schema):
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
    table = f"{quote_ident(tables.schema)}.schema_version"
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
    with engine.connect() as connection:
        current = _stored_version(connection, tables)
    if current is not None:
        _refuse_newer(tables.schema, current)
        if current == SCHEMA_VERSION:
            return current
    with (
        engine.connect().execution_options(isolation_level="READ COMMITTED") as connection,
        connection.begin(),
    ):
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(tables.schema)}
        )
        connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(tables.schema)}")
        tables.schema_version.create(connection, checkfirst=True)
        current = _stored_version(connection, tables) or 0
        _refuse_newer(tables.schema, current)
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
