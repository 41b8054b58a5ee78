"""What the local world reads to plan a write: the ``RecordLoader``
the lifecycle rules check against, and the timestamp texts of one batch.

``TransactionLoader.prefetch`` reads everything a batch of step events checks
(the run's status, its last event id and the steps) in one query; the other
lookups are the shared statements (``wfkit.worlds.sql.RecordStatements``),
compiled for SQLite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from wfkit.worlds.base import Event, EventRequest, EventType, Hook, Run, RunStatus, Step, Wait
from wfkit.worlds.local.db import PreparedSql
from wfkit.worlds.local.sql import CODECS, LocalSql, prefetch_sql
from wfkit.worlds.sql import decode_events

__all__ = ["Timestamps", "TransactionLoader"]


class Timestamps:
    """ISO 8601 text of the datetimes of one batch, each formatted once: every
    event and record of a batch shares one ``created_at`` object, and the loaded
    records' times keep the text they were read from (``isoformat`` is a large
    part of a batch's CPU)."""

    __slots__ = ("_last", "_last_text", "_texts")

    def __init__(self) -> None:
        # id -> (the datetime, kept alive so that its id stays its own; its text)
        self._texts: dict[int, tuple[datetime, str]] = {}
        # The batch's own time is asked for most: the last answer, checked first.
        self._last: datetime | None = None
        self._last_text = ""

    def seed(self, value: datetime | None, text: str | None) -> None:
        """Remember that ``value`` was parsed from ``text``."""
        if value is not None and text is not None:
            self._texts[id(value)] = (value, text)

    def text(self, value: datetime | None) -> str | None:
        """``value.isoformat()`` (None for None)."""
        if value is self._last:
            return self._last_text if value is not None else None
        if value is None:
            return None
        known = self._texts.get(id(value))
        if known is None:
            known = self._texts[id(value)] = (value, value.isoformat())
        self._last, self._last_text = value, known[1]
        return known[1]


class TransactionLoader:
    """``wfkit.worlds.base.RecordLoader`` over one open transaction: a write's, or
    the read in which ``events.create_batches`` plans a group before the lock."""

    def __init__(self, cursor: sqlite3.Cursor, timestamps: Timestamps) -> None:
        self.cursor = cursor
        self.timestamps = timestamps
        self.steps: dict[str, Step | None] = {}
        self.runs: dict[str, Run | None] = {}  # full records read, by run id
        self.status: tuple[RunStatus | None] | None = None  # (status,) once read
        self.last_event_id: tuple[str | None] | None = None  # (id,) once read

    def _one(self, sql: PreparedSql, **values: Any) -> Any:
        return self.cursor.execute(sql.sql, sql.args(values)).fetchone()

    def prefetch(self, run_id: str, requests: Sequence[EventRequest], with_last: bool) -> None:
        """Read what the requests will ask for in one query: the run's status, its
        last event id (``with_last``) and every step the requests name."""
        step_ids = list(
            dict.fromkeys(
                [
                    r.correlation_id
                    for r in requests
                    if r.correlation_id and r.event_type.startswith("step_")
                ]
            )
        )
        if not step_ids and not with_last:
            return  # nothing worth a round trip: the loads below ask for what is needed
        sql, fixed = prefetch_sql(len(step_ids), with_last)
        rows = self.cursor.execute(sql, (*fixed, *step_ids, run_id)).fetchall()
        if not rows:
            return  # no such run: the loads below read each thing on their own
        first = rows[0]
        self.status = (cast(RunStatus, first["run_status"]),)
        if with_last:
            self.last_event_id = (first["last_event_id"],)
        if step_ids:
            self.steps = dict.fromkeys(step_ids)
            for row in rows:
                if row["step_id"] is not None:
                    self.steps[row["step_id"]] = self._step(row)

    def _step(self, row: sqlite3.Row) -> Step:
        step = CODECS.step.from_row(row)
        seed = self.timestamps.seed
        seed(step.started_at, row["started_at"])
        seed(step.retry_after, row["retry_after"])
        return step

    def load_run(self, run_id: str) -> Run | None:
        """The run's full record, read once per loader (the tail cache asks again
        for the record the plan read)."""
        if run_id not in self.runs:
            row = self._one(LocalSql.select_run, run_id=run_id)
            self.runs[run_id] = None if row is None else CODECS.run.from_row(row)
        return self.runs[run_id]

    def load_run_status(self, run_id: str) -> RunStatus | None:
        if self.status is not None:
            return self.status[0]
        row = self._one(LocalSql.select_run_status, run_id=run_id)
        return None if row is None else cast(RunStatus, row[0])

    def load_step(self, run_id: str, step_id: str) -> Step | None:
        if step_id in self.steps:
            return self.steps[step_id]
        row = self._one(LocalSql.select_step, run_id=run_id, step_id=step_id)
        return None if row is None else self._step(row)

    def load_hook(self, hook_id: str) -> Hook | None:
        row = self._one(LocalSql.select_hook, hook_id=hook_id)
        return None if row is None else CODECS.hook.from_row(row)

    def load_active_hook_by_token(self, token: str) -> Hook | None:
        row = self._one(LocalSql.select_active_token, token=token)
        return None if row is None else CODECS.hook.from_row(row)

    def load_wait(self, run_id: str, wait_id: str) -> Wait | None:
        row = self._one(LocalSql.select_wait, run_id=run_id, wait_id=wait_id)
        return None if row is None else CODECS.wait.from_row(row)

    def load_waits_of_run(self, run_id: str) -> list[Wait]:
        sql = LocalSql.select_waits_of_run
        rows = self.cursor.execute(sql.sql, sql.args({"run_id": run_id})).fetchall()
        return [CODECS.wait.from_row(row) for row in rows]

    def load_latest_event(self, run_id: str, event_type: EventType) -> Event | None:
        row = self._one(LocalSql.select_latest_of_type, run_id=run_id, event_type=event_type)
        return None if row is None else decode_events(CODECS.event, [row])[0]

    def load_last_event_id(self, run_id: str) -> str | None:
        if self.last_event_id is not None:
            return self.last_event_id[0]
        row = self._one(LocalSql.select_last_event_id, run_id=run_id)
        return None if row is None else str(row[0])
