"""What the Postgres world's SQL is made of: qualified table names, the shared
codecs and statements (``wfkit.worlds.sql``) compiled for psycopg, and the
column types its hand-written statements declare.

Hot statements are plain SQL strings sent with psycopg's ``%(name)s``
parameters: nothing to compile per call, and psycopg prepares a statement on
the server once it has seen it a few times. Core statements are compiled once,
by ``compile_statement``, into the same form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement

from wfkit.worlds.sql import Codecs, build_tables

__all__ = [
    "CODECS",
    "CompiledSql",
    "TableNames",
    "column_types",
    "compile_statement",
    "notify_channels",
    "quote_ident",
]

CODECS = Codecs.build(build_tables("postgresql"))
"""The record codecs (they depend on the columns, not on the schema)."""

# The plain dialect, not psycopg's: that one appends ``::VARCHAR`` casts to
# every parameter.
_DIALECT: Dialect = PGDialect(paramstyle="pyformat")  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class CompiledSql:
    """A Core statement compiled to psycopg SQL, with the values of the constants
    it compiled into parameters (``status = 'active'`` becomes ``%(status_1)s``)."""

    sql: str
    constants: Mapping[str, Any]

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of one execution: the constants and ``values``."""
        return {**self.constants, **values}


def compile_statement(statement: ClauseElement) -> CompiledSql:
    """Compile a Core statement for psycopg (``%(name)s`` parameters, no casts)."""
    compiled: Any = statement.compile(dialect=_DIALECT)  # SQLCompiler: ``binds`` by name
    constants = {
        name: bind.value for name, bind in compiled.binds.items() if bind.value is not None
    }
    return CompiledSql(str(compiled), constants)


def column_types(table: Table, names: Sequence[str]) -> list[tuple[str, str]]:
    """``(column, SQL type)`` of ``names``: what ``json_to_recordset … AS x(…)``
    declares so that the server types each value."""
    return [(name, table.c[name].type.compile(dialect=_DIALECT)) for name in names]


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (double quotes, embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def notify_channels(schema: str) -> tuple[str, str]:
    """The (queue, stream) NOTIFY channel names of a schema: short, safe identifiers."""
    digest = hashlib.sha1(schema.encode()).hexdigest()[:24]
    return f"wfkit_q_{digest}", f"wfkit_s_{digest}"


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
    schedules: str
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
            schedules=f"{q}.schedules",
            queue_channel=queue_channel,
            stream_channel=stream_channel,
        )

    def all_tables(self) -> tuple[str, ...]:
        """Every table holding world data (not the schema version)."""
        return (
            self.events,
            self.runs,
            self.steps,
            self.hooks,
            self.waits,
            self.queue_messages,
            self.streams,
            self.stream_chunks,
            self.schedules,
        )
