"""SCENARIOS 32: a run whose queue messages are gone is found and finished.

A worker process gets three runs to the point where each waits -- on a running step,
on a durable sleep, on a hook (whose payload then arrives) -- and is SIGKILLed. Then
every queue message of those runs is deleted: nothing would ever touch them again.
Either a worker's sweep (on a short interval) or ``wfkit heal`` (a subprocess, with no
worker running) re-enqueues them, and a worker completes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    WorldHandle,
    assert_recorded_once,
    describe_unfinished,
    event_types,
    wait_until,
    wfkit_cli,
)
from wfkit.runtime.api.client import Run, resume_hook_sync, start_sync
from wfkit.worlds.base import RUN_TERMINAL, HookNotFoundError


def _strand_three_runs(handle: WorldHandle, workers: WorkerProcesses, token: str) -> dict[str, str]:
    """Three runs waiting on a step, a sleep and a hook, with no queue message left."""
    world = handle.world
    worker = workers.start(handle.spec, lease_seconds=2.0)
    runs = {
        "step": start_sync(faults.chain, 3, 1.5, world=world).run_id,
        "sleep": start_sync(faults.napper, 2.5, 0.05, world=world).run_id,
        "hook": start_sync(faults.waiter, token, 0.05, world=world).run_id,
    }
    wait_until(
        lambda: "step_started" in event_types(world, runs["step"]),
        20,
        "the first step to start",
    )
    wait_until(
        lambda: "wait_created" in event_types(world, runs["sleep"]), 20, "the sleep to begin"
    )

    def hook_live() -> bool:
        try:
            world.hooks.get_by_token(token)
        except HookNotFoundError:
            return False
        return True

    wait_until(hook_live, 20, "the hook to be created")
    workers.kill(worker)  # mid-step for "step"; "sleep" has a delayed wake-up queued
    resume_hook_sync(token, {"n": 7}, world=world)  # the payload's wake-up is then lost too
    for run_id in runs.values():
        world.queue.delete_messages(run_id)
    live = world.queue.live_run_ids()
    assert not live & set(runs.values())
    for run_id in runs.values():
        assert world.runs.get(run_id).status == "running"
    assert world.steps.list(runs["step"])[0].status == "running"
    return runs


def _check_completed(handle: WorldHandle, workers: WorkerProcesses, runs: dict[str, str]) -> None:
    world = handle.world

    def ended() -> bool:
        return all(world.runs.get(r).status in RUN_TERMINAL for r in runs.values())

    try:
        wait_until(ended, 40, "the stranded runs to complete", every=0.1)
    except AssertionError:
        print(workers.logs())
        print(describe_unfinished(world, list(runs.values())))
        raise
    results = {name: Run(rid, world).result_sync(timeout=1) for name, rid in runs.items()}
    assert results == {
        "step": [0, 1, 2],
        "sleep": {"steps": [1, 2]},
        "hook": {"steps": [1, 7], "payload": {"n": 7}},
    }
    assert_recorded_once(world, list(runs.values()))
    # The step interrupted by the kill ran again (at least once), and was recorded once.
    assert world.steps.list(runs["step"])[0].attempt >= 2
    verify = wfkit_cli(handle.spec, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_the_worker_sweep_reenqueues_runs_that_lost_their_messages(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    runs = _strand_three_runs(handle, workers, f"lost-sweep-{kind}")
    workers.start(handle.spec, sweep_interval=0.5)
    _check_completed(handle, workers, runs)


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_wfkit_heal_reenqueues_runs_that_lost_their_messages(
    kind: str,
    make_world: Callable[[str], WorldHandle],
    workers: WorkerProcesses,
    build_dir: Any,
) -> None:
    handle = make_world(kind)
    runs = _strand_three_runs(handle, workers, f"lost-heal-{kind}")
    healed = wfkit_cli(handle.spec, "heal")
    assert healed.returncode == 0, healed.stderr
    assert "heal: re-enqueued 3 run(s)" in healed.stdout
    assert set(runs.values()) <= handle.world.queue.live_run_ids()
    again = wfkit_cli(handle.spec, "heal")  # the healed messages are live: nothing to do
    assert "heal: re-enqueued 0 run(s)" in again.stdout
    workers.start(handle.spec, sweep_interval=0)  # no sweep: only heal's messages
    _check_completed(handle, workers, runs)
