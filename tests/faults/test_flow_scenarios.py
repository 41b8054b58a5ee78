"""SCENARIOS 40 and 41 with real ``wfkit worker`` processes sharing one world (a SQLite
file, a Postgres schema).

40: 50 runs on a queue with concurrency 3 and 4 workers: never more than 3 running at
once (measured from the runs' admission and end times, and from the times the steps
recorded themselves), and all complete.
41: a cron schedule firing every second for 5 s with 3 workers: exactly one run per
tick, none doubled or missed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from examples.e2e import flow
from tests.e2e.test_flow_queues import max_overlap
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    WorldHandle,
    wait_until,
    wfkit_cli,
)
from wfkit.runtime.api.client import start_sync
from wfkit.runtime.flow.schedules import schedule_sync, tick_key
from wfkit.worlds.base import RUN_TERMINAL

RUNS = 50
LIMIT = 3


@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_scenario_40_a_throttled_queue_across_four_workers(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    world = handle.world
    runs = [
        start_sync(flow.work, f"job-{i}", 0.1, world=world, queue=flow.THROTTLED)
        for i in range(RUNS)
    ]
    procs = [workers.start(handle.spec, concurrency=8) for _ in range(4)]
    for proc in procs:
        workers.wait_ready(proc, timeout=90)
    wait_until(
        lambda: all(world.runs.get(r.run_id).status in RUN_TERMINAL for r in runs),
        120,
        f"{RUNS} throttled runs to end\n{workers.logs()}",
    )
    records = [world.runs.get(r.run_id) for r in runs]
    assert [r.status for r in records] == ["completed"] * RUNS
    admitted = [(r.started_at.timestamp(), r.completed_at.timestamp()) for r in records]  # type: ignore[union-attr]
    outputs = [r.result_sync() for r in runs]
    stepped = [(o["start"], o["end"]) for o in outputs]
    running_max, step_max = max_overlap(admitted), max_overlap(stepped)
    admitters = {r.admitted_by for r in records}
    print(
        f"\nSCENARIO 40 [{kind}]: {RUNS} runs, limit {LIMIT}, 4 workers: max running at once "
        f"{running_max} (admission to end), max steps at once {step_max}; "
        f"{len(admitters)} workers admitted, {len({o['pid'] for o in outputs})} ran steps"
    )
    assert running_max <= LIMIT
    assert step_max <= LIMIT
    assert running_max == LIMIT  # the limit was reached, not merely respected
    assert len(admitters) > 1  # several workers took part in admitting
    assert not workers.crashed(), workers.logs()
    verified = wfkit_cli(handle.spec, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_scenario_41_a_schedule_fires_once_per_tick_across_three_workers(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    world = handle.world
    procs = [workers.start(handle.spec) for _ in range(3)]
    for proc in procs:
        workers.wait_ready(proc, timeout=90)
    created = schedule_sync(
        flow.greet, cron="* * * * * *", args=["tick"], id="every-second", world=world
    )
    time.sleep(5.2)
    world.schedules.set_status("every-second", "paused")
    time.sleep(1.5)  # a tick a worker was firing as it was paused has landed; none after
    paused_at = world.schedules.get("every-second")
    runs = [r for r in world.runs.list(limit=1000) if r.idempotency_key]
    ticks = sorted(r.idempotency_key or "" for r in runs)
    assert len(ticks) == len(set(ticks)), "a tick was started twice"
    # Every second between the schedule's creation and its last recorded tick, once.
    last = paused_at.last_tick_at
    assert last is not None
    expected = []
    tick = created.created_at.replace(microsecond=0) + timedelta(seconds=1)
    while tick <= last:
        expected.append(tick_key("every-second", tick))
        tick += timedelta(seconds=1)
    assert ticks == expected
    assert 4 <= len(ticks) <= 7
    print(f"\nSCENARIO 41 [{kind}]: {len(ticks)} ticks in ~5 s, 3 workers, each run once")
    wait_until(
        lambda: all(world.runs.get(r.run_id).status == "completed" for r in runs),
        60,
        "the scheduled runs to complete",
    )
    assert not workers.crashed(), workers.logs()
