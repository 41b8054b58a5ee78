"""``world.schedules`` of a SQL world, written once as Core statements.

A schedule is world-level configuration, not an event log: a row saying what to
start, on which cron, and how far it has fired (``last_tick_at``). Exactly one
run per tick does not depend on this row: each tick's run is started with an
idempotency key naming the schedule and the tick (``wfkit.runtime.flow.schedules``),
so workers racing on one tick start one run. ``advance`` only moves the row
forward, so a worker that fell behind never moves it back.

A world passes two functions: ``prepare`` for reads (as for the records) and
``prepare_write`` for one write statement run atomically on its own (SQLite: in a
``BEGIN IMMEDIATE`` transaction behind the write gate; Postgres: one autocommit
statement); both return the statement's rows (``RETURNING``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Delete, Insert, Update, bindparam, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from wfkit.worlds.base import Schedule, ScheduleNotFoundError, ScheduleStatus, utc_now
from wfkit.worlds.sql.codecs import RowCodec
from wfkit.worlds.sql.records import Prepare, Query
from wfkit.worlds.sql.schema import Tables

__all__ = ["PrepareWrite", "SqlSchedules"]

PrepareWrite = Callable[[Insert | Update | Delete], Query]
"""How a world prepares one write statement that runs atomically on its own."""

_DEFINITION = ("workflow_name", "cron", "input", "missed", "updated_at")


class SqlSchedules:
    """``world.schedules`` of a SQL world."""

    def __init__(
        self,
        tables: Tables,
        codec: RowCodec[Schedule],
        prepare: Prepare,
        prepare_write: PrepareWrite,
    ) -> None:
        table = tables.schedules
        c = table.c
        self._codec = codec
        insert = (postgresql.insert if tables.dialect == "postgresql" else sqlite.insert)(table)
        self._put = prepare_write(
            insert.values({name: bindparam(name) for name in codec.columns})
            .on_conflict_do_update(
                index_elements=[c.schedule_id],
                set_={name: insert.excluded[name] for name in _DEFINITION},
            )
            .returning(*table.c)
        )
        self._get = prepare(select(table).where(c.schedule_id == bindparam("schedule_id")))
        self._list = prepare(select(table).order_by(c.schedule_id))
        self._set_status = prepare_write(
            table.update()
            .where(c.schedule_id == bindparam("k_schedule_id"))
            .values(status=bindparam("status"), updated_at=bindparam("updated_at"))
            .returning(*table.c)
        )
        self._delete = prepare_write(
            table.delete()
            .where(c.schedule_id == bindparam("k_schedule_id"))
            .returning(c.schedule_id)
        )
        self._advance = prepare_write(
            table.update()
            .where(
                c.schedule_id == bindparam("k_schedule_id"),
                or_(c.last_tick_at.is_(None), c.last_tick_at < bindparam("tick")),
            )
            .values(last_tick_at=bindparam("tick"), updated_at=bindparam("updated_at"))
            .returning(c.schedule_id)
        )

    def _time(self, value: datetime) -> Any:
        """``value`` as this database stores a TIME column."""
        probe = Schedule(
            schedule_id="", workflow_name="", cron="", created_at=value, updated_at=value
        )
        return self._codec.params(probe)["updated_at"]

    def put(self, schedule: Schedule) -> Schedule:
        """Create the schedule or replace its definition (status and progress kept)."""
        rows = self._put(**self._codec.params(schedule))
        return self._codec.from_row(rows[0])

    def get(self, schedule_id: str) -> Schedule:
        """The schedule; ScheduleNotFoundError when there is none."""
        rows = self._get(schedule_id=schedule_id)
        if not rows:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
        return self._codec.from_row(rows[0])

    def list(self) -> list[Schedule]:
        """Every schedule, by id."""
        return [self._codec.from_row(row) for row in self._list()]

    def set_status(self, schedule_id: str, status: ScheduleStatus) -> Schedule:
        """Pause or resume; ScheduleNotFoundError when there is none."""
        rows = self._set_status(
            k_schedule_id=schedule_id, status=status, updated_at=self._time(utc_now())
        )
        if not rows:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
        return self._codec.from_row(rows[0])

    def delete(self, schedule_id: str) -> None:
        """Remove the schedule; ScheduleNotFoundError when there is none."""
        if not self._delete(k_schedule_id=schedule_id):
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")

    def advance(self, schedule_id: str, tick: datetime) -> bool:
        """Record that the schedule fired up to ``tick``; False when it already had."""
        rows = self._advance(
            k_schedule_id=schedule_id, tick=self._time(tick), updated_at=self._time(utc_now())
        )
        return bool(rows)
