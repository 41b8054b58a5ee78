"""Conformance tests of the lifecycle rules: runs, steps, hooks, waits, batches, folds."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from worlds.base import (
    EntityConflictError,
    Event,
    EventRequest,
    HookNotFoundError,
    InvalidEventError,
    QueueMessageRequest,
    RunNotFoundError,
    StepNotFoundError,
    WaitNotFoundError,
    World,
    WorldError,
    diff_run_records,
    fold_events,
)

# --- helpers ---------------------------------------------------------------


def ev(event_type: Any, correlation_id: str | None = None, **data: Any) -> EventRequest:
    """An EventRequest in one line."""
    return EventRequest(event_type=event_type, correlation_id=correlation_id, data=data)


def new_run(world: World, *, started: bool = True, run_id: str | None = None) -> str:
    """Create a run (and start it unless ``started`` is False); returns its id."""
    result = world.events.create(
        run_id, ev("run_created", workflow_name="workflow//./app//wf", input={"args": [1]})
    )
    assert result.run is not None
    if started:
        world.events.create(result.run.run_id, ev("run_started"))
    return result.run.run_id


def snapshot(world: World, run_id: str) -> tuple[Any, ...]:
    """Everything stored about one run, to prove a refused call wrote nothing."""
    try:
        run: Any = world.runs.get(run_id)
    except RunNotFoundError:
        run = None
    return (
        run,
        world.events.list(run_id),
        world.steps.list(run_id),
        world.hooks.list(run_id=run_id),
        world.waits.list(run_id),
        sorted(world.queue.live_run_ids()),
    )


def assert_refused(
    world: World, run_id: str, error: type[Exception], call: Callable[[], object]
) -> None:
    """``call`` raises ``error`` and leaves the run's log and records untouched."""
    before = snapshot(world, run_id)
    with pytest.raises(error):
        call()
    assert snapshot(world, run_id) == before


def assert_consistent(world: World, run_id: str) -> None:
    """The materialized records equal a fresh fold of the run's log."""
    assert diff_run_records(world, run_id) == []


def _future(seconds: float = 60.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


# --- runs ------------------------------------------------------------------


def test_run_created_generates_ids(world: World) -> None:
    result = world.events.create(None, ev("run_created", workflow_name="wf", input=[1, "a"]))
    run, event = result.run, result.event
    assert run is not None
    assert run.run_id.startswith("wrun_") and len(run.run_id) == 31
    assert event.event_id.startswith("evnt_") and event.run_id == run.run_id
    assert event.event_type == "run_created" and event.data["workflow_name"] == "wf"
    assert run.status == "pending" and run.input == [1, "a"] and run.workflow_name == "wf"
    assert run.created_at.tzinfo is not None and run.started_at is None
    assert world.runs.get(run.run_id) == run
    assert world.events.list(run.run_id) == [event]


def test_run_created_with_chosen_id_then_duplicate_refused(world: World) -> None:
    run_id = new_run(world, started=False, run_id="wrun_CHOSEN")
    assert world.runs.get(run_id).run_id == "wrun_CHOSEN"
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        lambda: world.events.create(run_id, ev("run_created", workflow_name="x")),
    )


def test_run_lookups_of_missing_things(world: World) -> None:
    with pytest.raises(RunNotFoundError):
        world.runs.get("wrun_missing")
    with pytest.raises(RunNotFoundError):
        world.events.create("wrun_missing", ev("run_started"))
    with pytest.raises(InvalidEventError):
        world.events.create(None, ev("run_started"))
    with pytest.raises(InvalidEventError):
        world.events.create(None, ev("run_created"))  # no workflow_name
    assert world.events.list("wrun_missing") == []


def test_run_started_sets_started_at_and_is_idempotent(world: World) -> None:
    run_id = new_run(world, started=False)
    first = world.events.create(run_id, ev("run_started"))
    assert first.run is not None and first.run.status == "running"
    assert first.run.started_at == first.event.created_at
    again = world.events.create(run_id, ev("run_started"))
    assert again.event == first.event and again.run == world.runs.get(run_id)
    assert [e.event_type for e in world.events.list(run_id)] == ["run_created", "run_started"]
    assert_consistent(world, run_id)


