"""The async client calls never block the caller's event loop on world I/O.

Each case slows one world method down (a stand-in for a slow database) and runs the
async call next to a ticker coroutine on the same loop: the ticker must keep ticking
while the call waits for the world.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from tests.runtime import wf_helpers
from wfkit.runtime.api.client import (
    cancel_run,
    get_hook_by_token,
    get_run,
    resume_hook,
    retry_run,
    start,
    start_sync,
)
from wfkit.runtime.api.streams import stream_name
from wfkit.runtime.api.webhooks import resume_webhook
from wfkit.runtime.api.workflow import define_hook
from wfkit.worlds.base import EventRequest
from wfkit.worlds.memory import MemoryWorld

SLOW = 0.4
"""How long the slowed world method takes."""
TICK = 0.01
"""The ticker's period."""


class Approval(BaseModel):
    ok: bool


approval = define_hook(Approval)


def slowed(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(SLOW)  # blocking, as a database driver's socket read is
        return method(*args, **kwargs)

    return slow


async def drain(iterator: Any) -> list[Any]:
    return [chunk async for chunk in iterator]


# (which world method is slow, the async call) -- the call may fail: only blocking matters.
CASES: dict[str, tuple[str, Callable[[MemoryWorld, str], Awaitable[Any]]]] = {
    "start": ("events.create_batch", lambda w, r: start(wf_helpers.sequential, 1, world=w)),
    "Run.status": ("runs.get", lambda w, r: get_run(r, world=w).status()),
    "Run.result": ("runs.get", lambda w, r: get_run(r, world=w).result(timeout=5)),
    "Run.cancel": ("events.create_batch", lambda w, r: get_run(r, world=w).cancel()),
    "Run.readable": ("streams.read", lambda w, r: drain(get_run(r, world=w).readable())),
    "cancel_run": ("events.create_batch", lambda w, r: cancel_run(r, world=w)),
    "retry_run": ("runs.get", lambda w, r: retry_run(r, world=w)),
    "get_hook_by_token": ("hooks.get_by_token", lambda w, r: get_hook_by_token("t", world=w)),
    "resume_hook": ("hooks.get_by_token", lambda w, r: resume_hook("t", {}, world=w)),
    "resume_webhook": ("hooks.get_by_token", lambda w, r: resume_webhook("t", world=w)),
    "TypedHook.resume": (
        "hooks.get_by_token",
        lambda w, r: approval.resume("t", {"ok": True}, world=w),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_slow_world_call_does_not_stall_the_callers_loop(case: str) -> None:
    world = MemoryWorld()
    run = start_sync(wf_helpers.sequential, 1, world=world)
    world.streams.close(run.run_id, stream_name(run.run_id))  # readable() ends at once
    if case == "Run.result":  # an ended run: result() returns after one read
        world.events.create_batch(run.run_id, [EventRequest(event_type="run_cancelled")])
    capability, method = CASES[case][0].split(".")
    target = getattr(world, capability)
    setattr(target, method, slowed(getattr(target, method)))
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(TICK)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def scenario() -> float:
        stop = asyncio.Event()
        ticking = asyncio.create_task(ticker(stop))
        began = time.monotonic()
        with contextlib.suppress(Exception):
            await CASES[case][1](world, run.run_id)
        took = time.monotonic() - began
        stop.set()
        await ticking
        return took

    took = asyncio.run(scenario())
    assert took >= SLOW  # the slowed method was on the call's path
    assert len(gaps) >= SLOW / TICK / 3, gaps  # the loop kept running meanwhile
    assert max(gaps) < SLOW / 2, f"the loop stalled {max(gaps):.3f} s during {case}"
