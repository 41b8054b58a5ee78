"""Runs and writes shaped as a worker writes them, for the group-commit tests
(``Events.create_batches`` on every world, and the local world's planned writes)."""

from __future__ import annotations

from typing import Any

from wfkit.worlds.base import BatchWrite, EventRequest, World


def ev(event_type: Any, correlation_id: str | None = None, **data: Any) -> EventRequest:
    return EventRequest(event_type=event_type, correlation_id=correlation_id, data=data)


def running_run(world: World) -> tuple[str, str]:
    """A running run with step s0 started; (run id, id of its last event)."""
    created = world.events.create(None, ev("run_created", workflow_name="wf", input=None))
    assert created.run is not None
    run_id = created.run.run_id
    world.events.create(run_id, ev("run_started"))
    first = world.events.create_batch(
        run_id, [ev("step_created", "s0", step_name="a"), ev("step_started", "s0")]
    )
    return run_id, first[-1].event.event_id


def next_step(run_id: str, last: str, i: int = 1, **options: Any) -> BatchWrite:
    """What a worker writes when step ``i - 1`` returns and the workflow calls step ``i``."""
    requests = [
        ev("step_completed", f"s{i - 1}", result=i),
        ev("step_created", f"s{i}", step_name="a", input=i),
        ev("step_started", f"s{i}"),
    ]
    return BatchWrite(run_id, requests, expected_last_event_id=last, **options)


def event_types(world: World, run_id: str) -> list[str]:
    return [event.event_type for event in world.events.list(run_id)]
