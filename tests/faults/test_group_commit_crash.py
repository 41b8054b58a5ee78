"""Group commit across runs (issue #13) under SIGKILL: workers writing many runs'
steps in shared transactions are killed again and again, mid-group.

Two real ``wfkit worker`` processes with ``--concurrency 64`` drive 300 runs of
six sequential steps, so each commit carries many runs' writes. Each step sleeps a
quarter second (without blocking its worker: the runs' steps end together, in
waves, and share commits), so the work outlasts several kills however fast the
machine is. For a while a
random worker is SIGKILLed every 0.2-0.8 s and a new one started in its place.
Then: every run completed with the right result, no step completed twice, each
step created once, and ``wfkit verify`` finds the records equal to the logs (a
write half in the log would leave a record its fold does not give).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from examples.e2e import faults
from tests.faults.conftest import (
    PROCESS_WORLDS,
    WorkerProcesses,
    WorldHandle,
    assert_chains_ended_cleanly,
    describe_unfinished,
    wait_until,
)
from wfkit.runtime.api.client import start_sync
from wfkit.worlds.base import RUN_TERMINAL

RUNS = 300
STEPS = 6
STEP_SECONDS = 0.25
CHAOS_SECONDS = 8.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_sigkilled_mid_group_commit_loses_nothing(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    world = handle.world
    rng = random.Random(13)
    run_ids = [
        start_sync(faults.chain, STEPS, STEP_SECONDS, world=world).run_id for _ in range(RUNS)
    ]
    for _ in range(2):
        workers.start(handle.spec, concurrency=64)

    def unfinished() -> int:
        return sum(world.runs.get(rid).status not in RUN_TERMINAL for rid in run_ids)

    try:
        began = time.monotonic()
        kills_mid_flight = 0
        while time.monotonic() - began < CHAOS_SECONDS:
            time.sleep(rng.uniform(0.2, 0.8))
            victim = rng.choice(workers.alive())
            workers.kill(victim)
            kills_mid_flight += unfinished() > 0
            workers.start(handle.spec, concurrency=64)
        assert kills_mid_flight >= 5, "the runs finished before the kills"
        wait_until(lambda: unfinished() == 0, 90, "every run to end after the kills", every=0.2)
    except AssertionError:
        print(workers.logs())
        print(describe_unfinished(world, run_ids))
        raise
    assert not workers.crashed(), workers.crashed()

    assert_chains_ended_cleanly(world, handle.spec, run_ids, STEPS)
