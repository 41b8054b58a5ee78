"""What a workflow observes does not depend on memory addresses: sets of tasks iterate the
same way on every replay.

A set iterates in hash order, and an object's default hash is its address, which
differs between the first execution and a replay (another process, or the same one
later). Each test plays a workflow once, then replays its log in fresh sessions
allocated at other addresses (``replay_elsewhere``) and checks the outcome is the
same and the log's recorded calls still match the code's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from replay_log import Simulator, assert_paths_agree, comparable, full_replay

from wfkit.runtime import gen
from wfkit.runtime.errors import FatalError
from wfkit.runtime.replay.loop import WorkflowTask
from wfkit.runtime.replay.session import Completed, Failed, Outcome

NAME = "step//./t//name"
ECHO = "step//./t//echo"
BOOM = "step//./t//boom"
name = gen.step_proxy(NAME, "name")
echo = gen.step_proxy(ECHO, "echo")
boom = gen.step_proxy(BOOM, "boom")


def boom_impl() -> None:
    raise FatalError("boom")


STEPS: dict[str, Callable[..., Any]] = {
    NAME: lambda i: f"n{i}",
    ECHO: lambda value: value,
    BOOM: boom_impl,
}
DURATIONS: dict[str, Callable[..., float]] = {
    NAME: lambda i: 1.0,  # all at once: the set is the only order there is
    ECHO: lambda value: 1.0 + (hash(repr(value)) % 3) / 4,
    BOOM: lambda: 0.5,
}


def replay_elsewhere(workflow: Callable[..., Any], events: Any, shift: int) -> Outcome:
    """A full replay whose tasks and futures land at other addresses than before."""
    ballast = [bytearray(48 + (i * 24) % 400) for i in range(shift * 97)]
    try:
        return full_replay(workflow, events)
    finally:
        del ballast


def played(workflow: Callable[..., Any]) -> Simulator:
    sim = Simulator(workflow, steps=STEPS, durations=DURATIONS)
    outcome = sim.play()
    assert isinstance(outcome, Completed), outcome
    assert_paths_agree(workflow, sim)
    return sim


def assert_replays_agree(workflow: Callable[..., Any], sim: Simulator, times: int = 6) -> None:
    expected = comparable(sim.outcomes[-1])
    for shift in range(1, times + 1):
        assert comparable(replay_elsewhere(workflow, sim.log.events, shift)) == expected


# --- the example: results of asyncio.wait iterated, each passed to a step -----------


async def pairs() -> list[tuple[Any, Any]]:
    done, _ = await asyncio.wait([asyncio.create_task(name(i)) for i in range(10)])
    return [(t.result(), await echo(t.result())) for t in done]


def test_tasks_iterated_out_of_asyncio_wait_keep_their_order_on_replay() -> None:
    sim = played(pairs)
    result = sim.outcomes[-1]
    assert isinstance(result, Completed)
    assert all(a == b for a, b in result.value)  # each echo got its own name
    assert sorted(a for a, _ in result.value) == sorted(f"n{i}" for i in range(10))
    assert_replays_agree(pairs, sim)


def test_without_ordered_hashes_the_argument_check_stops_the_mix_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety net: were set order to change, replay would fail loudly, never hand a
    recorded result to another call."""
    monkeypatch.setattr(WorkflowTask, "__hash__", object.__hash__)
    sim = Simulator(pairs, steps=STEPS, durations=DURATIONS)
    assert isinstance(sim.play(), Completed)
    expected = comparable(sim.outcomes[-1])
    outcomes = [replay_elsewhere(pairs, sim.log.events, shift) for shift in range(1, 9)]
    diverged = [o for o in outcomes if isinstance(o, Failed)]
    assert all(o.code == "REPLAY_DIVERGENCE" for o in diverged)
    assert all("args[0] differs" in str(o.error) for o in diverged)
    assert all(comparable(o) == expected for o in outcomes if not isinstance(o, Failed))
    assert diverged, "address-ordered sets never changed order: the test proves nothing"


# --- other places asyncio keeps tasks in sets ------------------------------------------------


async def task_group_cancellation_order() -> list[Any]:
    cleaned: list[Any] = []

    async def worker(i: int) -> None:
        try:
            await echo(f"slow {i}" * 50)
        except asyncio.CancelledError:
            cleaned.append(await asyncio.shield(echo(f"cleanup {i}")))
            raise

    try:
        async with asyncio.TaskGroup() as group:
            for i in range(8):
                group.create_task(worker(i))
            group.create_task(boom())
    except* FatalError:
        pass
    return cleaned


def test_a_task_group_cancels_its_tasks_in_the_same_order_on_replay() -> None:
    sim = played(task_group_cancellation_order)
    outcome = sim.outcomes[-1]
    assert isinstance(outcome, Completed) and len(outcome.value) == 8
    assert_replays_agree(task_group_cancellation_order, sim)


async def as_completed_over_coroutines() -> list[Any]:
    async def fetch(i: int) -> Any:
        first = await echo(f"a{i}")
        return await echo((first, i))

    return [await f for f in asyncio.as_completed([fetch(i) for i in range(8)])]


def test_as_completed_starts_plain_coroutines_in_the_callers_order() -> None:
    sim = played(as_completed_over_coroutines)
    first_round = [
        e.data["input"]["args"] for e in sim.log.events if e.event_type == "step_created"
    ]
    assert first_round[:8] == [[f"a{i}"] for i in range(8)]
    assert_replays_agree(as_completed_over_coroutines, sim)


async def set_of_step_calls() -> list[Any]:
    calls = {echo(i) for i in range(8)}
    return [await call for call in calls]


def test_a_set_of_step_calls_iterates_the_same_way_on_replay() -> None:
    assert_replays_agree(set_of_step_calls, played(set_of_step_calls))


async def task_names() -> list[str]:
    tasks = [asyncio.create_task(echo(i)) for i in range(4)]
    await asyncio.gather(*tasks)
    return [t.get_name() for t in asyncio.all_tasks()] + [t.get_name() for t in tasks]


def test_task_names_and_all_tasks_are_the_same_on_replay() -> None:
    sim = played(task_names)
    outcome = sim.outcomes[-1]
    assert isinstance(outcome, Completed)
    assert outcome.value[-4:] == [f"workflow-task-{n}" for n in (3, 5, 7, 9)]
    assert_replays_agree(task_names, sim)


async def futures_in_wait() -> list[Any]:
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(6)]
    for i, future in enumerate(futures):
        future.set_result(i)
    done, _ = await asyncio.wait(futures)
    return [await echo(f.result()) for f in done]


def test_futures_from_the_loop_iterate_the_same_way_on_replay() -> None:
    assert_replays_agree(futures_in_wait, played(futures_in_wait))
