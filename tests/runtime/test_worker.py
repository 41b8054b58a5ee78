"""Worker lifecycle: graceful shutdown hands work over; retry parsing; the world switch."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.runtime import wf_helpers
from wfkit.runtime import world_config
from wfkit.runtime.api.client import start
from wfkit.runtime.engine.executor import parse_retry_after
from wfkit.runtime.engine.messages import STEP_QUEUE_PREFIX, MalformedMessageError
from wfkit.runtime.engine.worker import Worker
from wfkit.worlds.memory import MemoryWorld


@pytest.fixture(autouse=True)
def helpers() -> Iterator[Any]:
    yield importlib.reload(wf_helpers)


def _run(coro: Any, timeout: float = 30) -> Any:
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


def test_graceful_shutdown_hands_inline_steps_to_the_next_worker() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.one_slow, 1.0, world=world)
        stop = asyncio.Event()
        first = Worker(world=world, poll_interval=0.01, shutdown_grace=0.05, sweep_interval=0)
        task = asyncio.create_task(first.run(stop_event=stop))
        while not any(s.status == "running" for s in world.steps.list(run.run_id)):
            await asyncio.sleep(0.005)
        stop.set()
        await task
        assert world.runs.get(run.run_id).status == "running"
        began = time.monotonic()
        second = Worker(world=world, poll_interval=0.01, sweep_interval=0)
        await second.run_until_complete(run.run_id, timeout=10)
        assert time.monotonic() - began < 5  # no wait for a lease or a sweep
        return await run.result(timeout=1)

    assert _run(scenario()) == "slow"


def test_drain_returns_when_only_delayed_work_is_left() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.sleeper, 30, world=world)
        worker = Worker(world=world, poll_interval=0.01)
        await worker.drain(timeout=5)
        assert [w.status for w in world.waits.list(run.run_id)] == ["waiting"]
        return await run.status()

    assert _run(scenario()) == "running"


def test_replay_cache_switch_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WFKIT_REPLAY_CACHE", "0")
    assert Worker(world=MemoryWorld()).orchestrator.replay_cache is False
    monkeypatch.setenv("WFKIT_REPLAY_CACHE", "1")
    assert Worker(world=MemoryWorld()).orchestrator.replay_cache is True
    assert Worker(world=MemoryWorld(), replay_cache=False).orchestrator.replay_cache is False


def test_world_config(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        monkeypatch.setenv("WFKIT_WORLD", "memory")
        world_config.reset_world()
        first = world_config.get_world()
        assert first.name == "memory" and world_config.get_world() is first
        mine = MemoryWorld()
        world_config.set_world(mine)
        assert world_config.get_world() is mine
        assert world_config.resolve_world(None) is mine
        assert world_config.get_world("memory") is not mine
    finally:
        world_config.reset_world()


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, 1.0),
        (5, 5.0),
        (0.25, 0.25),
        (timedelta(minutes=2), 120.0),
        ("10s", 10.0),
        ("500ms", 0.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("3", 3.0),
    ],
)
def test_parse_retry_after(value: Any, seconds: float) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert (parse_retry_after(value, now) - now).total_seconds() == seconds


def test_parse_retry_after_datetime_and_errors() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    at = now + timedelta(seconds=7)
    assert parse_retry_after(at, now) == at
    with pytest.raises(ValueError):
        parse_retry_after("soon", now)
    with pytest.raises(ValueError):
        parse_retry_after(datetime(2026, 1, 1), now)


def test_a_worker_survives_several_event_loops() -> None:
    world = MemoryWorld()
    worker = Worker(world=world, poll_interval=0.01)
    run = start_sync_hooked(world, "tok-loops")
    asyncio.run(worker.drain(timeout=5))
    from wfkit.runtime.api.client import resume_hook_sync

    resume_hook_sync("tok-loops", {"done": True}, world=world)
    asyncio.run(worker.drain(timeout=5))
    assert run.result_sync(timeout=1) == [{"done": True}]


def start_sync_hooked(world: MemoryWorld, token: str) -> Any:
    from wfkit.runtime.api.client import start_sync

    return start_sync(wf_helpers.hooked, token, world=world)


def test_sigterm_stops_a_worker_gracefully() -> None:
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.one_slow, 0.3, world=world)
        worker = Worker(world=world, poll_interval=0.01, shutdown_grace=5)
        loop = asyncio.get_running_loop()

        def terminate_once_running() -> None:
            if any(s.status == "running" for s in world.steps.list(run.run_id)):
                os.kill(os.getpid(), signal.SIGTERM)
            else:
                loop.call_later(0.01, terminate_once_running)

        loop.call_later(0.01, terminate_once_running)
        await worker.run()  # returns on SIGTERM, after the in-flight step finished
        return await run.status(), await run.result(timeout=1)

    previous = signal.getsignal(signal.SIGTERM)
    try:
        assert _run(scenario()) == ("completed", "slow")
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_the_worker_sweeps_lost_runs_on_its_own() -> None:
    world = MemoryWorld()

    async def scenario() -> Any:
        run = await start(wf_helpers.sequential, 2, world=world)
        world.queue.delete_messages(run.run_id)
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0.05)
        await worker.run_until_complete(run.run_id, timeout=10)
        return await run.result(timeout=1)

    assert _run(scenario()) == 1


def test_a_malformed_message_is_reported_and_kept(caplog: pytest.LogCaptureFixture) -> None:
    """A step message without ``step_id`` cannot be handled: the worker logs what is
    missing and puts the message back (redelivered later), losing nothing."""
    world = MemoryWorld()
    queue = STEP_QUEUE_PREFIX + "step//./app//charge"
    message_id = world.queue.enqueue(queue, {"run_id": "wrun_x"})

    async def scenario() -> None:
        worker = Worker(world=world, poll_interval=0.01, sweep_interval=0)
        await worker.drain(timeout=5)

    with caplog.at_level(logging.ERROR, logger="wfkit.worker"):
        _run(scenario())
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info]
    assert [type(e) for e in errors] == [MalformedMessageError]
    assert f"message {message_id} on {queue} has no 'step_id'" in str(errors[0])
    time.sleep(0.3)  # past the first redelivery delay
    (again,) = world.queue.receive([STEP_QUEUE_PREFIX], lease_seconds=5)
    assert (again.message_id, again.attempt, again.payload) == (message_id, 2, {"run_id": "wrun_x"})


def test_leases_are_renewed_while_messages_are_handled(caplog: pytest.LogCaptureFixture) -> None:
    """A queued step that runs for three leases: the worker keeps its message's lease
    renewed, so the message is not handed out again (the step starts once) and no
    lapse is reported; on a second event loop too (the same worker)."""
    world = MemoryWorld()
    worker = Worker(
        world=world, poll_interval=0.01, inline_steps=False, lease_seconds=0.2, sweep_interval=0
    )

    async def one_run() -> str:
        run = await start(wf_helpers.one_slow, 0.6, world=world)
        await worker.run_until_complete(run.run_id, timeout=10)
        starts = [e for e in world.events.list(run.run_id) if e.event_type == "step_started"]
        assert len(starts) == 1
        return str(await run.result(timeout=1))

    with caplog.at_level(logging.WARNING, logger="wfkit.worker"):
        assert _run(one_run()) == "slow"
        assert _run(one_run()) == "slow"
    assert not [r for r in caplog.records if "lost the lease" in r.getMessage()]


def test_a_step_sees_the_context_its_dataclasses_would_build() -> None:
    """The executor builds the step context without the frozen dataclasses' ``__init__``
    (``executor._frozen``): what the step sees equals, field for field, what the
    constructors build."""
    from wfkit.runtime.context import StepContext, StepMetadata, WorkflowMetadata, current_step
    from wfkit.runtime.engine.executor import _call_step_body
    from wfkit.runtime.loading import registry
    from wfkit.runtime.serialization import serialize_call
    from wfkit.worlds.base import Run, Step

    seen: list[Any] = []

    async def look(x: int) -> int:
        seen.append(current_step.get())
        return x

    step_id = "step//./tests/runtime/test_worker//look"
    registry.register_step(step_id, look)
    at = datetime(2026, 1, 2, tzinfo=UTC)
    run = Run(
        run_id="wrun_1",
        workflow_name="workflow//./t//wf",
        status="running",
        created_at=at,
        updated_at=at,
        started_at=at + timedelta(seconds=1),
    )
    step = Step(
        run_id="wrun_1",
        step_id="step_1",
        step_name=step_id,
        status="running",
        input=serialize_call((7,), {}),
        attempt=2,
        created_at=at,
        updated_at=at + timedelta(seconds=3),
        started_at=at + timedelta(seconds=2),
    )
    world = MemoryWorld()
    assert _run(_call_step_body(run, step, world=world, url="http://x")) == 7
    expected = StepContext(
        step=StepMetadata("step_1", step_id, 2, at + timedelta(seconds=2)),
        workflow=WorkflowMetadata(
            "workflow//./t//wf", "wrun_1", at + timedelta(seconds=1), "http://x"
        ),
        run_id="wrun_1",
        world=world,
    )
    (context,) = seen
    assert context == expected
    for made, built in [
        (context, expected),
        (context.step, expected.step),
        (context.workflow, expected.workflow),
    ]:
        assert type(made) is type(built)
        assert made.__dict__ == built.__dict__
        assert list(made.__dict__) == list(built.__dict__)
        assert repr(made) == repr(built)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.run_id = "other"  # type: ignore[misc]
