"""Workflows and queues for the flow-control tests (tests/flow): idempotency keys,
deadlines, named queues (SCENARIOS 40) and schedules (SCENARIOS 41)."""

import asyncio
import os
import time
from datetime import timedelta

from wfkit import Queue, RetryableError, create_hook, get_step_metadata, sleep, start

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


async def child_with_a_priority() -> str:
    "use workflow"
    run = await start(greet, "child", priority=1)
    return run.run_id


async def start_greeting(name: str) -> str:
    "use step"
    # A step starts a run with every flow-control option; its retry (the step failed
    # after the run was started) finds that run by its key instead of starting another.
    run = await start(
        greet,
        name,
        queue=THROTTLED,
        key=name,
        priority=1,
        deadline=timedelta(minutes=5),
        idempotency_key=f"greeting:{name}",
    )
    if get_step_metadata().attempt == 1:
        raise RetryableError("lost the connection after starting", retry_after=0.1)
    return run.run_id


async def parent_via_a_step(name: str) -> str:
    "use workflow"
    return await start_greeting(name)
