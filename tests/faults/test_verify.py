"""``wfkit verify [RUN]``: exit 0 when every record equals a fresh fold of its log, and
non-zero, naming the difference, when a materialized record was changed behind the
log's back (a direct UPDATE of the steps table; on memory, a mutated record)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text

from examples.e2e import faults
from tests.faults.conftest import PROCESS_WORLDS, WorldHandle, run_async, wfkit_cli
from wfkit.runtime.api.client import start_sync
from wfkit.runtime.engine.worker import Worker
from wfkit.runtime.tools.verify import verify_world


def _two_completed_runs(world: Any) -> tuple[str, str]:
    runs = [start_sync(faults.chain, 2, 0.0, world=world).run_id for _ in range(2)]

    async def work() -> None:
        worker = Worker(world, poll_interval=0.01)
        for run_id in runs:
            await worker.run_until_complete(run_id, timeout=20)

    run_async(work(), timeout=60)
    return runs[0], runs[1]


def _tamper(handle: WorldHandle, run_id: str, step_id: str) -> None:
    """Mark a completed step failed in the table, without any event."""
    if handle.kind == "local":
        with sqlite3.connect(handle.world.path) as db:
            changed = db.execute(
                "UPDATE steps SET status = 'failed' WHERE run_id = ? AND step_id = ?",
                (run_id, step_id),
            ).rowcount
    else:
        with handle.world.engine.connect() as connection:
            changed = connection.execute(
                text(
                    f"UPDATE \"{handle.world.schema}\".steps SET status = 'failed'"
                    " WHERE run_id = :run AND step_id = :step"
                ),
                {"run": run_id, "step": step_id},
            ).rowcount
    assert changed == 1


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_wfkit_verify_exit_codes(kind: str, make_world: Callable[[str], WorldHandle]) -> None:
    handle = make_world(kind)
    tampered, clean = _two_completed_runs(handle.world)

    ok = wfkit_cli(handle.spec, "verify")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "every materialized record equals a fresh fold" in ok.stdout

    step = handle.world.steps.list(tampered)[0]
    _tamper(handle, tampered, step.step_id)

    bad = wfkit_cli(handle.spec, "verify")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    lines = bad.stdout.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{tampered}: step ('{tampered}', '{step.step_id}')")
    assert "status='completed'" in lines[0] and "status='failed'" in lines[0]
    assert "1 difference(s)" in bad.stderr

    one_bad = wfkit_cli(handle.spec, "verify", tampered)
    assert one_bad.returncode == 1 and one_bad.stdout == bad.stdout
    one_clean = wfkit_cli(handle.spec, "verify", clean)
    assert one_clean.returncode == 0, one_clean.stdout + one_clean.stderr


def test_verify_world_on_memory(make_world: Callable[[str], WorldHandle]) -> None:
    world = make_world("memory").world
    tampered, clean = _two_completed_runs(world)
    assert verify_world(world) == []

    state = world.steps._core.state
    key = (tampered, world.steps.list(tampered)[1].step_id)
    state.steps[key] = state.steps[key].model_copy(update={"attempt": 5})
    problems = verify_world(world)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tampered}: step {key!r}: fold gives")
    assert "attempt=1" in problems[0] and "attempt=5" in problems[0]
    assert verify_world(world, run_id=clean) == []
    assert verify_world(world, run_id=tampered) == problems
