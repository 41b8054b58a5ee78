"""A step call inside a workflow works wherever asyncio takes a coroutine.

Each workflow here is played by the simulated orchestrator and then replayed from its
log (``assert_paths_agree``), so every form is checked for its result, for what it
writes, and for giving the same outcome on replay. Also: ``loop.call_later`` /
``call_at`` are durable waits, and timeouts behave as in plain asyncio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from replay_log import START, Log, Simulator, assert_paths_agree, full_replay

from wfkit.runtime import gen
from wfkit.runtime.api.workflow import sleep
from wfkit.runtime.context import current_workflow
from wfkit.runtime.errors import FatalError
from wfkit.runtime.replay.session import Completed, Failed, Suspended

ECHO = "step//./t//echo"
SLOW = "step//./t//slow"
BAD = "step//./t//bad"
echo = gen.step_proxy(ECHO, "echo")
slow = gen.step_proxy(SLOW, "slow")
bad = gen.step_proxy(BAD, "bad")


def bad_impl(message: str) -> None:
    raise FatalError(message)


STEPS: dict[str, Callable[..., Any]] = {
    ECHO: lambda value: value,
    SLOW: lambda seconds, value: value,
    BAD: bad_impl,
}
DURATIONS: dict[str, Callable[..., float]] = {
    ECHO: lambda value: 1.0,
    SLOW: lambda seconds, value: seconds,
    BAD: lambda message: 0.5,
}


def play(workflow: Callable[..., Any], *args: Any) -> Simulator:
    sim = Simulator(workflow, args=args, steps=STEPS, durations=DURATIONS)
    sim.play()
    assert_paths_agree(workflow, sim, args)
    return sim


def result_of(sim: Simulator) -> Any:
    outcome = sim.outcomes[-1]
    assert isinstance(outcome, Completed), outcome
    return outcome.value


def created_steps(sim: Simulator) -> list[Any]:
    return [e.data["input"]["args"] for e in sim.log.events if e.event_type == "step_created"]


def clock() -> Any:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.now()


# --- every place asyncio takes a coroutine -------------------------------------------------


async def is_a_future() -> list[bool]:
    call = echo("x")
    flags = [asyncio.isfuture(call), asyncio.iscoroutine(call)]
    await call
    return flags


async def plain_await() -> str:
    return str(await echo("a"))


async def via_create_task() -> str:
    return str(await asyncio.create_task(echo("a")))


async def via_task_group() -> list[Any]:
    async with asyncio.TaskGroup() as group:
        first = group.create_task(echo("a"))
        second = group.create_task(echo("b"))
    return [first.result(), second.result()]


async def via_ensure_future() -> str:
    return str(await asyncio.ensure_future(echo("a")))


async def via_gather() -> list[Any]:
    return list(await asyncio.gather(echo("a"), echo("b")))


async def via_wait_for() -> str:
    return str(await asyncio.wait_for(echo("a"), 10))


async def via_shield() -> str:
    return str(await asyncio.shield(echo("a")))


async def via_timeout() -> str:
    async with asyncio.timeout(10):
        return str(await echo("a"))


async def via_as_completed() -> list[Any]:
    return [await f for f in asyncio.as_completed([slow(2, "late"), slow(1, "early")])]


async def awaited_twice() -> list[Any]:
    call = echo("a")
    return [await call, await call]


async def named_task() -> str:
    task = asyncio.create_task(echo("a"))
    await task
    return repr(task)


@pytest.mark.parametrize(
    ("workflow", "expected", "steps"),
    [
        (is_a_future, [True, False], 1),
        (plain_await, "a", 1),
        (via_create_task, "a", 1),
        (via_task_group, ["a", "b"], 2),
        (via_ensure_future, "a", 1),
        (via_gather, ["a", "b"], 2),
        (via_wait_for, "a", 1),
        (via_shield, "a", 1),
        (via_timeout, "a", 1),
        (via_as_completed, ["early", "late"], 2),
        (awaited_twice, ["a", "a"], 1),
    ],
)
def test_a_step_call_works_wherever_asyncio_takes_a_coroutine(
    workflow: Callable[..., Any], expected: Any, steps: int
) -> None:
    sim = play(workflow)
    assert result_of(sim) == expected
    # One durable step per call, however asyncio wraps it.
    assert len(created_steps(sim)) == steps


def test_a_task_running_a_step_shows_the_step_in_its_repr() -> None:
    assert "coro=<echo()" in str(result_of(play(named_task)))


async def task_group_steps_fan_out() -> list[Any]:
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(echo(i)) for i in range(5)]
    return [t.result() for t in tasks]


def test_task_group_of_step_calls_fans_out_in_one_suspension() -> None:
    sim = play(task_group_steps_fan_out)
    assert result_of(sim) == [0, 1, 2, 3, 4]
    first = sim.outcomes[0]
    assert isinstance(first, Suspended) and len(first.steps) == 5


async def task_group_failure() -> str:
    caught = "not caught"
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(bad("boom"))
            group.create_task(slow(60, "sibling"))
    except* FatalError as errors:
        caught = f"caught {errors.exceptions[0]}"
    return caught


def test_a_failing_step_in_a_task_group_cancels_its_siblings() -> None:
    sim = play(task_group_failure)
    assert result_of(sim) == "caught boom"
    assert sim.log.now - START < timedelta(seconds=60)  # the sibling was not waited for


async def cancelled_before_it_ran() -> str:
    task = asyncio.create_task(echo("never"))
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return str(await echo("after"))


def test_a_step_task_cancelled_before_it_ran_is_never_created() -> None:
    sim = play(cancelled_before_it_ran)
    assert result_of(sim) == "after"
    assert created_steps(sim) == [["after"]]


async def cancelled_unawaited() -> str:
    call = echo("dropped")
    call.cancel()
    return str(await echo("kept"))


def test_cancelling_a_step_call_before_its_creation_drops_it() -> None:
    sim = play(cancelled_unawaited)
    assert result_of(sim) == "kept"
    assert created_steps(sim) == [["kept"]]


async def wait_on_bare_step_calls() -> list[Any]:
    done, pending = await asyncio.wait([slow(1, "x"), slow(5, "y")], timeout=3)
    return [[f.result() for f in done], len(pending)]


def test_asyncio_wait_takes_step_calls_as_they_are() -> None:
    assert result_of(play(wait_on_bare_step_calls)) == [["x"], 1]


async def wait_on_a_plain_coroutine() -> str:
    async def helper() -> Any:
        return await echo("x")

    coroutine = helper()
    try:
        await asyncio.wait([coroutine])
    except TypeError as exc:
        coroutine.close()
        return str(exc)
    return "accepted"


def test_asyncio_wait_refuses_plain_coroutines_as_python_does() -> None:
    outcome = full_replay(wait_on_a_plain_coroutine, Log().events)
    assert outcome == Completed("Passing coroutines is forbidden, use tasks explicitly.")


async def wait_for_times_out_a_step_task() -> list[Any]:
    started = clock()
    try:
        await asyncio.wait_for(asyncio.create_task(slow(30, "slow")), 2)
    except TimeoutError:
        return ["timeout", (clock() - started).total_seconds()]
    return ["finished"]


def test_wait_for_on_a_step_task_times_out_durably() -> None:
    sim = play(wait_for_times_out_a_step_task)
    assert result_of(sim) == ["timeout", 2.0]


# --- loop timers are durable waits -------------------------------------------------------


async def call_later_wakes() -> list[Any]:
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[float] = loop.create_future()
    handle = loop.call_later(5, lambda: woken.set_result(loop.time()))
    assert isinstance(handle, asyncio.TimerHandle)
    at = await woken
    return [at - START.timestamp(), (clock() - START).total_seconds()]


async def call_at_wakes() -> float:
    loop = asyncio.get_running_loop()
    woken: asyncio.Future[None] = loop.create_future()
    loop.call_at(loop.time() + 7.5, woken.set_result, None)
    await woken
    return float((clock() - START).total_seconds())


async def cancelled_call_later() -> str:
    loop = asyncio.get_running_loop()
    loop.call_later(100, print, "never").cancel()
    return str(await echo("done"))


def test_call_later_is_a_durable_wait() -> None:
    sim = play(call_later_wakes)
    assert result_of(sim) == [5.0, 5.0]
    (wait,) = [e for e in sim.log.events if e.event_type == "wait_created"]
    assert wait.data["resume_at"] == (START + timedelta(seconds=5)).isoformat()


def test_call_at_is_a_durable_wait() -> None:
    assert result_of(play(call_at_wakes)) == 7.5


def test_a_cancelled_call_later_writes_nothing() -> None:
    sim = play(cancelled_call_later)
    assert result_of(sim) == "done"
    assert "wait_created" not in [e.event_type for e in sim.log.events]


async def infinite_timer() -> str:
    try:
        await asyncio.sleep(float("inf"))
    except ValueError as exc:
        return str(exc)
    return "slept forever"


def test_a_timer_without_an_end_is_refused_clearly() -> None:
    outcome = full_replay(infinite_timer, Log().events)
    assert isinstance(outcome, Completed)
    assert "needs a finite time" in outcome.value


# --- timeouts, as plain asyncio has them ---------------------------------------------------


async def nested_timeouts() -> list[str]:
    out = []
    try:
        async with asyncio.timeout(10):
            try:
                async with asyncio.timeout(3):
                    await slow(5, "inner")
            except TimeoutError:
                out.append(f"inner timed out at {(clock() - START).total_seconds()}")
            out.append(await slow(20, "outer"))
    except TimeoutError:
        out.append(f"outer timed out at {(clock() - START).total_seconds()}")
    return out


def test_nested_timeouts_fire_in_order() -> None:
    assert result_of(play(nested_timeouts)) == ["inner timed out at 3.0", "outer timed out at 10.0"]


async def rescheduled_timeout() -> str:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(100) as scope:
            scope.reschedule(loop.time() + 4)
            await slow(10, "slow")
    except TimeoutError:
        return f"timed out at {(clock() - START).total_seconds()}"
    return "finished"


def test_a_rescheduled_timeout_uses_its_new_deadline() -> None:
    sim = play(rescheduled_timeout)
    assert result_of(sim) == "timed out at 4.0"
    # The abandoned deadline (100 s) was cancelled before it was ever written.
    waits = [e.data["resume_at"] for e in sim.log.events if e.event_type == "wait_created"]
    assert waits == [(START + timedelta(seconds=4)).isoformat()]


async def timeout_at_deadline() -> str:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + 2):
            await sleep("1m")
    except TimeoutError:
        return "timed out"
    return "slept"


def test_timeout_at_cuts_a_durable_sleep() -> None:
    assert result_of(play(timeout_at_deadline)) == "timed out"


async def shielded_from_timeout() -> list[Any]:
    inner = asyncio.ensure_future(slow(5, "kept"))
    try:
        await asyncio.wait_for(asyncio.shield(inner), 1)
    except TimeoutError:
        pass
    return ["timeout", await inner]


def test_shield_keeps_the_step_running_past_a_timeout() -> None:
    assert result_of(play(shielded_from_timeout)) == ["timeout", "kept"]


def test_an_uncaught_timeout_fails_the_run_as_a_user_error() -> None:
    async def wf() -> None:
        await asyncio.wait_for(slow(30, "x"), 1)

    sim = Simulator(wf, steps=STEPS, durations=DURATIONS)
    outcome = sim.play()
    assert isinstance(outcome, Failed) and outcome.code == "USER_ERROR"
    assert isinstance(outcome.error, TimeoutError)
