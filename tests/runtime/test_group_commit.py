"""Group commit across runs (issue #13): the writes of a worker's runs that are
ready together share one transaction, and each run still gets its own outcome."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.counting import CountingEvents
from tests.runtime import wf_helpers
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.group_commit import GroupCommitter
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.base import (
    BatchOutcome,
    BatchWrite,
    EntityConflictError,
    EventRequest,
    EventResult,
    World,
    WorldError,
)
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.memory import MemoryWorld


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


def _world(kind: str, tmp_path: Path) -> World:
    if kind == "memory":
        return MemoryWorld()
    return LocalWorld.from_spec(f"sqlite:///{tmp_path / 'group.db'}")


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_concurrent_runs_share_commits(kind: str, tmp_path: Path) -> None:
    world = _world(kind, tmp_path)
    runs_count, steps = 60, 5

    async def scenario() -> list[Any]:
        runs = [await start(wf_helpers.sequential, steps, world=world) for _ in range(runs_count)]
        counting = CountingEvents(world.events)
        world.events = counting
        worker = Worker(world=world, concurrency=runs_count, sweep_interval=0)
        try:
            await worker.drain(timeout=60)
        finally:
            worker.close()
            world.events = counting.inner
        results = [await run.result(timeout=5) for run in runs]
        # One write per step (its outcome with the next step's creation) plus the first
        # creation per run: written one by one that is 6 transactions per run.
        assert counting.writes >= runs_count * steps
        assert counting.transactions < counting.writes / 4, vars(counting)
        assert counting.largest_group > 1
        return results

    try:
        assert asyncio.run(scenario()) == [sum(range(steps))] * runs_count
    finally:
        world.close()


@pytest.mark.parametrize("in_loop", [False, True])
def test_a_refused_write_fails_only_its_own_run(in_loop: bool) -> None:
    world = MemoryWorld()
    committer = GroupCommitter(world.events, crowded=lambda: True, in_loop=in_loop)

    async def scenario() -> list[Any]:
        runs = [(await start(wf_helpers.sequential, 1, world=world)).run_id for _ in range(3)]
        heads = [world.events.list(r)[-1].event_id for r in runs]
        world.events.create(runs[1], EventRequest(event_type="run_started"))  # heads[1] is stale
        writes = [
            BatchWrite(run_id, [EventRequest(event_type="run_started")], (), head)
            for run_id, head in zip(runs, heads, strict=True)
        ]
        return await asyncio.gather(*(committer.write(w) for w in writes), return_exceptions=True)

    try:
        first, refused, last = asyncio.run(scenario())
    finally:
        committer.close()
    assert isinstance(refused, EntityConflictError)
    assert [r.event.event_type for r in first] == ["run_started"]
    assert [r.event.event_type for r in last] == ["run_started"]


class FailingOnce(CountingEvents):
    """``create_batches`` that fails as a whole the first time (a lost connection)."""

    def create_batches(self, writes: Sequence[BatchWrite]) -> list[BatchOutcome]:
        if not self.transactions:
            self.transactions += 1
            raise WorldError("connection lost")
        return super().create_batches(writes)


@pytest.mark.parametrize("in_loop", [False, True])
def test_a_failed_group_fails_each_of_its_writes_and_the_next_group_goes_on(
    in_loop: bool,
) -> None:
    world = MemoryWorld()
    events = FailingOnce(world.events)
    committer = GroupCommitter(events, crowded=lambda: True, in_loop=in_loop)

    async def scenario() -> tuple[list[Any], list[EventResult]]:
        runs = [(await start(wf_helpers.sequential, 1, world=world)).run_id for _ in range(3)]
        writes = [BatchWrite(r, [EventRequest(event_type="run_started")]) for r in runs]
        failed = await asyncio.gather(*(committer.write(w) for w in writes), return_exceptions=True)
        return failed, await committer.write(writes[0])

    try:
        failed, retried = asyncio.run(scenario())
    finally:
        committer.close()
    assert [type(f) for f in failed] == [WorldError] * 3
    assert [r.event.event_type for r in retried] == ["run_started"]


@pytest.mark.parametrize("in_loop", [False, True])
def test_writes_of_one_tick_share_a_group(in_loop: bool) -> None:
    """Writes issued in the same loop iteration go out as one group, on the loop
    (``in_loop``: no writer thread is started) or from the writer thread."""
    world = MemoryWorld()
    events = CountingEvents(world.events)
    committer = GroupCommitter(events, crowded=lambda: True, in_loop=in_loop)

    async def scenario() -> list[list[EventResult]]:
        runs = [(await start(wf_helpers.sequential, 1, world=world)).run_id for _ in range(5)]
        writes = [BatchWrite(r, [EventRequest(event_type="run_started")]) for r in runs]
        return await asyncio.gather(*(committer.write(w) for w in writes))

    try:
        results = asyncio.run(scenario())
        assert (committer._executor is None) is in_loop
    finally:
        committer.close()
    assert [[r.event.event_type for r in rs] for rs in results] == [["run_started"]] * 5
    assert (events.transactions, events.largest_group) == (1, 5)


def test_in_process_worlds_write_groups_on_the_loop(tmp_path: Path) -> None:
    """Memory and local worlds commit in-process: a worker's groups are written on
    its loop, without the writer thread; other worlds keep the thread."""
    from wfkit.runtime.engine.orchestrator import Orchestrator

    for kind in ("memory", "local"):
        world = _world(kind, tmp_path)
        try:
            assert Orchestrator(world)._committer.in_loop
        finally:
            world.close()

    class Elsewhere:
        name = "postgres"
        events = MemoryWorld().events

    assert not Orchestrator(Elsewhere())._committer.in_loop  # type: ignore[arg-type]


def test_step_concurrency_holds_while_runs_write_together() -> None:
    """Runs whose writes are in flight together may not all claim the same free
    inline slots: beyond ``step_concurrency`` a step goes to the queue instead of
    running inline."""
    world = MemoryWorld()
    workers: list[Worker] = []
    running_seen: list[int] = []

    async def _peek() -> int:
        running_seen.append(workers[0].orchestrator.inline_steps_running)
        await asyncio.sleep(0.02)
        return 1

    peek = wf_helpers.step("peek", _peek)

    async def _once() -> int:
        return int(await peek())

    once = wf_helpers.workflow("once", _once)

    async def scenario() -> list[Any]:
        runs = [await start(once, world=world) for _ in range(12)]
        worker = Worker(world=world, concurrency=12, step_concurrency=2, sweep_interval=0)
        workers.append(worker)
        try:
            await worker.drain(timeout=30)
        finally:
            worker.close()
        return [await r.result(timeout=5) for r in runs]

    assert asyncio.run(scenario()) == [1] * 12
    assert max(running_seen) <= 2, running_seen


def test_a_group_that_finds_the_lock_held_elsewhere_lets_the_loop_run_first(
    tmp_path: Path,
) -> None:
    """Local: while another process holds the database's write lock, a group on the
    loop does not block it at once: the callbacks ready by then run first, then the
    group is written (waiting for the lock), each write with its outcome."""
    world = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'group.db'}")
    other = LocalWorld.from_spec(f"sqlite:///{tmp_path / 'group.db'}")  # another process's gate
    committer = GroupCommitter(world.events, crowded=lambda: True, in_loop=True)
    order: list[str] = []

    held = threading.Event()

    def hold_the_lock() -> None:
        fd = other._gate.acquire()
        held.set()
        time.sleep(0.3)
        order.append("released")
        other._gate.release(fd)

    async def tick() -> None:
        order.append("tick")

    async def scenario() -> list[list[EventResult]]:
        runs = [(await start(wf_helpers.sequential, 1, world=world)).run_id for _ in range(3)]
        heads = [world.events.list(r)[-1].event_id for r in runs]
        writes = [
            BatchWrite(r, [EventRequest(event_type="run_started")], (), head)
            for r, head in zip(runs, heads, strict=True)
        ]
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        held.wait()
        written = asyncio.gather(*(committer.write(w) for w in writes))
        await asyncio.sleep(0)  # the writes are pending, their group's callback scheduled
        ticked = asyncio.ensure_future(tick())  # ready after the group's first try
        results = await written
        order.append("written")
        await ticked
        return results

    try:
        results = asyncio.run(scenario())
    finally:
        committer.close()
        other.close()
    assert order == ["tick", "released", "written"]
    assert [[r.event.event_type for r in rs] for rs in results] == [["run_started"]] * 3
    for rs in results:
        assert world.runs.get(rs[0].event.run_id).status == "running"
    world.close()
