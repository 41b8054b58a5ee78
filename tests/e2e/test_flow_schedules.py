"""Durable cron schedules (issue 13 "Schedules", SCENARIOS 41's in-process half) on
every world: stored, redefined, paused, removed; one run per tick whoever fires it;
missed ticks skipped or caught up; ``wfkit schedules``. Time is injected (``now=``)
rather than waited for."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from examples.e2e import flow
from tests.e2e.conftest import run_async, running_worker
from wfkit.cli import main as wfkit_main
from wfkit.runtime.api.client import Run
from wfkit.runtime.flow.cron import CronError
from wfkit.runtime.flow.schedules import (
    fire_due_schedules,
    next_fire_time,
    schedule,
    schedule_sync,
    tick_key,
)
from wfkit.worlds import create_world
from wfkit.worlds.base import ScheduleNotFoundError


def _ticked(world: Any) -> list[str]:
    return sorted(r.idempotency_key or "" for r in world.runs.list(limit=1000))


def test_a_schedule_is_stored_and_redefined_keeping_its_progress(world: Any) -> None:
    created = schedule_sync(flow.greet, cron="*/5 * * * *", args=["ann"], id="s1", world=world)
    assert created.workflow_name.endswith("//greet")
    assert (created.status, created.missed, created.last_tick_at) == (
        "active",
        "skip",
        created.created_at,
    )
    world.schedules.advance("s1", created.created_at + timedelta(minutes=5))
    again = schedule_sync(
        flow.greet, cron="0 * * * *", args=["bob"], id="s1", missed="catch_up", world=world
    )
    assert (again.cron, again.missed) == ("0 * * * *", "catch_up")
    assert again.last_tick_at == created.created_at + timedelta(minutes=5)
    assert [s.schedule_id for s in world.schedules.list()] == ["s1"]
    # advance only moves forward.
    assert not world.schedules.advance("s1", created.created_at)
    assert world.schedules.get("s1").last_tick_at == again.last_tick_at


def test_each_due_tick_starts_one_run_with_the_schedule_arguments(world: Any) -> None:
    async def scenario() -> None:
        made = await schedule(flow.greet, cron="* * * * * *", args=["tick"], id="s2", world=world)
        now = made.created_at.replace(microsecond=0) + timedelta(seconds=3, milliseconds=500)
        fired = fire_due_schedules(world, now=now)  # skip: only the latest of 3 due ticks
        assert len(fired) == 1
        tick = made.created_at.replace(microsecond=0) + timedelta(seconds=3)
        assert _ticked(world) == [tick_key("s2", tick)]
        assert fire_due_schedules(world, now=now) == []  # nothing more is due
        async with running_worker(world, flow_interval=0):
            assert await Run(fired[0], world).result(timeout=30) == "hello tick"

    run_async(scenario())


def test_catch_up_starts_every_missed_tick(world: Any) -> None:
    made = schedule_sync(
        flow.greet, cron="* * * * * *", args=["c"], id="s3", missed="catch_up", world=world
    )
    base = made.created_at.replace(microsecond=0)
    fired = fire_due_schedules(world, now=base + timedelta(seconds=4, milliseconds=1))
    assert len(fired) == 4
    assert _ticked(world) == sorted(
        tick_key("s3", base + timedelta(seconds=i)) for i in range(1, 5)
    )


def test_racing_firers_start_one_run_per_tick(world: Any) -> None:
    """Several "workers" (threads with their own connections for the SQL worlds) fire the
    same due ticks at once: each tick has exactly one run."""
    made = schedule_sync(
        flow.greet, cron="* * * * * *", args=["r"], id="race", missed="catch_up", world=world
    )
    base = made.created_at.replace(microsecond=0)
    handles = _handles(world, 4)
    barrier = threading.Barrier(len(handles))
    errors: list[BaseException] = []

    def firer(target: Any) -> None:
        barrier.wait()
        try:
            for second in range(1, 6):
                fire_due_schedules(target, now=base + timedelta(seconds=second))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=firer, args=(h,)) for h in handles]
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
    assert _ticked(world) == sorted(
        tick_key("race", base + timedelta(seconds=i)) for i in range(1, 6)
    )
    assert world.schedules.get("race").last_tick_at == base + timedelta(seconds=5)


def test_a_paused_schedule_fires_nothing_and_resumes_by_its_policy(world: Any) -> None:
    made = schedule_sync(flow.greet, cron="* * * * * *", args=["p"], id="s4", world=world)
    base = made.created_at.replace(microsecond=0)
    world.schedules.set_status("s4", "paused")
    assert fire_due_schedules(world, now=base + timedelta(seconds=10)) == []
    assert next_fire_time(world.schedules.get("s4")) is None
    world.schedules.set_status("s4", "active")
    assert len(fire_due_schedules(world, now=base + timedelta(seconds=10))) == 1  # skip
    world.schedules.delete("s4")
    assert fire_due_schedules(world, now=base + timedelta(seconds=20)) == []
    with pytest.raises(ScheduleNotFoundError):
        world.schedules.delete("s4")


def test_bad_schedules_are_one_line_errors_and_store_nothing(world: Any) -> None:
    with pytest.raises(CronError, match="expected 5 fields"):
        schedule_sync(flow.greet, cron="every minute", args=["x"], world=world)
    with pytest.raises(ValueError, match="missed='later'"):
        schedule_sync(flow.greet, cron="* * * * *", missed="later", world=world)  # type: ignore[arg-type]
    assert world.schedules.list() == []


def test_the_schedules_command_lists_pauses_resumes_and_removes(
    world: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The command opens the world it is given (--world); here, the test's own one.
    monkeypatch.setattr("wfkit.runtime.world_config.get_world", lambda spec=None: world)
    spec = "the-test-world"
    schedule_sync(flow.greet, cron="*/5 * * * *", args=["cli"], id="nightly", world=world)
    assert wfkit_main(["--world", spec, "schedules"]) == 0
    table = capsys.readouterr().out
    assert "nightly" in table and "*/5 * * * *" in table and "active" in table
    upcoming = next_fire_time(world.schedules.get("nightly"))
    assert upcoming is not None and upcoming > datetime.now(UTC)
    assert upcoming.strftime("%Y-%m-%d %H:%M") in table
    assert wfkit_main(["--world", spec, "schedules", "pause", "nightly"]) == 0
    assert world.schedules.get("nightly").status == "paused"
    assert wfkit_main(["--world", spec, "schedules", "resume", "nightly"]) == 0
    assert world.schedules.get("nightly").status == "active"
    assert wfkit_main(["--world", spec, "schedules", "remove", "nightly"]) == 0
    assert world.schedules.list() == []
    capsys.readouterr()
    assert wfkit_main(["--world", spec, "schedules", "pause", "nightly"]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no schedule 'nightly'" in err
    assert wfkit_main(["--world", spec, "schedules", "pause"]) == 1
    assert "needs a schedule ID" in capsys.readouterr().err


def _spec(world: Any) -> str:
    if world.name == "local":
        return f"sqlite:///{world.path}"
    url = world.url.render_as_string(hide_password=False)
    return f"{url}{'&' if '?' in url else '?'}schema={world.schema}"


def _handles(world: Any, count: int) -> list[Any]:
    if world.name == "memory":
        return [world] * count
    return [create_world(_spec(world)) for _ in range(count)]
