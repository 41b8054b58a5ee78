"""The clock seam (``wfkit.worlds.base.clock``) and the virtual clock behind time skipping."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from wfkit.testing.clock import TimeSkipper, VirtualClock
from wfkit.testing.env import create_test_world
from wfkit.worlds.base import SYSTEM_CLOCK, current_clock, use_clock, utc_now


def test_virtual_clock_runs_and_jumps_forward_only() -> None:
    clock = VirtualClock()
    assert abs(clock.timestamp() - time.time()) < 1
    clock.skip(timedelta(days=1))
    assert clock.now() - datetime.now(UTC) > timedelta(hours=23, minutes=59)
    assert clock.skipped == timedelta(days=1)
    assert not clock.skip_to(time.time())  # behind it: no move
    assert clock.skip_to(clock.timestamp() + 60)
    assert clock.skipped >= timedelta(days=1, seconds=59)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.skip(timedelta(seconds=-1))


def test_use_clock_moves_utc_now_and_restores_the_system_clock() -> None:
    clock = VirtualClock(start=datetime(2030, 1, 1, tzinfo=UTC))
    with use_clock(clock):
        assert current_clock() is clock
        assert utc_now().year == 2030
    assert current_clock() is SYSTEM_CLOCK
    assert utc_now().year < 2030


def test_two_test_clocks_at_once_are_refused() -> None:
    with use_clock(VirtualClock()), pytest.raises(RuntimeError, match="already in use"):
        with use_clock(VirtualClock()):
            pass
    assert current_clock() is SYSTEM_CLOCK


@pytest.mark.parametrize("kind", ["memory", "local"])
def test_queue_visibility_follows_the_clock(kind: str, tmp_path: Path) -> None:
    world = create_test_world(kind, directory=tmp_path)
    clock = VirtualClock()
    try:
        with use_clock(clock):
            world.queue.enqueue("__wkf_workflow_x", {"run_id": "r"}, delay_seconds=3600)
            assert world.queue.receive(["__wkf_"], lease_seconds=30) == []
            next_due: Any = world.queue.next_visible_at()  # type: ignore[attr-defined]
            assert next_due - clock.timestamp() == pytest.approx(3600, abs=5)
            assert clock.skip_to(next_due)
            (message,) = world.queue.receive(["__wkf_"], lease_seconds=30)
            assert message.payload == {"run_id": "r"}
    finally:
        world.close()


def test_the_skipper_jumps_only_while_the_test_waits_for_what_has_not_happened() -> None:
    clock = VirtualClock()
    due = clock.timestamp() + 3600
    live: set[str] = set()
    skipper = TimeSkipper(clock, lambda: due)
    assert not skipper.on_idle()  # the test is not waiting: real time
    with skipper.unlocked():
        assert skipper.on_idle()
    assert clock.timestamp() >= due
    due = clock.timestamp() + 60
    live.add("approve")
    with skipper.unlocked(until=lambda: "approve" in live):
        assert not skipper.on_idle()  # the test is about to resume that hook
        with skipper.unlocked():  # another wait, e.g. on a run, does not lift that
            assert not skipper.on_idle()
    with skipper.unlocked(until=lambda: "other" in live):
        assert skipper.on_idle()
    assert skipper.jumps == 2


def test_worker_calls_on_idle_only_when_nothing_is_visible_or_in_flight() -> None:
    from wfkit.runtime.engine.worker import Worker

    world = create_test_world("memory")
    calls: list[int] = []

    def on_idle() -> bool:
        calls.append(len(world.queue.live_run_ids()))
        return False

    async def scenario() -> None:
        worker = Worker(world=world, on_idle=on_idle, poll_interval=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop_event=stop))
        await asyncio.sleep(0.1)
        stop.set()
        await task
        worker.close()

    try:
        asyncio.run(scenario())
    finally:
        world.close()
    assert calls and set(calls) == {0}


def test_the_testing_kit_surface_is_pinned() -> None:
    import wfkit.testing as kit

    assert kit.__all__ == [
        "StepCall",
        "StepMock",
        "VirtualClock",
        "WorkflowEnv",
        "assert_replays",
        "assert_steps",
        "create_test_world",
        "export_golden",
        "step_names",
    ]
    for name in kit.__all__:
        assert getattr(kit, name) is not None
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = kit.nope
