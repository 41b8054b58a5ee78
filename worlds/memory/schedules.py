"""``world.schedules`` of the memory world: the same semantics as the SQL worlds'
(``wfkit.worlds.sql.schedules``), in a dict behind a lock."""

from __future__ import annotations

import threading
from datetime import datetime

from wfkit.worlds.base import Schedule, ScheduleNotFoundError, ScheduleStatus, utc_now

__all__ = ["MemorySchedules"]


class MemorySchedules:
    """Cron schedules kept in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._schedules: dict[str, Schedule] = {}

    def put(self, schedule: Schedule) -> Schedule:
        """Create the schedule or replace its definition (status and progress kept)."""
        with self._lock:
            existing = self._schedules.get(schedule.schedule_id)
            if existing is not None:
                schedule = existing.model_copy(
                    update={
                        "workflow_name": schedule.workflow_name,
                        "cron": schedule.cron,
                        "input": schedule.input,
                        "missed": schedule.missed,
                        "updated_at": schedule.updated_at,
                    }
                )
            self._schedules[schedule.schedule_id] = schedule
            return schedule

    def get(self, schedule_id: str) -> Schedule:
        """The schedule; ScheduleNotFoundError when there is none."""
        with self._lock:
            schedule = self._schedules.get(schedule_id)
        if schedule is None:
            raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
        return schedule

    def list(self) -> list[Schedule]:
        """Every schedule, by id."""
        with self._lock:
            return [self._schedules[key] for key in sorted(self._schedules)]

    def set_status(self, schedule_id: str, status: ScheduleStatus) -> Schedule:
        """Pause or resume; ScheduleNotFoundError when there is none."""
        with self._lock:
            schedule = self._schedules.get(schedule_id)
            if schedule is None:
                raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")
            schedule = schedule.model_copy(update={"status": status, "updated_at": utc_now()})
            self._schedules[schedule_id] = schedule
            return schedule

    def delete(self, schedule_id: str) -> None:
        """Remove the schedule; ScheduleNotFoundError when there is none."""
        with self._lock:
            if self._schedules.pop(schedule_id, None) is None:
                raise ScheduleNotFoundError(f"no schedule {schedule_id!r}")

    def advance(self, schedule_id: str, tick: datetime) -> bool:
        """Record that the schedule fired up to ``tick``; False when it already had."""
        with self._lock:
            schedule = self._schedules.get(schedule_id)
            if schedule is None or (
                schedule.last_tick_at is not None and schedule.last_tick_at >= tick
            ):
                return False
            self._schedules[schedule_id] = schedule.model_copy(
                update={"last_tick_at": tick, "updated_at": utc_now()}
            )
            return True
