"""Conformance tests of flow control's storage: one run per idempotency key, a named
queue's runs in admission order, admission as the only start of a queued run, and
``world.schedules``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from wfkit.worlds.base import (
    EntityConflictError,
    Run,
    RunNotFoundError,
    Schedule,
    ScheduleNotFoundError,
    World,
    new_id,
    utc_now,
)
from wfkit.worlds.testing.lifecycle import ev


def _create(world: World, **data: Any) -> Run:
    result = world.events.create_batch(
        new_id("wrun"), [ev("run_created", workflow_name="wf", **data)]
    )
    run = result[0].run
    assert run is not None
    return run


def test_one_run_per_idempotency_key(world: World) -> None:
    first = _create(world, idempotency_key="k-1")
    assert first.idempotency_key == "k-1"
    with pytest.raises(EntityConflictError):
        _create(world, idempotency_key="k-1")
    assert world.runs.get_by_idempotency_key("k-1").run_id == first.run_id
    assert [r.run_id for r in world.runs.list()] == [first.run_id]
    with pytest.raises(RunNotFoundError):
        world.runs.get_by_idempotency_key("k-2")


def test_run_created_materializes_deadline_and_queue(world: World) -> None:
    deadline = (utc_now() + timedelta(minutes=5)).replace(microsecond=0)
    run = _create(
        world,
        deadline_at=deadline.isoformat(),
        queue_name="q",
        queue_key="cust-1",
        queue_priority=2,
    )
    stored = world.runs.get(run.run_id)
    assert (stored.deadline_at, stored.queue_name, stored.queue_key, stored.queue_priority) == (
        deadline,
        "q",
        "cust-1",
        2,
    )
    assert stored == run


def test_a_queued_run_starts_only_when_admitted(world: World) -> None:
    run = _create(world, queue_name="q", queue_priority=0)
    with pytest.raises(EntityConflictError, match="waits in queue"):
        world.events.create(run.run_id, ev("run_started"))
    assert world.runs.get(run.run_id).status == "pending"
    started = world.events.create(run.run_id, ev("run_started", admitted_by="w-1")).run
    assert started is not None
    assert (started.status, started.admitted_by) == ("running", "w-1")
    assert world.runs.get(run.run_id) == started


def test_queued_runs_list_in_admission_order_and_filter(world: World) -> None:
    low = _create(world, queue_name="q", queue_priority=5)
    high = _create(world, queue_name="q", queue_priority=-1)
    mid_a = _create(world, queue_name="q", queue_priority=0)
    mid_b = _create(world, queue_name="q", queue_priority=0)
    _create(world, queue_name="other", queue_priority=0)
    _create(world)
    order = [high.run_id, mid_a.run_id, mid_b.run_id, low.run_id]
    assert [r.run_id for r in world.runs.list_queued("q")] == order
    assert [r.run_id for r in world.runs.list_queued("q", limit=2)] == order[:2]
    before = utc_now() - timedelta(seconds=1)
    world.events.create(mid_b.run_id, ev("run_started", admitted_by="w"))
    assert [r.run_id for r in world.runs.list_queued("q", status="running")] == [mid_b.run_id]
    assert [r.run_id for r in world.runs.list_queued("q", status="pending")] == [
        high.run_id,
        mid_a.run_id,
        low.run_id,
    ]
    assert [r.run_id for r in world.runs.list_queued("q", started_after=before)] == [mid_b.run_id]
    later = utc_now() + timedelta(seconds=5)
    assert world.runs.list_queued("q", started_after=later) == []


def _schedule(schedule_id: str, **changes: Any) -> Schedule:
    now = utc_now().replace(microsecond=0)
    fields: dict[str, Any] = {
        "schedule_id": schedule_id,
        "workflow_name": "wf",
        "cron": "* * * * *",
        "input": {"args": [1], "kwargs": {}},
        "last_tick_at": now,
        "created_at": now,
        "updated_at": now,
        **changes,
    }
    return Schedule(**fields)


def test_schedules_are_stored_and_redefined_keeping_status_and_progress(world: World) -> None:
    made = world.schedules.put(_schedule("b"))
    world.schedules.put(_schedule("a", missed="catch_up"))
    assert world.schedules.get("b") == made
    assert [s.schedule_id for s in world.schedules.list()] == ["a", "b"]
    paused = world.schedules.set_status("b", "paused")
    assert paused.status == "paused"
    tick = made.created_at + timedelta(minutes=3)
    assert world.schedules.advance("b", tick)
    redefined = world.schedules.put(
        _schedule("b", cron="0 * * * *", input=None, last_tick_at=None, status="active")
    )
    assert (redefined.cron, redefined.input, redefined.status, redefined.last_tick_at) == (
        "0 * * * *",
        None,
        "paused",
        tick,
    )


def test_schedule_progress_only_moves_forward(world: World) -> None:
    made = world.schedules.put(_schedule("s"))
    later = made.created_at + timedelta(minutes=2)
    assert world.schedules.advance("s", later)
    assert not world.schedules.advance("s", later)
    assert not world.schedules.advance("s", made.created_at)
    assert world.schedules.get("s").last_tick_at == later
    assert not world.schedules.advance("missing", later)


def test_unknown_schedules_are_not_found(world: World) -> None:
    with pytest.raises(ScheduleNotFoundError):
        world.schedules.get("nope")
    with pytest.raises(ScheduleNotFoundError):
        world.schedules.set_status("nope", "paused")
    world.schedules.put(_schedule("gone"))
    world.schedules.delete("gone")
    with pytest.raises(ScheduleNotFoundError):
        world.schedules.delete("gone")
    assert world.schedules.list() == []