@pytest.mark.parametrize(
    ("event_type", "data", "status"),
    [
        ("run_completed", {"output": {"ok": True}}, "completed"),
        ("run_failed", {"error": {"type": "x.E", "message": "boom"}}, "failed"),
        ("run_cancelled", {"reason": "bye"}, "cancelled"),
    ],
)
def test_run_terminal_transitions(
    world: World, event_type: str, data: dict[str, Any], status: str
) -> None:
    run_id = new_run(world)
    result = world.events.create(run_id, ev(event_type, **data))
    run = result.run
    assert run is not None and run.status == status
    assert run.completed_at == result.event.created_at
    if status == "completed":
        assert run.output == {"ok": True}
    if status == "failed":
        assert run.error == {"type": "x.E", "message": "boom"}
    for refused in (
        ev("run_started"),
        ev("run_completed", output=1),
        ev("run_failed", error={}),
        ev("run_cancelled"),
        ev("step_created", "step_1", step_name="s"),
        ev("hook_created", "hook_1", token="t"),
        ev("wait_created", "wait_1", resume_at=_future()),
    ):
        assert_refused(
            world, run_id, EntityConflictError, partial(world.events.create, run_id, refused)
        )
    assert_consistent(world, run_id)


def test_pending_run_can_be_cancelled_but_not_completed(world: World) -> None:
    run_id = new_run(world, started=False)
    for refused in (ev("run_completed", output=1), ev("run_failed", error={})):
        assert_refused(
            world, run_id, EntityConflictError, partial(world.events.create, run_id, refused)
        )
    result = world.events.create(run_id, ev("run_cancelled"))
    assert result.run is not None and result.run.status == "cancelled"
    assert result.run.completed_at is not None
    assert_consistent(world, run_id)


def test_runs_list_filters_newest_first(world: World) -> None:
    first = new_run(world)
    second = new_run(world, started=False)
    world.events.create(None, ev("run_created", workflow_name="other"))
    assert [r.run_id for r in world.runs.list(workflow_name="workflow//./app//wf")] == [
        second,
        first,
    ]
    assert [r.run_id for r in world.runs.list(status="running")] == [first]
    assert len(world.runs.list(limit=2)) == 2


# --- steps -----------------------------------------------------------------


def test_step_lifecycle_with_retry(world: World) -> None:
    run_id = new_run(world)
    created = world.events.create(run_id, ev("step_created", "step_a", step_name="s", input=[1]))
    assert created.step is not None
    assert (created.step.status, created.step.attempt, created.step.input) == ("pending", 0, [1])
    first = world.events.create(run_id, ev("step_started", "step_a")).step
    assert first is not None and (first.status, first.attempt) == ("running", 1)
    assert first.started_at is not None
    retry_at = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    retrying = world.events.create(
        run_id,
        ev("step_retrying", "step_a", error={"message": "again"}, retry_after=retry_at.isoformat()),
    ).step
    assert retrying is not None and retrying.status == "pending"
    assert retrying.retry_after == retry_at and retrying.error == {"message": "again"}
    second = world.events.create(run_id, ev("step_started", "step_a")).step
    assert second is not None and (second.status, second.attempt) == ("running", 2)
    assert second.started_at == first.started_at
    # A redelivered step may start again while running (at-least-once execution).
    third = world.events.create(run_id, ev("step_started", "step_a")).step
    assert third is not None and third.attempt == 3
    done = world.events.create(run_id, ev("step_completed", "step_a", result="ok")).step
    assert done is not None and (done.status, done.output) == ("completed", "ok")
    assert done.completed_at is not None
    assert world.steps.get(run_id, "step_a") == done
    for refused in (
        ev("step_completed", "step_a", result="again"),
        ev("step_failed", "step_a", error={}),
        ev("step_started", "step_a"),
        ev("step_retrying", "step_a", error={}),
    ):
        assert_refused(
            world, run_id, EntityConflictError, partial(world.events.create, run_id, refused)
        )
    assert_consistent(world, run_id)


