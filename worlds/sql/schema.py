"""The stored layout of the SQL worlds, declared once: tables, indexes and version.

This is the one place where the SQL worlds' DDL and its version live. Each
table is a list of ``Col``: a name, a ``Kind`` (what the column holds) and
flags. ``build_tables`` turns the list into SQLAlchemy Core tables for one
database, and ``wfkit.worlds.sql.codecs`` derives the row ⇄ record
conversions from the same columns, so a column is written down once for
SQLite and Postgres, for the DDL, the parameters and the codecs alike.

What the two databases really store differently is the ``Kind`` mapping below
(SQLite has no timestamp or boolean type; Postgres has identity columns) and a
few columns marked ``only=`` one database. ``snapshots/worlds/`` shows what a
new store gets, and ``tests/worlds/test_stored_layout.py`` holds both worlds to
it. Stores made by an earlier version are migrated to it in place
(``wfkit.worlds.sql.migrations``); a migrated store has the same tables, columns,
types and indexes as a new one, with two differences nothing depends on: a
SQLite file made before this declaration lists ``queue_messages.seq`` before
``message_id``, and a column added by a migration comes last (nothing reads
columns by position).

Changing the layout: edit the declaration, bump ``SCHEMA_VERSION``, and add the
step that brings a store from the previous version to the new one to
``wfkit.worlds.sql.migrations.MIGRATIONS`` (its DDL for each database; the rules
are in that module). A world refuses a store whose version is newer than
``SCHEMA_VERSION``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    DateTime,
    Float,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    func,
    literal_column,
    text,
)
from sqlalchemy.types import TypeEngine

__all__ = [
    "CREATION_EVENTS",
    "SCHEMA_VERSION",
    "Col",
    "Dialect",
    "Kind",
    "Tables",
    "build_tables",
]

SCHEMA_VERSION = 3
"""The layout this code reads and writes (both worlds). Bump it with a migration
(``wfkit.worlds.sql.migrations``); version 1 is the layout of wfkit 0.1.0."""

Dialect = Literal["sqlite", "postgresql"]
"""The databases the SQL layer serves, named as SQLAlchemy names their dialects."""

CREATION_EVENTS = ("run_created", "step_created", "hook_created", "hook_conflict", "wait_created")
"""Event types that create an entity: at most one per entity (a partial unique index)."""


class Kind(enum.Enum):
    """What a column holds; the kind decides how each database stores it."""

    TEXT = "text"
    INTEGER = "integer"
    BYTES = "bytes"
    DOCUMENT = "document"
    """A JSON object as TEXT, never NULL (event data, contexts, queue payloads)."""
    VALUE = "value"
    """A user value as JSON TEXT. None is the text ``null`` in SQLite (whose columns
    are NOT NULL) and SQL NULL in Postgres."""
    TIME = "time"
    """An instant: ISO 8601 TEXT in SQLite, ``timestamptz`` in Postgres."""
    FLAG = "flag"
    """A bool: INTEGER 0/1 in SQLite, ``boolean`` in Postgres."""
    POSITION = "position"
    """Insertion order: INTEGER in SQLite (as the primary key it is the rowid), a
    ``bigint`` identity in Postgres."""
    DUE = "due"
    """When a queue message becomes visible: REAL seconds since the epoch in SQLite
    (a receive compares numbers), ``timestamptz`` of the server's clock in Postgres."""


def _storage(kind: Kind, dialect: Dialect) -> TypeEngine[Any]:
    if kind in (Kind.TEXT, Kind.DOCUMENT, Kind.VALUE):
        return Text()
    if kind is Kind.INTEGER:
        return Integer()
    if kind is Kind.BYTES:
        return LargeBinary()
    if dialect == "sqlite":
        sqlite_types: dict[Kind, TypeEngine[Any]] = {
            Kind.TIME: Text(),
            Kind.FLAG: Integer(),
            Kind.POSITION: Integer(),
            Kind.DUE: Float(),
        }
        return sqlite_types[kind]
    postgres_types: dict[Kind, TypeEngine[Any]] = {
        Kind.TIME: DateTime(timezone=True),
        Kind.FLAG: Boolean(),
        Kind.POSITION: BigInteger(),
        Kind.DUE: DateTime(timezone=True),
    }
    return postgres_types[kind]


