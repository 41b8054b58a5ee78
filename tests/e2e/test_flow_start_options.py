"""Idempotency keys and run deadlines on ``start`` (issue 13, DESIGN §6c), on every world."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examples.e2e import flow
from tests.e2e.conftest import run_async, running_worker
from wfkit.runtime.api.client import (
    Run,
    get_hook_by_token_sync,
    resume_hook_sync,
    start,
    start_sync,
)
from wfkit.runtime.errors import (
    HookNotFoundError,
    RunDeadlineExceededError,
    WorkflowRunFailedError,
)
from wfkit.worlds import create_world

# --- idempotency keys ------------------------------------------------------------------


def test_the_same_key_returns_the_existing_run(world: Any) -> None:
    async def scenario() -> None:
        first = await start(flow.greet, "ann", world=world, idempotency_key="order-42")
        # Other arguments, same key: still the first run, and nothing new is started.
        second = await start(flow.greet, "bob", world=world, idempotency_key="order-42")
        other = await start(flow.greet, "cid", world=world, idempotency_key="order-43")
        assert second.run_id == first.run_id
        assert other.run_id != first.run_id
        async with running_worker(world):
            assert await first.result(timeout=30) == "hello ann"
            assert await other.result(timeout=30) == "hello cid"
        assert world.runs.get_by_idempotency_key("order-42").run_id == first.run_id
        created = [r for r in world.runs.list(limit=100) if r.idempotency_key == "order-42"]
        assert len(created) == 1

    run_async(scenario())


def test_racing_starts_with_one_key_make_one_run(world: Any) -> None:
    """Starts from several threads, each with its own connection for the SQL worlds (as
    separate processes would have), all with one key: one run, every caller gets it."""
    spec = getattr(world, "path", None)
    handles: list[Any] = []
    if world.name == "local":
        handles = [create_world(f"sqlite:///{spec}") for _ in range(4)]
    elif world.name == "postgres":
        handles = [create_world(_spec_of(world)) for _ in range(4)]
    else:
        handles = [world] * 4
    barrier = threading.Barrier(len(handles))
    ids: list[str] = []
    lock = threading.Lock()

    def racer(target: Any) -> None:
        barrier.wait()
        run = start_sync(flow.greet, "x", world=target, idempotency_key="race-1")
        with lock:
            ids.append(run.run_id)

    threads = [threading.Thread(target=racer, args=(h,)) for h in handles]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        if world.name != "memory":
            for handle in handles:
                handle.close()
    assert len(ids) == len(handles)
    assert len(set(ids)) == 1
    assert [r.run_id for r in world.runs.list(limit=100)] == ids[:1]


def _spec_of(world: Any) -> str:
    url = world.url.render_as_string(hide_password=False)
    return f"{url}{'&' if '?' in url else '?'}schema={world.schema}"


def test_a_bad_idempotency_key_is_one_line_and_writes_nothing(world: Any) -> None:
    with pytest.raises(ValueError, match="idempotency_key=''"):
        start_sync(flow.greet, "x", world=world, idempotency_key="")
    assert world.runs.list() == []


# --- deadlines -------------------------------------------------------------------------


def test_a_run_past_its_deadline_fails_and_releases_its_hook(world: Any) -> None:
    async def scenario() -> None:
        async with running_worker(world):
            run = await start(
                flow.wait_on_hook, "deadline:hook", world=world, deadline=timedelta(seconds=1)
            )
            await _until(lambda: _hook_is_live("deadline:hook", world))
            with pytest.raises(WorkflowRunFailedError) as failed:
                await run.result(timeout=20)
        assert failed.value.error_code == "RUN_DEADLINE_EXCEEDED"
        assert isinstance(failed.value.cause, RunDeadlineExceededError)
        assert "deadline" in str(failed.value.cause)
        with pytest.raises(HookNotFoundError):
            resume_hook_sync("deadline:hook", {"late": True}, world=world)
        record = world.runs.get(run.run_id)
        assert record.status == "failed"
        assert record.completed_at is not None and record.deadline_at is not None
        assert record.completed_at >= record.deadline_at

    run_async(scenario())


def test_a_deadline_stops_a_sleeping_run_and_a_slow_step(world: Any) -> None:
    async def scenario() -> None:
        async with running_worker(world):
            sleeper = await start(flow.nap, 60, world=world, deadline=timedelta(seconds=1))
            stepper = await start(
                flow.slow_then_more,
                30,
                world=world,
                deadline=datetime.now(UTC) + timedelta(seconds=1),
            )
            began = time.monotonic()
            for run in (sleeper, stepper):
                with pytest.raises(WorkflowRunFailedError) as failed:
                    await run.result(timeout=20)
                assert failed.value.error_code == "RUN_DEADLINE_EXCEEDED"
            assert time.monotonic() - began < 10
        # The slow step never completed and the step after it never started.
        steps = world.steps.list(stepper.run_id)
        assert [s.status for s in steps] == ["running"]
        assert [w.status for w in world.waits.list(sleeper.run_id)] == ["completed"]

    run_async(scenario())


def test_a_run_that_ends_in_time_is_not_touched_by_its_deadline(world: Any) -> None:
    async def scenario() -> None:
        async with running_worker(world):
            run = await start(flow.greet, "in time", world=world, deadline=timedelta(seconds=2))
            assert await run.result(timeout=20) == "hello in time"
            await asyncio.sleep(2.5)  # the deadline's wake-up comes and finds it ended
        assert world.runs.get(run.run_id).status == "completed"

    run_async(scenario())


def test_bad_deadlines_are_one_line_errors(world: Any) -> None:
    with pytest.raises(ValueError, match="naive"):
        start_sync(flow.greet, "x", world=world, deadline=datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="negative"):
        start_sync(flow.greet, "x", world=world, deadline=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="'soon'"):
        start_sync(flow.greet, "x", world=world, deadline="soon")
    with pytest.raises(TypeError, match="duration string, a timedelta or an aware datetime"):
        start_sync(flow.greet, "x", world=world, deadline=3600)  # type: ignore[arg-type]
    assert world.runs.list() == []


def test_a_deadline_as_a_duration_string_reads_as_sleep_reads_it(world: Any) -> None:
    before = datetime.now(UTC)
    run = start_sync(flow.greet, "x", world=world, deadline="1h30m")
    deadline_at = world.runs.get(run.run_id).deadline_at
    assert deadline_at is not None
    assert timedelta(minutes=89) < deadline_at - before < timedelta(minutes=91)


def _hook_is_live(token: str, world: Any) -> bool:
    try:
        get_hook_by_token_sync(token, world=world)
    except HookNotFoundError:
        return False
    return True


async def _until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("parent", ["child_on_a_queue", "child_with_a_priority"])
def test_flow_options_on_a_child_start_in_a_workflow_fail_the_run_clearly(
    world: Any, parent: str
) -> None:
    """Refused rather than dropped: a child's priority (or key) without effect would
    go unnoticed."""

    async def scenario() -> None:
        async with running_worker(world):
            run = await start(getattr(flow, parent), world=world)
            with pytest.raises(WorkflowRunFailedError) as failed:
                await run.result(timeout=30)
        assert "takes no idempotency_key, deadline or queue (nor key or priority" in str(
            failed.value
        )
        assert len(world.runs.list()) == 1  # no child was started

    run_async(scenario())


def test_a_step_starts_a_run_with_flow_options_once_across_its_retries(world: Any) -> None:
    """Starting runs from a step is how a workflow gives them flow-control options
    (a child started in workflow code refuses them, above)."""

    async def scenario() -> None:
        async with running_worker(world):
            parent = await start(flow.parent_via_a_step, "dee", world=world)
            child_id = await parent.result(timeout=30)
            assert await Run(child_id, world).result(timeout=30) == "hello dee"
        record = world.runs.get(child_id)
        assert (record.queue_name, record.queue_key, record.queue_priority) == (
            "flow_throttled",
            "dee",
            1,
        )
        assert record.admitted_by is not None and record.idempotency_key == "greeting:dee"
        assert record.deadline_at is not None
        assert record.deadline_at - record.created_at == pytest.approx(
            timedelta(minutes=5), abs=timedelta(seconds=10)
        )
        (step,) = world.steps.list(parent.run_id)
        assert step.attempt == 2  # retried, and still one child
        children = [r for r in world.runs.list(limit=100) if r.workflow_name.endswith("//greet")]
        assert [r.run_id for r in children] == [child_id]

    run_async(scenario())
