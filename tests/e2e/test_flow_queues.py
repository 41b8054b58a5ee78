"""Named queues (issue 13 "Flow control"): priorities, rate limits, per-key and
per-worker limits, on every world, with in-process workers. SCENARIOS 40 (limits
across worker processes) is tests/faults/test_flow_scenarios.py."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from examples.e2e import flow
from tests.e2e.conftest import run_async, running_worker
from wfkit.runtime.api.client import Run, start, start_sync
from wfkit.runtime.api.start_many import start_many_sync
from wfkit.runtime.flow.queues import (
    ADMISSION_QUEUE_PREFIX,
    Queue,
    _forget_queue,
    admit_queued_runs,
    announce,
    warn_undeclared,
)
from wfkit.runtime.tools.deployments import local_deployments, pending_reason
from wfkit.worlds import create_world
from wfkit.worlds.base import EntityConflictError, EventRequest


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end before a start at a tie)."""
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in points:
        current += step
        best = max(best, current)
    return best


async def results(runs: list[Run], timeout: float = 60) -> list[dict[str, Any]]:
    return list(await asyncio.gather(*(run.result(timeout=timeout) for run in runs)))


def test_a_queued_run_waits_until_a_worker_that_declares_its_queue_admits_it(world: Any) -> None:
    async def scenario() -> None:
        run = await start(flow.work, "a", 0.01, world=world, queue=flow.THROTTLED)
        record = world.runs.get(run.run_id)
        assert (record.status, record.queue_name, record.queue_priority) == (
            "pending",
            "flow_throttled",
            0,
        )
        reason = pending_reason(record, local_deployments(Path.cwd()))
        assert reason is not None and "waiting in queue 'flow_throttled'" in reason
        # Nothing but an admission starts it: a plain run_started is refused.
        with pytest.raises(EntityConflictError, match="waits in queue"):
            world.events.create(run.run_id, EventRequest(event_type="run_started"))
        async with running_worker(world) as worker:
            assert (await run.result(timeout=30))["label"] == "a"
        assert world.runs.get(run.run_id).admitted_by == worker.worker_id

    run_async(scenario())


def test_runs_are_admitted_by_priority_then_in_start_order(world: Any) -> None:
    async def scenario() -> None:
        order = [("late-low", 5), ("first-high", -1), ("mid-a", 0), ("mid-b", 0), ("low", 9)]
        runs = [
            await start(flow.work, label, 0.05, world=world, queue=flow.SERIAL, priority=p)
            for label, p in order
        ]
        async with running_worker(world):
            done = await results(runs)
        by_start = [r["label"] for r in sorted(done, key=lambda r: r["start"])]
        assert by_start == ["first-high", "mid-a", "mid-b", "late-low", "low"]
        assert max_overlap([(r["start"], r["end"]) for r in done]) == 1

    run_async(scenario())


def test_a_rate_limit_bounds_admissions_per_period(world: Any) -> None:
    async def scenario() -> None:
        runs = [
            await start(flow.work, f"r{i}", 0.0, world=world, queue=flow.RATED) for i in range(6)
        ]
        async with running_worker(world):
            await results(runs)
        starts = sorted(world.runs.get(r.run_id).started_at for r in runs)
        # At most 2 admissions in any 1-second window: the third after a first is >= 1 s later.
        for first, third in zip(starts, starts[2:], strict=False):
            assert third - first >= timedelta(seconds=1), starts
        assert starts[-1] - starts[0] >= timedelta(seconds=2)

    run_async(scenario())


def test_per_key_concurrency_serializes_one_key_only(world: Any) -> None:
    async def scenario() -> None:
        runs = [
            await start(flow.work, f"{key}{i}", 0.3, world=world, queue=flow.PER_KEY, key=key)
            for i in range(3)
            for key in ("ann", "bob")
        ]
        async with running_worker(world):
            done = await results(runs)
        for key in ("ann", "bob"):
            mine = [(r["start"], r["end"]) for r in done if r["label"].startswith(key)]
            assert max_overlap(mine) == 1
        # Different keys do run side by side.
        assert max_overlap([(r["start"], r["end"]) for r in done]) == 2

    run_async(scenario())


def test_worker_concurrency_bounds_what_one_worker_takes_on(world: Any) -> None:
    async def scenario() -> None:
        runs = [
            await start(flow.work, f"w{i}", 0.2, world=world, queue=flow.PER_WORKER)
            for i in range(4)
        ]
        async with running_worker(world) as worker:
            done = await results(runs)
        assert max_overlap([(r["start"], r["end"]) for r in done]) == 1
        assert {world.runs.get(r.run_id).admitted_by for r in runs} == {worker.worker_id}

    run_async(scenario())


def test_a_cancelled_queued_run_is_never_admitted(world: Any) -> None:
    run = start_sync(flow.work, "gone", 0.0, world=world, queue=flow.SERIAL)
    run.cancel_sync()
    assert admit_queued_runs(world, flow.SERIAL, "test-worker") == []
    assert world.runs.get(run.run_id).status == "cancelled"


def test_a_queued_run_past_its_deadline_fails_without_running(world: Any) -> None:
    async def scenario() -> None:
        blocker = await start(flow.work, "blocker", 3.0, world=world, queue=flow.SERIAL)
        late = await start(
            flow.work, "late", 0.0, world=world, queue=flow.SERIAL, deadline=timedelta(seconds=1)
        )
        async with running_worker(world):
            with pytest.raises(Exception) as failed:
                await late.result(timeout=20)
            assert getattr(failed.value, "error_code", None) == "RUN_DEADLINE_EXCEEDED"
            assert (await blocker.result(timeout=20))["label"] == "blocker"
        assert world.steps.list(late.run_id) == []

    run_async(scenario())