@dataclass(frozen=True)
class Col:
    """One column of the declaration.

    Attributes:
        name: the column name (and, for record tables, the record field it holds).
        kind: what it holds (see ``Kind``).
        nullable: whether it may be NULL (a ``Kind.VALUE`` column is nullable in
            Postgres whatever this says: None is stored as NULL there).
        key: part of the primary key; a dialect name: on that database only.
        unique: a UNIQUE constraint of its own; a dialect name: on that database only.
        mutable: a lifecycle transition may change it, so record UPDATEs write it.
        only: the column exists on this database only.
    """

    name: str
    kind: Kind
    nullable: bool = False
    key: bool | Dialect = False
    unique: bool | Dialect = False
    mutable: bool = False
    only: Dialect | None = None

    def column(self, dialect: Dialect) -> Column[Any]:
        """The SQLAlchemy column on ``dialect`` (``info`` keeps the kind and flags)."""
        args: list[Any] = []
        if self.kind is Kind.POSITION and dialect == "postgresql":
            args.append(Identity())
        nullable = self.nullable or (self.kind is Kind.VALUE and dialect == "postgresql")
        key = self.key is True or self.key == dialect
        return Column(
            self.name,
            _storage(self.kind, dialect),
            *args,
            primary_key=key,
            nullable=nullable and not key,
            unique=(self.unique is True or self.unique == dialect) or None,
            info={"kind": self.kind, "mutable": self.mutable},
        )


# --- the declaration -----------------------------------------------------------
# Column order is the stored order; ``mutable`` marks what a lifecycle transition
# may change (wfkit.worlds.base.lifecycle), which is all an UPDATE of a record writes.

_TEXT, _INT, _TIME = Kind.TEXT, Kind.INTEGER, Kind.TIME

LAYOUT: dict[str, tuple[Col, ...]] = {
    "schema_version": (
        Col("id", _INT, key=True),
        Col("version", _INT),
        Col("updated_at", _TIME, only="postgresql"),
    ),
    # One row per migration step applied to the store, and one for its creation
    # (wfkit.worlds.sql.migrations); since version 2.
    "schema_history": (
        Col("seq", Kind.POSITION, key=True),
        Col("version", _INT),
        Col("summary", _TEXT),
        Col("applied_at", _TIME),
    ),
    "events": (
        Col("seq", Kind.POSITION, key=True),
        Col("event_id", _TEXT, unique=True),
        Col("run_id", _TEXT),
        Col("event_type", _TEXT),
        Col("correlation_id", _TEXT, nullable=True),
        Col("data", Kind.DOCUMENT),
        Col("created_at", _TIME),
        Col("spec_version", _INT),
    ),
    "runs": (
        Col("run_id", _TEXT, key=True),
        Col("workflow_name", _TEXT),
        Col("status", _TEXT, mutable=True),
        Col("input", Kind.VALUE),
        Col("output", Kind.VALUE, mutable=True),
        Col("error", Kind.VALUE, mutable=True),
        Col("deployment_id", _TEXT),
        Col("execution_context", Kind.DOCUMENT),
        Col("spec_version", _INT),
        Col("created_at", _TIME),
        Col("updated_at", _TIME, mutable=True),
        Col("started_at", _TIME, nullable=True, mutable=True),
        Col("completed_at", _TIME, nullable=True, mutable=True),
        # Since version 3 (flow control, from ``run_created``): the caller's
        # idempotency key (unique), the run's deadline, its named queue, key and
        # priority; ``admitted_by`` is the worker that admitted it from its queue
        # (from ``run_started``).
        Col("idempotency_key", _TEXT, nullable=True),
        Col("deadline_at", _TIME, nullable=True),
        Col("queue_name", _TEXT, nullable=True),
        Col("queue_key", _TEXT, nullable=True),
        Col("queue_priority", _INT, nullable=True),
        Col("admitted_by", _TEXT, nullable=True, mutable=True),
        # The log's tail, read together with the run row's lock (Postgres writers
        # lock the run; SQLite has one writer at a time and reads the log itself).
        Col("last_event_id", _TEXT, nullable=True, only="postgresql"),
    ),
    "steps": (
        Col("run_id", _TEXT, key=True),
        Col("step_id", _TEXT, key=True),
        # Creation order: SQLite has it for free as the rowid.
        Col("seq", Kind.POSITION, only="postgresql"),
        Col("step_name", _TEXT),
        Col("status", _TEXT, mutable=True),
        Col("input", Kind.VALUE),
        Col("output", Kind.VALUE, mutable=True),
        Col("error", Kind.VALUE, mutable=True),
        Col("attempt", _INT, mutable=True),
        Col("retry_after", _TIME, nullable=True, mutable=True),
        Col("created_at", _TIME),
        Col("updated_at", _TIME, mutable=True),
        Col("started_at", _TIME, nullable=True, mutable=True),
        Col("completed_at", _TIME, nullable=True, mutable=True),
    ),
    "hooks": (
        Col("hook_id", _TEXT, key=True),
        Col("run_id", _TEXT),
        Col("seq", Kind.POSITION, only="postgresql"),
        Col("token", _TEXT),
        Col("status", _TEXT, mutable=True),
        Col("metadata", Kind.VALUE),
        Col("is_webhook", Kind.FLAG),
        Col("respond_with", Kind.VALUE),
        Col("created_at", _TIME),
        Col("updated_at", _TIME, mutable=True),
    ),
    "waits": (
        Col("run_id", _TEXT, key=True),
        Col("wait_id", _TEXT, key=True),
        Col("seq", Kind.POSITION, only="postgresql"),
        Col("status", _TEXT, mutable=True),
        Col("resume_at", _TIME),
        Col("created_at", _TIME),
        Col("updated_at", _TIME, mutable=True),
        Col("completed_at", _TIME, nullable=True, mutable=True),
    ),
    # Cron schedules (world-level configuration, since version 3): what to start
    # and when; each tick's run is found by its idempotency key, so ``last_tick_at``
    # only says how far the schedule has fired.
    "schedules": (
        Col("schedule_id", _TEXT, key=True),
        Col("workflow_name", _TEXT, mutable=True),
        Col("cron", _TEXT, mutable=True),
        Col("input", Kind.VALUE, mutable=True),
        Col("missed", _TEXT, mutable=True),
        Col("status", _TEXT, mutable=True),
        Col("last_tick_at", _TIME, nullable=True, mutable=True),
        Col("created_at", _TIME),
        Col("updated_at", _TIME, mutable=True),
    ),
    "queue_messages": (
        # SQLite keys messages by the rowid (its receive claims by seq); Postgres
        # by id. Acked messages are deleted, so every stored idempotency key
        # belongs to an unacked message (Postgres: a partial unique index below).
        Col("message_id", _TEXT, key="postgresql", unique="sqlite"),
        Col("seq", Kind.POSITION, key="sqlite"),
        Col("queue", _TEXT),
        Col("payload", Kind.DOCUMENT),
        Col("attempt", _INT),
        Col("idempotency_key", _TEXT, nullable=True, unique="sqlite"),
        Col("run_id", _TEXT, nullable=True),
        Col("created_at", _TIME),
        Col("visible_at", Kind.DUE),
    ),
    "streams": (
        Col("run_id", _TEXT, key=True),
        Col("name", _TEXT, key=True),
        Col("next_index", _INT),
        Col("closed", Kind.FLAG),
        Col("created_at", _TIME, only="postgresql"),
        Col("updated_at", _TIME, only="postgresql"),
    ),
    "stream_chunks": (
        Col("run_id", _TEXT, key=True),
        Col("name", _TEXT, key=True),
        # One column, named differently by the two worlds since their first release.
        Col("chunk_index", _INT, key=True, only="sqlite"),
        Col("idx", _INT, key=True, only="postgresql"),
        Col("data", Kind.BYTES),
        Col("created_at", _TIME, only="postgresql"),
    ),
}


