"""Writing a ``PlannedWrites`` inside the local world's write transaction.

Every row comes from the shared codecs (``wfkit.worlds.sql.RowCodec``) with the
batch's timestamp texts; events go in one multi-row INSERT, records through
``executemany`` of prepared INSERTs (new entities, so the primary keys and
partial unique indexes back the lifecycle checks) and UPDATEs of the columns a
transition may change.
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

__all__ = ["write_plan"]

R = TypeVar("R", bound=BaseModel)


def _execute(cursor: sqlite3.Cursor, sql: PreparedSql, rows: Sequence[Sequence[Any]]) -> None:
    if len(rows) == 1:
        cursor.execute(sql.sql, rows[0])
    elif rows:
        cursor.executemany(sql.sql, rows)


# The plan has each event's data as JSON text already (PlannedWrites.event_json).
_EVENT_VALUES = CODECS.event.encoder("data", timed=True)


def _insert_events(cursor: sqlite3.Cursor, plan: PlannedWrites, timestamps: Timestamps) -> None:
    text = timestamps.text
    event_json = plan.event_json
    params: list[Any] = []
    for event in plan.events:
        params += _EVENT_VALUES(event, text, event_json[event.event_id])
    width = len(CODECS.event.columns)
    chunk = MAX_ROWS_PER_INSERT * width
    for start in range(0, len(params), chunk):
        part = params[start : start + chunk]
        cursor.execute(insert_events_sql(len(part) // width), part)


def _write_records(
    cursor: sqlite3.Cursor,
    codec: RowCodec[R],
    new: Mapping[Any, R],
    changed: Mapping[Any, R],
    statements: tuple[PreparedSql, PreparedSql],
    text: EncodeTime,
) -> None:
    insert, update = statements
    if new:
        _execute(cursor, insert, [codec.values(record, text) for record in new.values()])
    if changed:
        _execute(cursor, update, [codec.update_values(record, text) for record in changed.values()])


def write_plan(
    cursor: sqlite3.Cursor, plan: PlannedWrites, timestamps: Timestamps | None = None
) -> None:
    """Write planned events and records inside the caller's transaction.

    Args:
        cursor: a cursor of the open write transaction.
        plan: what ``wfkit.worlds.base.plan_events`` planned.
        timestamps: the batch's timestamp texts (those of the records it loaded).
    """
    if timestamps is None:
        timestamps = Timestamps()
    text = timestamps.text
    if plan.events:
        _insert_events(cursor, plan, timestamps)
    sql = LocalSql
    _write_records(
        cursor, CODECS.run, plan.new_runs, plan.changed_runs, (sql.insert_run, sql.update_run), text
    )
    _write_records(
        cursor,
        CODECS.step,
        plan.new_steps,
        plan.changed_steps,
        (sql.insert_step, sql.update_step),
        text,
    )
    _write_records(
        cursor,
        CODECS.hook,
        plan.new_hooks,
        plan.changed_hooks,
        (sql.insert_hook, sql.update_hook),
        text,
    )
    _write_records(
        cursor,
        CODECS.wait,
        plan.new_waits,
        plan.changed_waits,
        (sql.insert_wait, sql.update_wait),
        text,
    )
    for run_id, at in plan.released_runs:
        params = {"k_run_id": run_id, "at": text(at)}
        for release in (sql.release_hooks, sql.release_waits):
            cursor.execute(release.sql, release.args(params))
