"""Scenarios 1-4, 11, 12, 14-17, 19, 26, 30: steps, parallelism, errors, retries, determinism."""

import asyncio
import random
import time
import uuid
from datetime import datetime

from wfkit import (
    FatalError,
    RetryableError,
    get_step_metadata,
    get_workflow_metadata,
    step_options,
)


async def add(a: int, b: int) -> int:
    "use step"
    return a + b


async def add_ten(start: int) -> int:
    "use workflow"
    a = await add(start, 2)
    b = await add(a, 3)
    return await add(b, 5)


async def upper_after(text: str, delay: float) -> str:
    "use step"
    await asyncio.sleep(delay)
    return text.upper()


async def gather_three() -> str:
    "use workflow"
    parts = await asyncio.gather(
        upper_after("a", random.random() / 10),
        upper_after("b", random.random() / 10),
        upper_after("c", random.random() / 10),
    )
    return "".join(parts)


async def race() -> str:
    "use workflow"
    tasks = [
        asyncio.ensure_future(upper_after("a", 10)),
        asyncio.ensure_future(upper_after("b", 0.1)),
        asyncio.ensure_future(upper_after("c", 20)),
    ]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    return (await next(iter(done))).lower()


async def race_with_tail() -> dict:
    "use workflow"
    tasks = [
        asyncio.ensure_future(upper_after("a", 0.5)),
        asyncio.ensure_future(upper_after("b", 0.1)),
        asyncio.ensure_future(upper_after("c", 1.0)),
    ]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    winner = (await next(iter(done))).lower()
    tail = await upper_after("tail", 2.0)
    return {"winner": winner, "tail": tail}


async def always_fatal() -> str:
    "use step"
    raise FatalError("this one never succeeds")


async def any_success() -> str:
    "use workflow"
    tasks = [
        asyncio.ensure_future(always_fatal()),
        asyncio.ensure_future(upper_after("b", 0.1)),
        asyncio.ensure_future(upper_after("c", 6)),
    ]
    for next_done in asyncio.as_completed(tasks):
        try:
            return (await next_done).lower()
        except FatalError:
            continue
    raise RuntimeError("no step succeeded")


async def null_byte_step() -> str:
    "use step"
    return "null byte \0"


async def null_byte() -> str:
    "use workflow"
    return await null_byte_step()


async def step_metadata() -> dict:
    "use step"
    step = get_step_metadata()
    workflow = get_workflow_metadata()
    return {
        "step": {"step_id": step.step_id, "step_name": step.step_name, "attempt": step.attempt},
        "step_fields": sorted(vars(step)),
        "workflow": {"run_id": workflow.workflow_run_id, "name": workflow.workflow_name},
        "workflow_fields": sorted(vars(workflow)),
    }


async def metadata() -> dict:
    "use workflow"
    meta = get_workflow_metadata()
    from_step = await step_metadata()
    return {
        "workflow": {"run_id": meta.workflow_run_id, "name": meta.workflow_name},
        "from_step": from_step,
    }


async def flaky_until_third() -> int:
    "use step"
    attempt = get_step_metadata().attempt
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


async def retry_counter() -> int:
    "use workflow"
    return await flaky_until_third()


async def retry_once_later() -> dict:
    "use step"
    meta = get_step_metadata()
    if meta.attempt == 1:
        raise RetryableError("try again in two seconds", retry_after=2)
    return {"attempt": meta.attempt, "first_started_at": meta.step_started_at}


async def fatal_step() -> None:
    "use step"
    raise FatalError("step failed")


async def retry_and_fatal() -> dict:
    "use workflow"
    retried = await retry_once_later()
    try:
        await fatal_step()
        got_fatal = False
    except FatalError:
        got_fatal = True
    return {"retried": retried, "got_fatal": got_fatal}


async def flaky() -> None:
    "use step"
    raise RuntimeError("flaky failed")


flaky.max_retries = 0


async def max_retries_zero() -> str:
    "use workflow"
    try:
        await flaky()
    except RuntimeError as exc:
        return f"caught: {exc}"
    return "not reached"


async def fatal_uncaught_step() -> None:
    "use step"
    raise FatalError("Fatal step error")


async def uncaught_fatal() -> None:
    "use workflow"
    await fatal_uncaught_step()


@step_options(max_retries=0)  # the typed form of `raises_value_error.max_retries = 0`
async def raises_value_error() -> None:
    "use step"
    raise ValueError("Step error message")


async def step_error_caught() -> dict:
    "use workflow"
    try:
        await raises_value_error()
    except ValueError as exc:
        return {"type": type(exc).__name__, "message": str(exc)}
    return {}


async def noop(i: int) -> int:
    "use step"
    return i


async def fan_out(total: int = 110) -> list[int]:
    "use workflow"
    first = await asyncio.gather(*(noop(i) for i in range(10)))
    second = await asyncio.gather(*(noop(1000 + i) for i in range(total - 10)))
    return [*first, *second]


async def determinism() -> dict:
    "use workflow"
    before = {
        "time": time.time(),
        "now": datetime.now().isoformat(),
        "random": random.random(),
        "uuid": str(uuid.uuid4()),
    }
    await noop(1)
    after = {"time": time.time(), "random": random.random(), "uuid": str(uuid.uuid4())}
    return {"before": before, "after": after}
