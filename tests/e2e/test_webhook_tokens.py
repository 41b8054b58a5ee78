"""Default webhook tokens on every world: not computable from the run ID, stable across a
worker restart (another worker replays the run and sees the recorded token)."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable
from typing import Any

import httpx

from examples.e2e import hooks
from tests.e2e.conftest import events_of, run_async, running_worker, types_of
from wfkit import start
from wfkit.runtime.api.webhooks import WEBHOOK_PATH
from wfkit.runtime.tools.http import create_app


def old_derived_token(run_id: str) -> str:
    """The first default token wfkit 0.1.0 gave a run (see tests/runtime/test_hook_tokens.py)."""
    rng = random.Random(f"wfkit-correlation-ids:{run_id}")
    rng.getrandbits(79)
    return base64.urlsafe_b64encode(rng.randbytes(18)).decode("ascii")


async def _until(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def test_a_webhook_token_is_not_derived_from_the_run_and_survives_a_restart(world: Any) -> None:
    async def scenario() -> tuple[Any, Any, Any, Any, Any]:
        transport = httpx.ASGITransport(app=create_app(world))
        async with httpx.AsyncClient(transport=transport, base_url="http://wfkit") as http:
            async with running_worker(world):
                run = await start(hooks.webhook_with_default_token, world=world)
                await _until(lambda: "step_completed" in types_of(world, run.run_id))
            (hook,) = world.hooks.list(run_id=run.run_id)
            derived = old_derived_token(run.run_id)
            refused = await http.post(WEBHOOK_PATH + derived, content=b"attacker")
            # A new worker has no session for the run: it replays the whole log.
            async with running_worker(world):
                accepted = await http.post(WEBHOOK_PATH + hook.token, content=b"owner")
                result = await run.result(timeout=30)
        return run, hook, refused, accepted, result

    run, hook, refused, accepted, result = run_async(scenario())
    assert refused.status_code == 404
    assert accepted.status_code == 202
    assert result == {"token": hook.token, "seen_by_step": hook.token, "body": "owner"}
    received = [e for e in events_of(world, run.run_id) if e.event_type == "hook_received"]
    assert len(received) == 1  # the attacker's body was never consumed
    assert len(hook.token) == 24
