"""Conformance tests of ``Events.create_batches`` (group commit across runs): each
write keeps ``create_batch``'s meaning on its own, a refused one takes nothing of
the others down with it."""

from __future__ import annotations

from wfkit.worlds.base import (
    BatchWrite,
    EntityConflictError,
    QueueMessageRequest,
    World,
    WorldError,
    new_id,
)
from wfkit.worlds.testing.lifecycle import assert_consistent, ev, new_run


def _step_message(run_id: str, step_id: str) -> QueueMessageRequest:
    return QueueMessageRequest(queue="__wkf_step_s", payload={"run_id": run_id, "step_id": step_id})


def _next_step(world: World, run_id: str, step_id: str, *, stale: bool = False) -> BatchWrite:
    """A step's creation and its message, right after the run's last event (or, with
    ``stale``, after one it is not: someone else wrote meanwhile)."""
    events = world.events.list(run_id)
    last = events[-2 if stale else -1].event_id
    return BatchWrite(
        run_id,
        [ev("step_created", step_id, step_name="s")],
        messages=[_step_message(run_id, step_id)],
        expected_last_event_id=last,
    )


def test_create_batches_a_stale_write_is_refused_alone(world: World) -> None:
    runs = [new_run(world) for _ in range(3)]
    stale_run = runs[1]
    world.events.create(stale_run, ev("step_created", "step_other", step_name="s"))
    before = world.events.list(stale_run)
    writes = [_next_step(world, r, "step_a", stale=r == stale_run) for r in runs]

    outcomes = world.events.create_batches(writes)

    assert len(outcomes) == 3
    assert isinstance(outcomes[1], EntityConflictError)
    assert world.events.list(stale_run) == before
    for run_id, outcome in zip([runs[0], runs[2]], [outcomes[0], outcomes[2]], strict=True):
        assert not isinstance(outcome, WorldError)
        assert [r.event.event_type for r in outcome] == ["step_created"]
        assert world.events.list(run_id)[-1] == outcome[0].event
        assert world.steps.get(run_id, "step_a").status == "pending"
    messages = world.queue.receive(["__wkf_step_"], lease_seconds=30, max_messages=10)
    assert sorted(m.payload["run_id"] for m in messages) == sorted([runs[0], runs[2]])
    for run_id in runs:
        assert_consistent(world, run_id)


def test_create_batches_a_refused_transition_writes_nothing_of_its_batch(world: World) -> None:
    finished, running = new_run(world), new_run(world)
    world.events.create(finished, ev("run_completed", result=1))
    writes = [
        BatchWrite(
            finished,
            [ev("step_created", "step_a", step_name="s")],
            messages=[_step_message(finished, "step_a")],
        ),
        BatchWrite(
            running,
            [ev("step_created", "step_a", step_name="s"), ev("step_started", "step_a")],
            messages=[_step_message(running, "step_a")],
        ),
    ]

    refused, written = world.events.create_batches(writes)

    assert isinstance(refused, WorldError)
    assert [e.event_type for e in world.events.list(finished)][-1] == "run_completed"
    assert not isinstance(written, WorldError)
    assert [r.event.event_type for r in written] == ["step_created", "step_started"]
    assert world.steps.get(running, "step_a").status == "running"
    (message,) = world.queue.receive(["__wkf_step_"], lease_seconds=30, max_messages=10)
    assert message.payload["run_id"] == running
    assert_consistent(world, finished)
    assert_consistent(world, running)


def test_create_batches_of_one_run_see_each_other(world: World) -> None:
    run_id = new_run(world)
    last = world.events.list(run_id)[-1].event_id
    first = BatchWrite(run_id, [ev("step_created", "step_a", step_name="s")], (), last)
    second = BatchWrite(run_id, [ev("step_started", "step_a")])

    outcomes = world.events.create_batches([first, second])

    assert not any(isinstance(o, WorldError) for o in outcomes)
    assert world.steps.get(run_id, "step_a").status == "running"
    assert_consistent(world, run_id)


def test_create_batches_of_nothing_answers_nothing(world: World) -> None:
    assert world.events.create_batches([]) == []


def test_create_batches_a_duplicate_refused_by_the_database_leaves_the_group(
    world: World,
) -> None:
    """A write refused midway (a unique key the database checks as it writes) is
    undone on its own: the writes before and after it in the group stay."""
    existing = world.events.create_batch(
        new_id("wrun"), [ev("run_created", workflow_name="wf", idempotency_key="k")]
    )[0].run
    assert existing is not None
    before, after = new_run(world), new_run(world)
    duplicate = new_id("wrun")
    writes = [
        _next_step(world, before, "step_a"),
        BatchWrite(duplicate, [ev("run_created", workflow_name="wf", idempotency_key="k")]),
        _next_step(world, after, "step_a"),
    ]

    first, refused, last = world.events.create_batches(writes)

    assert isinstance(refused, EntityConflictError)
    assert world.runs.get_by_idempotency_key("k").run_id == existing.run_id
    assert world.events.list(duplicate) == []
    assert not isinstance(first, WorldError) and not isinstance(last, WorldError)
    assert world.steps.get(before, "step_a").status == "pending"
    assert world.steps.get(after, "step_a").status == "pending"
    assert len(world.queue.receive(["__wkf_step_"], lease_seconds=30, max_messages=10)) == 2
