"""The local world's SQLite schema, engine set-up, error translation and row codecs.

Why these choices:

- WAL journal + ``synchronous=NORMAL``: readers never block the writer, and a
  commit is one append to the WAL (no fsync per commit), durable against a
  process crash, which is what a worker dies of.
- Write transactions start with ``BEGIN IMMEDIATE``: the write lock is taken
  up front, so two processes never both read, decide and then deadlock on
  upgrading (SQLite would answer ``SQLITE_BUSY`` without retrying). The driver's
  own transaction handling is off (``isolation_level = None``); a ``begin``
  event hook emits our ``BEGIN``.
- ``busy_timeout`` 30 s: writers from several processes queue instead of failing.
- Records are columns (not a JSON blob) so listing by status or token is an
  index lookup; user values are JSON text (``ensure_ascii`` escapes NUL).
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    exc,
    select,
    text,
)
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool
from sqlalchemy.sql import ClauseElement

from worlds.base import (
    EntityConflictError,
    Event,
    Hook,
    Run,
    SchemaVersionError,
    Step,
    Wait,
    WorldError,
)

SCHEMA_VERSION = 1
"""Bump when the tables change; an older wfkit refuses a newer file."""

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "wfkit_write"

metadata = MetaData()

events_table = Table(
    "events",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("event_id", Text, nullable=False, unique=True),
    Column("run_id", Text, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("correlation_id", Text),
    Column("data", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("spec_version", Integer, nullable=False),
    Index("events_by_run", "run_id", "seq"),
    # Creation events are unique per entity: a duplicate cannot be stored even
    # if a bug bypassed the lifecycle check.
    Index(
        "events_one_creation",
        "run_id",
        "correlation_id",
        "event_type",
        unique=True,
        sqlite_where=text(
            "event_type IN ('step_created', 'hook_created', 'hook_conflict', 'wait_created')"
        ),
    ),
    Index(
        "events_one_run_created",
        "run_id",
        unique=True,
        sqlite_where=text("event_type = 'run_created'"),
    ),
)

runs_table = Table(
    "runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("workflow_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("deployment_id", Text, nullable=False),
    Column("execution_context", Text, nullable=False),
    Column("spec_version", Integer, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("started_at", Text),
    Column("completed_at", Text),
    Index("runs_by_status", "status"),
    Index("runs_by_workflow", "workflow_name"),
)

steps_table = Table(
    "steps",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("step_id", Text, primary_key=True),
    Column("step_name", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("retry_after", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("started_at", Text),
    Column("completed_at", Text),
)

hooks_table = Table(
    "hooks",
    metadata,
    Column("hook_id", Text, primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("token", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("metadata", Text, nullable=False),
    Column("is_webhook", Integer, nullable=False),
    Column("respond_with", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Index("hooks_by_run", "run_id"),
    # At most one active hook per token, whatever happens above.
    Index("hooks_active_token", "token", unique=True, sqlite_where=text("status = 'active'")),
)

waits_table = Table(
    "waits",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("wait_id", Text, primary_key=True),
    Column("status", Text, nullable=False),
    Column("resume_at", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    Column("completed_at", Text),
)

queue_table = Table(
    "queue_messages",
    metadata,
    Column("seq", Integer, primary_key=True),
    Column("message_id", Text, nullable=False, unique=True),
    Column("queue", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    # Acked messages are deleted, so every stored key belongs to an unacked one.
    Column("idempotency_key", Text, unique=True),
    Column("run_id", Text),
    Column("created_at", Text, nullable=False),
    Column("visible_at", Float, nullable=False),
    Index("queue_by_visibility", "visible_at"),
    Index("queue_by_run", "run_id"),
)

streams_table = Table(
    "streams",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("next_index", Integer, nullable=False),
    Column("closed", Integer, nullable=False),
)

stream_chunks_table = Table(
    "stream_chunks",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("name", Text, primary_key=True),
    Column("chunk_index", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)

schema_version_table = Table(
    "schema_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)


def make_engine(path: Path) -> Engine:
    """One Engine for a database file: WAL, pooled connections usable from any thread,
    ``BEGIN IMMEDIATE`` for connections with the ``wfkit_write`` option."""
    engine = create_engine(
        f"sqlite:///{path}",
        poolclass=QueuePool,
        pool_size=16,
        max_overflow=-1,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn SQLAlchemy/SQLite errors into world errors, in this one place.

    A unique-constraint violation is a duplicate creation (EntityConflictError);
    any other database error is a WorldError naming the cause."""
    try:
        yield
    except exc.IntegrityError as error:
        raise EntityConflictError(f"refused by the database: {error.orig}") from error
    except sqlite3.IntegrityError as error:
        raise EntityConflictError(f"refused by the database: {error}") from error
    except exc.OperationalError as error:
        raise WorldError(f"local world database error: {error.orig}") from error
    except sqlite3.OperationalError as error:
        raise WorldError(f"local world database error: {error}") from error