def _sqlite_indexes(t: Tables) -> None:
    # ORs, not ``event_type IN (...)``: SQLite tests an IN list of more than two
    # constants through a temporary b-tree that it builds on every INSERT into
    # events, which cost a third of a batch's inserts. Files made with the IN
    # form are moved to this one by wfkit.worlds.local.migrate (same index, same rows).
    other_creations = " OR ".join(f"event_type = '{kind}'" for kind in CREATION_EVENTS[1:])
    e = t.events.c
    Index("events_by_run", e.run_id, e.seq)
    # Creation events are unique per entity: a duplicate cannot be stored even if
    # a bug bypassed the lifecycle check.
    Index(
        "events_one_creation",
        e.run_id,
        e.correlation_id,
        e.event_type,
        unique=True,
        sqlite_where=text(other_creations),
    )
    Index(
        "events_one_run_created",
        e.run_id,
        unique=True,
        sqlite_where=text("event_type = 'run_created'"),
    )
    Index("runs_by_status", t.runs.c.status)
    Index("runs_by_workflow", t.runs.c.workflow_name)
    # Since version 2: lists of runs newest first by status, by workflow and by
    # deployment (and status) read their index in order instead of sorting every
    # match; the deployment index also serves routing and counting by deployment.
    Index("runs_by_status_id", t.runs.c.status, t.runs.c.run_id)
    Index("runs_by_workflow_id", t.runs.c.workflow_name, t.runs.c.run_id)
    Index("runs_by_deployment", t.runs.c.deployment_id, t.runs.c.status, t.runs.c.run_id)
    Index("hooks_by_run", t.hooks.c.run_id)
    # Since version 3: one run per idempotency key; a named queue's runs by status
    # in admission order.
    Index(
        "runs_by_idempotency_key",
        t.runs.c.idempotency_key,
        unique=True,
        sqlite_where=text("idempotency_key IS NOT NULL"),
    )
    Index(
        "runs_by_queue",
        t.runs.c.queue_name,
        t.runs.c.status,
        t.runs.c.queue_priority,
        t.runs.c.run_id,
        sqlite_where=text("queue_name IS NOT NULL"),
    )
    Index(
        "runs_by_queue_start",
        t.runs.c.queue_name,
        t.runs.c.started_at,
        sqlite_where=text("queue_name IS NOT NULL"),
    )
    # At most one active hook per token, whatever happens above.
    Index(
        "hooks_active_token", t.hooks.c.token, unique=True, sqlite_where=text("status = 'active'")
    )
    Index("queue_by_visibility", t.queue_messages.c.visible_at)
    Index("queue_by_run", t.queue_messages.c.run_id)


