"""``Events.create_batches`` on every world: each write keeps ``create_batch``'s
meaning on its own (all of its events and messages, or none), whatever the
others in its group do.

On Postgres a group is one transaction (``wfkit.worlds.postgres.groups``), so
these are the cases where one write must not sink or leak into the others: a
refused write, a write whose log moved on since this process last wrote it, new
runs whose id or idempotency key is taken, and two writes clashing on a unique
index at write time.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.worlds.batch_writes import ev, event_types, next_step, running_run
from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    EventRequest,
    InvalidEventError,
    QueueMessageRequest,
    RunNotFoundError,
    World,
)


def _queued(world: World, queue: str) -> list[dict[str, Any]]:
    return [
        dict(m.payload) for m in world.queue.receive([queue], lease_seconds=60, max_messages=50)
    ]


def test_a_refused_write_writes_nothing_and_the_others_commit(world: World) -> None:
    (a, a_last), (b, b_last), (c, c_last) = (running_run(world) for _ in range(3))
    world.events.create_batch(b, [ev("step_completed", "s0", result=0)])  # b moves on
    b_before = event_types(world, b)
    outcomes = world.events.create_batches(
        [
            next_step(a, a_last),
            next_step(
                b, b_last, messages=[QueueMessageRequest(queue="q_group", payload={"run_id": b})]
            ),
            next_step(
                c, c_last, messages=[QueueMessageRequest(queue="q_group", payload={"run_id": c})]
            ),
        ]
    )
    assert isinstance(outcomes[1], EntityConflictError)
    assert event_types(world, b) == b_before
    for run_id, outcome in ((a, outcomes[0]), (c, outcomes[2])):
        assert isinstance(outcome, list)
        assert [r.event.event_type for r in outcome] == [
            "step_completed",
            "step_created",
            "step_started",
        ]
        assert event_types(world, run_id)[-3:] == [r.event.event_type for r in outcome]
        assert outcome[-1].event.event_id == world.events.list(run_id)[-1].event_id
    assert _queued(world, "q_group") == [{"run_id": c}]


def test_a_write_whose_log_moved_on_since_this_process_wrote_it_is_refused_alone(
    world: World,
) -> None:
    """The run's log moved on by a batch of another kind (not a step batch), so
    what this process remembers of its last step write is stale."""
    runs = [running_run(world) for _ in range(3)]
    lasts = {}
    for run_id, last in runs:  # each run's last write is a step batch of this process
        lasts[run_id] = world.events.create_batch(
            run_id, next_step(run_id, last).requests, expected_last_event_id=last
        )[-1].event.event_id
    moved = runs[1][0]
    world.events.create(moved, ev("hook_created", "h1", token=f"tok-{moved}"))
    outcomes = world.events.create_batches(
        [next_step(run_id, lasts[run_id], i=2) for run_id, _ in runs]
    )
    assert isinstance(outcomes[1], EntityConflictError)
    assert event_types(world, moved)[-1] == "hook_created"
    for index in (0, 2):
        outcome = outcomes[index]
        assert isinstance(outcome, list)
        run_id = runs[index][0]
        assert [s.status for s in world.steps.list(run_id)] == ["completed", "completed", "running"]
        assert world.events.list(run_id)[-1].event_id == outcome[-1].event.event_id


def test_a_group_mixing_stale_and_new_writes_answers_each(world: World) -> None:
    """A step batch on a moved log, beside writes that are not step batches."""
    (a, a_last), (b, b_last) = running_run(world), running_run(world)
    a_last = world.events.create_batch(
        a, next_step(a, a_last).requests, expected_last_event_id=a_last
    )[-1].event.event_id
    world.events.create(a, ev("wait_created", "w1", resume_at="2999-01-01T00:00:00+00:00"))
    outcomes = world.events.create_batches(
        [
            next_step(a, a_last, i=2),
            BatchWrite(
                b, [ev("hook_created", "h1", token=f"tok-{b}")], expected_last_event_id=b_last
            ),
            BatchWrite("wrun_group_new", [ev("run_created", workflow_name="wf", input=1)]),
        ]
    )
    assert isinstance(outcomes[0], EntityConflictError)
    assert event_types(world, a)[-1] == "wait_created"
    assert isinstance(outcomes[1], list) and outcomes[1][0].event.event_type == "hook_created"
    assert [h.token for h in world.hooks.list(run_id=b)] == [f"tok-{b}"]
    assert world.runs.get("wrun_group_new").input == 1


def test_new_runs_in_a_group_refuse_only_a_taken_run_id_or_idempotency_key(world: World) -> None:
    existing = world.events.create(
        None, ev("run_created", workflow_name="wf", input=0, idempotency_key="k-stored")
    ).run
    assert existing is not None

    def new_run(run_id: str, key: str | None = None) -> BatchWrite:
        data: dict[str, Any] = {"workflow_name": "wf", "input": run_id}
        if key is not None:
            data["idempotency_key"] = key
        return BatchWrite(run_id, [EventRequest(event_type="run_created", data=data)])

    writes = [
        new_run("wrun_g1", "k-1"),
        new_run("wrun_g2", "k-stored"),  # held by a stored run
        new_run(existing.run_id),  # the run exists
        new_run("wrun_g4", "k-1"),  # claimed by the first write of the group
        new_run("wrun_g5"),
    ]
    outcomes = world.events.create_batches(writes)
    refused = [i for i, outcome in enumerate(outcomes) if isinstance(outcome, EntityConflictError)]
    assert refused == [1, 2, 3]
    for run_id in ("wrun_g1", "wrun_g5"):
        assert world.runs.get(run_id).input == run_id
    for run_id in ("wrun_g2", "wrun_g4"):
        with pytest.raises(RunNotFoundError):
            world.runs.get(run_id)
    assert world.runs.get(existing.run_id).input == 0
    assert world.runs.get_by_idempotency_key("k-1").run_id == "wrun_g1"
    assert world.runs.get_by_idempotency_key("k-stored").run_id == existing.run_id


def test_two_writes_of_a_group_taking_one_hook_token_are_told_apart(world: World) -> None:
    """A clash on a unique index at write time: the first run gets the hook, the
    second a hook_conflict, as if the writes had been made one after the other."""
    (a, a_last), (b, b_last) = running_run(world), running_run(world)
    outcomes = world.events.create_batches(
        [
            BatchWrite(
                a, [ev("hook_created", "h1", token="shared")], expected_last_event_id=a_last
            ),
            BatchWrite(
                b, [ev("hook_created", "h2", token="shared")], expected_last_event_id=b_last
            ),
        ]
    )
    assert isinstance(outcomes[0], list) and isinstance(outcomes[1], list)
    assert outcomes[0][0].event.event_type == "hook_created"
    assert outcomes[1][0].event.event_type == "hook_conflict"
    assert [h.status for h in world.hooks.list(run_id=a)] == ["active"]


def test_two_writes_to_one_run_in_a_group_apply_in_order(world: World) -> None:
    run_id, last = running_run(world)
    first = next_step(run_id, last)
    outcomes = world.events.create_batches(
        [first, BatchWrite(run_id, [ev("step_completed", "s1", result=1)])]
    )
    assert all(isinstance(outcome, list) for outcome in outcomes)
    assert [s.status for s in world.steps.list(run_id)] == ["completed", "completed"]


def test_new_runs_without_keys_refuse_only_a_taken_run_id_or_a_bad_message(world: World) -> None:
    taken = world.events.create(None, ev("run_created", workflow_name="wf", input=0)).run
    assert taken is not None

    def new_run(run_id: str, payload: dict[str, Any]) -> BatchWrite:
        message = QueueMessageRequest(queue="q_new", payload=payload)
        return BatchWrite(run_id, [ev("run_created", workflow_name="wf", input=run_id)], [message])

    taken_id = world.events.create_batches(
        [
            new_run("wrun_n1", {"run_id": "wrun_n1"}),
            new_run(taken.run_id, {"run_id": taken.run_id}),
            new_run("wrun_n3", {"run_id": "wrun_n3"}),
        ]
    )
    bad_message = world.events.create_batches(
        [
            new_run("wrun_n4", {"run_id": "wrun_n4", "bad": object()}),
            new_run("wrun_n5", {"run_id": "wrun_n5"}),
        ]
    )
    assert [type(outcome) for outcome in (*taken_id, *bad_message)] == [
        list,
        EntityConflictError,
        list,
        InvalidEventError,
        list,
    ]
    assert world.runs.get(taken.run_id).input == 0
    with pytest.raises(RunNotFoundError):
        world.runs.get("wrun_n4")
    queued = sorted(m["run_id"] for m in _queued(world, "q_new"))
    assert queued == ["wrun_n1", "wrun_n3", "wrun_n5"]
