"""The local world's group writes, planned before the write lock and checked under
it (``wfkit.worlds.local.events``): a write whose run moved on in between is
planned again under the lock and refused; a planned write a constraint refuses
sends the whole group the careful way; two processes writing the same runs at
once neither lose nor duplicate an event."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.worlds.batch_writes import ev, event_types, next_step, running_run
from wfkit.worlds.base import (
    EntityConflictError,
    QueueMessageRequest,
    diff_run_records,
)
from wfkit.worlds.local import LocalWorld
from wfkit.worlds.local.db import write_transaction
from wfkit.worlds.local.events import LocalEvents

ROOT = Path(__file__).resolve().parents[2]


def test_a_run_that_moves_on_between_plan_and_lock_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = LocalWorld(tmp_path / "w.db")
    other = LocalWorld(tmp_path / "w.db")  # another process's world, in effect
    try:
        (a, a_last), (b, b_last) = running_run(world), running_run(world)
        plan_before_lock = LocalEvents._plan_before_lock

        def plan_then_b_moves_on(self: LocalEvents, writes: Any) -> Any:
            planned = plan_before_lock(self, writes)
            assert all(p is not None for p in planned)  # both planned before the lock
            other.events.create_batch(
                b, [ev("step_completed", "s0", result="other")], expected_last_event_id=b_last
            )
            return planned

        monkeypatch.setattr(LocalEvents, "_plan_before_lock", plan_then_b_moves_on)
        queued = [QueueMessageRequest(queue="q_moved", payload={"run_id": b})]
        outcomes = world.events.create_batches(
            [next_step(a, a_last, 1), next_step(b, b_last, 1, messages=queued)]
        )
        assert isinstance(outcomes[0], list)
        assert isinstance(outcomes[1], EntityConflictError)
        assert "moved on" in str(outcomes[1])
        # b has the other writer's event and nothing of the refused write.
        assert event_types(world, b)[-1] == "step_completed"
        assert world.steps.get(b, "s0").output == "other"
        assert [s.step_id for s in world.steps.list(b)] == ["s0"]
        assert world.queue.receive(["q_moved"], lease_seconds=60) == []
        assert world.steps.get(a, "s1").status == "running"
        assert diff_run_records(world, a) == diff_run_records(world, b) == []
    finally:
        other.close()
        world.close()


def test_a_planned_write_refused_by_a_constraint_sends_the_group_the_careful_way(
    tmp_path: Path,
) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        (a, a_last), (b, b_last) = running_run(world), running_run(world)
        # Tamper: an event of b's next step stored without its record change, so
        # the plan (which checks steps) passes but the event's unique index refuses.
        with write_transaction(world._connections) as cursor:
            cursor.execute(
                "INSERT INTO events (event_id, run_id, event_type, correlation_id, data,"
                " created_at, spec_version) SELECT 'evnt_tampered', run_id, 'step_created',"
                " 's1', '{}', created_at, spec_version FROM events WHERE event_id = ?",
                (b_last,),
            )
        outcomes = world.events.create_batches(
            [next_step(a, a_last, 1), next_step(b, "evnt_tampered", 1)]
        )
        assert isinstance(outcomes[0], list)
        assert isinstance(outcomes[1], EntityConflictError)
        assert world.steps.get(a, "s1").status == "running"
        assert diff_run_records(world, a) == []
        assert event_types(world, b).count("step_completed") == 0  # b's write wrote nothing
    finally:
        world.close()


_WRITER = """
import json, sys, time
from wfkit.worlds.base import BatchWrite, EventRequest
from wfkit.worlds.local import LocalWorld

world = LocalWorld(sys.argv[1])
run_ids = json.loads(sys.argv[2])
time.sleep(max(0.0, float(sys.argv[3]) - time.time()))
written = 0
for _ in range(int(sys.argv[4])):
    writes = []
    for run_id in run_ids:
        events = world.events.list(run_id)
        i = sum(e.event_type == "step_created" for e in events)
        writes.append(BatchWrite(run_id, [
            EventRequest(event_type="step_completed", correlation_id=f"s{i - 1}", data={"result": i}),
            EventRequest(event_type="step_created", correlation_id=f"s{i}", data={"step_name": "a"}),
            EventRequest(event_type="step_started", correlation_id=f"s{i}"),
        ], expected_last_event_id=events[-1].event_id))
    written += sum(isinstance(o, list) for o in world.events.create_batches(writes))
world.close()
print(json.dumps(written))
"""


def test_two_processes_writing_the_same_runs_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    world = LocalWorld(tmp_path / "w.db")
    try:
        runs = [running_run(world)[0] for _ in range(8)]
        start_at = time.time() + 1.5
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _WRITER,
                    str(tmp_path / "w.db"),
                    json.dumps(runs),
                    str(start_at),
                    "40",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=env,
            )
            for _ in range(2)
        ]
        written = 0
        for proc in procs:
            out, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err
            written += json.loads(out)
        steps_written = 0
        for run_id in runs:
            events = world.events.list(run_id)
            created = Counter(e.correlation_id for e in events if e.event_type == "step_created")
            completed = Counter(
                e.correlation_id for e in events if e.event_type == "step_completed"
            )
            assert max(created.values()) == 1 and max(completed.values(), default=1) == 1
            # Each accepted write is exactly one step completed and the next created.
            assert len(completed) == len(created) - 1
            steps_written += len(completed)
            assert diff_run_records(world, run_id) == []
        assert steps_written == written
        assert written >= 40  # at least one process's every round went through
    finally:
        world.close()
