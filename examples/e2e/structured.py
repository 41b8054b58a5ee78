"""Scenarios 2-7 written with TaskGroup and create_task, and tasks iterated out of sets.

The same behaviours as basics.py and timers.py, in the structured-concurrency forms a
Python user reaches for first: a step call is a coroutine, so ``TaskGroup.create_task``
and ``asyncio.create_task`` take it directly.
"""

import asyncio
import random
import time

from wfkit import FatalError, sleep


async def upper_after(text: str, delay: float) -> str:
    "use step"
    await asyncio.sleep(delay)
    return text.upper()


async def never_succeeds() -> str:
    "use step"
    raise FatalError("this one never succeeds")


async def slow_step(seconds: float) -> str:
    "use step"
    await asyncio.sleep(seconds)
    return "finished"


async def name_of(i: int) -> str:
    "use step"
    return f"n{i}"


async def echo(value: str, delay: float = 0.0) -> str:
    "use step"
    await asyncio.sleep(delay)
    return value


async def gather_three() -> str:
    "use workflow"
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(upper_after(c, random.random() / 10)) for c in "abc"]
    return "".join(t.result() for t in tasks)


async def race(tail: bool = False) -> dict:
    "use workflow"
    delays = (0.5, 0.1, 1.0) if tail else (10, 0.1, 20)
    tasks = [asyncio.create_task(upper_after(c, d)) for c, d in zip("abc", delays, strict=True)]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    winner = next(iter(done)).result().lower()
    # With a tail the losers finish while it runs: later replays must consume them.
    return {"winner": winner, "tail": await upper_after("tail", 2.0) if tail else None}


async def any_success() -> str:
    "use workflow"
    pending = {
        asyncio.create_task(never_succeeds()),
        asyncio.create_task(upper_after("b", 0.1)),
        asyncio.create_task(upper_after("c", 6)),
    }
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is None:
                return task.result().lower()
    raise RuntimeError("no step succeeded")


async def sleeper(seconds: float) -> dict:
    "use workflow"
    started = time.time()
    await asyncio.create_task(sleep(seconds))
    return {"elapsed": time.time() - started}


async def parallel_sleeps() -> int:
    "use workflow"
    async with asyncio.TaskGroup() as group:
        for _ in range(10):
            group.create_task(sleep(1))
    return 10


async def timeout(step_seconds: float = 30, limit: float = 2) -> dict:
    "use workflow"
    started = time.time()
    try:
        async with asyncio.timeout(limit):
            async with asyncio.TaskGroup() as group:
                group.create_task(slow_step(step_seconds))
        outcome = "finished"
    except TimeoutError:
        outcome = "timed out"
    return {"outcome": outcome, "elapsed": time.time() - started}


async def pairs(n: int = 10, delay: float = 0.0) -> list:
    "use workflow"
    done, _ = await asyncio.wait([asyncio.create_task(name_of(i)) for i in range(n)])
    # Iterated out of the set asyncio.wait returns, each result passed to another step.
    return [(t.result(), await echo(t.result(), delay)) for t in done]