_DIALECT = sqlite_dialect(paramstyle="qmark")


class PreparedSql:
    """A Core statement compiled once to SQLite SQL, for the write path.

    Writes run on the pooled DBAPI connection (see ``write_transaction``): the
    tables and statements stay SQLAlchemy Core, but each call skips Core's
    per-execution machinery, which would otherwise cost more than SQLite itself."""

    __slots__ = ("defaults", "names", "sql")

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None) -> None:
        compiled: Any = statement.compile(
            dialect=_DIALECT, column_keys=list(column_keys) if column_keys else None
        )
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.defaults = {name: compiled.binds[name].value for name in self.names}

    def args(self, values: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
        """Positional parameters from named ``values`` (literals compiled in as defaults)."""
        if not values:
            return tuple(self.defaults[name] for name in self.names)
        return tuple(values[name] if name in values else self.defaults[name] for name in self.names)


def ensure_schema(write_engine: Engine, path: Path) -> None:
    """Create the tables if missing and check the schema version.

    Raises:
        SchemaVersionError: the file was written by a newer wfkit.
    """
    with translated_errors(), write_engine.begin() as conn:
        metadata.create_all(conn)
        stored = conn.execute(select(schema_version_table.c.version)).scalar_one_or_none()
        if stored is None:
            conn.execute(schema_version_table.insert().values(id=1, version=SCHEMA_VERSION))
        elif stored > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} uses schema version {stored}, but this wfkit understands up to "
                f"{SCHEMA_VERSION}: upgrade wfkit, or point WFKIT_WORLD at another database"
            )


class ThreadConnections:
    """One DBAPI connection per thread, checked out of the Engine's pool once and
    kept: the hot paths then pay no pool checkout per transaction.

    Connections of threads that have ended go back to the pool when the next
    thread checks one out; ``close`` returns them all."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._held: list[tuple[threading.Thread, Any]] = []
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=functools.partial(_reset_in_child, weakref.ref(self)))

    def get(self) -> sqlite3.Connection:
        """This thread's connection (autocommit mode: we issue BEGIN ourselves)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None or self._pid != os.getpid():
            connection = self._check_out()
        return connection

    def reset_after_fork(self) -> None:
        """Forget the parent's connections (a forked child must never use them)."""
        if self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._local = threading.local()
            self._lock = threading.Lock()
            self._held = []
            self._pid = os.getpid()

    def _check_out(self) -> sqlite3.Connection:
        self.reset_after_fork()
        pooled = self._engine.raw_connection()
        with self._lock:
            still_held = []
            for thread, other in self._held:
                if thread.is_alive():
                    still_held.append((thread, other))
                else:
                    other.close()
            still_held.append((threading.current_thread(), pooled))
            self._held = still_held
        connection: sqlite3.Connection = pooled.driver_connection  # type: ignore[assignment]
        self._local.connection = connection
        return connection

    def close(self) -> None:
        """Return every held connection to the pool."""
        with self._lock:
            held, self._held = self._held, []
        for _thread, pooled in held:
            pooled.close()
        self._local = threading.local()


def _reset_in_child(ref: weakref.ref[ThreadConnections]) -> None:
    connections = ref()
    if connections is not None:
        connections.reset_after_fork()


@contextmanager
def write_transaction(connections: ThreadConnections) -> Iterator[sqlite3.Cursor]:
    """A ``BEGIN IMMEDIATE`` transaction on this thread's connection, as a DBAPI
    cursor whose rows are ``sqlite3.Row`` (mapping access). Commits on success,
    rolls back on any error; errors are translated by ``translated_errors``."""
    with translated_errors():
        dbapi = connections.get()
        cursor = dbapi.cursor()
        cursor.row_factory = sqlite3.Row
        try:
            cursor.execute("BEGIN IMMEDIATE")
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            if dbapi.in_transaction:
                dbapi.execute("ROLLBACK")
            raise
        finally:
            cursor.close()


def fetch_all(connections: ThreadConnections, sql: PreparedSql, **values: Any) -> list[Any]:
    """Run one prepared SELECT outside any transaction (autocommit: the statement
    reads one consistent snapshot); returns its ``sqlite3.Row`` rows."""
    with translated_errors():
        cursor = connections.get().cursor()
        cursor.row_factory = sqlite3.Row
        try:
            return cursor.execute(sql.sql, sql.args(values)).fetchall()
        finally:
            cursor.close()


