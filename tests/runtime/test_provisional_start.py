"""A run's first workflow message starts it provisionally: the replay is shown a
``run_started`` stamped with its time, and the run's first write (its first step's
creation, its hooks, its ending) carries it, instead of a transaction of its own
(issue #13). Whatever the ``run_started`` write decided before still holds."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.counting import CountingEvents
from tests.runtime import wf_helpers
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.orchestrator import MAX_DELIVERIES, Orchestrator
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.base import EventRequest, World, diff_run_records
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.memory import MemoryWorld


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


@pytest.fixture(params=["memory", "local"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    instance: World = (
        MemoryWorld()
        if request.param == "memory"
        else LocalWorld.from_spec(f"sqlite:///{tmp_path / 'start.db'}")
    )
    yield instance
    instance.close()


def _types(world: World, run_id: str) -> list[str]:
    return [e.event_type for e in world.events.list(run_id)]


def _work_through(world: World, events: Any, *, steps: int) -> tuple[str, Any]:
    """Start ``wf_helpers.sequential(steps)`` and work it to its end with ``events`` (a
    wrapper of ``world.events``) as the world's log; (run id, result)."""

    async def scenario() -> tuple[str, Any]:
        run = await start(wf_helpers.sequential, steps, world=world)
        inner, world.events = world.events, events  # type: ignore[misc]
        try:
            await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, 20)
        finally:
            world.events = inner  # type: ignore[misc]
        return run.run_id, await run.result(timeout=1)

    return asyncio.run(scenario())


def test_the_first_write_starts_the_run(world: World) -> None:
    """Five sequential steps: six writes (the first step's creation with run_started,
    four outcomes each with the next creation, the last with run_completed), where
    writing run_started on its own made seven. The record equals the log's fold, and
    the run started when its run_started says."""

    counting = CountingEvents(world.events)
    run_id, result = _work_through(world, counting, steps=5)
    assert result == sum(range(5))
    writes = counting.writes
    assert writes == 6
    kinds = _types(world, run_id)
    assert kinds[:4] == ["run_created", "run_started", "step_created", "step_started"]
    assert kinds.count("run_started") == 1
    started = next(e for e in world.events.list(run_id) if e.event_type == "run_started")
    assert world.runs.get(run_id).started_at == started.created_at
    assert diff_run_records(world, run_id) == []


def test_full_replays_after_a_provisional_start_take_the_same_ids(world: World) -> None:
    """Steps from the queue and no cache: every message after the first replays the
    whole log. Their correlation ids come from the start time the first replay chose
    (provisionally), so they must agree with the log it wrote."""

    async def scenario() -> tuple[str, Any]:
        run = await start(wf_helpers.sequential, 3, world=world)
        worker = Worker(world=world, poll_interval=0.01, inline_steps=False, replay_cache=False)
        await worker.run_until_complete(run.run_id, 20)
        return run.run_id, await run.result(timeout=1)

    run_id, result = asyncio.run(scenario())
    assert result == sum(range(3))
    assert world.runs.get(run_id).status == "completed"
    assert diff_run_records(world, run_id) == []


def test_too_many_deliveries_fail_a_run_never_started(world: World) -> None:
    async def scenario() -> str:
        run = await start(wf_helpers.sequential, 1, world=world)
        orchestrator = Orchestrator(world)
        try:
            await orchestrator.handle_workflow_message(
                run.run_id, delivery_attempt=MAX_DELIVERIES + 1
            )
        finally:
            orchestrator.close()
        return run.run_id

    run_id = asyncio.run(scenario())
    assert _types(world, run_id) == ["run_created", "run_started", "run_failed"]
    assert world.runs.get(run_id).status == "failed"
    failed = world.events.list(run_id)[-1]
    assert failed.data["error_code"] == "MAX_DELIVERIES_EXCEEDED"
    assert diff_run_records(world, run_id) == []


def test_a_message_for_an_unknown_run_writes_nothing(world: World) -> None:
    async def scenario() -> None:
        orchestrator = Orchestrator(world)
        try:
            await orchestrator.handle_workflow_message("wrun_01HZZZZZZZZZZZZZZZZZZZZZZZ")
        finally:
            orchestrator.close()

    asyncio.run(scenario())
    assert world.events.list("wrun_01HZZZZZZZZZZZZZZZZZZZZZZZ") == []


def test_a_run_waiting_in_its_named_queue_is_not_started_by_a_message(world: World) -> None:
    async def scenario() -> str:
        run = await start(wf_helpers.sequential, 1, world=world, queue="narrow")
        orchestrator = Orchestrator(world)
        try:
            await orchestrator.handle_workflow_message(run.run_id)
        finally:
            orchestrator.close()
        return run.run_id

    run_id = asyncio.run(scenario())
    assert _types(world, run_id) == ["run_created"]
    assert world.runs.get(run_id).status == "pending"


def test_a_run_another_worker_started_first_replays_and_finishes(world: World) -> None:
    """Another worker writes run_started between this worker's replay and its first
    write: that write is refused (it was to go right after run_created), the session
    that saw its own run_started is replaced by a full replay of the log, and the run
    goes on from the other worker's start."""

    class StartedByAnother:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.done = False

        def create_batches(self, writes: Any) -> Any:
            if not self.done and any(
                r.event_type == "run_started" for w in writes for r in w.requests
            ):
                self.done = True
                for w in writes:
                    self.inner.create_batch(w.run_id, [EventRequest(event_type="run_started")])
            return self.inner.create_batches(writes)

        def create_batch(self, run_id: str, requests: Any, **options: Any) -> Any:
            if not self.done and any(r.event_type == "run_started" for r in requests):
                self.done = True
                self.inner.create_batch(run_id, [EventRequest(event_type="run_started")])
            return self.inner.create_batch(run_id, requests, **options)

        def __getattr__(self, name: str) -> Any:
            if name == "prepare_batches":  # groups go through create_batches, above
                raise AttributeError(name)
            return getattr(self.inner, name)

    spy = StartedByAnother(world.events)
    run_id, result = _work_through(world, spy, steps=2)
    assert spy.done
    assert result == sum(range(2))
    assert _types(world, run_id).count("run_started") == 1
    assert diff_run_records(world, run_id) == []