def test_bad_queue_declarations_and_options_are_one_line_errors(world: Any) -> None:
    with pytest.raises(ValueError, match="concurrency=0 must be an int >= 1"):
        Queue("flow_bad", concurrency=0)
    with pytest.raises(ValueError, match="rate_limit"):
        Queue("flow_bad", rate_limit=(0, 1.0))
    with pytest.raises(ValueError, match="declared twice with different limits"):
        Queue("flow_throttled", concurrency=4)
    Queue("flow_throttled", concurrency=3)  # the same declaration again is fine
    with pytest.raises(ValueError, match="pass queue= as well"):
        start_sync(flow.work, "x", world=world, key="k")
    with pytest.raises(TypeError, match="priority"):
        start_sync(flow.work, "x", world=world, queue="q", priority="high")  # type: ignore[arg-type]
    assert world.runs.list() == []
    _forget_queue("flow_bad")


def test_one_worker_admits_at_a_time_the_one_holding_the_token(world: Any) -> None:
    """While one worker holds a queue's admission token, another admits nothing; once it
    is handed back, the other can."""
    runs = [
        start_sync(flow.work, f"t{i}", 0.0, world=world, queue=flow.THROTTLED) for i in range(2)
    ]
    token_queue = "__wkq_admit_flow_throttled"
    assert admit_queued_runs(world, flow.THROTTLED, "worker-a") == []  # makes the token
    [token] = world.queue.receive([token_queue], lease_seconds=30)  # "worker-b" holds it
    assert admit_queued_runs(world, flow.THROTTLED, "worker-a") == []
    assert {world.runs.get(r.run_id).status for r in runs} == {"pending"}
    world.queue.nack(token.message_id, attempt=token.attempt)
    assert admit_queued_runs(world, flow.THROTTLED, "worker-a") == [r.run_id for r in runs]
    assert {world.runs.get(r.run_id).admitted_by for r in runs} == {"worker-a"}


def test_racing_admitters_never_exceed_the_limit(world: Any) -> None:
    """Eight "workers" (threads, each with its own connection for the SQL worlds) admit
    from one queue at the same instant, again and again: never more than its limit."""
    from tests.e2e.test_flow_schedules import _handles

    runs = [
        start_sync(flow.work, f"x{i}", 0.0, world=world, queue=flow.THROTTLED) for i in range(20)
    ]
    handles = _handles(world, 8)
    barrier = threading.Barrier(len(handles))
    errors: list[BaseException] = []

    def admitter(target: Any, number: int) -> None:
        try:
            for _ in range(3):
                barrier.wait()
                admit_queued_runs(target, flow.THROTTLED, f"worker-{number}")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=admitter, args=(h, i)) for i, h in enumerate(handles)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        if world.name != "memory":
            for handle in handles:
                handle.close()
    assert errors == []
    statuses = [world.runs.get(r.run_id).status for r in runs]
    assert statuses.count("running") == 3, statuses


def test_a_start_in_a_queue_no_worker_declares_is_named_in_one_warning(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A run started in a queue nobody declares would wait, pending, in silence for ever
    (a typo in ``queue=``): it is still written, with one warning per queue naming it, the
    declared queues and the close match. A queue this process does not declare but a
    worker has announced to the world (another deployment's) gets no warning."""

    async def scenario() -> None:
        async with running_worker(world):  # its upkeep announces the queues it declares
            deadline = time.monotonic() + 30
            while ADMISSION_QUEUE_PREFIX + "flow_serial" not in world.queue.queue_names(
                ADMISSION_QUEUE_PREFIX
            ):
                assert time.monotonic() < deadline, "the worker never announced its queues"
                await asyncio.sleep(0.05)
        announce(world, Queue("flow_elsewhere"))
        _forget_queue("flow_elsewhere")  # declared by another process only
        with caplog.at_level(logging.WARNING, logger="wfkit.flow"):
            typo = await start(flow.work, "t", 0.0, world=world, queue="flow_serail")
            many = start_many_sync(
                flow.work, [("m1", 0.0), ("m2", 0.0)], world=world, queue="nowhere"
            )
            elsewhere = await start(flow.work, "e", 0.0, world=world, queue="flow_elsewhere")
        warnings = [r.getMessage() for r in caplog.records if r.name == "wfkit.flow"]
        assert len(warnings) == 2, warnings
        assert warnings[0].startswith(f"run {typo.run_id} waits, pending, in queue 'flow_serail'")
        assert warnings[0].endswith("Did you mean 'flow_serial'?")
        assert "flow_elsewhere, flow_per_key" in warnings[0]  # the declared ones, listed
        assert warnings[1].startswith("2 runs wait, pending, in queue 'nowhere'")
        for run in [typo, *many, elsewhere]:  # written all the same
            assert world.runs.get(run.run_id).status == "pending"

    run_async(scenario())


def test_a_world_object_without_weak_references_still_gets_the_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The declared names are remembered per world object, weakly; a world that cannot be
    weakly referenced (``__slots__``) is asked each time instead of failing the start."""

    class SlottedWorld:
        __slots__ = ("queue",)

        def __init__(self, queue: Any) -> None:
            self.queue = queue

    memory = create_world("memory")
    try:
        world = SlottedWorld(memory.queue)
        with caplog.at_level(logging.WARNING, logger="wfkit.flow"):
            warn_undeclared(world, [("wrun_1", "flow_nowhere")])  # type: ignore[arg-type]
        assert [r.getMessage()[:43] for r in caplog.records if r.name == "wfkit.flow"] == [
            "run wrun_1 waits, pending, in queue 'flow_n"
        ]
    finally:
        memory.close()
