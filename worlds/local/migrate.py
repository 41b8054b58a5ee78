"""The local world's SQLite schema, its version check and the row codecs.

Records are columns (not a JSON blob) so listing by status or token is an index
lookup; user values are JSON text (``ensure_ascii`` escapes NUL). Partial
unique indexes back the lifecycle rules: one creation event per entity, one
active hook per token.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    select,
    text,
)

from wfkit.worlds.base import Event, Hook, Run, SchemaVersionError, Step, Wait
from wfkit.worlds.local.db import translated_errors

SCHEMA_VERSION = 1
"""Bump when the tables change; an older wfkit refuses a newer file."""

metadata = MetaData()

# ORs, not ``event_type IN (...)``: SQLite tests an IN list of more than two
# constants through a temporary b-tree that it builds on every INSERT into
# events, which cost a third of a batch's inserts. Files made with the IN form
# are moved to this one by ``ensure_schema`` (same index, same rows).
_CREATION_EVENTS = " OR ".join(
    f"event_type = '{kind}'"
    for kind in ("step_created", "hook_created", "hook_conflict", "wait_created")
)

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
        sqlite_where=text(_CREATION_EVENTS),
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
            stored = conn.execute(select(schema_version_table.c.version)).scalar_one_or_none()
        if stored is not None and stored > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{path} uses schema version {stored}, but this wfkit understands up to "
                f"{SCHEMA_VERSION}: upgrade wfkit, or point WFKIT_WORLD at another database"
            )
        metadata.create_all(conn)
        if stored is None:
            conn.execute(schema_version_table.insert().values(id=1, version=SCHEMA_VERSION))
        _update_index_forms(conn)


def _update_index_forms(conn: Connection) -> None:
    """Recreate indexes whose stored definition is an older, slower spelling of
    the current one (the same index: no schema version change)."""
    for table in metadata.sorted_tables:
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


# --- row codecs --------------------------------------------------------------

RowLike = Any
"""A ``sqlite3.Row`` or a SQLAlchemy ``RowMapping``: anything indexable by column name."""


# What ``json.dumps(value, separators=(",", ":"))`` does, without building an
# encoder per call.
_ENCODE = json.JSONEncoder(separators=(",", ":")).encode


def dumps(value: Any) -> str:
    """JSON text of a user value (ASCII-only, so NUL and friends are escaped)."""
    if value is None:
        return "null"
    return _ENCODE(value)


def loads(raw: str | None) -> Any:
    """The value of JSON text (None for SQL NULL)."""
    if raw is None or raw == "null":
        return None
    return json.loads(raw)


def ts(value: datetime | None) -> str | None:
    """ISO 8601 text of an optional datetime."""
    return None if value is None else value.isoformat()


def parse_ts(raw: str | None) -> datetime | None:
    """The datetime of optional ISO 8601 text."""
    return None if raw is None else datetime.fromisoformat(raw)


def event_row(event: Event, data_json: str | None = None) -> dict[str, Any]:
    """The events row of an event (``data_json``: its data already encoded)."""
    return {
        "event_id": event.event_id,
        "run_id": event.run_id,
        "event_type": event.event_type,
        "correlation_id": event.correlation_id,
        "data": dumps(event.data) if data_json is None else data_json,
        "created_at": event.created_at.isoformat(),
        "spec_version": event.spec_version,
    }


def event_from_row(row: RowLike) -> Event:
    """The Event of an events row."""
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
    """The runs row of a run."""
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
    """The Run of a runs row."""
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
    """The steps row of a step."""
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
    """The Step of a steps row."""
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
    """The hooks row of a hook."""
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
    """The Hook of a hooks row."""
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
    """The waits row of a wait."""
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
    """The Wait of a waits row."""
    return Wait(
        run_id=row["run_id"],
        wait_id=row["wait_id"],
        status=row["status"],
        resume_at=datetime.fromisoformat(row["resume_at"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        completed_at=parse_ts(row["completed_at"]),
    )
