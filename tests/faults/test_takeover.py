"""A worker that kept a run's replay in its cache takes the run over after the worker
that moved it on died mid-step.

Found by the crash test: worker A replays a run until it waits on a hook and keeps
the suspended replay cached. The payload's wake-up goes to worker B, which creates
the next step, starts it inline, and dies. B's message is redelivered -- to A, whose
cached replay catches up with B's events. A must re-enqueue B's orphaned step, as a
fresh replay does; before the fix it acked the message and the run hung (with the
sweep off, for ever; with it on, until a sweep message happened to reach another
worker).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from examples.e2e import faults
from tests.faults.conftest import ALL_WORLDS, WorldHandle, assert_recorded_once, run_async
from wfkit.runtime.api.client import resume_hook_sync, start
from wfkit.runtime.engine.orchestrator import Orchestrator
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.verify import verify_world


@pytest.mark.parametrize("kind", ALL_WORLDS)
def test_a_cached_replay_heals_the_step_of_a_worker_that_died(
    kind: str, make_world: Callable[[str], WorldHandle]
) -> None:
    handle = make_world(kind)
    world = handle.world
    token = f"takeover-{kind}"

    async def scenario() -> Any:
        run = await start(faults.relay, token, world=world)
        run_id = run.run_id
        a = Orchestrator(world, lease_seconds=0.2)
        b_world = handle.reopen()
        # B dies before its step's first heartbeat (a sixth of its lease): nothing of
        # B's keeps the step claimed, as after a SIGKILL (this process lives on).
        b = Orchestrator(b_world, lease_seconds=60)
        await a.handle_workflow_message(run_id)  # first step, then waits on the hook
        assert a.cached_runs == 1
        resume_hook_sync(token, {"n": 7}, world=world)
        # B takes the payload's wake-up, starts the next step inline, and "dies":
        # its attempt never returns and it writes nothing more.
        dead = asyncio.create_task(b.handle_workflow_message(run_id))
        try:
            for _ in range(200):
                if any(s.status == "running" for s in world.steps.list(run_id)):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("B never started the step")
            world.queue.delete_messages(run_id)  # B's message, as if A now held it
            await asyncio.sleep(0.3)  # past half a lease: the step is not fresh any more
            # The dead worker's message is redelivered (attempt 2) to A.
            await a.handle_workflow_message(run_id, delivery_attempt=2)
            assert run_id in world.queue.live_run_ids(), "the orphaned step was not re-enqueued"
            worker = Worker(world, poll_interval=0.01)
            await worker.run_until_complete(run_id, timeout=10)
            return run_id, await run.result(timeout=1)
        finally:
            dead.cancel()
            await asyncio.gather(dead, return_exceptions=True)
            a.close()
            b.close()
            if b_world is not world:
                b_world.close()

    run_id, result = run_async(scenario(), timeout=60)
    assert result == {"steps": [1, 7]}
    assert_recorded_once(world, [run_id])
    assert verify_world(world) == []
