"""Scenarios 5-7: durable sleeps and timeouts."""

import asyncio
import time

from wfkit import sleep


async def sleeper(seconds: float) -> dict:
    "use workflow"
    started = time.time()
    await sleep(seconds)
    return {"elapsed": time.time() - started}


async def parallel_sleeps() -> int:
    "use workflow"
    await asyncio.gather(*(sleep(1) for _ in range(10)))
    return 10


async def slow_step(seconds: float) -> str:
    "use step"
    await asyncio.sleep(seconds)
    return "finished"


async def timeout(step_seconds: float = 30, limit: float = 2) -> dict:
    "use workflow"
    started = time.time()
    try:
        await asyncio.wait_for(slow_step(step_seconds), limit)
        outcome = "finished"
    except TimeoutError:
        outcome = "timed out"
    return {"outcome": outcome, "elapsed": time.time() - started}
