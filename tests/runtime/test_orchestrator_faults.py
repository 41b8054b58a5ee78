"""The orchestrator under concurrent writers, refusals, lost messages and cache pressure."""

from __future__ import annotations

import asyncio
import importlib
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.runtime import wf_helpers
from wfkit.runtime.api.client import resume_hook_sync, start
from wfkit.runtime.engine.worker import Worker, heal
from wfkit.worlds.base import World, diff_run_records
from wfkit.worlds.memory import MemoryWorld


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


class _Spy:
    """Forwards to a world's events, counting full log reads and running a hook
    before chosen batches."""

    def __init__(self, world: World) -> None:
        self.inner = world.events
        self.full_reads = 0
        self.before_batch: list[Any] = []
        world.events = self  # type: ignore[misc]

    def list(self, run_id: str, **kwargs: Any) -> Any:
        if kwargs.get("after_event_id") is None:
            self.full_reads += 1
        return self.inner.list(run_id, **kwargs)

    def create_batch(self, run_id: str, requests: Any, **kwargs: Any) -> Any:
        for hook in list(self.before_batch):
            if hook(requests):
                self.before_batch.remove(hook)
        return self.inner.create_batch(run_id, requests, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _events(world: World, run_id: str) -> list[Any]:
    return list(world.events.list(run_id))


@pytest.mark.parametrize("cache", [True, False])
def test_cache_avoids_full_replays(cache: bool) -> None:
    world = MemoryWorld()
    spy = _Spy(world)

    async def scenario() -> Any:
        run = await start(wf_helpers.hooked, "tok-cache", world=world)
        worker = Worker(world=world, poll_interval=0.01, replay_cache=cache)
        await worker.drain(timeout=10)
        for payload in ({"n": 1}, {"n": 2}, {"n": 3, "done": True}):
            resume_hook_sync("tok-cache", payload, world=world)
            await worker.drain(timeout=10)
        return await run.result(timeout=1)

    assert len(_run(scenario())) == 3
    assert spy.full_reads == (1 if cache else 4)


@pytest.mark.parametrize("provisional", [True, False])
def test_a_write_between_feed_and_commit_is_recovered(
    provisional: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hook payload lands after an inline step finished but before its outcome is
    committed: the world refuses the batch, and the run still ends right."""
    from wfkit.runtime.engine.orchestrator import Orchestrator

    recoveries: list[bool] = []
    original = Orchestrator._recover

    async def counting(self: Orchestrator, state: Any, unwritten: Any) -> None:
        recoveries.append(unwritten.fed_provisionally)
        await original(self, state, unwritten)

    monkeypatch.setattr(Orchestrator, "_recover", counting)
    world = MemoryWorld()
    spy = _Spy(world)

    def resume_first(requests: Any) -> bool:
        if any(r.event_type == "step_completed" for r in requests):
            resume_hook_sync("tok-race", {"p": 1}, world=world)
            return True
        return False

    spy.before_batch.append(resume_first)

    async def scenario() -> Any:
        run = await start(wf_helpers.hook_and_step, "tok-race", world=world)
        worker = Worker(world=world, poll_interval=0.01, provisional=provisional)
        await worker.run_until_complete(run.run_id, timeout=20)
        return run, await run.result(timeout=1)

    run, result = _run(scenario())
    assert result == [{"p": 1}, "slow", 3]
    assert recoveries == [provisional]
    assert diff_run_records(world, run.run_id) == []
    completed = Counter(
        e.correlation_id for e in _events(world, run.run_id) if e.event_type == "step_completed"
    )
    assert set(completed.values()) == {1}


def test_a_hook_another_worker_created_first_keeps_its_token() -> None:
    """Another worker writes this run's hook_created (with a random token of its own)
    between our replay and our write: ours is refused, and the workflow goes on with the
    recorded token, never the one this worker drew (no divergence at the next step)."""
    from wfkit.worlds.base import EventRequest

    world = MemoryWorld()
    spy = _Spy(world)

    def other_worker_first(requests: Any) -> bool:
        mine = next((r for r in requests if r.event_type == "hook_created"), None)
        if mine is None:
            return False
        theirs = EventRequest(
            event_type="hook_created",
            correlation_id=mine.correlation_id,
            data={**mine.data, "token": "drawn-by-the-other-worker"},
        )
        # The other worker replayed the same log: the run's first write starts it
        # (its run_started goes with its first hook) when ours does.
        starts = [r for r in requests if r.event_type == "run_started"]
        spy.inner.create_batch(mine_run[0], [*starts, theirs])
        return True

    mine_run: list[str] = []
    spy.before_batch.append(other_worker_first)

    async def scenario() -> Any:
        run = await start(wf_helpers.default_token_to_step, world=world)
        mine_run.append(run.run_id)
        worker = Worker(world=world, poll_interval=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop_event=stop))
        try:
            while not any(e.event_type == "step_completed" for e in _events(world, run.run_id)):
                await asyncio.sleep(0.01)
            resume_hook_sync("drawn-by-the-other-worker", "go", world=world)
            return await run.result(timeout=10)
        finally:
            stop.set()
            await task

    token = "drawn-by-the-other-worker"
    assert _run(scenario()) == [token, token, "go"]
    assert diff_run_records(world, mine_run[0]) == []


def test_hook_payload_while_inline_steps_run_is_picked_up() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.hook_and_step, "tok-poke", world=world)
        worker = Worker(world=world, poll_interval=0.01)
        task = asyncio.create_task(worker.run_until_complete(run.run_id, timeout=20))
        while not world.hooks.list(run_id=run.run_id):
            await asyncio.sleep(0.005)
        resume_hook_sync("tok-poke", {"p": 2}, world=world)
        await task
        return await run.result(timeout=1)

    assert _run(scenario()) == [{"p": 2}, "slow", 3]


def test_hook_conflict_reaches_the_workflow() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        holder = await start(wf_helpers.hooked, "shared", world=world)
        worker = Worker(world=world, poll_interval=0.01)
        await worker.drain(timeout=10)
        second = await start(wf_helpers.conflicting_hooks, "shared", world=world)
        await worker.run_until_complete(second.run_id, timeout=10)
        await holder.cancel()
        return await second.result(timeout=1)

    assert _run(scenario()) == "conflict: shared"


def test_sweep_recovers_lost_messages() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.sequential, 3, world=world, run_id="wrun_lost")
        assert world.queue.delete_messages(run.run_id) >= 1
        worker = Worker(world=world, poll_interval=0.01)
        await worker.drain(timeout=5)
        assert world.runs.get(run.run_id).status == "pending"
        assert heal(world) == 1
        assert heal(world) == 0  # the healed message is live now
        await worker.run_until_complete(run.run_id, timeout=10)
        return await run.result(timeout=1)

    assert _run(scenario()) == 3


def test_lost_step_message_is_recovered_by_sweep_and_replay() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.gather, 3, world=world)
        worker = Worker(world=world, poll_interval=0.01, inline_steps=False)
        # Handle only the workflow message: the three steps are created and queued.
        worker.orchestrator.replay_cache = False
        await worker.orchestrator.handle_workflow_message(run.run_id)
        assert world.queue.delete_messages(run.run_id) >= 3
        assert heal(world) == 1
        await worker.run_until_complete(run.run_id, timeout=10)
        return await run.result(timeout=1)

    assert _run(scenario()) == [0, 1, 2]


def test_lru_cache_is_bounded_and_evictions_replay() -> None:
    world = MemoryWorld()

    async def scenario() -> list[Any]:
        runs = [await start(wf_helpers.hooked, f"tok-{i}", world=world) for i in range(5)]
        worker = Worker(world=world, poll_interval=0.01, cache_size=2)
        await worker.drain(timeout=10)
        assert worker.orchestrator.cached_runs == 2
        for i in range(5):
            resume_hook_sync(f"tok-{i}", {"i": i, "done": True}, world=world)
        await worker.drain(timeout=10)
        return [await run.result(timeout=1) for run in runs]

    assert _run(scenario()) == [[{"i": i, "done": True}] for i in range(5)]


def test_start_with_the_same_run_id_is_idempotent() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        first = await start(wf_helpers.sequential, 2, world=world, run_id="wrun_same")
        again = await start(wf_helpers.sequential, 2, world=world, run_id="wrun_same")
        assert first.run_id == again.run_id == "wrun_same"
        created = [e for e in _events(world, "wrun_same") if e.event_type == "run_created"]
        assert len(created) == 1
        worker = Worker(world=world, poll_interval=0.01)
        await worker.run_until_complete("wrun_same", timeout=10)
        return await again.result(timeout=1)

    assert _run(scenario()) == 1


@pytest.mark.parametrize("inline", [True, False])
def test_each_log_event_is_fed_once_over_the_whole_run(
    inline: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The linear-cost claim, counted instead of timed: with the cache on, the
    replay work of a run is one feed per event of its log, however many messages
    it took."""
    from wfkit.runtime.replay.session import ReplaySession

    fed: list[str] = []
    original_feed = ReplaySession.feed

    def counting_feed(self: ReplaySession, events: Any) -> Any:
        fed.extend(e.event_type for e in events)
        return original_feed(self, events)

    # Every session the worker makes counts what it is fed.
    monkeypatch.setattr(ReplaySession, "feed", counting_feed)
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.sequential, 40, world=world)
        worker = Worker(world=world, poll_interval=0.01, inline_steps=inline)
        await worker.run_until_complete(run.run_id, timeout=20)
        return run, await run.result(timeout=1)

    run, result = _run(scenario())
    assert result == sum(range(40))
    logged = [e.event_type for e in _events(world, run.run_id)]
    assert logged[-1] == "run_completed"
    assert sorted(fed) == sorted(logged[:-1])


@pytest.mark.parametrize("inline", [True, False])
def test_racing_workers_and_duplicate_deliveries(inline: bool) -> None:
    """Two workers on one world, every run's wake-up delivered several times: every
    run completes, each step is recorded once, and the records equal a fold of the log."""
    from wfkit.runtime.engine.messages import wake_run

    world = MemoryWorld()

    async def scenario() -> list[Any]:
        runs = [await start(wf_helpers.mixed, i, world=world) for i in range(6)]
        runs += [await start(wf_helpers.gather, 12, world=world) for _ in range(3)]
        for run in runs:
            for _ in range(3):
                wake_run(world, run.run_id)
        stop = asyncio.Event()
        workers = [
            Worker(world=world, poll_interval=0.005, concurrency=4, inline_steps=inline)
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(w.run(stop_event=stop)) for w in workers]
        try:
            return [await run.result(timeout=30) for run in runs]
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    results = _run(scenario(), timeout=60)
    assert results[:6] == [
        {"first": i + 1, "pair": [i + 2, i + 3, "X"], "winner": "FAST", "tail": 2 * i + 5}
        for i in range(6)
    ]
    assert results[6:] == [list(range(12))] * 3
    for run in world.runs.list():
        assert diff_run_records(world, run.run_id) == []
        completed = Counter(
            e.correlation_id for e in _events(world, run.run_id) if e.event_type == "step_completed"
        )
        assert set(completed.values()) == {1}


def test_an_inline_step_that_ends_without_an_outcome_is_requeued() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.self_cancelling, world=world)
        await Worker(world=world, poll_interval=0.01).run_until_complete(run.run_id, timeout=10)
        return await run.result(timeout=1)

    assert _run(scenario()) == 2