# --- row codecs --------------------------------------------------------------

RowLike = Any
"""A ``sqlite3.Row`` or a SQLAlchemy ``RowMapping``: anything indexable by column name."""


def dumps(value: Any) -> str:
    """JSON text of a user value (ASCII-only, so NUL and friends are escaped)."""
    return json.dumps(value, separators=(",", ":"))


def loads(raw: str | None) -> Any:
    return None if raw is None else json.loads(raw)


def ts(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def parse_ts(raw: str | None) -> datetime | None:
    return None if raw is None else datetime.fromisoformat(raw)


def event_row(event: Event) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "run_id": event.run_id,
        "event_type": event.event_type,
        "correlation_id": event.correlation_id,
        "data": dumps(event.data),
        "created_at": event.created_at.isoformat(),
        "spec_version": event.spec_version,
    }


def event_from_row(row: RowLike) -> Event:
    return Event(
        event_id=row["event_id"],
        run_id=row["run_id"],
        event_type=row["event_type"],
        correlation_id=row["correlation_id"],
        data=json.loads(row["data"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        spec_version=row["spec_version"],
    )


def run_row(run: Run) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "workflow_name": run.workflow_name,
        "status": run.status,
        "input": dumps(run.input),
        "output": dumps(run.output),
        "error": dumps(run.error),
        "deployment_id": run.deployment_id,
        "execution_context": dumps(run.execution_context),
        "spec_version": run.spec_version,
        "created_at": run.created_at.isoformat(),
        "updated_at": run.updated_at.isoformat(),
        "started_at": ts(run.started_at),
        "completed_at": ts(run.completed_at),
    }


def run_from_row(row: RowLike) -> Run:
    return Run(
        run_id=row["run_id"],
        workflow_name=row["workflow_name"],
        status=row["status"],
        input=loads(row["input"]),
        output=loads(row["output"]),
        error=loads(row["error"]),
        deployment_id=row["deployment_id"],
        execution_context=loads(row["execution_context"]),
        spec_version=row["spec_version"],
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        started_at=parse_ts(row["started_at"]),
        completed_at=parse_ts(row["completed_at"]),
    )


def step_row(step: Step) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "step_id": step.step_id,
        "step_name": step.step_name,
        "status": step.status,
        "input": dumps(step.input),
        "output": dumps(step.output),
        "error": dumps(step.error),
        "attempt": step.attempt,
        "retry_after": ts(step.retry_after),
        "created_at": step.created_at.isoformat(),
        "updated_at": step.updated_at.isoformat(),
        "started_at": ts(step.started_at),
        "completed_at": ts(step.completed_at),
    }


def step_from_row(row: RowLike) -> Step:
    return Step(
        run_id=row["run_id"],
        step_id=row["step_id"],
        step_name=row["step_name"],
        status=row["status"],
        input=loads(row["input"]),
        output=loads(row["output"]),
        error=loads(row["error"]),
        attempt=row["attempt"],
        retry_after=parse_ts(row["retry_after"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        started_at=parse_ts(row["started_at"]),
        completed_at=parse_ts(row["completed_at"]),
    )


def hook_row(hook: Hook) -> dict[str, Any]:
    return {
        "hook_id": hook.hook_id,
        "run_id": hook.run_id,
        "token": hook.token,
        "status": hook.status,
        "metadata": dumps(hook.metadata),
        "is_webhook": int(hook.is_webhook),
        "respond_with": dumps(hook.respond_with),
        "created_at": hook.created_at.isoformat(),
        "updated_at": hook.updated_at.isoformat(),
    }


def hook_from_row(row: RowLike) -> Hook:
    return Hook(
        run_id=row["run_id"],
        hook_id=row["hook_id"],
        token=row["token"],
        status=row["status"],
        metadata=loads(row["metadata"]),
        is_webhook=bool(row["is_webhook"]),
        respond_with=loads(row["respond_with"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


def wait_row(wait: Wait) -> dict[str, Any]:
    return {
        "run_id": wait.run_id,
        "wait_id": wait.wait_id,
        "status": wait.status,
        "resume_at": wait.resume_at.isoformat(),
        "created_at": wait.created_at.isoformat(),
        "updated_at": wait.updated_at.isoformat(),
        "completed_at": ts(wait.completed_at),
    }


def wait_from_row(row: RowLike) -> Wait:
    return Wait(
        run_id=row["run_id"],
        wait_id=row["wait_id"],
        status=row["status"],
        resume_at=datetime.fromisoformat(row["resume_at"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        completed_at=parse_ts(row["completed_at"]),
    )
