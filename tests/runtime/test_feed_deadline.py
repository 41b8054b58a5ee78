"""The feed deadline (``wfkit.runtime.replay.watchdog``): a workflow that never yields to
the replay loop fails its run with ``WorkflowDeadlockError`` naming the workflow and
the line it was stuck on, instead of hanging the feed (and the worker) for ever; a
long replay, whose every turn is short, is never cut."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time

import pytest

from tests.runtime.replay_log import Log, Simulator, make_run
from wfkit.runtime import gen
from wfkit.runtime.replay.session import (
    Completed,
    Failed,
    ReplaySession,
    Suspended,
    WorkflowDeadlockError,
)

ADD = "step//./t//add"
add = gen.step_proxy(ADD, "add")


async def busy_loop() -> int:
    n = await add(1, 1)
    while True:  # never awaits: the replay loop never gets control back
        n += 1


async def sleep_zero_loop() -> int:
    n = await add(1, 1)
    while True:
        await asyncio.sleep(0)  # always ready again: the loop is never idle
        n += 1


async def swallowing_loop() -> int:
    n = await add(1, 1)
    while True:
        try:
            while True:
                n += 1
        except BaseException:
            n = 0
            break
    while True:
        n += 1


async def many_steps(count: int) -> int:
    total = 0
    for i in range(count):
        total = await add(total, i)
    return total


def _line_of(fn: object, text: str) -> int:
    lines, first = inspect.getsourcelines(fn.__code__)  # type: ignore[attr-defined]
    return first + next(i for i, line in enumerate(lines) if text in line)


def _first_step_log() -> Log:
    """A log where the workflow's first ``add(1, 1)`` completed with 2."""
    log = Log()
    session = ReplaySession(busy_loop, make_run(), args=(), kwargs={})
    outcome = session.feed(log.events)
    session.close()
    assert isinstance(outcome, Suspended)
    (step,) = outcome.steps
    log.add("step_created", step.correlation_id, {"step_name": ADD, "input": step.input})
    log.add("step_started", step.correlation_id)
    log.add("step_completed", step.correlation_id, {"result": 2})
    return log


@pytest.mark.parametrize(
    ("workflow", "stuck_line"),
    [(busy_loop, "n += 1"), (sleep_zero_loop, "asyncio.sleep(0)")],
    ids=["busy", "sleep0"],
)
def test_a_workflow_that_never_yields_fails_naming_the_workflow_and_line(
    workflow: object, stuck_line: str
) -> None:
    session = ReplaySession(workflow, make_run(), args=(), kwargs={}, feed_deadline=0.3)  # type: ignore[arg-type]
    started = time.monotonic()
    outcome = session.feed(_first_step_log().events)
    took = time.monotonic() - started
    assert isinstance(outcome, Failed), outcome
    assert isinstance(outcome.error, WorkflowDeadlockError)
    message = str(outcome.error)
    assert 'workflow "wf"' in message and make_run().run_id in message
    assert "did not yield to the replay loop for 0.3 s" in message
    # The loop's line or its body's (a backward jump is counted on the ``while``).
    body = _line_of(workflow, stuck_line)
    assert any(
        f"stuck at tests/runtime/test_feed_deadline.py:{line}:" in message
        for line in (body - 1, body)
    ), message
    assert 0.3 <= took < 5
    assert session.done
    assert session.feed([]) is outcome  # the session stays failed


def test_a_loop_that_swallows_the_interruption_is_interrupted_again() -> None:
    session = ReplaySession(swallowing_loop, make_run(), args=(), kwargs={}, feed_deadline=0.2)
    outcome = session.feed(_first_step_log().events)
    assert isinstance(outcome, Failed) and isinstance(outcome.error, WorkflowDeadlockError)


def test_a_long_replay_is_not_cut_the_bound_is_per_turn() -> None:
    count = 10_000
    sim = Simulator(many_steps, args=(count,), steps={ADD: lambda a, b: a + b})
    assert sim.play(max_rounds=3 * count) == Completed(sum(range(count)))
    unbounded = ReplaySession(many_steps, make_run(), args=(count,), kwargs={})
    started = time.monotonic()
    assert unbounded.feed(sim.log.events) == Completed(sum(range(count)))
    took = time.monotonic() - started
    unbounded.close()
    # A deadline a third of the whole replay: far above any one turn, far below the sum.
    session = ReplaySession(
        many_steps, make_run(), args=(count,), kwargs={}, feed_deadline=took / 3
    )
    assert session.feed(sim.log.events) == Completed(sum(range(count)))


def test_without_a_deadline_nothing_watches_the_feed() -> None:
    # A finished feed leaves nothing pending in its thread: the next bytecodes run on.
    session = ReplaySession(many_steps, make_run(), args=(3,), kwargs={}, feed_deadline=0.05)
    assert isinstance(session.feed(Log().events), Suspended)
    time.sleep(0.2)  # longer than the deadline, outside any feed: nothing is raised here
    session.close()
    assert threading.current_thread().is_alive()
