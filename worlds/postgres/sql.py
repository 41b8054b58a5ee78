"""Qualified table names and the column lists shared by the Postgres world's modules.

Hot statements are plain SQL strings sent with ``exec_driver_sql`` (psycopg's
``%(name)s`` parameters): nothing to compile per call, and psycopg prepares a
statement on the server once it has seen it a few times.
"""

from __future__ import annotations

from dataclasses import dataclass

from wfkit.worlds.postgres.schema import notify_channels, quote_ident

__all__ = ["TableNames"]

EVENT_COLUMNS = (
    ("event_id", "text"),
    ("run_id", "text"),
    ("event_type", "text"),
    ("correlation_id", "text"),
    ("data", "text"),
    ("created_at", "timestamptz"),
    ("spec_version", "int"),
)
RUN_COLUMNS = (
    ("run_id", "text"),
    ("workflow_name", "text"),
    ("status", "text"),
    ("input", "text"),
    ("output", "text"),
    ("error", "text"),
    ("deployment_id", "text"),
    ("execution_context", "text"),
    ("spec_version", "int"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
)
STEP_COLUMNS = (
    ("run_id", "text"),
    ("step_id", "text"),
    ("step_name", "text"),
    ("status", "text"),
    ("input", "text"),
    ("output", "text"),
    ("error", "text"),
    ("attempt", "int"),
    ("retry_after", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("started_at", "timestamptz"),
    ("completed_at", "timestamptz"),
)
HOOK_COLUMNS = (
    ("hook_id", "text"),
    ("run_id", "text"),
    ("token", "text"),
    ("status", "text"),
    ("metadata", "text"),
    ("is_webhook", "boolean"),
    ("respond_with", "text"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
)
WAIT_COLUMNS = (
    ("run_id", "text"),
    ("wait_id", "text"),
    ("status", "text"),
    ("resume_at", "timestamptz"),
    ("created_at", "timestamptz"),
    ("updated_at", "timestamptz"),
    ("completed_at", "timestamptz"),
)
MESSAGE_COLUMNS = (
    ("message_id", "text"),
    ("queue", "text"),
    ("payload", "text"),
    ("idempotency_key", "text"),
    ("run_id", "text"),
    ("delay", "float8"),
)


@dataclass(frozen=True)
class TableNames:
    """Schema-qualified, quoted table names of one world, and its NOTIFY channels."""

    schema: str
    events: str
    runs: str
    steps: str
    hooks: str
    waits: str
    queue_messages: str
    streams: str
    stream_chunks: str
    queue_channel: str
    stream_channel: str

    @classmethod
    def for_schema(cls, schema: str) -> TableNames:
        """The names inside Postgres schema ``schema``."""
        q = quote_ident(schema)
        queue_channel, stream_channel = notify_channels(schema)
        return cls(
            schema=schema,
            events=f"{q}.events",
            runs=f"{q}.runs",
            steps=f"{q}.steps",
            hooks=f"{q}.hooks",
            waits=f"{q}.waits",
            queue_messages=f"{q}.queue_messages",
            streams=f"{q}.streams",
            stream_chunks=f"{q}.stream_chunks",
            queue_channel=queue_channel,
            stream_channel=stream_channel,
        )
