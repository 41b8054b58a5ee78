"""SCENARIOS 31: kill -9 worker processes mid-step and mid-replay; every run still completes.

Three real ``wfkit worker`` processes share one database (a SQLite file, or a fresh
Postgres schema). About twenty runs -- sequential steps, a gather, a durable sleep,
hooks the test resumes -- are started, and for a while a random worker is SIGKILLed
every second or so and a new one started in its place (some kills land a fraction
of a second after a start, while the newcomer is replaying the runs whose leases
lapsed). Leases are 2 s so a dead worker's messages come back quickly. The sweep is
off (``WFKIT_FAULTS_CRASH_SWEEP=SECONDS`` turns it on): recovery comes from leases
and replay alone. (This test found the cached-replay takeover bug pinned by
test_takeover.py.)

Then: every run completed with the right result, no step has two ``step_completed``
events, and ``wfkit verify`` (a subprocess) finds the records equal to the logs.
"""

from __future__ import annotations

import os
import random
import time
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
    wait_until,
    wfkit_cli,
)
from wfkit.runtime.api.client import Run, resume_hook_sync, start_sync
from wfkit.worlds.base import RUN_TERMINAL, HookNotFoundError

CHAOS_SECONDS = 12.0
SWEEP = float(os.environ.get("WFKIT_FAULTS_CRASH_SWEEP", "0"))


def _expected(kind: str, args: tuple[Any, ...]) -> Any:
    if kind == "chain":
        return list(range(args[0]))
    if kind == "fan":
        return {"squares": [i * i for i in range(args[0])], "tail": [-1, -2]}
    if kind == "napper":
        return {"steps": [1, 2]}
    token = args[0]
    return {"steps": [1, len(token)], "payload": {"n": len(token)}}


@pytest.mark.slow
@pytest.mark.parametrize("kind", PROCESS_WORLDS)
def test_sigkilled_workers_lose_nothing(
    kind: str, make_world: Callable[[str], WorldHandle], workers: WorkerProcesses
) -> None:
    handle = make_world(kind)
    world = handle.world
    rng = random.Random(31)
    for _ in range(3):
        workers.start(handle.spec, sweep_interval=SWEEP)

    plan: list[tuple[str, Any, tuple[Any, ...]]] = []
    plan += [("chain", faults.chain, (6, 0.15)) for _ in range(8)]
    plan += [("fan", faults.fan, (5, 0.15)) for _ in range(4)]
    plan += [("napper", faults.napper, (1.5, 0.15)) for _ in range(4)]
    plan += [("waiter", faults.waiter, (f"crash-{kind}-{i}-{'x' * i}", 0.15)) for i in range(4)]
    runs = [(name, args, start_sync(fn, *args, world=world).run_id) for name, fn, args in plan]
    tokens = {args[0] for name, args, _ in runs if name == "waiter"}

    def resume_ready_hooks() -> None:
        for token in sorted(tokens):
            try:
                resume_hook_sync(token, {"n": len(token)}, world=world)
            except HookNotFoundError:
                continue  # not created yet
            tokens.discard(token)

    try:
        # Chaos: SIGKILL a random worker every 0.3-1.5 s and start a replacement.
        began = time.monotonic()
        while time.monotonic() - began < CHAOS_SECONDS:
            time.sleep(rng.uniform(0.3, 1.5))
            resume_ready_hooks()
            victim = rng.choice(workers.alive())
            workers.kill(victim)
            newcomer = workers.start(handle.spec, sweep_interval=SWEEP)
            if rng.random() < 0.35:
                # Kill the newcomer while it replays the runs it just took over.
                workers.wait_ready(newcomer)
                time.sleep(rng.uniform(0.05, 0.4))
                workers.kill(newcomer)
                workers.start(handle.spec, sweep_interval=SWEEP)
        assert workers.kills >= 5

        # Recovery: three live workers, hooks resumed, every run ends.
        def all_ended() -> bool:
            resume_ready_hooks()
            return all(world.runs.get(rid).status in RUN_TERMINAL for _, _, rid in runs)

        wait_until(all_ended, 60, "every run to end after the crashes", every=0.2)
    except AssertionError:
        print(workers.logs())
        print(describe_unfinished(world, [rid for _, _, rid in runs]))
        raise
    assert not workers.crashed(), workers.crashed()

    for name, args, rid in runs:
        record = world.runs.get(rid)
        assert record.status == "completed", (name, rid, record.error)
        assert Run(rid, world).result_sync(timeout=1) == _expected(name, args), (name, rid)
    run_ids = [rid for _, _, rid in runs]
    assert_recorded_once(world, run_ids)
    # The kills did interrupt steps: some step was started more than once.
    restarted = [s for rid in run_ids for s in world.steps.list(rid) if s.attempt > 1]
    assert restarted, "no kill landed while a step was running"
    print(f"{kind}: {workers.kills} kills, {len(restarted)} steps ran again")

    verify = wfkit_cli(handle.spec, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "every materialized record equals" in verify.stdout
