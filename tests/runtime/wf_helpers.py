"""Workflows registered directly through wfkit.runtime.gen, as generated code would (runtime tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from wfkit.runtime import gen
from wfkit.runtime.context import current_step
from wfkit.runtime.errors import FatalError, RetryableError

PREFIX = "//./tests/runtime/wf_helpers//"
ATTEMPTS: dict[str, list[int]] = {}


def step(name: str, fn: Callable[..., Any], *, max_retries: int | None = None) -> Any:
    """Register ``fn`` as step ``name`` and return its workflow-mode proxy."""
    step_id = f"step{PREFIX}{name}"
    if max_retries is not None:
        fn.max_retries = max_retries  # type: ignore[attr-defined]
    gen.register_step(step_id, fn)
    proxy = gen.step_proxy(step_id, name)
    return proxy


def workflow(name: str, fn: Callable[..., Any]) -> str:
    workflow_id = f"workflow{PREFIX}{name}"
    gen.register_workflow(workflow_id, fn)
    return workflow_id


def _attempt() -> int:
    ctx = current_step.get()
    assert ctx is not None
    return ctx.step.attempt


async def _add(a: int, b: int) -> int:
    return a + b


async def _upper_after(text: str, delay: float) -> str:
    await asyncio.sleep(delay)
    return text.upper()


async def _flaky_until(n: int) -> int:
    attempt = _attempt()
    if attempt < n:
        raise RetryableError(f"attempt {attempt}", retry_after=0.05)
    return attempt


async def _plain_flaky() -> int:
    raise RuntimeError("always")


async def _fatal() -> None:
    raise FatalError("fatal!")


async def _retry_later(seconds: float) -> int:
    attempt = _attempt()
    if attempt == 1:
        raise RetryableError("later", retry_after=seconds)
    return attempt


async def _slow(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "slow"


add = step("add", _add)
upper_after = step("upper_after", _upper_after)
flaky_until = step("flaky_until", _flaky_until)
plain_flaky = step("plain_flaky", _plain_flaky, max_retries=0)
fatal = step("fatal", _fatal)
retry_later = step("retry_later", _retry_later)
slow = step("slow", _slow)


async def _sequential(n: int) -> int:
    total = 0
    for i in range(n):
        total = await add(total, i)
    return total


async def _sequential_slow(n: int) -> int:
    total = 0
    for i in range(n):
        total = await add(total, i)
        await upper_after("pause", 0.02)
    return total


async def _gather(n: int) -> list[int]:
    return list(await asyncio.gather(*(add(i, 0) for i in range(n))))


async def _retries() -> dict[str, Any]:
    third = await flaky_until(3)
    try:
        await plain_flaky()
        plain = "no"
    except RuntimeError as exc:
        plain = str(exc)
    try:
        await fatal()
        fatal_seen = False
    except FatalError:
        fatal_seen = True
    return {"third": third, "plain": plain, "fatal": fatal_seen}


async def _uncaught_fatal() -> None:
    await fatal()


async def _retry_after(seconds: float) -> int:
    return int(await retry_later(seconds))


async def _sleeper(seconds: float) -> str:
    from wfkit.runtime.api.workflow import sleep

    await sleep(seconds)
    return await upper_after("woke", 0)


async def _hooked(token: str) -> list[Any]:
    from wfkit.runtime.api.workflow import create_hook

    got = []
    hook = create_hook(token=token)
    async for payload in hook:
        got.append(payload)
        if payload.get("done"):
            break
    return got


async def _mixed(n: int) -> dict[str, Any]:
    """Sequential, gather and race shapes in one run (for the cache on/off comparison)."""
    first = await add(n, 1)
    pair = await asyncio.gather(add(first, 1), add(first, 2), upper_after("x", 0.01))
    tasks = [
        asyncio.ensure_future(upper_after("fast", 0.01)),
        asyncio.ensure_future(upper_after("slow", 0.3)),
    ]
    done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    winner = next(iter(done)).result()
    tail = await add(pair[0], pair[1])
    return {"first": first, "pair": list(pair), "winner": winner, "tail": tail}


sequential = workflow("sequential", _sequential)
sequential_slow = workflow("sequential_slow", _sequential_slow)
gather = workflow("gather", _gather)
retries = workflow("retries", _retries)
uncaught_fatal = workflow("uncaught_fatal", _uncaught_fatal)
retry_after = workflow("retry_after", _retry_after)
sleeper = workflow("sleeper", _sleeper)
hooked = workflow("hooked", _hooked)
mixed = workflow("mixed", _mixed)


async def _hook_and_step(token: str) -> list[Any]:
    from wfkit.runtime.api.workflow import create_hook

    hook = create_hook(token=token)
    running = asyncio.ensure_future(slow(0.2))
    payload = await hook
    return [payload, await running, await add(1, 2)]


async def _conflicting_hooks(token: str) -> str:
    from wfkit.runtime.api.workflow import create_hook
    from wfkit.runtime.errors import HookConflictError

    try:
        await create_hook(token=token)
    except HookConflictError as exc:
        return f"conflict: {exc.token}"
    return "no conflict"


hook_and_step = workflow("hook_and_step", _hook_and_step)
conflicting_hooks = workflow("conflicting_hooks", _conflicting_hooks)


async def _one_slow(seconds: float) -> str:
    return str(await slow(seconds))


one_slow = workflow("one_slow", _one_slow)


async def _cancels_itself_once() -> int:
    attempt = _attempt()
    if attempt == 1:
        raise asyncio.CancelledError("a step that cancels itself")
    return attempt


cancels_itself_once = step("cancels_itself_once", _cancels_itself_once)


async def _self_cancelling() -> int:
    return int(await cancels_itself_once())


self_cancelling = workflow("self_cancelling", _self_cancelling)


async def _echo_value(value: Any) -> Any:
    return value


async def _default_token_to_step() -> list[Any]:
    from wfkit.runtime.api.workflow import create_hook

    hook = create_hook()
    seen_by_step = await echo_value(hook.token)
    payload = await hook
    return [hook.token, seen_by_step, payload]


echo_value = step("echo_value", _echo_value)
default_token_to_step = workflow("default_token_to_step", _default_token_to_step)


async def _own_task_name() -> str:
    # ``asyncio.timeout`` cancels the current task when it expires: inside a step that
    # must be the step's own task, not the handler's (the step starts eagerly).
    async with asyncio.timeout(5):
        task = asyncio.current_task()
        assert task is not None
        return task.get_name()


own_task_name = step("own_task_name", _own_task_name)


async def _step_task_names(n: int) -> list[str]:
    first = [await own_task_name() for _ in range(n)]
    return [*first, *await asyncio.gather(*(own_task_name() for _ in range(n)))]


step_task_names = workflow("step_task_names", _step_task_names)
