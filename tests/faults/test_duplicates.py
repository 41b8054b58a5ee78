"""Duplicate deliveries and racing workers change nothing (DESIGN.md §7 Faults).

Two ``Worker`` instances in one process (each with its own connection to the world;
on memory, the same object) race over the same runs, while every run's workflow
message is delivered several extra times (copies enqueued without an idempotency
key) and, once steps exist, every step gets extra step messages as well. Every run
completes with the right result, each step has exactly one ``step_completed``, and
``verify_world`` finds the records equal to the logs. On memory, local and Postgres.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    ALL_WORLDS,
    WorldHandle,
    assert_recorded_once,
    run_async,
)
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.messages import step_message, wake_run
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.verify import verify_world
from wfkit.worlds.base import STEP_TERMINAL


async def _flood_step_messages(world: Any, run_ids: list[str], stop: asyncio.Event) -> int:
    """Give every step that is not yet terminal two extra step messages (no key)."""
    flooded: set[str] = set()
    while not stop.is_set():
        for run_id in run_ids:
            for step in world.steps.list(run_id):
                if step.step_id in flooded or step.status in STEP_TERMINAL:
                    continue
                flooded.add(step.step_id)
                deployment_id = world.runs.get(run_id).deployment_id
                message = step_message(
                    run_id, step.step_id, step.step_name, deployment_id=deployment_id
                )
                for _ in range(2):
                    world.queue.enqueue(message.queue, message.payload)
        await asyncio.sleep(0.02)
    return len(flooded)


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "queued"])
@pytest.mark.parametrize("kind", ALL_WORLDS)
def test_duplicate_deliveries_and_racing_workers_change_nothing(
    kind: str, inline: bool, make_world: Callable[[str], WorldHandle]
) -> None:
    handle = make_world(kind)
    world = handle.world
    second = handle.reopen()

    async def scenario() -> tuple[list[Any], int]:
        runs = [await start(faults.chain, 4, 0.02, world=world) for _ in range(4)]
        runs += [await start(faults.fan, 6, 0.02, world=world) for _ in range(3)]
        runs += [await start(faults.napper, 0.3, 0.02, world=world) for _ in range(2)]
        for run in runs:
            for _ in range(3):
                wake_run(world, run.run_id)
        stop = asyncio.Event()
        workers = [
            Worker(w, concurrency=4, poll_interval=0.01, lease_seconds=5, inline_steps=inline)
            for w in (world, second)
        ]
        tasks = [asyncio.create_task(w.run(stop_event=stop)) for w in workers]
        flooding = asyncio.create_task(_flood_step_messages(world, [r.run_id for r in runs], stop))
        try:
            results = [await run.result(timeout=30) for run in runs]
        finally:
            stop.set()
            await asyncio.gather(*tasks)
        return results, await flooding

    try:
        results, flooded = run_async(scenario(), timeout=60)
    finally:
        if second is not world:
            second.close()
    assert results == (
        [list(range(4))] * 4
        + [{"squares": [i * i for i in range(6)], "tail": [-1, -2]}] * 3
        + [{"steps": [1, 2]}] * 2
    )
    assert flooded > 0
    run_ids = [r.run_id for r in world.runs.list(limit=100)]
    assert len(run_ids) == 9
    assert_recorded_once(world, run_ids)
    assert verify_world(world) == []


@pytest.mark.parametrize("kind", ALL_WORLDS)
def test_a_workflow_message_delivered_twice_at_once(
    kind: str, make_world: Callable[[str], WorldHandle]
) -> None:
    """Two workers each hold a copy of the same run's message at the same moment and
    handle them concurrently: one wins each write, the other catches up; the run
    completes once."""
    handle = make_world(kind)
    world = handle.world
    second = handle.reopen()

    async def scenario() -> Any:
        run = await start(faults.fan, 8, 0.05, world=world)
        wake_run(world, run.run_id)
        workers = [Worker(w, concurrency=1, poll_interval=0.01) for w in (world, second)]
        # Each takes one copy before either handles it.
        taken = [await w.poll_once() for w in workers]
        assert taken == [1, 1]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(w.run(stop_event=stop)) for w in workers]
        try:
            return await run.result(timeout=30)
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    try:
        result = run_async(scenario(), timeout=60)
    finally:
        if second is not world:
            second.close()
    assert result == {"squares": [i * i for i in range(8)], "tail": [-1, -2]}
    (record,) = world.runs.list()
    assert_recorded_once(world, [record.run_id])
    assert verify_world(world) == []


@pytest.mark.parametrize("kind", ALL_WORLDS)
def test_a_stale_ack_leaves_a_redelivered_message_alone(
    kind: str, make_world: Callable[[str], WorldHandle]
) -> None:
    world = make_world(kind).world
    world.queue.enqueue("__wkf_workflow_probe", {"run_id": "wrun_probe"})
    (stale,) = world.queue.receive(["__wkf_workflow_"], lease_seconds=0.1)
    time.sleep(0.3)  # the first holder stalls past its lease
    (current,) = world.queue.receive(["__wkf_workflow_"], lease_seconds=30)
    assert current.message_id == stale.message_id and current.attempt == stale.attempt + 1
    # The first holder wakes up and settles with its (stale) lease token: nothing happens.
    world.queue.ack(stale.message_id, attempt=stale.attempt)
    world.queue.nack(stale.message_id, attempt=stale.attempt)
    world.queue.extend_lease(stale.message_id, lease_seconds=0, attempt=stale.attempt)
    assert "wrun_probe" in world.queue.live_run_ids()  # the second holder still owns it
    assert world.queue.receive(["__wkf_workflow_"], lease_seconds=30) == []  # still leased
    world.queue.ack(current.message_id, attempt=current.attempt)
    assert "wrun_probe" not in world.queue.live_run_ids()
