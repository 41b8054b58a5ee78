"""A crafted event naming a class outside the project, on every world: the run fails once
with a clear error, and the module it names is never imported (issue 10, item 2)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from examples.e2e import hooks
from tests.e2e.conftest import run_async, running_worker, types_of
from wfkit import HookNotFoundError, WorkflowRunFailedError, get_hook_by_token, start
from wfkit.runtime.engine.messages import workflow_message
from wfkit.worlds.base import EventRequest

GADGET = "wfkit_test_gadget_in_a_hook_payload"


async def _hook(token: str, world: Any) -> Any:
    deadline = time.monotonic() + 20
    while True:
        try:
            return await get_hook_by_token(token, world=world)
        except HookNotFoundError:
            assert time.monotonic() < deadline, "the hook never appeared"
            await asyncio.sleep(0.02)


def test_a_crafted_hook_payload_fails_the_run_and_imports_nothing(
    world: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "imported.txt"
    (tmp_path / f"{GADGET}.py").write_text(
        f"open({str(marker)!r}, 'w').write('import ran')\n"
        "import dataclasses\n@dataclasses.dataclass\nclass Gadget:\n    x: int = 0\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    token = f"crafted-{tmp_path.name}"

    async def scenario() -> tuple[Any, BaseException]:
        async with running_worker(world):
            run = await start(hooks.wait_once, token, world=world)
            hook = await _hook(token, world)
            crafted = {"$t": "dc", "cls": f"{GADGET}:Gadget", "v": {"x": 1}}
            record = world.runs.get(run.run_id)
            world.events.create_batch(
                run.run_id,
                [
                    EventRequest(
                        event_type="hook_received",
                        correlation_id=hook.hook_id,
                        data={"payload": {"items": [1, crafted]}},
                    )
                ],
                messages=[
                    workflow_message(
                        record.workflow_name, run.run_id, deployment_id=record.deployment_id
                    )
                ],
            )
            with pytest.raises(WorkflowRunFailedError) as failed:
                await run.result(timeout=30)
            await asyncio.sleep(0.3)  # a redelivery would show as a second ending
        return run, failed.value

    run, error = run_async(scenario())
    assert not marker.exists() and GADGET not in sys.modules
    assert f'cannot deserialize {GADGET}:Gadget at payload["items"][1]' in str(error)
    assert types_of(world, run.run_id)[-1] == "run_failed"
    assert types_of(world, run.run_id).count("run_failed") == 1
