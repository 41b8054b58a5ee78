"""SCENARIOS.md 2-7 with TaskGroup and create_task, tasks iterated out of sets across
restarts (issue 14), and a code change under a running run (issue 9), on every world."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from examples.e2e import structured
from tests.conftest import postgres_url
from tests.e2e.conftest import events_of, run_async, run_to_end, running_worker, types_of
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    assert_recorded_once,
    wait_until,
)
from wfkit import WorkflowRunFailedError, start
from wfkit.runtime.api.client import Run, start_sync
from wfkit.worlds import create_world
from wfkit.worlds.base import RUN_TERMINAL


async def _until(predicate: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def _completed_steps(world: Any, run_id: str) -> int:
    return types_of(world, run_id).count("step_completed")


def _completed_once(world: Any, run_id: str) -> Counter[str]:
    completed = Counter(
        e.correlation_id for e in events_of(world, run_id) if e.event_type == "step_completed"
    )
    assert set(completed.values()) == {1}, completed
    return completed


def test_2_task_group_of_three_fans_out_in_one_suspension(world: Any) -> None:
    run, result = run_async(run_to_end(world, structured.gather_three))
    assert result == "ABC"
    kinds = types_of(world, run.run_id)
    first = kinds.index("step_created")
    assert kinds[first : first + 3] == ["step_created"] * 3


def test_3_race_of_created_tasks_returns_the_fastest(world: Any) -> None:
    began = time.monotonic()
    run, result = run_async(run_to_end(world, structured.race))
    assert result == {"winner": "b", "tail": None}
    assert time.monotonic() - began < 8
    assert world.runs.get(run.run_id).status == "completed"


def test_3b_losing_tasks_are_recorded_and_later_replays_consume_them(world: Any) -> None:
    run, result = run_async(run_to_end(world, structured.race, True))
    assert result == {"winner": "b", "tail": "TAIL"}
    assert len(_completed_once(world, run.run_id)) == 4


def test_4_first_successful_task_skips_the_fatal_one(world: Any) -> None:
    _run, result = run_async(run_to_end(world, structured.any_success))
    assert result == "b"


def test_5_sleep_in_a_task_survives_a_worker_restart(world: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_worker(world):
            run = await start(structured.sleeper, 2, world=world)
            await _until(lambda: "wait_created" in types_of(world, run.run_id))
        # The first worker is gone mid-sleep; a fresh one (empty replay cache) wakes the run.
        async with running_worker(world):
            return run, await run.result(timeout=30)

    run, result = run_async(scenario())
    assert result["elapsed"] >= 2
    assert [w.status for w in world.waits.list(run.run_id)] == ["completed"]


def test_6_task_group_of_ten_sleeps_overlaps(world: Any) -> None:
    began = time.monotonic()
    run, result = run_async(run_to_end(world, structured.parallel_sleeps))
    assert result == 10
    assert time.monotonic() - began < 6
    assert len(world.waits.list(run.run_id)) == 10


def test_7_timeout_around_a_task_group_survives_a_worker_restart(world: Any) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with running_worker(world):
            run = await start(structured.timeout, 30, 2, world=world)
            await _until(lambda: "wait_created" in types_of(world, run.run_id))
        async with running_worker(world):
            return run, await run.result(timeout=30)

    run, result = run_async(scenario())
    assert result["outcome"] == "timed out"
    assert 2 <= result["elapsed"] < 10
    assert world.runs.get(run.run_id).status == "completed"


# --- issue 14: tasks iterated out of the set asyncio.wait returns ----------------------------


def test_results_iterated_out_of_asyncio_wait_reach_their_own_steps_on_every_replay(
    world: Any,
) -> None:
    """Without the replay cache and without inline steps every step completes through the
    queue and the run resumes in a fresh replay of its log: the tasks of ``done`` are new
    objects each time. Every echo must still get its own name (the issue saw 1 run in 3
    complete with names handed to the wrong calls)."""

    async def scenario() -> list[Any]:
        async with running_worker(world, replay_cache=False, inline_steps=False):
            runs = [await start(structured.pairs, 10, world=world) for _ in range(3)]
            return [(run, await run.result(timeout=60)) for run in runs]

    for run, result in run_async(scenario()):
        assert len(result) == 10
        assert all(name == echoed for name, echoed in result), result
        assert sorted(name for name, _ in result) == sorted(f"n{i}" for i in range(10))
        assert len(_completed_once(world, run.run_id)) == 20


def test_tasks_iterated_out_of_a_set_keep_their_order_across_a_worker_restart(
    world: Any,
) -> None:
    async def scenario() -> Any:
        # Steps through the queue, so the first worker stops between two of them.
        async with running_worker(world, inline_steps=False):
            run = await start(structured.pairs, 10, 0.2, world=world)
            # Until the ten names and two of the echoes are done.
            await _until(lambda: _completed_steps(world, run.run_id) >= 12)
        # The first worker is gone; a fresh one replays the log and carries on.
        async with running_worker(world):
            return run, await run.result(timeout=30)

    run, result = run_async(scenario())
    assert all(name == echoed for name, echoed in result), result
    assert len(_completed_once(world, run.run_id)) == 20


@pytest.fixture
def process_workers(build_dir: Path, tmp_path: Path) -> Iterator[WorkerProcesses]:
    """Real ``wfkit worker`` processes; every one left is SIGKILLed after the test."""
    procs = WorkerProcesses(build_dir, tmp_path)
    try:
        yield procs
    finally:
        procs.kill_all()


@pytest.fixture(params=PROCESS_WORLDS)
def shared_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """A world other processes can open: ``(spec, world)``."""
    if request.param == "local":
        spec = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = postgres_url()
        assert url
        spec = f"{url}{'&' if '?' in url else '?'}schema=tasks_{uuid.uuid4().hex[:12]}"
    world = create_world(spec)
    try:
        yield spec, world
    finally:
        drop = getattr(world, "drop_schema", None)
        if callable(drop):
            drop()
        world.close()


@pytest.mark.slow
def test_tasks_iterated_out_of_a_set_survive_sigkilled_workers(
    shared_world: tuple[str, Any], process_workers: WorkerProcesses
) -> None:
    """Real ``wfkit worker`` processes, one SIGKILLed every second or so and replaced: the
    runs move between processes mid-way (leases of 2 s), so the tasks in ``done`` are
    rebuilt at other addresses in other interpreters. Every echo still gets its own name."""
    spec, world = shared_world
    workers = process_workers
    rng = random.Random(14)
    for _ in range(2):
        workers.start(spec)
    run_ids = [start_sync(structured.pairs, 10, 0.15, world=world).run_id for _ in range(6)]
    for _ in range(4):
        time.sleep(rng.uniform(0.4, 1.2))
        workers.kill(rng.choice(workers.alive()))
        workers.start(spec)
    try:
        wait_until(
            lambda: all(world.runs.get(r).status in RUN_TERMINAL for r in run_ids),
            90,
            "every run to end after the kills",
            every=0.2,
        )
    except AssertionError:
        print(workers.logs())
        raise
    assert workers.kills >= 4
    for run_id in run_ids:
        record = world.runs.get(run_id)
        assert record.status == "completed", record.error
        result = Run(run_id, world).result_sync(timeout=1)
        assert all(name == echoed for name, echoed in result), result
        assert sorted(name for name, _ in result) == sorted(f"n{i}" for i in range(10))
    assert_recorded_once(world, run_ids)


# --- issue 9: the code changed under a running run -------------------------------------------


def test_a_step_added_before_a_sleep_fails_the_run_as_a_code_change(world: Any) -> None:
    from wfkit.runtime import gen
    from wfkit.runtime.engine.messages import wake_run
    from wfkit.runtime.engine.worker import Worker
    from wfkit.runtime.loading import registry

    workflow_id = "workflow//./tests/e2e/code_change//flow"
    echo = gen.step_proxy("step//./examples/e2e/structured//echo", "echo")

    async def v1() -> str:
        await asyncio.sleep(3600)  # parks the run on a durable wait
        return str(await echo("done"))

    async def v2() -> str:
        await echo("new first step")
        await asyncio.sleep(3600)
        return str(await echo("done"))

    async def scenario() -> Any:
        registry.register_workflow(workflow_id, v1)
        async with running_worker(world):
            run = await start(workflow_id, world=world)
            await _until(lambda: "wait_created" in types_of(world, run.run_id))
        registry.register_workflow(workflow_id, v2)  # "a deploy" changes the code
        wake_run(world, run.run_id)
        worker = Worker(world=world, replay_cache=False)
        await asyncio.wait_for(worker.run_until_complete(run.run_id), 20)
        try:
            await run.result(timeout=5)
        except WorkflowRunFailedError as failure:
            return run, failure
        raise AssertionError("the run did not fail")

    run, failure = run_async(scenario())
    (failed,) = [e for e in events_of(world, run.run_id) if e.event_type == "run_failed"]
    assert failed.data["error_code"] == "REPLAY_DIVERGENCE"
    message = str(failure.cause)
    assert "the code changed since the run started" in message
    assert "the log records a durable wait until" in message
    assert "the code now calls step echo('new first step')" in message
    assert "test_task_scenarios.py:" in message  # the line of v2's new step
    assert "corrupted" not in message.lower()
