"""Property-style: for many workflows and timings, the live path equals full replay.

Each case plays a workflow through the simulated orchestrator with step
durations and hook timings drawn from a seeded generator, then checks that the
log is legal for the world's lifecycle rules, that a fresh session fed the whole
log and a session fed one event at a time reach the same outcome, and that every
suspension the live session reported equals a fresh replay of that log prefix.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_log import Simulator, assert_paths_agree, comparable

from wfkit.runtime import gen
from wfkit.runtime.api.workflow import create_hook, sleep
from wfkit.runtime.errors import FatalError
from wfkit.runtime.replay.session import Completed, Failed
from wfkit.worlds.base import fold_events

WORK = "step//./p//work"
BOOM = "step//./p//boom"
work = gen.step_proxy(WORK, "work")
boom = gen.step_proxy(BOOM, "boom")


def work_impl(value: Any) -> Any:
    return value


def boom_impl(message: str) -> None:
    raise FatalError(message)


async def sequential() -> int:
    total = 0
    for i in range(6):
        total = await work(total + i)
    return total


async def fan_out() -> list[Any]:
    first = await asyncio.gather(*(work(i) for i in range(5)))
    second = await asyncio.gather(*(work(i * 10) for i in first))
    return list(second)


async def racing() -> list[Any]:
    winners = []
    for i in range(3):
        calls = [asyncio.ensure_future(work(f"{i}-{j}")) for j in range(3)]
        done, _ = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
        winners.append(sorted(f.result() for f in done))
    return winners


async def deadlines() -> list[str]:
    out = []
    for i in range(3):
        try:
            out.append(await asyncio.wait_for(work(f"w{i}"), 1.5))
        except TimeoutError:
            out.append("timeout")
    return out


async def failures() -> list[str]:
    results = await asyncio.gather(boom("x"), work("y"), return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException) else r for r in results]


async def uncaught() -> None:
    await work(1)
    await boom("fatal")


async def mixed() -> list[Any]:
    received: list[Any] = []
    hook = create_hook(token="mix", metadata={"m": 1})

    async def consume() -> None:
        async for payload in hook:
            received.append(payload)
            if payload == "stop":
                return

    consumer = asyncio.ensure_future(consume())

    async def nap_then(value: str) -> Any:
        await sleep("1s")
        return await work(value)

    pair = await asyncio.gather(work("a"), nap_then("b"))
    try:
        third = await asyncio.wait_for(work("c"), 2)
    except TimeoutError:
        third = "timeout"
    await consumer
    hook.dispose()
    return [*pair, third, received, await work("end")]


@dataclass(frozen=True)
class Case:
    workflow: Callable[..., Any]
    hooks: bool = False


CASES = {
    "sequential": Case(sequential),
    "fan_out": Case(fan_out),
    "racing": Case(racing),
    "deadlines": Case(deadlines),
    "failures": Case(failures),
    "uncaught": Case(uncaught),
    "mixed": Case(mixed, hooks=True),
}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("name", sorted(CASES))
def test_live_path_equals_full_replay(name: str, seed: int) -> None:
    case = CASES[name]
    rng = random.Random(f"{name}:{seed}")
    timings: dict[str, float] = {}

    def duration(value: Any) -> float:
        # Per-argument, so a replayed call gets the timing its first run had.
        return timings.setdefault(repr(value), rng.choice([0.5, 1.0, 1.0, 2.0, 3.0]))

    hook_payloads = []
    if case.hooks:
        times = sorted(rng.uniform(0.1, 5.0) for _ in range(3))
        hook_payloads = [(t, "mix", p) for t, p in zip(times, ["p1", "p2", "stop"], strict=True)]
    sim = Simulator(
        case.workflow,
        steps={WORK: work_impl, BOOM: boom_impl},
        durations={WORK: duration, BOOM: lambda message: 0.5},
        hook_payloads=hook_payloads,
    )
    outcome = sim.play()
    assert isinstance(outcome, Completed | Failed)
    if isinstance(outcome, Failed):
        assert outcome.code == "USER_ERROR"
    fold_events(sim.log.events)  # the log is legal for the world's lifecycle rules
    assert_paths_agree(case.workflow, sim)


def test_mixed_workflow_result() -> None:
    sim = Simulator(
        mixed,
        steps={WORK: work_impl},
        durations={WORK: lambda value: 1.0},
        hook_payloads=[(0.5, "mix", "p1"), (1.2, "mix", "stop")],
    )
    assert sim.play() == Completed(["a", "b", "c", ["p1", "stop"], "end"])
    disposed = [e for e in sim.log.events if e.event_type == "hook_disposed"]
    assert len(disposed) == 1


# --- random programs -----------------------------------------------------------------------
#
# Hypothesis draws programs from every asyncio form a workflow may use over steps, sleeps and
# hooks (gather, wait, as_completed, TaskGroup, create_task, shield, timeout, wait_for, tasks
# iterated out of the sets asyncio.wait returns), step durations and hook payload times, and a
# round at which the worker dies. Each program is played three times: with the replay cache
# on (one session fed as the log grows), off (a fresh session replays the whole log every
# round, as ``replay_cache=False`` does) and killed (the session is lost once, at the drawn
# round, and a fresh one takes over from the log). The three logs and results must be
# identical, the log legal for the world's lifecycle rules, and every path of the live
# session equal to a full replay.

Op = tuple[str, int]
OPS = (
    "step",
    "gather",
    "sleep",
    "race",
    "deadline",
    "nap_step",
    "detached",
    "task_group",
    "create_task",
    "as_completed",
    "wait_set",
    "hook",
    "shield",
    "timeout",
)
programs = st.lists(st.tuples(st.sampled_from(OPS), st.integers(1, 4)), min_size=1, max_size=7)


def interpreter(program: list[Op]) -> Callable[[], Any]:
    """A workflow that runs ``program``: each op mixes steps, timers, hooks and tasks."""

    async def run_program() -> list[Any]:
        trace: list[Any] = []
        detached: list[asyncio.Future[Any]] = []
        for index, (op, n) in enumerate(program):
            tag = f"{index}{op}"
            if op == "step":
                trace.append(await work(tag))
            elif op == "gather":
                trace.append(await asyncio.gather(*(work(f"{tag}.{i}") for i in range(n))))
            elif op == "sleep":
                await sleep(n * 0.5)
                trace.append("slept")
            elif op == "race":
                calls = [asyncio.ensure_future(work(f"{tag}.{i}")) for i in range(n + 1)]
                done, _ = await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
                trace.append(sorted(f.result() for f in done))
            elif op == "deadline":
                try:
                    trace.append(await asyncio.wait_for(work(tag), n * 0.75))
                except TimeoutError:
                    trace.append("timeout")
            elif op == "nap_step":
                trace.append(await asyncio.gather(asyncio.sleep(n), work(tag)))
            elif op == "detached":
                detached.append(asyncio.ensure_future(work(tag)))
            elif op == "task_group":
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(work(f"{tag}.{i}")) for i in range(n)]
                trace.append([t.result() for t in tasks])
            elif op == "create_task":
                trace.append(await asyncio.create_task(work(tag)))
            elif op == "as_completed":
                fetches = [_fetch_twice(f"{tag}.{i}") for i in range(n + 1)]
                trace.append([await f for f in asyncio.as_completed(fetches)])
            elif op == "wait_set":
                tasks = [asyncio.create_task(work(f"{tag}.{i}")) for i in range(n + 1)]
                done, _ = await asyncio.wait(tasks)
                # Iterated out of a set, each result passed on to another step.
                trace.append([(t.result(), await work(["echo", t.result()])) for t in done])
            elif op == "hook":
                hook = create_hook(token=f"h{index}")
                try:
                    trace.append(await asyncio.wait_for(hook, n * 1.5))
                except TimeoutError:
                    trace.append("no payload")
                hook.dispose()
            elif op == "shield":
                trace.append(await asyncio.shield(work(tag)))
            else:
                try:
                    async with asyncio.timeout(n * 0.6):
                        trace.append(await work(tag))
                except TimeoutError:
                    trace.append("timeout")
        trace.append(await asyncio.gather(*detached))
        return trace

    return run_program


async def _fetch_twice(tag: str) -> Any:
    first = await work(tag)
    return await work([first, "again"])


def _simulate(
    program: list[Op], timing_seed: int, restart: Callable[[int], bool] | None
) -> Simulator:
    rng = random.Random(timing_seed)
    timings: dict[str, float] = {}

    def duration(value: Any) -> float:
        # Per argument, drawn in the order steps are created: the same in every mode.
        return timings.setdefault(repr(value), rng.choice([0.25, 0.5, 1.0, 1.0, 2.0, 4.0]))

    hooks = [f"h{i}" for i, (op, _) in enumerate(program) if op == "hook"]
    payloads = [(random.Random(f"{timing_seed}:{t}").uniform(0.1, 8.0), t, t) for t in hooks]
    sim = Simulator(
        interpreter(program),
        steps={WORK: work_impl},
        durations={WORK: duration},
        hook_payloads=payloads,
    )
    sim.play(restart=restart)
    return sim


def _log_of(sim: Simulator) -> list[tuple[Any, ...]]:
    return [(e.event_type, e.correlation_id, e.data, e.created_at) for e in sim.log.events]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(program=programs, timing_seed=st.integers(0, 2**16), kill_at=st.integers(1, 40))
def test_random_programs_same_log_with_cache_on_off_and_a_killed_worker(
    program: list[Op], timing_seed: int, kill_at: int
) -> None:
    cached = _simulate(program, timing_seed, restart=None)
    outcome = cached.outcomes[-1]
    assert isinstance(outcome, Completed), (program, outcome)
    fold_events(cached.log.events)  # the log is legal for the world's lifecycle rules
    expected = (comparable(outcome), _log_of(cached))
    uncached = _simulate(program, timing_seed, restart=lambda _round: True)
    assert (comparable(uncached.outcomes[-1]), _log_of(uncached)) == expected
    killed = _simulate(program, timing_seed, restart=lambda round_number: round_number == kill_at)
    assert (comparable(killed.outcomes[-1]), _log_of(killed)) == expected
    assert_paths_agree(cached.workflow, cached)
