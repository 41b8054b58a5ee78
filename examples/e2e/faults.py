"""Workflows for the fault tests (tests/faults) and the scale bench (bench/scale.py).

Each one has a result that is a pure function of its arguments, so a test can
check it after workers were killed, messages lost or delivered twice.
"""

import asyncio
import time

from wfkit import create_hook, get_step_metadata, sleep


async def slow_append(acc: list, item: int, delay: float) -> list:
    "use step"
    await asyncio.sleep(delay)
    return [*acc, item]


async def slow_square(i: int, delay: float) -> int:
    "use step"
    await asyncio.sleep(delay)
    return i * i


async def chain(n: int, delay: float = 0.1) -> list:
    "use workflow"
    acc: list = []
    for i in range(n):
        acc = await slow_append(acc, i, delay)
    return acc


async def fan(n: int, delay: float = 0.1) -> dict:
    "use workflow"
    head = await slow_append([], -1, delay)
    squares = await asyncio.gather(*(slow_square(i, delay) for i in range(n)))
    tail = await slow_append(head, -2, delay)
    return {"squares": list(squares), "tail": tail}


async def napper(seconds: float, delay: float = 0.1) -> dict:
    "use workflow"
    before = await slow_append([], 1, delay)
    await sleep(seconds)
    after = await slow_append(before, 2, delay)
    return {"steps": after}


async def waiter(token: str, delay: float = 0.1) -> dict:
    "use workflow"
    before = await slow_append([], 1, delay)
    payload = await create_hook(token=token)
    after = await slow_append(before, payload["n"], delay)
    return {"steps": after, "payload": payload}


async def noop(i: int) -> int:
    "use step"
    return i


async def ten(n: int = 10) -> int:
    "use workflow"
    total = 0
    for i in range(n):
        total += await noop(i)
    return total


async def stall_first_attempt(acc: list, item: int) -> list:
    "use step"
    if get_step_metadata().attempt == 1:
        # A worker frozen (or killed) mid-step, as far as the log can tell.
        await asyncio.sleep(3600)
    return [*acc, item]


async def relay(token: str) -> dict:
    "use workflow"
    before = await slow_append([], 1, 0.0)
    payload = await create_hook(token=token)
    after = await stall_first_attempt(before, payload["n"])
    return {"steps": after}


async def spinner(kind: str) -> int:
    "use workflow"
    n = await noop(1)
    if kind == "busy":
        while True:  # never yields to the replay loop: the feed deadline fails the run
            n += 1
    while True:
        await asyncio.sleep(0)  # always ready again: the replay loop never goes idle
        n += 1


async def counted_sleep(path: str, seconds: float, blocking: bool) -> int:
    "use step"
    with open(path, "a") as runs:  # one line per execution: tests count them
        runs.write(f"{get_step_metadata().attempt}\n")
    if blocking:
        time.sleep(seconds)  # blocks the worker's event loop (sync I/O in a step)
    else:
        await asyncio.sleep(seconds)
    return get_step_metadata().attempt


async def long_step(path: str, seconds: float, blocking: bool = True) -> int:
    "use workflow"
    return await counted_sleep(path, seconds, blocking)
