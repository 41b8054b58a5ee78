"""Conformance tests of the lifecycle rules: runs, steps, hooks, waits, batches, folds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from wfkit.worlds.base import (
    EntityConflictError,
    EventRequest,
    HookNotFoundError,
    InvalidEventError,
    RunNotFoundError,
    StepNotFoundError,
    WaitNotFoundError,
    World,
    diff_run_records,
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


def future_iso(seconds: float = 60.0) -> str:
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
        ev("wait_created", "wait_1", resume_at=future_iso()),
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
            ev("wait_created", "wait_a", resume_at=future_iso()),
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
        lambda: world.events.create(run_id, ev("wait_created", "wait_a", resume_at=future_iso())),
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


# --- patch markers -----------------------------------------------------------


def test_patch_marked_is_logged_for_a_running_run_and_changes_no_record(world: World) -> None:
    run_id = new_run(world)
    before = snapshot(world, run_id)
    result = world.events.create(run_id, ev("patch_marked", patch_id="extra-step"))
    assert result.event.event_type == "patch_marked"
    assert result.event.data == {"patch_id": "extra-step"}
    assert [e.event_type for e in world.events.list(run_id)][-1] == "patch_marked"
    after = snapshot(world, run_id)
    # the run record (its updated_at too), steps, hooks, waits, messages: untouched
    assert (after[0], *after[2:]) == (before[0], *before[2:])
    assert_consistent(world, run_id)


def test_patch_marked_refusals_write_nothing(world: World) -> None:
    pending = new_run(world, started=False)
    assert_refused(
        world,
        pending,
        EntityConflictError,
        partial(world.events.create, pending, ev("patch_marked", patch_id="p")),
    )
    running = new_run(world)
    for bad in ({}, {"patch_id": ""}, {"patch_id": 3}):
        assert_refused(
            world,
            running,
            InvalidEventError,
            partial(world.events.create, running, ev("patch_marked", **bad)),
        )
    world.events.create(running, ev("run_completed", output=None))
    assert_refused(
        world,
        running,
        EntityConflictError,
        partial(world.events.create, running, ev("patch_marked", patch_id="p")),
    )


# --- retried runs ------------------------------------------------------------


def test_run_retried_reopens_a_failed_run_and_the_waits_its_failure_released(
    world: World,
) -> None:
    run_id = new_run(world)
    early_at = datetime.now(UTC) - timedelta(seconds=5)
    early = early_at.isoformat()
    world.events.create_batch(
        run_id,
        [
            ev("wait_created", "wait_done", resume_at=early),
            EventRequest(
                event_type="wait_completed", correlation_id="wait_done", created_at=early_at
            ),
            ev("wait_created", "wait_open", resume_at=future_iso()),
            ev("hook_created", "hook_1", token=f"retry-{run_id}"),
        ],
    )
    world.events.create(run_id, ev("run_failed", error={"message": "boom"}))
    failed = world.runs.get(run_id)
    assert failed.status == "failed"
    assert {w.wait_id: w.status for w in world.waits.list(run_id)} == {
        "wait_done": "completed",
        "wait_open": "completed",
    }

    result = world.events.create(run_id, ev("run_retried"))
    assert result.event.event_type == "run_retried" and result.run is not None
    run = world.runs.get(run_id)
    assert run.status == "running"
    assert run.error is None and run.completed_at is None
    assert run.started_at == failed.started_at
    waits = {w.wait_id: w for w in world.waits.list(run_id)}
    # only the wait the failure released is open again; the other was really completed
    assert waits["wait_open"].status == "waiting" and waits["wait_open"].completed_at is None
    assert waits["wait_done"].status == "completed"
    # hooks are not revived: the failure's disposal stands
    assert [h.status for h in world.hooks.list(run_id=run_id)] == ["disposed"]
    assert_consistent(world, run_id)

    # the retried run goes on as a running run: its reopened wait completes, it ends
    world.events.create(run_id, ev("wait_completed", "wait_open"))
    world.events.create(run_id, ev("run_completed", output=None))
    assert world.runs.get(run_id).status == "completed"
    assert [e.event_type for e in world.events.list(run_id)].count("run_retried") == 1
    assert_consistent(world, run_id)


def test_run_retried_is_refused_unless_the_run_failed(world: World) -> None:
    pending = new_run(world, started=False)
    running = new_run(world)
    completed = new_run(world)
    world.events.create(completed, ev("run_completed", output=None))
    cancelled = new_run(world)
    world.events.create(cancelled, ev("run_cancelled", reason=None))
    for run_id, status in (
        (pending, "pending"),
        (running, "running"),
        (completed, "completed"),
        (cancelled, "cancelled"),
    ):
        before = snapshot(world, run_id)
        with pytest.raises(EntityConflictError, match=f"is {status}; only a failed run"):
            world.events.create(run_id, ev("run_retried"))
        assert snapshot(world, run_id) == before
    with pytest.raises(RunNotFoundError):
        world.events.create("wrun_missing", ev("run_retried"))
    # retried once, it is running: a second retry is refused too
    failed = new_run(world)
    world.events.create(failed, ev("run_failed", error={"message": "x"}))
    world.events.create(failed, ev("run_retried"))
    assert_refused(
        world, failed, EntityConflictError, partial(world.events.create, failed, ev("run_retried"))
    )
