"""A real worker process with a short feed deadline: runs whose workflow never yields
to the replay loop (a busy ``while True``, a loop on ``asyncio.sleep(0)``) fail with
``WorkflowDeadlockError`` naming the workflow and its line, and the same worker
process goes on serving other runs. Before the feed deadline the first such run held
the worker's thread for ever."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    WorldHandle,
    run_async,
    wait_until,
)
from wfkit.runtime.api.client import start_sync


def _line(text: str) -> int:
    lines, first = inspect.getsourcelines(faults.spinner)
    return first + next(i for i, line in enumerate(lines) if text in line)


@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_busy_workflows_fail_and_the_worker_serves_on(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    world = handle.world
    proc = workers.start(handle.spec, concurrency=4, options=["--feed-deadline", "0.5"])
    workers.wait_ready(proc)
    busy = start_sync(faults.spinner, "busy", world=world).run_id
    sleep0 = start_sync(faults.spinner, "sleep0", world=world).run_id

    def ended(run_id: str) -> bool:
        return world.runs.get(run_id).status in ("completed", "failed", "cancelled")

    wait_until(lambda: ended(busy) and ended(sleep0), 60, "both spinners to end", every=0.1)
    for run_id, stuck_text in ((busy, "n += 1"), (sleep0, "asyncio.sleep(0)")):
        run = world.runs.get(run_id)
        assert run.status == "failed", workers.logs()
        assert run.error is not None and run.error["type"].endswith("WorkflowDeadlockError")
        message = run.error["message"]
        assert 'workflow "spinner"' in message and run_id in message
        body = _line(stuck_text)
        assert any(f"examples/e2e/faults.py:{n}:" in message for n in (body - 1, body)), message

    # The same process serves a run started afterwards.
    after = start_sync(faults.chain, 3, 0.0, world=world)
    assert run_async(after.result(timeout=30), timeout=40) == [0, 1, 2]
    assert proc.poll() is None, workers.logs()
    log = workers.log(1)
    assert log.count("failed with USER_ERROR") == 2, log
