"""Workflows and queues for the flow-control tests (tests/flow): idempotency keys,
deadlines, named queues (SCENARIOS 40) and schedules (SCENARIOS 41)."""

import asyncio
import os
import time
from datetime import timedelta

from wfkit import Queue, create_hook, sleep, start

THROTTLED = Queue("flow_throttled", concurrency=3)
SERIAL = Queue("flow_serial", concurrency=1)
RATED = Queue("flow_rated", rate_limit=(2, timedelta(seconds=1)))
PER_KEY = Queue("flow_per_key", per_key_concurrency=1)
PER_WORKER = Queue("flow_per_worker", worker_concurrency=1)


async def timed_work(label: str, seconds: float) -> dict:
    "use step"
    started = time.time()
    await asyncio.sleep(seconds)
    return {"label": label, "start": started, "end": time.time(), "pid": os.getpid()}


async def work(label: str, seconds: float = 0.2) -> dict:
    "use workflow"
    return await timed_work(label, seconds)


async def echo(value: str) -> str:
    "use step"
    return value


async def greet(name: str) -> str:
    "use workflow"
    return await echo(f"hello {name}")


async def wait_on_hook(token: str) -> dict:
    "use workflow"
    return await create_hook(token=token)


async def nap(seconds: float) -> str:
    "use workflow"
    await sleep(seconds)
    return await echo("woke")


async def slow_then_more(seconds: float) -> str:
    "use workflow"
    await timed_work("slow", seconds)
    return await echo("after")


async def child_on_a_queue() -> str:
    "use workflow"
    run = await start(greet, "child", queue=THROTTLED)
    return run.run_id
