"""Starting many runs at once (issue 13): ``start_many`` and gathered async ``start``
calls, on every world. Each writes its runs in fewer transactions than runs, and each
run is the one its caller asked for."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from examples.e2e import flow
from tests.counting import CountingEvents
from tests.e2e.conftest import run_async, running_worker
from tests.e2e.test_flow_queues import max_overlap, results
from wfkit import Args, SerializationError, start, start_many, start_many_sync, start_sync
from wfkit.runtime.api.starts import CHUNK
from wfkit.runtime.flow.queues import Queue, _forget_queue


@pytest.fixture
def counted(world: Any) -> Iterator[CountingEvents]:
    """``world.events`` counted while the test starts runs (put back before the worker)."""
    inner = world.events
    counting = CountingEvents(inner)
    world.events = counting
    try:
        yield counting
    finally:
        world.events = inner


def test_a_thousand_runs_started_by_start_many_all_complete(world: Any, counted: Any) -> None:
    runs = start_many_sync(flow.greet, [(f"n{i}",) for i in range(1000)], world=world)
    assert counted.transactions <= -(-1000 // CHUNK) < 1000
    world.events = counted.inner
    assert len({run.run_id for run in runs}) == 1000

    async def scenario() -> list[str]:
        async with running_worker(world, concurrency=64):
            return list(await asyncio.gather(*(run.result(timeout=120) for run in runs)))

    assert run_async(scenario(), timeout=300) == [f"hello n{i}" for i in range(1000)]


def test_idempotency_keys_repeated_in_the_call_or_taken_return_one_run_per_key(
    world: Any,
) -> None:
    existing = start_sync(flow.greet, "old", world=world, idempotency_key="k-old")
    runs = start_many_sync(
        flow.greet,
        [("a",), ("b",), Args(name="c"), ("d",)],
        world=world,
        idempotency_keys=["k-1", "k-old", "k-1", None],
    )
    assert runs[0].run_id == runs[2].run_id
    assert runs[1].run_id == existing.run_id
    assert len({existing.run_id, runs[0].run_id, runs[3].run_id}) == 3
    assert len(world.runs.list(limit=100)) == 3

    async def scenario() -> list[str]:
        async with running_worker(world):
            return list(await asyncio.gather(*(run.result(timeout=30) for run in runs)))

    assert run_async(scenario()) == ["hello a", "hello old", "hello a", "hello d"]
    assert world.runs.get_by_idempotency_key("k-1").run_id == runs[0].run_id


def test_an_unserializable_argument_refuses_the_whole_call(world: Any) -> None:
    calls: list[tuple[Any, ...]] = [(f"n{i}",) for i in range(1500)]
    calls[1234] = ({"lock": threading.Lock()},)
    with pytest.raises(SerializationError, match=r"calls\[1234\]") as refused:
        start_many_sync(flow.greet, calls, world=world)
    assert refused.value.path == 'args[0]["lock"]'
    assert world.runs.list(limit=10) == []


def test_an_item_that_is_not_an_argument_tuple_is_refused_by_index(world: Any) -> None:
    with pytest.raises(TypeError, match=r"calls\[1\] is 'bob'"):
        start_many_sync(flow.greet, [("ann",), "bob"], world=world)
    with pytest.raises(ValueError, match="2 idempotency_keys for 3 calls"):
        start_many_sync(
            flow.greet, [("a",), ("b",), ("c",)], world=world, idempotency_keys=["x", "y"]
        )
    assert world.runs.list(limit=10) == []


@pytest.fixture
def pairs() -> Iterator[Queue]:
    queue = Queue("startmany_pairs", concurrency=2)
    yield queue
    _forget_queue(queue.name)


def test_queue_limits_hold_for_runs_started_in_a_batch(world: Any, pairs: Queue) -> None:
    runs = start_many_sync(flow.work, [(f"w{i}", 0.2) for i in range(6)], world=world, queue=pairs)
    assert {world.runs.get(run.run_id).status for run in runs} == {"pending"}

    async def scenario() -> list[dict[str, Any]]:
        async with running_worker(world):
            return await results(runs)

    done = run_async(scenario())
    assert [r["label"] for r in done] == [f"w{i}" for i in range(6)]
    assert max_overlap([(r["start"], r["end"]) for r in done]) <= 2


def test_per_run_queue_keys_serialize_each_key(world: Any) -> None:
    labels = ["ann0", "bob0", "ann1", "bob1"]
    runs = start_many_sync(
        flow.work,
        [Args(label, seconds=0.2) for label in labels],
        world=world,
        queue=flow.PER_KEY,
        keys=[label[:3] for label in labels],
    )
    assert [world.runs.get(run.run_id).queue_key for run in runs] == ["ann", "bob", "ann", "bob"]

    async def scenario() -> list[dict[str, Any]]:
        async with running_worker(world):
            return await results(runs)

    done = run_async(scenario())
    for key in ("ann", "bob"):
        assert max_overlap([(r["start"], r["end"]) for r in done if r["label"][:3] == key]) == 1


def test_gathered_async_starts_share_transactions_and_each_caller_gets_its_run(
    world: Any, counted: Any
) -> None:
    async def scenario() -> list[str]:
        runs = await asyncio.gather(*(start(flow.greet, f"g{i}", world=world) for i in range(300)))
        assert counted.transactions < 300
        assert len({run.run_id for run in runs}) == 300
        world.events = counted.inner
        async with running_worker(world, concurrency=64):
            return list(await asyncio.gather(*(run.result(timeout=60) for run in runs)))

    assert run_async(scenario(), timeout=300) == [f"hello g{i}" for i in range(300)]


def test_a_refused_start_in_a_gathered_group_fails_only_its_caller(world: Any) -> None:
    async def scenario() -> list[Any]:
        return await asyncio.gather(
            *(start(flow.greet, name, world=world) for name in ["a", threading.Lock(), "c"]),
            return_exceptions=True,
        )

    first, refused, third = run_async(scenario())
    assert isinstance(refused, SerializationError) and refused.path == "args[0]"
    assert {run.run_id for run in world.runs.list(limit=10)} == {first.run_id, third.run_id}


def test_gathered_starts_with_one_idempotency_key_make_one_run(world: Any) -> None:
    async def scenario() -> set[str]:
        runs = await asyncio.gather(
            *(start(flow.greet, f"k{i}", world=world, idempotency_key="same") for i in range(50))
        )
        return {run.run_id for run in runs}

    assert run_async(scenario()) == {world.runs.get_by_idempotency_key("same").run_id}
    assert len(world.runs.list(limit=100)) == 1


def test_start_many_awaited_returns_typed_runs_in_order(world: Any) -> None:
    async def scenario() -> list[str]:
        runs = await start_many(flow.greet, [("x",), ("y",)], world=world)
        async with running_worker(world):
            return [await run.result(timeout=30) for run in runs]

    assert run_async(scenario()) == ["hello x", "hello y"]