def test_step_failed_is_terminal(world: World) -> None:
    run_id = new_run(world)
    world.events.create(run_id, ev("step_created", "step_a", step_name="s"))
    world.events.create(run_id, ev("step_started", "step_a"))
    failed = world.events.create(run_id, ev("step_failed", "step_a", error={"message": "x"})).step
    assert failed is not None and failed.status == "failed" and failed.error == {"message": "x"}
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        lambda: world.events.create(run_id, ev("step_completed", "step_a", result=1)),
    )
    assert_consistent(world, run_id)


def test_step_refusals(world: World) -> None:
    run_id = new_run(world)
    world.events.create(run_id, ev("step_created", "step_a", step_name="s"))
    cases: list[tuple[type[Exception], EventRequest]] = [
        (EntityConflictError, ev("step_created", "step_a", step_name="s")),
        (EntityConflictError, ev("step_completed", "step_a", result=1)),
        (EntityConflictError, ev("step_failed", "step_a", error={})),
        (EntityConflictError, ev("step_retrying", "step_a", error={})),
        (StepNotFoundError, ev("step_started", "step_missing")),
        (StepNotFoundError, ev("step_completed", "step_missing", result=1)),
        (InvalidEventError, ev("step_created", None, step_name="s")),
        (InvalidEventError, ev("step_created", "step_b")),
        (InvalidEventError, ev("hook_conflict", "hook_x", token="t")),
    ]
    for error, request in cases:
        assert_refused(world, run_id, error, partial(world.events.create, run_id, request))
    with pytest.raises(StepNotFoundError):
        world.steps.get(run_id, "step_missing")
    with pytest.raises(RunNotFoundError):
        world.events.create("wrun_missing", ev("step_created", "step_a", step_name="s"))
    assert_consistent(world, run_id)


# --- hooks -----------------------------------------------------------------


def test_hook_lifecycle_and_token_release(world: World) -> None:
    run_id = new_run(world)
    created = world.events.create(
        run_id,
        ev("hook_created", "hook_a", token="tok", metadata={"m": 1}, is_webhook=True),
    )
    hook = created.hook
    assert hook is not None and hook.status == "active" and hook.token == "tok"
    assert hook.metadata == {"m": 1} and hook.is_webhook
    assert world.hooks.get_by_token("tok") == hook == world.hooks.get("hook_a")
    received = world.events.create(run_id, ev("hook_received", "hook_a", payload={"ok": True}))
    assert received.hook is not None and received.hook.status == "active"
    assert received.event.data == {"payload": {"ok": True}}
    disposed = world.events.create(run_id, ev("hook_disposed", "hook_a"))
    assert disposed.hook is not None and disposed.hook.status == "disposed"
    with pytest.raises(HookNotFoundError):
        world.hooks.get_by_token("tok")
    assert world.hooks.get("hook_a").status == "disposed"
    assert_refused(
        world,
        run_id,
        HookNotFoundError,
        lambda: world.events.create(run_id, ev("hook_received", "hook_a", payload=1)),
    )
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        lambda: world.events.create(run_id, ev("hook_disposed", "hook_a")),
    )
    assert_refused(
        world,
        run_id,
        HookNotFoundError,
        lambda: world.events.create(run_id, ev("hook_received", "hook_missing", payload=1)),
    )
    # The released token is free for another hook.
    again = world.events.create(run_id, ev("hook_created", "hook_b", token="tok"))
    assert again.event.event_type == "hook_created"
    assert world.hooks.get_by_token("tok").hook_id == "hook_b"
    with pytest.raises(HookNotFoundError):
        world.hooks.get("hook_missing")
    assert_consistent(world, run_id)


def test_hook_conflict(world: World) -> None:
    holder_run = new_run(world)
    other_run = new_run(world)
    world.events.create(holder_run, ev("hook_created", "hook_a", token="shared"))
    result = world.events.create(other_run, ev("hook_created", "hook_b", token="shared"))
    assert result.event.event_type == "hook_conflict"
    assert result.event.data == {"token": "shared", "conflicting_run_id": holder_run}
    assert result.hook is not None and result.hook.status == "conflicted"
    assert world.hooks.get_by_token("shared").hook_id == "hook_a"
    assert [e.event_type for e in world.events.list(other_run)][-1] == "hook_conflict"
    assert {h.hook_id for h in world.hooks.list()} >= {"hook_a"}
    assert [h.hook_id for h in world.hooks.list(run_id=holder_run)] == ["hook_a"]
    assert_consistent(world, holder_run)
    assert_consistent(world, other_run)


