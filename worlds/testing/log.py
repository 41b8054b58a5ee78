"""Conformance tests of batches and of the log itself: atomicity, optimistic
concurrency, paging, exact data, caller-chosen times and the fold."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from functools import partial

import pytest

from wfkit.worlds.base import (
    EntityConflictError,
    Event,
    EventRequest,
    HookNotFoundError,
    InvalidEventError,
    QueueMessageRequest,
    StepNotFoundError,
    World,
    WorldError,
    fold_events,
)
from wfkit.worlds.testing.lifecycle import (
    assert_consistent,
    assert_refused,
    ev,
    future_iso,
    new_run,
)

# --- batches and the log ---------------------------------------------------


def test_create_batch_hot_path_with_messages(world: World) -> None:
    run_id = new_run(world)
    world.events.create_batch(
        run_id,
        [ev("step_created", "step_a", step_name="s"), ev("step_started", "step_a")],
    )
    results = world.events.create_batch(
        run_id,
        [
            ev("step_completed", "step_a", result=1),
            ev("step_created", "step_b", step_name="s", input=None),
            ev("step_started", "step_b"),
        ],
        messages=[
            QueueMessageRequest(
                queue="__wkf_step_s", payload={"run_id": run_id, "step_id": "step_b"}
            )
        ],
    )
    assert [r.event.event_type for r in results] == [
        "step_completed",
        "step_created",
        "step_started",
    ]
    assert results[2].step is not None and results[2].step.attempt == 1
    assert world.steps.get(run_id, "step_b").status == "running"
    assert run_id in world.queue.live_run_ids()
    (message,) = world.queue.receive(["__wkf_step_"], lease_seconds=30)
    assert message.payload == {"run_id": run_id, "step_id": "step_b"}
    assert message.run_id == run_id
    assert_consistent(world, run_id)


def test_create_batch_is_all_or_nothing(world: World) -> None:
    run_id = new_run(world)
    world.events.create(run_id, ev("step_created", "step_a", step_name="s"))
    message = QueueMessageRequest(queue="__wkf_workflow_wf", payload={"run_id": run_id})
    bad_batches: list[tuple[type[Exception], list[EventRequest]]] = [
        (
            EntityConflictError,
            [
                ev("step_started", "step_a"),
                ev("step_created", "step_a", step_name="dup"),
                ev("step_created", "step_c", step_name="s"),
            ],
        ),
        (
            EntityConflictError,
            [ev("step_started", "step_a"), ev("run_completed"), ev("step_completed", "step_a")],
        ),
        (
            StepNotFoundError,
            [ev("hook_created", "hook_a", token="t"), ev("step_started", "step_missing")],
        ),
        (
            InvalidEventError,
            [ev("wait_created", "wait_a", resume_at=future_iso()), ev("step_started", None)],
        ),
    ]
    for error, batch in bad_batches:
        assert_refused(
            world,
            run_id,
            error,
            partial(world.events.create_batch, run_id, batch, messages=[message]),
        )
    with pytest.raises(HookNotFoundError):
        world.hooks.get_by_token("t")
    assert world.queue.receive([""], lease_seconds=5) == []
    assert_consistent(world, run_id)


def test_create_batch_expected_last_event_id(world: World) -> None:
    run_id = new_run(world)
    last = world.events.list(run_id)[-1].event_id
    first = world.events.create_batch(
        run_id, [ev("step_created", "step_a", step_name="s")], expected_last_event_id=last
    )
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        partial(
            world.events.create_batch,
            run_id,
            [ev("step_created", "step_b", step_name="s")],
            expected_last_event_id=last,
        ),
    )
    world.events.create_batch(
        run_id,
        [ev("step_created", "step_b", step_name="s")],
        expected_last_event_id=first[0].event.event_id,
    )
    assert len(world.steps.list(run_id)) == 2


def test_batch_sees_its_own_earlier_events(world: World) -> None:
    results = world.events.create_batch(
        "wrun_BATCH",
        [
            ev("run_created", workflow_name="wf"),
            ev("run_started"),
            ev("run_started"),
            ev("hook_created", "hook_a", token="tb"),
            ev("hook_created", "hook_b", token="tb"),
            ev("hook_disposed", "hook_a"),
            ev("hook_created", "hook_c", token="tb"),
        ],
    )
    types = [r.event.event_type for r in results]
    assert types == [
        "run_created",
        "run_started",
        "run_started",
        "hook_created",
        "hook_conflict",
        "hook_disposed",
        "hook_created",
    ]
    assert results[1].event == results[2].event
    assert len(world.events.list("wrun_BATCH")) == 6
    assert world.hooks.get_by_token("tb").hook_id == "hook_c"
    assert_consistent(world, "wrun_BATCH")


def test_events_list_order_paging_and_exact_data(world: World) -> None:
    run_id = new_run(world)
    tricky = {"s": "nul \x00 byte", "u": "ünïcødé ✓", "n": None, "f": 1.5, "big": 2**70}
    for index in range(20):
        world.events.create(
            run_id, ev("step_created", f"step_{index:02d}", step_name="s", input=tricky)
        )
    events = world.events.list(run_id)
    assert len(events) == 22
    ids = [e.event_id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(e.created_at.tzinfo is not None for e in events)
    assert events[5].data["input"] == tricky
    assert world.steps.get(run_id, "step_03").input == tricky
    assert world.events.list(run_id, after_event_id=ids[9]) == events[10:]
    assert world.events.list(run_id, after_event_id=ids[9], limit=3) == events[10:13]
    assert world.events.list(run_id, limit=2) == events[:2]
    assert world.events.list(run_id, after_event_id=ids[-1]) == []
    # An id not in the log compares as a string (ids sort in creation order).
    assert world.events.list(run_id, after_event_id="evnt_0") == events
    assert world.events.list(run_id, after_event_id="evnt_Z") == []
    assert world.events.list("wrun_other", after_event_id=ids[3]) == []


def test_fold_of_a_random_history_equals_the_records(world: World) -> None:
    rng = random.Random(1234)
    run_ids = [new_run(world) for _ in range(3)]
    all_events: list[Event] = []
    open_steps: dict[str, list[str]] = {r: [] for r in run_ids}
    for index in range(150):
        run_id = rng.choice(run_ids)
        step_id = f"step_{index}"
        candidates: list[EventRequest] = [
            ev("step_created", step_id, step_name="s", input=index),
            ev("wait_created", f"wait_{index}", resume_at=future_iso(index)),
            ev("hook_created", f"hook_{index}", token=f"tok_{index % 7}"),
        ]
        if open_steps[run_id]:
            target = rng.choice(open_steps[run_id])
            candidates += [
                ev("step_started", target),
                ev("step_completed", target, result=index),
                ev("step_retrying", target, error={"n": index}, retry_after=future_iso()),
                ev("step_failed", target, error={"n": index}),
            ]
        request = rng.choice(candidates)
        try:
            world.events.create(run_id, request)
        except WorldError:
            continue
        if request.event_type == "step_created" and request.correlation_id:
            open_steps[run_id].append(request.correlation_id)
    world.events.create(run_ids[0], ev("run_completed", output="done"))
    world.events.create(run_ids[1], ev("run_cancelled"))
    for run_id in run_ids:
        assert_consistent(world, run_id)
        all_events.extend(world.events.list(run_id))
    folded = fold_events(all_events)
    for run_id in run_ids:
        assert folded.runs[run_id] == world.runs.get(run_id)
        assert sorted(world.steps.list(run_id), key=lambda s: s.step_id) == sorted(
            (s for s in folded.steps.values() if s.run_id == run_id), key=lambda s: s.step_id
        )
    assert {h.hook_id: h for h in world.hooks.list()} == folded.hooks
    active = [h for h in world.hooks.list() if h.status == "active"]
    assert len({h.token for h in active}) == len(active)


def test_caller_chosen_created_at_is_stored(world: World) -> None:
    run_id = new_run(world)
    when = datetime(2030, 6, 7, 8, 9, 10, 111213, tzinfo=UTC)
    request = EventRequest(
        event_type="step_created",
        correlation_id="step_a",
        data={"step_name": "s"},
        created_at=when,
    )
    result = world.events.create(run_id, request)
    assert result.event.created_at == when
    assert world.events.list(run_id)[-1].created_at == when
    assert world.steps.get(run_id, "step_a").created_at == when
    assert_consistent(world, run_id)


def test_malformed_data_is_refused(world: World) -> None:
    run_id = new_run(world)
    for request in (
        ev("hook_created", "hook_a", token=5),
        ev("step_created", "step_a", step_name=["not", "a", "name"]),
        ev("step_created", "step_b", step_name="s", input={1, 2}),
    ):
        assert_refused(
            world, run_id, InvalidEventError, partial(world.events.create, run_id, request)
        )