def _postgres_indexes(t: Tables) -> None:
    e = t.events.c
    Index("events_run_seq", e.run_id, e.seq)
    Index(
        "events_creation_uq",
        e.run_id,
        e.event_type,
        func.coalesce(e.correlation_id, ""),
        unique=True,
        postgresql_where=e.event_type.in_(CREATION_EVENTS),
    )
    Index("runs_status", t.runs.c.status)
    Index("runs_workflow_name", t.runs.c.workflow_name)
    # Since version 2 (see the SQLite indexes).
    r = t.runs.c
    Index("runs_status_run_id", r.status, r.run_id)
    Index("runs_workflow_name_run_id", r.workflow_name, r.run_id)
    Index("runs_deployment_status_run_id", r.deployment_id, r.status, r.run_id)
    # Since version 3 (see the SQLite indexes).
    Index(
        "runs_idempotency_key_uq",
        r.idempotency_key,
        unique=True,
        postgresql_where=r.idempotency_key.is_not(None),
    )
    Index(
        "runs_queue_status",
        r.queue_name,
        r.status,
        r.queue_priority,
        r.run_id,
        postgresql_where=r.queue_name.is_not(None),
    )
    Index(
        "runs_queue_started",
        r.queue_name,
        r.started_at,
        postgresql_where=r.queue_name.is_not(None),
    )
    Index("hooks_run", t.hooks.c.run_id, t.hooks.c.seq)
    # The name is what wfkit.worlds.postgres.errors recognizes a token race by.
    Index(
        "hooks_active_token_uq",
        t.hooks.c.token,
        unique=True,
        postgresql_where=t.hooks.c.status == "active",
    )
    q = t.queue_messages.c
    Index("queue_messages_visible", q.visible_at, q.seq)
    Index("queue_messages_run", q.run_id)
    Index(
        "queue_messages_key_uq",
        q.idempotency_key,
        unique=True,
        postgresql_where=q.idempotency_key.is_not(None),
    )


@dataclass(frozen=True)
class Tables:
    """The Core tables of one database (``build_tables``)."""

    dialect: Dialect
    metadata: MetaData
    schema_version: Table
    schema_history: Table
    events: Table
    runs: Table
    steps: Table
    hooks: Table
    waits: Table
    schedules: Table
    queue_messages: Table
    streams: Table
    stream_chunks: Table

    def creation_order(self, table: Table) -> ColumnElement[Any]:
        """What orders ``table``'s rows by creation: its ``seq``, or SQLite's rowid."""
        if "seq" in table.c:
            return table.c.seq
        return cast(ColumnElement[Any], literal_column("rowid"))


def build_tables(dialect: Dialect, schema: str | None = None) -> Tables:
    """The tables and indexes of the declaration on ``dialect``.

    Args:
        dialect: ``"sqlite"`` or ``"postgresql"``.
        schema: the Postgres schema holding the tables (None: the default one).

    Returns:
        The tables, on a ``MetaData`` of their own (``metadata.create_all`` makes them).
    """
    metadata = MetaData(schema=schema)
    made = {
        name: Table(name, metadata, *(c.column(dialect) for c in cols if c.only in (None, dialect)))
        for name, cols in LAYOUT.items()
    }
    tables = Tables(
        dialect=dialect,
        metadata=metadata,
        schema_version=made["schema_version"],
        schema_history=made["schema_history"],
        events=made["events"],
        runs=made["runs"],
        steps=made["steps"],
        hooks=made["hooks"],
        waits=made["waits"],
        schedules=made["schedules"],
        queue_messages=made["queue_messages"],
        streams=made["streams"],
        stream_chunks=made["stream_chunks"],
    )
    if dialect == "sqlite":
        _sqlite_indexes(tables)
    else:
        _postgres_indexes(tables)
    return tables
