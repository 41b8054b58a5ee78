"""Step heartbeats: a step running inline longer than its lease is not run a second
time by another worker while it runs, and a worker killed mid-step still has its step
taken over once the lease lapses (the heartbeats die with the process).

Two real worker processes share one world with a 1 s lease. The step sleeps for about
three leases; in the blocking variant it blocks the worker's event loop (sync I/O in a
step), so nothing on that loop can renew anything. Before heartbeats, the other worker
got the run's lapsed workflow message, found the step ``running`` but stale, re-queued
it and ran it a second time, at once with the first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    WorldHandle,
    assert_recorded_once,
    run_async,
    wait_until,
)
from wfkit.runtime.api.client import start_sync
from wfkit.runtime.tools.verify import verify_world

LEASE = 1.0


def _executions(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


@pytest.mark.parametrize("blocking", [True, False], ids=["blocking", "async"])
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_a_step_longer_than_its_lease_runs_once(
    kind: str,
    blocking: bool,
    make_world: Callable[[str], WorldHandle],
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    handle = make_world(kind)
    world = handle.world
    procs = [workers.start(handle.spec, lease_seconds=LEASE, sweep_interval=0.5) for _ in range(2)]
    for proc in procs:
        workers.wait_ready(proc)
    counter = tmp_path / "executions"
    run = start_sync(faults.long_step, str(counter), 3 * LEASE, blocking, world=world)
    assert run_async(run.result(timeout=60), timeout=70) == 1, workers.logs()
    assert _executions(counter) == ["1"], workers.logs()
    assert_recorded_once(world, [run.run_id])
    assert verify_world(world) == []
    assert not workers.crashed()


@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_a_killed_workers_step_is_taken_over_after_the_lease(
    kind: str,
    make_world: Callable[[str], WorldHandle],
    workers: WorkerProcesses,
    tmp_path: Path,
) -> None:
    handle = make_world(kind)
    world = handle.world
    first = workers.start(handle.spec, lease_seconds=LEASE, sweep_interval=0.5)
    workers.wait_ready(first)
    counter = tmp_path / "executions"
    run = start_sync(faults.long_step, str(counter), 3 * LEASE, True, world=world)
    wait_until(lambda: _executions(counter), 30, "the step to start")
    # Past the point where heartbeats began, so they are what must stop with it.
    wait_until(
        lambda: any(s.status == "running" for s in world.steps.list(run.run_id)), 10, "running"
    )
    time.sleep(LEASE)
    workers.kill(first)
    second = workers.start(handle.spec, lease_seconds=LEASE, sweep_interval=0.5)
    workers.wait_ready(second)
    assert run_async(run.result(timeout=60), timeout=70) == 2, workers.logs()
    assert _executions(counter) == ["1", "2"], workers.logs()
    assert_recorded_once(world, [run.run_id])
    assert verify_world(world) == []