def test_terminal_run_releases_hooks_and_waits(world: World) -> None:
    run_id = new_run(world)
    world.events.create_batch(
        run_id,
        [
            ev("hook_created", "hook_a", token="t1"),
            ev("hook_created", "hook_b", token="t2"),
            ev("wait_created", "wait_a", resume_at=_future()),
        ],
    )
    world.events.create(run_id, ev("hook_disposed", "hook_b"))
    done = world.events.create(run_id, ev("run_completed", output=None))
    at = done.event.created_at
    assert [(h.hook_id, h.status) for h in world.hooks.list(run_id=run_id)] == [
        ("hook_a", "disposed"),
        ("hook_b", "disposed"),
    ]
    assert world.hooks.get("hook_a").updated_at == at
    wait = world.waits.get(run_id, "wait_a")
    assert wait.status == "completed" and wait.completed_at == at
    with pytest.raises(HookNotFoundError):
        world.hooks.get_by_token("t1")
    other = new_run(world)
    assert world.events.create(other, ev("hook_created", "hook_c", token="t1")).hook is not None
    assert world.hooks.get_by_token("t1").run_id == other
    assert_consistent(world, run_id)


# --- waits -----------------------------------------------------------------


def test_wait_completes_once(world: World) -> None:
    run_id = new_run(world)
    resume_at = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    created = world.events.create(
        run_id, ev("wait_created", "wait_a", resume_at=resume_at.isoformat())
    )
    assert created.wait is not None and created.wait.status == "waiting"
    assert created.wait.resume_at == resume_at
    done = world.events.create(run_id, ev("wait_completed", "wait_a"))
    assert done.wait is not None and done.wait.status == "completed"
    assert done.wait.completed_at == done.event.created_at
    assert world.waits.list(run_id) == [done.wait]
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        lambda: world.events.create(run_id, ev("wait_completed", "wait_a")),
    )
    assert_refused(
        world,
        run_id,
        EntityConflictError,
        lambda: world.events.create(run_id, ev("wait_created", "wait_a", resume_at=_future())),
    )
    assert_refused(
        world,
        run_id,
        WaitNotFoundError,
        lambda: world.events.create(run_id, ev("wait_completed", "wait_missing")),
    )
    assert_refused(
        world,
        run_id,
        InvalidEventError,
        lambda: world.events.create(run_id, ev("wait_created", "wait_b", resume_at="soon")),
    )
    with pytest.raises(WaitNotFoundError):
        world.waits.get(run_id, "wait_missing")
    assert_consistent(world, run_id)


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
            [ev("wait_created", "wait_a", resume_at=_future()), ev("step_started", None)],
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
            ev("wait_created", f"wait_{index}", resume_at=_future(index)),
            ev("hook_created", f"hook_{index}", token=f"tok_{index % 7}"),
        ]
        if open_steps[run_id]:
            target = rng.choice(open_steps[run_id])
            candidates += [
                ev("step_started", target),
                ev("step_completed", target, result=index),
                ev("step_retrying", target, error={"n": index}, retry_after=_future()),
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


def test_empty_batch_writes_nothing(world: World) -> None:
    run_id = new_run(world)
    before = snapshot(world, run_id)
    assert world.events.create_batch(run_id, []) == []
    assert snapshot(world, run_id) == before


def test_hook_events_need_the_hooks_own_run(world: World) -> None:
    owner = new_run(world)
    other = new_run(world)
    world.events.create(owner, ev("hook_created", "hook_a", token="mine"))
    for request in (ev("hook_received", "hook_a", payload=1), ev("hook_disposed", "hook_a")):
        assert_refused(
            world, other, HookNotFoundError, partial(world.events.create, other, request)
        )
    assert world.hooks.get_by_token("mine").run_id == owner


def test_step_events_on_a_pending_run(world: World) -> None:
    run_id = new_run(world, started=False)
    results = world.events.create_batch(
        run_id, [ev("step_created", "step_a", step_name="s"), ev("step_started", "step_a")]
    )
    assert results[1].step is not None and results[1].step.status == "running"
    assert world.runs.get(run_id).status == "pending"
    assert_consistent(world, run_id)


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
