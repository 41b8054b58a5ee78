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
from replay_log import Simulator, assert_paths_agree

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

Op = tuple[str, int]
OPS = ("step", "gather", "sleep", "race", "deadline", "nap_step", "detached")


def random_program(rng: random.Random) -> list[Op]:
    return [(rng.choice(OPS), rng.randint(1, 4)) for _ in range(rng.randint(1, 7))]


def interpreter(program: list[Op]) -> Callable[[], Any]:
    """A workflow that runs ``program``: each op mixes steps, timers and races."""

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
            else:
                detached.append(asyncio.ensure_future(work(tag)))
        trace.append(await asyncio.gather(*detached))
        return trace

    return run_program


@pytest.mark.parametrize("seed", range(40))
def test_random_programs_live_path_equals_full_replay(seed: int) -> None:
    rng = random.Random(seed)
    program = random_program(rng)
    workflow = interpreter(program)
    timings: dict[str, float] = {}

    def duration(value: Any) -> float:
        return timings.setdefault(repr(value), rng.choice([0.25, 0.5, 1.0, 1.0, 2.0, 4.0]))

    sim = Simulator(workflow, steps={WORK: work_impl}, durations={WORK: duration})
    outcome = sim.play()
    assert isinstance(outcome, Completed), (program, outcome)
    fold_events(sim.log.events)
    assert_paths_agree(workflow, sim)
