"""Writing a ``PlannedWrites`` inside the local world's write transaction.

Every row comes from the shared codecs (``wfkit.worlds.sql.RowCodec``) with the
batch's timestamp texts; events go in one multi-row INSERT, records through
``executemany`` of prepared INSERTs (new entities, so the primary keys and
partial unique indexes back the lifecycle checks) and UPDATEs of the columns a
transition may change. ``plan_statements`` encodes every parameter first, so a
caller may do that before it takes the write lock (``events.create_batches``)
and run them under it (``run_statements``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from wfkit.worlds.base import PlannedWrites
from wfkit.worlds.local.db import PreparedSql
from wfkit.worlds.local.loader import Timestamps
from wfkit.worlds.local.sql import CODECS, MAX_ROWS_PER_INSERT, LocalSql, insert_events_sql
from wfkit.worlds.sql import EncodeTime, RowCodec

__all__ = ["Statements", "plan_statements", "run_statements"]

R = TypeVar("R", bound=BaseModel)


Statements = list[tuple[str, list[Sequence[Any]]]]
"""SQL texts each with its parameter rows (one row: ``execute``; more: ``executemany``)."""


# The plan has each event's data as JSON text already (PlannedWrites.event_json).
_EVENT_VALUES = CODECS.event.encoder("data", timed=True)


def _insert_events(statements: Statements, plan: PlannedWrites, text: EncodeTime) -> None:
    event_json = plan.event_json
    params: list[Any] = []
    for event in plan.events:
        params += _EVENT_VALUES(event, text, event_json[event.event_id])
    width = len(CODECS.event.columns)
    chunk = MAX_ROWS_PER_INSERT * width
    for start in range(0, len(params), chunk):
        part = params[start : start + chunk]
        statements.append((insert_events_sql(len(part) // width), [part]))


def _write_records(
    statements: Statements,
    codec: RowCodec[R],
    new: Mapping[Any, R],
    changed: Mapping[Any, R],
    sql: tuple[PreparedSql, PreparedSql],
    text: EncodeTime,
) -> None:
    insert, update = sql
    if new:
        statements.append((insert.sql, [codec.values(record, text) for record in new.values()]))
    if changed:
        statements.append(
            (update.sql, [codec.update_values(record, text) for record in changed.values()])
        )


def plan_statements(plan: PlannedWrites, timestamps: Timestamps | None = None) -> Statements:
    """The statements that write a plan, their parameters encoded: what runs under
    the write lock is then SQLite's work only.

    Args:
        plan: what ``wfkit.worlds.base.plan_events`` planned.
        timestamps: the batch's timestamp texts (those of the records it loaded).
    """
    text = (timestamps or Timestamps()).text
    statements: Statements = []
    if plan.events:
        _insert_events(statements, plan, text)
    sql = LocalSql
    _write_records(
        statements,
        CODECS.run,
        plan.new_runs,
        plan.changed_runs,
        (sql.insert_run, sql.update_run),
        text,
    )
    _write_records(
        statements,
        CODECS.step,
        plan.new_steps,
        plan.changed_steps,
        (sql.insert_step, sql.update_step),
        text,
    )
    _write_records(
        statements,
        CODECS.hook,
        plan.new_hooks,
        plan.changed_hooks,
        (sql.insert_hook, sql.update_hook),
        text,
    )
    _write_records(
        statements,
        CODECS.wait,
        plan.new_waits,
        plan.changed_waits,
        (sql.insert_wait, sql.update_wait),
        text,
    )
    for run_id, at in plan.released_runs:
        params = {"k_run_id": run_id, "at": text(at)}
        for release in (sql.release_hooks, sql.release_waits):
            statements.append((release.sql, [release.args(params)]))
    return statements


def run_statements(cursor: sqlite3.Cursor, statements: Statements) -> None:
    """Run ``plan_statements``' statements inside the caller's write transaction."""
    for sql, rows in statements:
        if len(rows) == 1:
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, rows)
