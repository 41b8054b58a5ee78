"""asyncio inside workflows: races, timers as durable waits, wait_for, timeout, TaskGroup."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from replay_log import (
    START,
    Log,
    Simulator,
    assert_paths_agree,
    comparable,
    full_replay,
    incremental,
    make_run,
)

from wfkit.runtime import gen
from wfkit.runtime.context import current_workflow
from wfkit.runtime.errors import FatalError
from wfkit.runtime.replay.loop import WorkflowIOError
from wfkit.runtime.replay.session import Completed, Failed, PendingWait, ReplaySession, Suspended
from wfkit.runtime.serialization import serialize

SLEEPY = "step//./t//sleepy"
FLAKY = "step//./t//flaky"
sleepy = gen.step_proxy(SLEEPY, "sleepy")
flaky = gen.step_proxy(FLAKY, "flaky")


def sleepy_impl(seconds: float, value: str) -> str:
    return value


def flaky_impl(message: str) -> str:
    raise FatalError(message)


STEPS: dict[str, Callable[..., Any]] = {SLEEPY: sleepy_impl, FLAKY: flaky_impl}
DURATIONS: dict[str, Callable[..., float]] = {
    SLEEPY: lambda seconds, value: seconds,
    FLAKY: lambda message: 0.05,
}


def clock() -> Any:
    ctx = current_workflow.get()
    assert ctx is not None
    return ctx.now()


# --- races ------------------------------------------------------------------------------


async def race() -> str:
    tasks = [
        asyncio.ensure_future(sleepy(10, "a")),
        asyncio.ensure_future(sleepy(0.1, "b")),
        asyncio.ensure_future(sleepy(20, "c")),
    ]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return str(done.pop().result())


def test_first_completed_race_and_losers_completing_later() -> None:
    sim = Simulator(race, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed("b")
    first = sim.outcomes[0]
    assert isinstance(first, Suspended) and len(first.steps) == 3
    # The losers finish after the workflow did; a log holding their events still replays.
    log = sim.log
    for step in first.steps[::2]:
        log.add("step_started", step.correlation_id)
        log.add("step_completed", step.correlation_id, {"result": serialize("late")})
    assert full_replay(race, log.events) == Completed("b")
    assert comparable(incremental(race, log.events)[-1]) == comparable(Completed("b"))


async def race_loop() -> list[str]:
    """A long-running race loop: each round races a fast and a slow step; losers linger."""
    winners = []
    for i in range(4):
        fast = asyncio.ensure_future(sleepy(1, f"fast{i}"))
        slow = asyncio.ensure_future(sleepy(2.5, f"slow{i}"))
        done, _ = await asyncio.wait([fast, slow], return_when=asyncio.FIRST_COMPLETED)
        winners.append(done.pop().result())
    return winners


def test_race_loop_losers_are_consumed_on_later_feeds() -> None:
    sim = Simulator(race_loop, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(["fast0", "fast1", "fast2", "fast3"])
    completed = [e for e in sim.log.events if e.event_type == "step_completed"]
    assert len(completed) >= 6  # slow losers recorded while later rounds ran
    assert_paths_agree(race_loop, sim)


async def any_success() -> str:
    pending = {
        asyncio.ensure_future(flaky("nope")),
        asyncio.ensure_future(sleepy(0.1, "b")),
        asyncio.ensure_future(sleepy(6, "c")),
    }
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for fut in done:
            if fut.exception() is None:
                return str(fut.result())
    raise RuntimeError("all failed")


def test_first_success_ignores_fatal_failures() -> None:
    sim = Simulator(any_success, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed("b")
    assert_paths_agree(any_success, sim)


async def as_completed_order() -> list[str]:
    calls = [sleepy(3, "x"), sleepy(1, "y"), sleepy(2, "z")]
    return [await fut for fut in asyncio.as_completed(calls)]


def test_as_completed_yields_in_log_order() -> None:
    sim = Simulator(as_completed_order, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(["y", "z", "x"])
    assert_paths_agree(as_completed_order, sim)


async def task_group() -> list[str]:
    async with asyncio.TaskGroup() as group:
        first = group.create_task(_twice("p"))
        second = group.create_task(_twice("q"))
    return [first.result(), second.result()]


async def _twice(value: str) -> str:
    one = await sleepy(1, value)
    return str(await sleepy(1, one + value))


def test_task_group() -> None:
    sim = Simulator(task_group, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(["pp", "qq"])
    second_round = [o for o in sim.outcomes if isinstance(o, Suspended) and o.steps]
    assert [len(o.steps) for o in second_round] == [2, 2]  # same-instant completions batch
    assert_paths_agree(task_group, sim)


async def task_group_failure() -> str:
    caught = "no"
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_first(flaky("bad")))
            group.create_task(_first(sleepy(100, "never awaited to the end")))
    except* FatalError as group_error:
        caught = f"caught {group_error.exceptions[0]}"
    return caught


async def _first(awaitable: Any) -> Any:
    return await awaitable


def test_task_group_failure_cancels_siblings() -> None:
    sim = Simulator(task_group_failure, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed("caught bad")
    assert_paths_agree(task_group_failure, sim)


# --- timers -------------------------------------------------------------------------------


async def sleeper(seconds: float) -> float:
    before = clock()
    await asyncio.sleep(seconds)
    await asyncio.sleep(0)  # not durable: a plain ready callback
    after = clock()
    return float((after - before).total_seconds())


def test_asyncio_sleep_is_a_durable_wait() -> None:
    log = Log()
    outcome = full_replay(sleeper, log.events, (10,))
    assert isinstance(outcome, Suspended)
    (wait,) = outcome.waits
    assert wait == PendingWait(wait.correlation_id, START + timedelta(seconds=10))
    assert wait.correlation_id.startswith("wait_")
    assert outcome.next_wake == START + timedelta(seconds=10)
    log.add("wait_created", wait.correlation_id, {"resume_at": wait.resume_at.isoformat()})
    waiting = full_replay(sleeper, log.events, (10,))
    assert isinstance(waiting, Suspended)
    assert waiting.waits == () and waiting.next_wake == wait.resume_at
    log.add("wait_completed", wait.correlation_id, at=START + timedelta(seconds=10.5))
    assert full_replay(sleeper, log.events, (10,)) == Completed(10.5)


async def parallel_sleeps() -> int:
    await asyncio.gather(*(asyncio.sleep(1) for _ in range(10)))
    return 10


def test_parallel_sleeps_fan_out_in_one_suspension() -> None:
    sim = Simulator(parallel_sleeps)
    assert sim.play() == Completed(10)
    first = sim.outcomes[0]
    assert isinstance(first, Suspended) and len(first.waits) == 10
    assert sim.log.now - START == timedelta(seconds=1)
    assert_paths_agree(parallel_sleeps, sim)


async def wait_for_step(step_seconds: float) -> str:
    try:
        return str(await asyncio.wait_for(sleepy(step_seconds, "done"), 2))
    except TimeoutError:
        return f"timeout after {(clock() - START).total_seconds()}"


@pytest.mark.parametrize(("step_seconds", "expected"), [(30, "timeout after 2.0"), (0.5, "done")])
def test_wait_for_timeout_versus_step_win(step_seconds: float, expected: str) -> None:
    sim = Simulator(wait_for_step, args=(step_seconds,), steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(expected)
    first = sim.outcomes[0]
    assert isinstance(first, Suspended)
    assert len(first.steps) == 1 and len(first.waits) == 1
    assert first.waits[0].resume_at == START + timedelta(seconds=2)
    assert_paths_agree(wait_for_step, sim, (step_seconds,))


async def wait_for_then_step() -> str:
    first = await asyncio.wait_for(sleepy(0.5, "x"), 100)
    return str(first) + str(await sleepy(1, "y"))


def test_cancelled_timer_stays_subscribed_but_does_not_count_for_next_wake() -> None:
    sim = Simulator(wait_for_then_step, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed("xy")
    (wait_event,) = [e for e in sim.log.events if e.event_type == "wait_created"]
    later = [o for o in sim.outcomes[1:] if isinstance(o, Suspended) and o.steps]
    assert later and later[0].next_wake is None  # the step won: its deadline was cancelled
    # The orchestrator may still complete the cancelled wait: consumed silently.
    events = list(sim.log.events[:-3])
    events.append(
        wait_event.model_copy(
            update={"event_id": "evnt_late", "event_type": "wait_completed", "data": {}}
        )
    )
    events.extend(sim.log.events[-3:])
    assert full_replay(wait_for_then_step, events) == Completed("xy")
    assert_paths_agree(wait_for_then_step, sim)


async def timeout_block() -> str:
    try:
        async with asyncio.timeout(5):
            await sleepy(60, "slow")
    except TimeoutError:
        pass
    async with asyncio.timeout(5):  # finishes first: its deadline is never created
        await asyncio.sleep(0)
    return "ok"


def test_asyncio_timeout() -> None:
    sim = Simulator(timeout_block, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed("ok")
    waits = [e for e in sim.log.events if e.event_type == "wait_created"]
    assert len(waits) == 1
    assert_paths_agree(timeout_block, sim)


async def suspended_while_waiting() -> str:
    waiter = asyncio.ensure_future(sleepy(1, "s"))
    await asyncio.sleep(30)
    return str(await waiter)


def test_next_wake_and_outstanding_steps() -> None:
    log = Log()
    first = full_replay(suspended_while_waiting, log.events)
    assert isinstance(first, Suspended)
    assert [s.step_id for s in first.steps] == [SLEEPY]
    step, wait = first.steps[0], first.waits[0]
    log.add("step_created", step.correlation_id, {"step_name": SLEEPY, "input": step.input})
    log.add("wait_created", wait.correlation_id, {"resume_at": wait.resume_at.isoformat()})
    second = full_replay(suspended_while_waiting, log.events)
    assert isinstance(second, Suspended)
    assert second.outstanding_steps == ((step.correlation_id, SLEEPY),)
    assert second.next_wake == START + timedelta(seconds=30)


def test_io_on_the_workflow_loop_is_refused() -> None:
    async def wf() -> str:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, print)
        except WorkflowIOError as exc:
            return str(exc)
        return "no"

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Completed)
    assert "not available inside a workflow; use a step" in outcome.value


def test_session_works_while_another_loop_runs() -> None:
    async def orchestrator() -> Any:
        outer = asyncio.get_running_loop()
        sim = Simulator(race, steps=STEPS, durations=DURATIONS)
        result = sim.play()
        assert asyncio.get_running_loop() is outer
        await asyncio.sleep(0)
        return result

    assert asyncio.run(orchestrator()) == Completed("b")


def test_user_cancellation_of_the_main_task_fails_the_run() -> None:
    async def wf() -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)

    outcome = full_replay(wf, Log().events)
    assert isinstance(outcome, Failed) and outcome.code == "USER_ERROR"
    assert isinstance(outcome.error, asyncio.CancelledError)


async def numbers() -> Any:
    for i in range(10):
        yield await sleepy(1, str(i))


async def async_generator_abandoned() -> list[str]:
    out = []
    async for value in numbers():
        out.append(value)
        if len(out) == 2:
            break  # the generator is left suspended; it is finalized on the workflow loop
    await asyncio.sleep(0)
    return out


def test_async_generators_in_workflows() -> None:
    sim = Simulator(async_generator_abandoned, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(["0", "1"])
    assert_paths_agree(async_generator_abandoned, sim)


async def hook_with_deadline() -> str:
    from wfkit.runtime.api.workflow import create_hook

    hook = create_hook(token="deadline")
    try:
        return str(await asyncio.wait_for(hook, 5))
    except TimeoutError:
        return "no answer"


@pytest.mark.parametrize(("at", "expected"), [(2.0, "yes"), (9.0, "no answer")])
def test_wait_for_a_hook_payload(at: float, expected: str) -> None:
    sim = Simulator(hook_with_deadline, hook_payloads=[(at, "deadline", "yes")])
    assert sim.play() == Completed(expected)
    assert_paths_agree(hook_with_deadline, sim)


async def primitives() -> list[Any]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    lock = asyncio.Lock()
    done = asyncio.Event()

    async def producer() -> None:
        for name in ("x", "y"):
            async with lock:
                await queue.put(await sleepy(1, name))
        done.set()

    task = asyncio.ensure_future(producer())
    await done.wait()
    await task
    return [queue.get_nowait(), queue.get_nowait()]


def test_asyncio_primitives_work_on_the_workflow_loop() -> None:
    sim = Simulator(primitives, steps=STEPS, durations=DURATIONS)
    assert sim.play() == Completed(["x", "y"])
    assert_paths_agree(primitives, sim)


def test_close_cancels_a_suspended_workflow() -> None:
    events: list[str] = []

    async def wf() -> None:
        try:
            await sleepy(1, "x")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        finally:
            events.append("finally")

    session = ReplaySession(wf, make_run(), args=(), kwargs={})
    assert isinstance(session.feed(Log().events), Suspended)
    assert not session.done
    session.close()
    assert events == ["cancelled", "finally"]
    assert session.done
    closed = session.feed([])
    assert isinstance(closed, Failed) and closed.code == "RUNTIME_ERROR"


def test_hook_event_before_creation_is_corrupted() -> None:
    log = Log()
    first = full_replay(hook_with_deadline, log.events)
    assert isinstance(first, Suspended)
    log.add("hook_received", first.hooks[0].correlation_id, {"payload": "early"})
    failed = full_replay(hook_with_deadline, log.events)
    assert isinstance(failed, Failed) and failed.code == "CORRUPTED_EVENT_LOG"


def test_close_does_not_hang_on_code_that_refuses_to_stop() -> None:
    async def stubborn() -> None:
        while True:
            try:
                await sleepy(1, "x")
            except asyncio.CancelledError:
                while True:
                    await asyncio.sleep(0)

    session = ReplaySession(stubborn, make_run(), args=(), kwargs={})
    assert isinstance(session.feed(Log().events), Suspended)
    session.close()
    assert session.done
