"""Workflows for the observability tests, registered through wfkit.runtime.gen as
generated code registers them (imported by the tests and by ``traced_worker``)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from wfkit.runtime import gen
from wfkit.runtime.api.client import start
from wfkit.runtime.api.workflow import create_hook, sleep
from wfkit.runtime.context import current_step
from wfkit.runtime.errors import FatalError, RetryableError

PREFIX = "//./tests/observability/workflows//"


def _step(name: str, fn: Any, *, max_retries: int | None = None) -> Any:
    step_id = f"step{PREFIX}{name}"
    if max_retries is not None:
        fn.max_retries = max_retries
    gen.register_step(step_id, fn)
    return gen.step_proxy(step_id, name)


def _workflow(name: str, fn: Any) -> str:
    workflow_id = f"workflow{PREFIX}{name}"
    gen.register_workflow(workflow_id, fn)
    return workflow_id


def _attempt() -> int:
    context = current_step.get()
    assert context is not None
    return context.step.attempt


async def _record(label: str) -> str:
    return f"recorded {label}"


async def _flaky_once() -> int:
    attempt = _attempt()
    if attempt == 1:
        raise RetryableError("first attempt fails", retry_after=0.01)
    return attempt


async def _add_one(n: int) -> int:
    return n + 1


async def _always_fatal() -> None:
    raise FatalError("card declined")


async def _breaks_always() -> None:
    raise ValueError("no luck")


async def _blocks_the_loop(seconds: float) -> str:
    time.sleep(seconds)  # a step that blocks its worker's event loop (a bug, on purpose)
    return "done"


async def _naps(seconds: float) -> str:
    await asyncio.sleep(seconds)  # long, but the event loop stays free
    return "rested"


record = _step("record", _record)
flaky_once = _step("flaky_once", _flaky_once)
add_one = _step("add_one", _add_one)
always_fatal = _step("always_fatal", _always_fatal)
breaks_always = _step("breaks_always", _breaks_always, max_retries=1)
blocks_the_loop = _step("blocks_the_loop", _blocks_the_loop)
naps = _step("naps", _naps)


async def _child(n: int) -> int:
    return int(await add_one(n))


CHILD = _workflow("child", _child)


async def _parent(token: str, *, flaky: bool = True) -> str:
    """A step, a retried step, a durable sleep, a hook, then a child run."""
    await record("parent")
    if flaky:
        await flaky_once()
    await sleep(0.05)
    payload = await create_hook(token=token)
    child = await start(CHILD, payload["n"])
    return child.run_id


PARENT = _workflow("parent", _parent)


async def _retries_then_fails() -> None:
    await breaks_always()


RETRIES_THEN_FAILS = _workflow("retries_then_fails", _retries_then_fails)


async def _fatal() -> None:
    await always_fatal()


FATAL = _workflow("fatal", _fatal)


async def _waits_on_hook(token: str) -> Any:
    return await create_hook(token=token)


WAITS_ON_HOOK = _workflow("waits_on_hook", _waits_on_hook)


async def _blocking(seconds: float) -> str:
    return str(await blocks_the_loop(seconds))


BLOCKING = _workflow("blocking", _blocking)


async def _napping(seconds: float) -> str:
    return str(await naps(seconds))


NAPPING = _workflow("napping", _napping)


async def _first_version(token: str) -> str:
    await record("one")
    await create_hook(token=token)
    return "v1"


async def _second_version(token: str) -> str:
    await add_one(1)  # the code changed: the log's first step was `record`
    await create_hook(token=token)
    return "v2"


CHANGING = _workflow("changing", _first_version)


def deploy_version(number: int) -> None:
    """Register version ``number`` (1 or 2) of ``CHANGING``: a deploy that changed the
    workflow under its running runs."""
    gen.register_workflow(CHANGING, _first_version if number == 1 else _second_version)
