"""A workflow message found on an unpinned queue (a wfkit 0.1.0 worker's sweep
re-enqueues every run under 0.1.0's names) is moved to its run's own queue when the
run is pinned. The handler asks (``moved_if_pinned``) as soon as it has the run's
record, which a cold handler reads anyway, before anything is replayed or written;
the worker no longer reads the record first (``serving.reroute_if_pinned``)."""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Iterator
from typing import Any

import pytest

from tests.runtime import wf_helpers
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.orchestrator import Orchestrator
from wfkit.worlds.base import Run
from wfkit.worlds.memory import MemoryWorld


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


class _Spy:
    """A ``moved_if_pinned`` that records what it was given and answers ``moved``."""

    def __init__(self, moved: bool) -> None:
        self.moved = moved
        self.given: list[Run | None] = []

    def __call__(self, run: Run | None) -> bool:
        self.given.append(run)
        return self.moved


def _types(world: MemoryWorld, run_id: str) -> list[str]:
    return [e.event_type for e in world.events.list(run_id)]


def test_a_cold_handler_asks_with_the_record_it_read_and_a_moved_message_does_nothing() -> None:
    world = MemoryWorld()
    orchestrator = Orchestrator(world)

    async def scenario() -> None:
        run = await start(wf_helpers.sequential, 3, world=world)
        moved = _Spy(moved=True)
        await orchestrator.handle_workflow_message(run.run_id, moved_if_pinned=moved)
        assert [r.run_id if r else None for r in moved.given] == [run.run_id]
        assert moved.given[0] == world.runs.get(run.run_id)  # the world's record
        assert _types(world, run.run_id) == ["run_created"]  # nothing replayed or written
        assert orchestrator.cached_runs == 0

        kept = _Spy(moved=False)
        await orchestrator.handle_workflow_message(run.run_id, moved_if_pinned=kept)
        assert len(kept.given) == 1
        assert world.runs.get(run.run_id).status == "completed"

    asyncio.run(scenario())
    orchestrator.close()


def test_a_cached_run_is_asked_with_its_record_and_a_moved_message_leaves_it_cached() -> None:
    world = MemoryWorld()
    orchestrator = Orchestrator(world, inline_wait_seconds=0)

    async def scenario() -> None:
        run = await start(wf_helpers.sleeper, 3600, world=world)
        await orchestrator.handle_workflow_message(run.run_id)
        assert orchestrator.cached_runs == 1
        logged = _types(world, run.run_id)

        moved = _Spy(moved=True)
        await orchestrator.handle_workflow_message(run.run_id, moved_if_pinned=moved)
        (given,) = moved.given
        assert given is not None and (given.run_id, given.status) == (run.run_id, "running")
        assert orchestrator.cached_runs == 1
        assert _types(world, run.run_id) == logged

        kept = _Spy(moved=False)
        await orchestrator.handle_workflow_message(run.run_id, moved_if_pinned=kept)
        assert len(kept.given) == 1 and kept.given[0] is not None
        assert orchestrator.cached_runs == 1

    asyncio.run(scenario())
    orchestrator.close()


def test_a_message_for_a_run_being_handled_is_asked_before_it_nudges() -> None:
    """While the run's handler has not read the record yet, the record is read for the
    question (None given); once it has, that record is given."""
    world = MemoryWorld()
    orchestrator = Orchestrator(world)

    async def scenario() -> None:
        run = await start(wf_helpers.sequential, 2, world=world)
        first = asyncio.create_task(orchestrator.handle_workflow_message(run.run_id))
        await asyncio.sleep(0)  # the first handler is in its first turn: no record yet
        early = _Spy(moved=True)
        await orchestrator.handle_workflow_message(run.run_id, moved_if_pinned=early)
        assert early.given == [None]
        await first
        assert world.runs.get(run.run_id).status == "completed"

        slow = await start(wf_helpers.one_slow, 0.2, world=world)
        handling = asyncio.create_task(orchestrator.handle_workflow_message(slow.run_id))
        while not orchestrator.inline_steps_running:
            await asyncio.sleep(0.01)  # its step runs: the handler has the record
        later = _Spy(moved=False)
        await orchestrator.handle_workflow_message(slow.run_id, moved_if_pinned=later)
        (given,) = later.given
        assert given is not None and (given.run_id, given.status) == (slow.run_id, "running")
        await handling
        assert world.runs.get(slow.run_id).status == "completed"

    asyncio.run(scenario())
    orchestrator.close()
